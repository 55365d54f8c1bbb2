"""Registered model architectures: transformer encoder -> sentence vectors -> scores.

The bertsum model gets its token vectors in one of two ways
(``[components.bertsum.model.encoder]``):

* **embedded** (the default, ``spacy-bertsum.TransformerEncoder.v1`` in
  ``spacy_bertsum.encoder``): the
  transformer is part of the bertsum model (like
  ``spacy-transformers.Tok2VecTransformer``). The component then feeds the
  encoder something other than the pipeline's docs: sentence-aligned pieces of
  long documents (bounded memory) and, in training, only the first
  ``train_max_tokens`` tokens of a document (BertSum truncates to 512
  wordpieces too). It owns all its weights, so it can freeze lower encoder
  layers (``trainable_layers``) and save a compact checkpoint.
* **listener** (``spacy-transformers.TransformerListener.v1``, or spaCy's
  ``spacy.Tok2VecListener.v1``): an upstream ``transformer`` (``tok2vec``)
  component encodes each doc once for every component listening to it (e.g.
  ``textcat`` next to ``bertsum``) and gets their gradients in training. The
  upstream component's span getter handles long docs; the features above
  that need the encoder's own weights raise E084 (see :func:`require_embedded`).

The model tree (``spacy-bertsum.BertSumModel.v1``)::

    bertsum                      refs: "encoder", "head"
    ├── bertsum_encoder          ref "transformer"; attrs trainable_layers, encoder_name
    │   └── transformer >> split_trf_batch >> trfs2arrays
    │   (listener mode: transformer-listener >> trfs2arrays, ref "listener")
    └── pytorch (head)           an InterSentenceEncoder, added by initialize()

Other modules go through the accessors below (``get_hf_model``,
``set_hf_model``, ``get_tokenizer``, ``get_head_module``, ``set_head_module``,
``has_head``, ``get_encoder_layers``, ``get_window_size``, ``get_listener``)
instead of walking this tree themselves.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.pipeline.tok2vec import Tok2VecListener
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, PyTorchWrapper_v2, torch2xp, xp2torch
from thinc.types import ArgsKwargs, Floats1d, Floats2d
from spacy_transformers.layers import TransformerListener, TransformerModel

# The embedded encoder lives in its own module; these names stay importable from here.
from .encoder import _find_layer_list, build_transformer_encoder, freeze_lower_layers, trainable_param_names  # noqa: F401
from .errors import Errors
from .features import N_LEXICAL_FEATURES, lexical_features
from .inter_sentence import InterSentenceEncoder
from .long_docs import SentenceWindows, encode_sentences
from .util import SENT_OFFSET_KEY, sentence_lengths

DocScores = List[Floats1d]


# ---------------------------------------------------------------------------
# Accessors: what the rest of the package needs from the model tree
# ---------------------------------------------------------------------------


#: Layers through which the encoder reads an upstream component's output.
LISTENER_TYPES = (TransformerListener, Tok2VecListener)


def get_listener(model: Model) -> Optional[Model]:
    """The listener layer (a spacy-transformers TransformerListener or a
    spaCy Tok2VecListener) of the encoder of ``model`` (the bertsum model or
    its encoder), or None for an embedded encoder."""
    encoder = model.get_ref("encoder") if model.has_ref("encoder") else model
    return next((node for node in encoder.walk() if isinstance(node, LISTENER_TYPES)), None)


def upstream_name(listener: Model) -> str:
    """The name of the component ``listener`` listens to, for messages."""
    name = getattr(listener, "upstream_name", "*")
    if name != "*":
        return name
    return "tok2vec" if isinstance(listener, Tok2VecListener) else "transformer"


def require_embedded(model: Model, feature: str) -> None:
    """Raise E084 when ``model`` (the bertsum model or its encoder) listens to
    an upstream component: ``feature`` needs the encoder's own weights."""
    listener = get_listener(model)
    if listener is not None:
        raise ValueError(Errors.E084.format(feature=feature, upstream=upstream_name(listener)))


