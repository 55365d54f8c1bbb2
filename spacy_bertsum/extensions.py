"""The Doc/Span extensions: getters over plain data stored on the Doc.

Values are derived on access from ``doc.spans[spans_key]`` and the scores in
``doc.user_data`` (see ``spacy_bertsum.util``), never stored as Span objects, so
docs pickle, serialize with DocBin and cross process boundaries.
"""
import bisect
from typing import Dict, List, Optional

from spacy.tokens import Doc, Span

from .errors import Errors
from .util import get_sent_scores

#: setting key -> (default attribute name, class it is set on)
EXTENSION_KEYS = {
    "sent_scores": ("sent_scores", Doc),
    "summary_sents": ("summary_sents", Doc),
    "summary": ("summary", Doc),
    "span_score": ("bertsum_score", Span),
}
_MARK = "_spacy_bertsum_spans_key"


def _make_getters(spans_key: str) -> Dict[str, object]:
    def sent_scores(doc: Doc) -> Optional[List[float]]:
        scores = get_sent_scores(doc, spans_key)
        return list(scores) if scores is not None else None

    def summary_sents(doc: Doc) -> List[Span]:
        group = doc.spans.get(spans_key) if spans_key in doc.spans else None
        return list(group) if group is not None else []

    def summary(doc: Doc) -> str:
        return " ".join(sent.text.strip() for sent in summary_sents(doc))

    def span_score(span: Span) -> Optional[float]:
        """The score of the sentence this span starts in."""
        doc = span.doc
        scores = get_sent_scores(doc, spans_key)
        if scores is None:
            return None
        starts = [sent.start for sent in doc.sents]
        return scores[bisect.bisect_right(starts, span.start) - 1]

    getters = {
        "sent_scores": sent_scores,
        "summary_sents": summary_sents,
        "summary": summary,
        "span_score": span_score,
    }
    for getter in getters.values():
        setattr(getter, _MARK, spans_key)
    return getters


def install_extensions(names: Dict[str, str], spans_key: str) -> Dict[str, str]:
    """Register the extensions under the given (or default) names, once.

    Re-registering our own getters is a no-op; a name already taken by
    another package (or by bertsum with another spans_key) raises an error
    naming the ``extensions`` setting. Returns the resolved names."""
    unknown = set(names) - set(EXTENSION_KEYS)
    if unknown:
        raise ValueError(Errors.E004.format(keys=sorted(unknown), allowed=sorted(EXTENSION_KEYS)))
    resolved = {key: names.get(key, default) for key, (default, _) in EXTENSION_KEYS.items()}
    doc_names = [resolved[k] for k, (_, cls) in EXTENSION_KEYS.items() if cls is Doc]
    if len(set(doc_names)) != len(doc_names):
        raise ValueError(Errors.E007.format(names=doc_names))
    getters = _make_getters(spans_key)
    for key, (_, cls) in EXTENSION_KEYS.items():
        attr = resolved[key]
        if cls.has_extension(attr):
            getter = cls.get_extension(attr)[2]
            if getattr(getter, _MARK, None) == spans_key:
                continue
            raise ValueError(Errors.E003.format(ext=attr, obj=cls.__name__, key=key))
        cls.set_extension(attr, getter=getters[key])
    return resolved
