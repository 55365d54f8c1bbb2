"""Sentence windows and long documents: how the embedded encoder sees a doc.

The encoder runs on windows of whole sentences (the registered span getter
``spacy-bertsum.sentence_windows.v1``), and a long doc is cut into
sentence-aligned pieces that are encoded in calls of bounded size; each call's
token vectors are pooled into sentence vectors at once and dropped, so memory
stays bounded whatever the length of the doc or the batch.
"""
from typing import Callable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span
from spacy.util import registry
import spacy_transformers  # noqa: F401  (creates registry.span_getters)
from thinc.api import Model
from thinc.types import Floats2d

from .errors import Errors
from .util import sentence_lengths

#: A piece of a doc the encoder runs on: (index of the doc, first token, end token).
Piece = Tuple[int, int, int]


# ---------------------------------------------------------------------------
# Span getter: windows of whole sentences
# ---------------------------------------------------------------------------


class SentenceWindows:
    """A span getter (``get_spans`` of a spacy-transformers model): cuts each
    doc into windows of consecutive whole sentences of at most ``max_tokens``
    tokens. The bertsum model reads ``max_tokens`` (see
    :func:`get_window_size`) to run the encoder on these windows directly,
    batched by length."""

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError(Errors.E015.format(name="max_tokens", value=max_tokens))
        self.max_tokens = max_tokens

    def __call__(self, docs: List[Doc]) -> List[List[Span]]:
        return [sentence_windows(doc, self.max_tokens) for doc in docs]

    def __repr__(self) -> str:
        return f"SentenceWindows(max_tokens={self.max_tokens})"


@registry.span_getters("spacy-bertsum.sentence_windows.v1")
def configure_sentence_windows(max_tokens: int = 320) -> SentenceWindows:
    """Cut each doc into windows of consecutive whole sentences of at most
    ``max_tokens`` tokens, so no sentence is split across encoder windows and
    every token is encoded once. A sentence longer than ``max_tokens`` is cut
    into several windows. Keep ``max_tokens`` well below the encoder's limit
    (512 wordpieces for BERT); wordpieces beyond it are dropped by
    spacy-transformers."""
    return SentenceWindows(max_tokens)


def sentence_windows(doc: Doc, max_tokens: int) -> List[Span]:
    return [doc[start:end] for start, end in window_bounds(sentence_lengths(doc), max_tokens)]


def window_bounds(lengths: Sequence[int], max_tokens: int) -> List[Tuple[int, int]]:
    """(start, end) token offsets of the windows of consecutive whole
    sentences (of ``lengths`` tokens) of at most ``max_tokens`` tokens; a
    longer sentence is cut into windows of ``max_tokens``."""
    windows: List[Tuple[int, int]] = []
    start = end = 0
    for length in lengths:
        if end - start + length > max_tokens and end > start:
            windows.append((start, end))
            start = end
        end += length
        while end - start > max_tokens:
            windows.append((start, start + max_tokens))
            start += max_tokens
    if end > start:
        windows.append((start, end))
    return windows


# ---------------------------------------------------------------------------
# Long docs: the encoder runs on sentence-aligned pieces, pooled call by call
# ---------------------------------------------------------------------------