def n_docs_without_upstream_output(model: Model, docs: Sequence[Doc]) -> int:
    """In listener mode: how many non-empty ``docs`` carry no output of the
    upstream component (``doc._.trf_data`` / ``doc.tensor``), which the
    listener would silently replace by zeros at prediction time."""
    listener = get_listener(model)
    if isinstance(listener, TransformerListener):
        return sum(1 for doc in docs if len(doc) and getattr(doc._, "trf_data", None) is None)
    if isinstance(listener, Tok2VecListener):
        return sum(1 for doc in docs if len(doc) and doc.tensor.size == 0)
    return 0


def encoder_width(encoder: Model) -> int:
    """The width of the encoder's token vectors, after its initialization.
    A listener gets it from the upstream component when ``nlp.initialize``
    (or ``spacy.load``) connects them; E080 if none did."""
    if encoder.has_dim("nO"):
        return encoder.get_dim("nO")
    listener = get_listener(encoder)
    if listener is None:
        return encoder.get_dim("nO")  # thinc's own error
    if not listener.has_dim("nO"):
        raise ValueError(Errors.E080.format(listener=listener.name, upstream=upstream_name(listener)))
    width = listener.get_dim("nO")
    if encoder.has_dim("nO") is None:
        encoder.set_dim("nO", width)
    return width


def _transformer(model: Model) -> TransformerModel:
    require_embedded(model, "Access to the encoder's Hugging Face model (quantization, compact saves, frozen layers)")
    return model.get_ref("encoder").get_ref("transformer")


def get_hf_model(model: Model):
    """The Hugging Face (torch) model inside the encoder of the bertsum model
    ``model``, or None before initialization."""
    return _transformer(model).transformer


def set_hf_model(model: Model, hf_model) -> None:
    """Make the encoder of ``model`` run ``hf_model`` (e.g. an int8-quantized
    copy of its Hugging Face model); the tokenizer stays. Raises E005 before
    initialization."""
    transformer = _transformer(model)
    if transformer.transformer is None:
        raise ValueError(Errors.E005)
    # spacy-transformers sets its model once (attrs["set_transformer"] refuses
    # a second one) and has no public way to replace it: do what its setter
    # does, in this one place.
    shim = transformer.layers[0].shims[0]
    shim._model = hf_model
    shim._hfmodel.transformer = hf_model


def get_tokenizer(model: Model):
    """The Hugging Face tokenizer of the encoder of ``model``, or None before
    initialization."""
    return _transformer(model).tokenizer


def get_encoder_layers(model: Model):
    """The list of Transformer layers of the Hugging Face model of ``model``
    (e.g. ``encoder.layer`` for BERT), bottom first."""
    hf_model = get_hf_model(model)
    if hf_model is None:
        raise ValueError(Errors.E005)
    return _find_layer_list(hf_model)


def get_window_size(model: Model) -> Optional[int]:
    """The window size (``max_tokens``) of the encoder's sentence-window span
    getter, or None for another span getter (whose spans may overlap or leave
    tokens out, so the model does not cut docs into its windows itself).
    ``model``: the bertsum model or its encoder."""
    encoder = model.get_ref("encoder") if model.has_ref("encoder") else model
    if not encoder.has_ref("transformer"):
        return None
    get_spans = encoder.get_ref("transformer").attrs.get("get_spans")
    return get_spans.max_tokens if isinstance(get_spans, SentenceWindows) else None


def has_head(model: Model) -> bool:
    """Whether the scoring head exists (it is built at initialization, or
    from the component's cfg before the weights are loaded)."""
    return bool(model.has_ref("head"))


def get_head_module(model: Model) -> InterSentenceEncoder:
    """The torch scoring head (an InterSentenceEncoder) of ``model``. Raises
    E005 before initialization."""
    if not has_head(model):
        raise ValueError(Errors.E005)
    return model.get_ref("head").shims[0]._model


def set_head_module(model: Model, module: InterSentenceEncoder, settings: Optional[Dict[str, Any]] = None) -> None:
    """Make ``module`` the scoring head of ``model`` (replacing the current
    one, if any). ``settings``: the head settings it was built with
    (``inter_sentence_layers``, ``heads``, ``ff_size``, ``dropout``,
    ``block_size``, ``max_position``), stored in ``model.attrs`` so that a
    saved config can rebuild the same head."""
    head = PyTorchWrapper_v2(module, convert_inputs=_head_inputs, convert_outputs=_head_outputs)
    if has_head(model):
        model.replace_node(model.get_ref("head"), head)
    else:
        model.layers.append(head)
    model.set_ref("head", head)
    model.set_dim("nI", module.width, force=True)
    if settings:
        model.attrs.update({key: settings[key] for key in HEAD_SETTINGS if key in settings})


