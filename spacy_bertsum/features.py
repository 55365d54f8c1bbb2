"""Lexical sentence features: how central a sentence is to its document by the
words it shares with the other sentences (TextRank), and how long it is.

Where a corpus's summaries keep the sentences that repeat the document's main
words (BBC News: about 8 of 14 sentences are kept, from anywhere in the
article), word overlap is what decides, and an encoder tuned to the lead bias
of CNN/DailyMail does not see it in a few thousand training docs. The model
(``lexical_features = true`` in ``spacy-bertsum.BertSumModel.v1``) adds these
features to each sentence vector; the head scores them through a small MLP
whose output is added to the sentence's logit (see ``InterSentenceEncoder``).

Per sentence (with n sentences and PageRank scores r that sum to 1):

0. ``n * r``: centrality relative to a sentence of average centrality (1.0);
1. r standardized within the document;
2. the rank of r, as a share: 0.0 for the most central sentence, 1.0 for the least;
3. log(1 + content words), standardized within the document;
4. log(1 + content words) / 3.

Content words are the lowercased tokens that are not stop words (of the doc's
language), punctuation or whitespace. The graph links two sentences by the
number of content words they share over the sum of the logs of their sizes
(Mihalcea & Tarau 2004), and PageRank (damping 0.85) runs on it. Long
documents are ranked in blocks of ``block_size`` consecutive sentences, so
time and memory stay linear in their length.
"""
from typing import List, Sequence

import numpy
from spacy.tokens import Doc

#: Features per sentence (the columns described above).
N_LEXICAL_FEATURES = 5


def sentence_terms(doc: Doc) -> List[List[str]]:
    """The content words of each sentence of ``doc``, lowercased."""
    return [
        [t.lower_ for t in sent if not (t.is_stop or t.is_punct or t.is_space)]
        for sent in doc.sents
    ]


def lexical_features(doc: Doc, block_size: int = 128) -> numpy.ndarray:
    """The features of each sentence of ``doc``: (n_sents, N_LEXICAL_FEATURES) float32."""
    return terms_features(sentence_terms(doc), block_size)


def terms_features(terms: Sequence[Sequence[str]], block_size: int = 128) -> numpy.ndarray:
    """The features of sentences given by their content words."""
    n = len(terms)
    out = numpy.zeros((n, N_LEXICAL_FEATURES), dtype="float32")
    if n == 0:
        return out
    for start in range(0, n, block_size):
        block = terms[start : start + block_size]
        rank = textrank(block)
        m = len(block)
        out[start : start + m, 0] = m * rank
        out[start : start + m, 1] = _standardize(rank)
        out[start : start + m, 2] = numpy.argsort(numpy.argsort(-rank, kind="stable")) / max(m - 1, 1)
    log_len = numpy.log1p([len(set(t)) for t in terms])
    out[:, 3] = _standardize(log_len)
    out[:, 4] = log_len / 3
    return out


def textrank(terms: Sequence[Sequence[str]], damping: float = 0.85, iterations: int = 50) -> numpy.ndarray:
    """PageRank scores (summing to 1) of sentences on their word-overlap graph."""
    n = len(terms)
    vocab: dict = {}
    rows, cols = [], []
    for i, words in enumerate(terms):
        for word in set(words):
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
    B = numpy.zeros((n, max(len(vocab), 1)), dtype="float32")
    B[rows, cols] = 1.0
    sizes = B.sum(1)
    overlap = B @ B.T
    logs = numpy.log(numpy.maximum(sizes, 1.0))
    # Sentences of 0 or 1 content words get no edges (log 1 = 0 would divide by 0).
    linked = sizes > 1
    W = numpy.where(numpy.outer(linked, linked), overlap / (logs[:, None] + logs[None, :] + 1e-9), 0.0)
    numpy.fill_diagonal(W, 0.0)
    out_weight = W.sum(1, keepdims=True)
    P = W / numpy.where(out_weight > 0, out_weight, 1.0)
    r = numpy.full(n, 1.0 / n)
    for _ in range(iterations):
        r = (1 - damping) / n + damping * (P.T @ r)
    return r / r.sum()


def _standardize(x: numpy.ndarray) -> numpy.ndarray:
    x = numpy.asarray(x, dtype="float64")
    return (x - x.mean()) / (x.std() + 1e-6)