def encode_sentences(
    encoder: Model, docs: List[Doc], max_tokens: int, is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], None]]:
    """One vector per sentence of each doc (the mean of its token vectors),
    running the encoder on calls of at most ``max_tokens`` (padded) tokens.
    Docs longer than that are cut into pieces of whole sentences (see
    :func:`encoder_pieces`); with the sentence-window span getter, pieces are
    further cut into the windows the getter makes for them, so that windows
    (not whole docs) are sorted by length and batched together: the encoder
    pads every window of a call to the longest, and a doc's last window is
    usually short. The output is the same as the encoder gives for each piece
    (up to float rounding).

    Each call's token vectors are pooled into (parts of) sentences before the
    next call, so memory does not grow with the length of the docs beyond
    their sentence vectors. A sentence cut across pieces gets the mean of its
    parts' means, weighted by their token counts. Embedded encoders only
    (E084): a listener reads the upstream output for whole pipeline docs."""
    from .architectures import get_window_size, require_embedded  # the model's accessors (no import cycle)

    require_embedded(encoder, "Encoding docs in sentence-aligned pieces (encode_sentences, cache-vectors)")
    ops = encoder.ops
    lengths = [sentence_lengths(doc) for doc in docs]
    pieces = encoder_pieces(docs, max_tokens, get_window_size(encoder))
    # Per piece: its first sentence, and the token count of each sentence (part) in it.
    segments = _piece_segments(pieces, lengths)
    width = encoder.get_dim("nO") if encoder.has_dim("nO") else None
    sentvecs: List[Floats2d] = []
    # Per piece: the share of its sentence each part is (1.0 unless cut).
    weights = [
        ops.asarray1f([n / lengths[pieces[p][0]][first + j] for j, n in enumerate(seg_lengths)])
        for p, (first, seg_lengths) in enumerate(segments)
    ]
    backprops = []
    for call in piece_calls([end - start for _, start, end in pieces], max_tokens):
        tokvecs, bp_tokvecs = encoder([piece_doc(docs[pieces[p][0]], *pieces[p][1:]) for p in call], is_train)
        if not sentvecs:
            width = tokvecs[0].shape[1]
            sentvecs = [ops.alloc2f(len(n), width) for n in lengths]
        seg_lengths = ops.asarray1i([n for p in call for n in segments[p][1]])
        means = ops.reduce_mean(ops.flatten(tokvecs), seg_lengths)
        row = 0
        for p in call:
            i, first, n = pieces[p][0], segments[p][0], len(segments[p][1])
            sentvecs[i][first : first + n] += means[row : row + n] * weights[p][:, None]
            row += n
        if is_train:
            backprops.append((call, seg_lengths, [len(x) for x in tokvecs], bp_tokvecs))
        del tokvecs, means
    if not sentvecs:  # no tokens at all
        sentvecs = [ops.alloc2f(0, width or 0) for _ in docs]

    def backprop(d_sentvecs: List[Floats2d]) -> None:
        for call, seg_lengths, n_tokens, bp_tokvecs in backprops:
            d_means = ops.xp.concatenate(
                [
                    d_sentvecs[pieces[p][0]][segments[p][0] : segments[p][0] + len(segments[p][1])]
                    * weights[p][:, None]
                    for p in call
                ]
            )
            d_flat = ops.backprop_reduce_mean(d_means, seg_lengths)
            bp_tokvecs(ops.unflatten(d_flat, ops.asarray1i(n_tokens)))

    return sentvecs, backprop


def encoder_pieces(docs: Sequence[Doc], max_tokens: int, window: Optional[int]) -> List[Piece]:
    """The pieces ``(doc index, start, end)`` the encoder runs on for
    ``docs``: each doc whole, or cut into consecutive whole sentences of at
    most ``max_tokens`` tokens, each cut further into the span getter's
    ``window``-token windows when given (see :func:`get_window_size`)."""
    pieces: List[Piece] = []
    for i, doc in enumerate(docs):
        lengths = sentence_lengths(doc)
        parts = [(0, len(doc))] if len(doc) <= max_tokens else window_bounds(lengths, max_tokens)
        for start, end in parts:
            if window and end - start > window:
                inner = window_bounds(_clip_lengths(lengths, start, end), window)
                pieces.extend((i, start + s, start + e) for s, e in inner)
            elif end > start:
                pieces.append((i, start, end))
    return pieces


def piece_doc(doc: Doc, start: int, end: int) -> Doc:
    """The doc the encoder gets for the piece ``doc[start:end]``."""
    return doc if (start, end) == (0, len(doc)) else doc[start:end].as_doc()


def piece_calls(lengths: List[int], max_tokens: int) -> List[List[int]]:
    """Group pieces (by index) into encoder calls of at most ``max_tokens``
    padded tokens, shortest first: a call is padded to its longest piece."""
    calls: List[List[int]] = []
    for p in sorted(range(len(lengths)), key=lambda p: lengths[p]):
        if not calls or (len(calls[-1]) + 1) * lengths[p] > max_tokens:
            calls.append([])
        calls[-1].append(p)
    return calls


def _clip_lengths(lengths: Sequence[int], start: int, end: int) -> List[int]:
    """The sentence lengths of ``doc[start:end]`` as a doc of its own (a
    sentence cut at ``start`` or ``end`` counts with its part inside)."""
    clipped = []
    offset = 0
    for length in lengths:
        s, e = max(offset, start), min(offset + length, end)
        if e > s:
            clipped.append(e - s)
        offset += length
        if offset >= end:
            break
    return clipped


def _piece_segments(pieces: List[Piece], lengths: List[List[int]]) -> List[Tuple[int, List[int]]]:
    """For each piece: the index of its first sentence in its doc, and the
    token count of each sentence (or part of a sentence) it holds."""
    out: List[Tuple[int, List[int]]] = []
    sent = sent_start = 0
    doc = -1
    for i, start, end in pieces:
        if i != doc:  # the pieces of a doc are consecutive and in order
            doc, sent, sent_start = i, 0, 0
        while sent_start + lengths[i][sent] <= start:
            sent_start += lengths[i][sent]
            sent += 1
        first = sent
        parts = []
        s, pos = sent, sent_start
        while pos < end:
            parts.append(min(pos + lengths[i][s], end) - max(pos, start))
            pos += lengths[i][s]
            s += 1
        out.append((first, parts))
    return out