# ---------------------------------------------------------------------------
# The BertSum scorer: encoder -> sentence pooling -> inter-sentence layers
# ---------------------------------------------------------------------------

#: The BertSumModel.v1 settings that define the head.
HEAD_SETTINGS = ("inter_sentence_layers", "heads", "ff_size", "dropout", "block_size", "max_position", "lexical_features")


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
    lexical_features: bool = False,
) -> Model[List[Doc], DocScores]:
    """Score every sentence of a doc (one logit per sentence in ``doc.sents``).

    encoder: gives one vector per token (e.g. spacy-bertsum.TransformerEncoder.v1).
    inter_sentence_layers: Transformer layers over the sentence vectors
        (BertSum uses 2; 0 gives a linear scorer with position encoding).
    heads, ff_size, dropout: of those layers; heads must divide the width.
    block_size: sentences per attention block for long documents.
    max_tokens_per_call: the encoder sees at most this many (padded) tokens
        per call, and the head at most this many (padded) sentences, unless
        one doc has more; longer docs are cut at sentence boundaries and
        pooled into sentence vectors call by call, so memory stays bounded.
    max_position: sentences at this 0-based position or later share one
        position encoding (None: no cap). Set it to a position the training
        docs reach, so that late sentences of long docs are not scored from
        position encodings the model never saw.
    lexical_features: also score each sentence by its lexical centrality
        (TextRank over the words the doc's sentences share) and its length,
        computed from the doc's tokens (spacy_bertsum.features), through a
        small MLP added to the head. Helps where summaries keep the sentences
        that repeat the document's main words rather than its first ones.
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
        refs={"encoder": encoder, "head": None},
        dims={"nI": None},
        attrs={
            "inter_sentence_layers": inter_sentence_layers,
            "heads": heads,
            "ff_size": ff_size,
            "dropout": dropout,
            "block_size": block_size,
            "max_tokens_per_call": max_tokens_per_call,
            "max_position": max_position,
            "lexical_features": lexical_features,
        },
    )


# The name before 0.2 ("scorer" read like spaCy's scorers): saved pipelines
# and configs that use it keep working.
registry.architectures.register("spacy-bertsum.BertSumScorer.v1", func=build_bertsum_model)


def make_head_module(settings: Dict[str, Any], width: int) -> InterSentenceEncoder:
    """The torch scoring head for the model settings ``settings`` (the
    ``inter_sentence_layers``, ``heads``, ``ff_size``, ``dropout``,
    ``block_size``, ``max_position`` and ``lexical_features`` of
    BertSumModel.v1). ``width``: of the sentence vectors."""
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
        n_features=N_LEXICAL_FEATURES if settings.get("lexical_features") else 0,
    )


def build_head(model: Model, width: int) -> None:
    """Create the torch scoring head once the encoder width is known (at
    initialization, or from the component's cfg before deserialisation)."""
    if not has_head(model):
        set_head_module(model, make_head_module(model.attrs, width))


def bertsum_init(model: Model, X=None, Y=None) -> None:
    encoder = model.get_ref("encoder")
    encoder.initialize()
    build_head(model, encoder_width(encoder))
    model.get_ref("head").initialize()


def bertsum_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[DocScores, Callable]:
    encoder = model.get_ref("encoder")
    head = model.get_ref("head")
    max_per_call = model.attrs["max_tokens_per_call"]
    active = [i for i, doc in enumerate(docs) if len(doc)]
    if get_listener(encoder) is not None:
        sentvecs, bp_sentvecs = listen_sentences(encoder, docs, active, is_train)
    else:
        sentvecs, bp_sentvecs = encode_sentences(encoder, [docs[i] for i in active], max_per_call, is_train)
    if model.attrs.get("lexical_features"):
        sentvecs, bp_sentvecs = add_lexical_features(model, [docs[i] for i in active], sentvecs, bp_sentvecs)
    # A training window that starts later in its document (see
    # BertSum._training_doc) carries the index of its first sentence.
    offsets = [docs[i].user_data.get(SENT_OFFSET_KEY, 0) for i in active]
    outputs: DocScores = [model.ops.alloc1f(0) for _ in docs]
    # The head pads the docs of a call to the longest: a very long doc next
    # to short ones would make every row that long.
    backprops = []
    for call in head_calls([len(vecs) for vecs in sentvecs], max_per_call):
        logits, bp_head = head(([sentvecs[k] for k in call], [offsets[k] for k in call]), is_train)
        for k, doc_logits in zip(call, logits):
            outputs[active[k]] = doc_logits
        backprops.append((call, bp_head))

    def backprop(d_outputs: DocScores) -> List[Doc]:
        d_sentvecs: List[Floats2d] = [None] * len(active)  # type: ignore[list-item]
        for call, bp_head in backprops:
            for k, d_vecs in zip(call, bp_head([d_outputs[active[k]] for k in call])):
                d_sentvecs[k] = d_vecs
        bp_sentvecs(d_sentvecs)
        return docs

    return outputs, backprop


def add_lexical_features(
    model: Model, docs: Sequence[Doc], sentvecs: List[Floats2d], bp_sentvecs: Callable
) -> Tuple[List[Floats2d], Callable]:
    """Append each sentence's lexical features (spacy_bertsum.features) to its
    vector; the backprop hands on the gradient of the vector columns only."""
    ops, block_size = model.ops, model.attrs["block_size"]
    out = []
    for doc, vecs in zip(docs, sentvecs):
        feats = ops.asarray2f(lexical_features(doc, block_size), dtype=vecs.dtype)
        out.append(ops.xp.hstack([vecs, feats]))

    def backprop(d_out: List[Floats2d]) -> None:
        bp_sentvecs([d[:, : d.shape[1] - N_LEXICAL_FEATURES] for d in d_out])

    return out, backprop


def head_calls(n_sents: Sequence[int], max_padded: int) -> List[List[int]]:
    """Group docs (by index, in order) into head calls of at most
    ``max_padded`` padded sentences (a doc with more gets a call of its own)."""
    calls: List[List[int]] = []
    longest = 0
    for i, n in enumerate(n_sents):
        if calls and (len(calls[-1]) + 1) * max(longest, n) <= max_padded:
            calls[-1].append(i)
            longest = max(longest, n)
        else:
            calls.append([i])
            longest = n
    return calls


def listen_sentences(
    encoder: Model, docs: List[Doc], active: List[int], is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], None]]:
    """Listener mode: one vector per sentence of each doc ``docs[i]`` for i
    in ``active`` (the mean of its token vectors). The encoder gets exactly
    the docs the upstream component encoded (all of them: in training the
    listener checks the batch is the one it received), and its backprop
    hands the gradients to the upstream component."""
    ops = encoder.ops
    tokvecs, bp_tokvecs = encoder(docs, is_train)
    lengths = [sentence_lengths(doc) for doc in docs]
    seg_lengths = ops.asarray1i([n for doc_lengths in lengths for n in doc_lengths])
    n_tokens = ops.asarray1i([len(x) for x in tokvecs])
    width = tokvecs[0].shape[1] if tokvecs else encoder_width(encoder)
    means = ops.reduce_mean(ops.flatten(tokvecs), seg_lengths) if len(seg_lengths) else ops.alloc2f(0, width)
    starts = numpy.cumsum([0] + [len(doc_lengths) for doc_lengths in lengths])
    sentvecs = [means[starts[i] : starts[i + 1]] for i in active]

    def backprop(d_sentvecs: List[Floats2d]) -> None:
        d_means = ops.alloc2f(*means.shape)
        for i, d_vecs in zip(active, d_sentvecs):
            d_means[starts[i] : starts[i + 1]] = d_vecs
        d_flat = ops.backprop_reduce_mean(d_means, seg_lengths)
        bp_tokvecs(ops.unflatten(d_flat, n_tokens))

    return sentvecs, backprop


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
