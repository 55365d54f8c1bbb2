"""What the ``bertsum`` component learns from: gold sentence labels, the
training window of a long doc, and the loss. Plain functions over docs and
arrays; ``BertSum.update`` and ``BertSum.get_loss`` call them."""
import random
from typing import Iterable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Ops

from .errors import Errors
from .util import SENT_OFFSET_KEY, sentence_lengths


def gold_labels(eg: Example, spans_key: str, i: int = 0) -> List[float]:
    """1.0 for each predicted sentence covered (by majority of its tokens)
    by the gold spans in ``eg.reference.spans[spans_key]``, else 0.0.
    ``i``: the example's index in its batch, for the error message."""
    if spans_key not in eg.reference.spans:
        raise ValueError(Errors.E008.format(i=i, key=spans_key))
    gold = eg.get_aligned_spans_y2x(eg.reference.spans[spans_key], allow_overlap=True)
    covered = numpy.zeros((len(eg.predicted) + 1,), dtype="i")
    for span in gold:
        covered[span.start] += 1
        covered[span.end] -= 1
    covered = numpy.cumsum(covered)[:-1] > 0
    labels = []
    for sent in eg.predicted.sents if len(eg.predicted) else []:
        labels.append(1.0 if covered[sent.start : sent.end].mean() > 0.5 else 0.0)
    return labels


def training_window(doc: Doc, max_tokens: int, late_share: float = 0.0) -> Doc:
    """The whole sentences of ``doc`` that fit in ``max_tokens`` (0: the whole
    doc), from the first sentence, or (for a share ``late_share`` of long
    docs) from a random later one; such a window records its first
    sentence's index under SENT_OFFSET_KEY so that positions stay true."""
    if not max_tokens or len(doc) <= max_tokens:
        return doc
    lengths = sentence_lengths(doc)
    first = 0
    if late_share and len(lengths) > 1 and random.random() < late_share:
        first = random.randrange(1, len(lengths))
    start = sum(lengths[:first])
    end = start
    for length in lengths[first:]:
        if end > start and end - start + length > max_tokens:
            break
        end += length
    window = doc[start:end].as_doc()
    if first:
        window.user_data[SENT_OFFSET_KEY] = first
    return window


def window_labels(
    examples: Iterable[Example], logits: List, spans_key: str, offsets: Optional[List[int]] = None
) -> List[List[float]]:
    """The gold labels of the sentences scored in ``logits[i]``: those of
    ``examples[i]`` from ``offsets[i]`` on (the first sentence of a training
    window), as many as there are logits."""
    labels = []
    for i, (eg, doc_logits) in enumerate(zip(examples, logits)):
        first = offsets[i] if offsets else 0
        labels.append(gold_labels(eg, spans_key, i)[first : first + len(doc_logits)])
    return labels


def sentence_loss(ops: Ops, logits: List, labels: List[List[float]]) -> Tuple[float, List]:
    """Binary cross-entropy between sentence logits and labels, averaged over
    all sentences in the batch: (loss, gradient per doc)."""
    d_logits = []
    total_loss = 0.0
    n_total = sum(len(x) for x in logits)
    for doc_logits, doc_labels in zip(logits, labels):
        target = ops.asarray1f(doc_labels)
        probs = ops.xp.clip(1.0 / (1.0 + ops.xp.exp(-doc_logits)), 1e-7, 1 - 1e-7)
        total_loss += float(-(target * ops.xp.log(probs) + (1 - target) * ops.xp.log(1 - probs)).sum())
        d_logits.append((probs - target) / max(n_total, 1))
    return total_loss / max(n_total, 1), d_logits
