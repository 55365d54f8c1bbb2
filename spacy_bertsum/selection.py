"""Choosing summary sentences from per-sentence scores.

The rules follow BertSumExt (Liu & Lapata 2019): rank sentences by score, walk
down the ranking and skip a sentence that shares a trigram with one already
chosen ("trigram blocking"), stop at ``top_k``. On top of that a user can ask
for a share of the document (``ratio``), a word budget (``max_words``) and a
minimum sentence length (``min_words``). The result is always in document order.
"""
import math
from dataclasses import dataclass, asdict, replace
from typing import Iterable, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc, Span

from .errors import Errors


@dataclass(frozen=True)
class SelectionConfig:
    """How many and which sentences make a summary.

    top_k: the most sentences to select (None: no count limit).
    ratio: if set, select ``ceil(ratio * n_sents)`` sentences instead of ``top_k``.
    max_words: word budget; a sentence that would exceed it is skipped.
    trigram_blocking: skip a sentence sharing a trigram with one already chosen.
    min_words: sentences with fewer words are not eligible, unless no sentence is.
    """

    top_k: Optional[int] = 3
    ratio: Optional[float] = None
    max_words: Optional[int] = None
    trigram_blocking: bool = True
    min_words: int = 0

    def __post_init__(self):
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(Errors.E010.format(name="top_k", value=self.top_k))
        if self.ratio is not None and not (0.0 < self.ratio <= 1.0):
            raise ValueError(Errors.E011.format(value=self.ratio))
        if self.max_words is not None and self.max_words < 0:
            raise ValueError(Errors.E010.format(name="max_words", value=self.max_words))
        if self.min_words < 0:
            raise ValueError(Errors.E010.format(name="min_words", value=self.min_words))

    def updated(self, **overrides) -> "SelectionConfig":
        """A copy with some fields replaced; unknown names raise a clear error."""
        unknown = set(overrides) - set(asdict(self))
        if unknown:
            raise TypeError(
                Errors.E012.format(names=sorted(unknown), allowed=sorted(asdict(self)))
            )
        return replace(self, **overrides)

    def n_wanted(self, n_sents: int) -> int:
        if self.ratio is not None:
            return max(1, math.ceil(self.ratio * n_sents))
        if self.top_k is None:
            return n_sents
        return self.top_k


def select_spans(doc: Doc, scores: Sequence[float], config: SelectionConfig = SelectionConfig()) -> List[Span]:
    """The sentences of ``doc`` (spans of ``doc.sents``) that ``scores`` (one
    per sentence) select, in document order. A whitespace-only "sentence" (e.g.
    a whitespace-only doc) is scored but never part of a summary."""
    sents = list(doc.sents) if len(doc) else []
    words = [[t.lower_ for t in sent if not t.is_space] for sent in sents]
    if len(scores) != len(words):
        raise ValueError(Errors.E013.format(n_scores=len(scores), n_sents=len(words)))
    keep = [i for i, sent_words in enumerate(words) if sent_words]
    chosen = select_sentences([scores[i] for i in keep], [words[i] for i in keep], config)
    return [sents[keep[j]] for j in chosen]


def lead(n_sents: int, k: int = 3) -> List[int]:
    """Lead-k, the baseline every news summarizer is compared with: the
    indices of the first ``k`` sentences (all of them in a shorter doc)."""
    return list(range(min(k, n_sents)))


def trigrams(words: Sequence[str]) -> Set[Tuple[str, str, str]]:
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}  # type: ignore


def count_words(words: Iterable[str]) -> int:
    """Words are tokens with at least one letter or digit (punctuation is free)."""
    return sum(1 for w in words if any(ch.isalnum() for ch in w))


def select_sentences(
    scores: Sequence[float],
    sent_words: Sequence[Sequence[str]],
    config: SelectionConfig = SelectionConfig(),
) -> List[int]:
    """Indices of the selected sentences, in document order.

    scores: one score per sentence (higher is better).
    sent_words: the lowercased tokens of each sentence (used for trigram
        blocking and word counts), same length as ``scores``.
    """
    if len(scores) != len(sent_words):
        raise ValueError(Errors.E013.format(n_scores=len(scores), n_sents=len(sent_words)))
    n = len(scores)
    if n == 0:
        return []
    n_wanted = min(config.n_wanted(n), n)
    lengths = [count_words(words) for words in sent_words]
    eligible = [i for i in range(n) if lengths[i] >= config.min_words]
    if not eligible:
        eligible = list(range(n))
    # Stable ranking: ties keep document order, which favours the lead.
    ranked = sorted(eligible, key=lambda i: (-scores[i], i))
    chosen: List[int] = []
    seen_trigrams: Set[Tuple[str, str, str]] = set()
    n_words = 0
    for i in ranked:
        if len(chosen) >= n_wanted:
            break
        if config.max_words is not None and n_words + lengths[i] > config.max_words:
            continue
        if config.trigram_blocking:
            tri = trigrams(sent_words[i])
            if tri & seen_trigrams:
                continue
            seen_trigrams |= tri
        chosen.append(i)
        n_words += lengths[i]
    return sorted(chosen)
