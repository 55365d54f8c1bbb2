"""Greedy ROUGE oracle used to create extractive training labels.

This follows ``greedy_selection`` from BertSum/PreSumm
(``nlpyang/PreSumm``, ``src/prepro/data_builder.py``):

* ROUGE-N is computed on *sets* of n-grams (PreSumm's ``cal_rouge``): the
  candidate n-grams are the union of the per-sentence n-gram sets of the
  selected sentences, the reference n-grams are taken from the reference
  summary with its sentences joined into one token sequence.
* Sentences are added greedily, each time picking the one that most raises
  ROUGE-1 F + ROUGE-2 F of the selected set; selection stops at ``max_sents``
  or as soon as no remaining sentence raises the score (ties go to the earlier
  sentence).
* The selected indices are returned sorted (document order).

Unlike PreSumm (which drops non-alphanumeric characters and keeps case), the
text is tokenized like the evaluation metric, ``rouge-score``'s
``DefaultTokenizer(use_stemmer=True)``: lowercase, every character outside
``[a-z0-9]`` becomes a space, tokens longer than three characters are Porter
stemmed.

This module has no spaCy dependency.
"""
import functools
import re
from itertools import combinations
from typing import FrozenSet, List, Sequence, Tuple, Union

from nltk.stem import porter

__all__ = ["rouge_tokens", "ngrams", "rouge_f", "greedy_oracle", "soft_labels"]

_NON_ALPHANUM_RE = re.compile(r"[^a-z0-9]+")
# rouge-score uses nltk's PorterStemmer with its default (NLTK_EXTENSIONS) mode.
_STEMMER = porter.PorterStemmer()


@functools.lru_cache(maxsize=2**18)
def _stem(word: str) -> str:
    """Porter-stem one lowercase alphanumeric word (cached: stemming is slow)."""
    return _STEMMER.stem(word)


def rouge_tokens(text: str) -> List[str]:
    """Tokenize ``text`` exactly like ``rouge_score``'s default tokenizer with stemming.

    Lowercase, replace runs of characters outside ``[a-z0-9]`` by a space, split,
    and Porter-stem tokens longer than 3 characters.
    """
    tokens = _NON_ALPHANUM_RE.sub(" ", text.lower()).split()
    return [_stem(tok) if len(tok) > 3 else tok for tok in tokens]


def ngrams(tokens: Sequence[str], n: int) -> FrozenSet[Tuple[str, ...]]:
    """The set of n-grams (as tuples) of one token sequence."""
    return frozenset(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_f(overlap: int, candidate_count: int, reference_count: int) -> float:
    """Set-based ROUGE F1 from counts, as PreSumm's ``cal_rouge``."""
    precision = overlap / candidate_count if candidate_count else 0.0
    recall = overlap / reference_count if reference_count else 0.0
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def greedy_oracle(
    sentences: Sequence[str],
    reference: Union[Sequence[str], str],
    max_sents: int = 3,
) -> List[int]:
    """Indices (sorted) of the sentences a greedy ROUGE-1 + ROUGE-2 oracle selects.

    sentences: the document's sentences, as strings.
    reference: the reference summary, either a list of sentences or one string.
    max_sents: the most sentences to select.
    """
    if isinstance(reference, str):
        reference = [reference]
    ref_tokens: List[str] = []
    for ref_sent in reference:
        ref_tokens.extend(rouge_tokens(ref_sent))
    ref_1 = ngrams(ref_tokens, 1)
    ref_2 = ngrams(ref_tokens, 2)
    if not ref_1 or max_sents <= 0:
        return []

    # Per sentence, once: its n-gram sets and their overlap with the reference.
    sent_1: List[FrozenSet] = []
    sent_2: List[FrozenSet] = []
    hit_1: List[FrozenSet] = []
    hit_2: List[FrozenSet] = []
    for sent in sentences:
        toks = rouge_tokens(sent)
        s1, s2 = ngrams(toks, 1), ngrams(toks, 2)
        sent_1.append(s1)
        sent_2.append(s2)
        hit_1.append(s1 & ref_1)
        hit_2.append(s2 & ref_2)
    # Sentences sharing nothing with the reference can never raise the score.
    candidates = [i for i in range(len(sentences)) if hit_1[i]]

    selected: List[int] = []
    sel_1: FrozenSet = frozenset()
    sel_2: FrozenSet = frozenset()
    sel_hit_1: FrozenSet = frozenset()
    sel_hit_2: FrozenSet = frozenset()
    best_score = 0.0
    n_ref_1, n_ref_2 = len(ref_1), len(ref_2)
    for _ in range(max_sents):
        best_i = -1
        for i in candidates:
            if i in selected:
                continue
            score = rouge_f(
                len(sel_hit_1 | hit_1[i]), len(sel_1 | sent_1[i]), n_ref_1
            ) + rouge_f(len(sel_hit_2 | hit_2[i]), len(sel_2 | sent_2[i]), n_ref_2)
            if score > best_score:
                best_score = score
                best_i = i
        if best_i == -1:
            break
        selected.append(best_i)
        sel_1 = sel_1 | sent_1[best_i]
        sel_2 = sel_2 | sent_2[best_i]
        sel_hit_1 = sel_hit_1 | hit_1[best_i]
        sel_hit_2 = sel_hit_2 | hit_2[best_i]
    return sorted(selected)


def soft_labels(
    sents: Sequence[str],
    reference: Sequence[str],
    top_m: int = 8,
    beam: int = 8,
    max_sents: int = 3,
    min_sents: int = 1,
) -> List[float]:
    """OREO-style soft labels (Xu & Lapata 2023, simplified): score every
    summary of ``min_sents`` to ``max_sents`` sentences drawn from the
    ``top_m`` sentences with the best single ROUGE, keep the ``beam`` best
    summaries, and label each sentence with the ROUGE-weighted share of those
    summaries containing it. The greedy oracle gives one of these summaries a
    hard 1. With ``min_sents = max_sents = 3`` the summaries are the ones a
    top-3 selection can make: where one or two sentences cover a short
    reference, the labels also say which third sentence costs least."""
    ref_tokens: List[str] = [t for s in reference for t in rouge_tokens(s)]
    ref1, ref2 = ngrams(ref_tokens, 1), ngrams(ref_tokens, 2)
    labels = [0.0] * len(sents)
    if not ref1 or not sents:
        return labels
    s1, s2 = [], []
    for s in sents:
        toks = rouge_tokens(s)
        s1.append(ngrams(toks, 1))
        s2.append(ngrams(toks, 2))

    def score(idx: Tuple[int, ...]) -> float:
        c1 = frozenset().union(*(s1[i] for i in idx))
        c2 = frozenset().union(*(s2[i] for i in idx))
        return rouge_f(len(c1 & ref1), len(c1), len(ref1)) + rouge_f(len(c2 & ref2), len(c2), len(ref2))

    single = sorted(range(len(sents)), key=lambda i: -score((i,)))[:top_m]
    low = min(min_sents, len(single))
    cands = [c for k in range(low, max_sents + 1) for c in combinations(sorted(single), k)]
    scored = sorted(((score(c), c) for c in cands), reverse=True)[:beam]
    total = sum(s for s, _ in scored)
    if total <= 0:
        return labels
    for s, c in scored:
        for i in c:
            labels[i] += s / total
    return labels
