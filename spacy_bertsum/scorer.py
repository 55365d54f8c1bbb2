"""ROUGE scorer for ``spacy evaluate`` / ``spacy train`` (registered, config-referenced).

Score keys start with the component's spans key (as spaCy's spancat scores
are ``spans_{key}_f``), so two bertsum components with different spans keys
do not overwrite each other's scores: ``bertsum_rouge1_f`` ... for the
default key ``"bertsum"``.

Predicted summary: the sentences in ``eg.predicted.spans[spans_key]``.
Reference summary: ``eg.reference.user_data["bertsum_reference"]`` (list of
sentences), or, if absent, the gold sentences in ``eg.reference.spans[spans_key]``.
ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 from Google's ``rouge-score`` with Porter
stemming; ROUGE-Lsum treats newline-separated sentences as summary-level units.
"""
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from rouge_score import rouge_scorer
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .errors import Warnings
from .util import REFERENCE_KEY, SPANS_KEY, get_reference

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
_ROUGE = None


def rouge() -> rouge_scorer.RougeScorer:
    global _ROUGE
    if _ROUGE is None:
        _ROUGE = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return _ROUGE


def rouge_f(candidate: Sequence[str], reference: Sequence[str]) -> Dict[str, float]:
    """ROUGE F1 (0-1) of a candidate summary against a reference, each a list
    of sentences."""
    result = rouge().score("\n".join(reference), "\n".join(candidate))
    return {name: result[name].fmeasure for name in ROUGE_TYPES}


def reference_summary(gold: Doc, spans_key: str = SPANS_KEY) -> Optional[List[str]]:
    """The reference summary of a gold doc: ``bertsum_reference`` in its
    user data, else the text of its gold spans, else None."""
    reference = get_reference(gold)
    if reference is None and spans_key in gold.spans:
        reference = [span.text.strip() for span in gold.spans[spans_key]]
    return reference


def example_rouge(eg: Example, spans_key: str = SPANS_KEY) -> Optional[Dict[str, float]]:
    """ROUGE F1 (0-1) of the predicted summary of one example against its
    reference; None without a reference. What :func:`score_rouge` averages
    (``spacy evaluate``), and what ``spacy_bertsum evaluate`` reports per doc."""
    reference = reference_summary(eg.reference, spans_key)
    if reference is None:
        return None
    pred = eg.predicted.spans[spans_key] if spans_key in eg.predicted.spans else []
    return rouge_f([span.text.strip() for span in pred], reference)


def score_rouge(examples: Iterable[Example], spans_key: str = SPANS_KEY, **kwargs) -> Dict[str, Optional[float]]:
    """Mean ROUGE F1 of the predicted summaries against the references, plus
    sentence-level P/R/F of the selection against the gold (oracle) spans.
    Keys: {spans_key}_rouge1_f, {spans_key}_rouge2_f, {spans_key}_rougeLsum_f,
    {spans_key}_sents_p/r/f (``bertsum_rouge1_f`` ... for the default key)."""
    totals = {name: 0.0 for name in ROUGE_TYPES}
    n_docs = 0
    sents_prf = PRFScore()
    has_gold = False
    for eg in examples:
        scores = example_rouge(eg, spans_key)
        if scores is None:
            warnings.warn(Warnings.W002.format(key=spans_key, ref_key=REFERENCE_KEY))
            continue
        for name, value in scores.items():
            totals[name] += value
        n_docs += 1
        gold = eg.reference.spans.get(spans_key) if spans_key in eg.reference.spans else None
        if gold is not None:
            pred = eg.predicted.spans.get(spans_key) if spans_key in eg.predicted.spans else None
            has_gold = True
            aligned = eg.get_aligned_spans_y2x(gold, allow_overlap=True)
            gold_set = {(s.start, s.end) for s in aligned}
            pred_set = {(s.start, s.end) for s in pred} if pred is not None else set()
            sents_prf.tp += len(gold_set & pred_set)
            sents_prf.fp += len(pred_set - gold_set)
            sents_prf.fn += len(gold_set - pred_set)
    scores: Dict[str, Optional[float]] = {
        f"{spans_key}_{name}_f": (totals[name] / n_docs if n_docs else None) for name in ROUGE_TYPES
    }
    scores[f"{spans_key}_sents_p"] = sents_prf.precision if has_gold else None
    scores[f"{spans_key}_sents_r"] = sents_prf.recall if has_gold else None
    scores[f"{spans_key}_sents_f"] = sents_prf.fscore if has_gold else None
    return scores


@registry.scorers("spacy-bertsum.rouge_scorer.v1")
def make_rouge_scorer() -> Callable:
    return score_rouge


# The issue tracker and early docs spelled the name with an underscore; keep it
# resolvable so configs written that way still load.
registry.scorers.register("spacy_bertsum.rouge_scorer.v1", func=make_rouge_scorer)
