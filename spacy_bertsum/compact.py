"""Compact checkpoints: the trained part of a bertsum model without the encoder
it was fine-tuned from.

With ``trainable_layers = k`` only the top k encoder layers change in training,
so a pipeline only needs to store those layers and the scoring head (in
float16): about 12 MB for MiniLM-L6 with k=2, instead of ~95 MB. Loading
starts from the pretrained encoder (the bundled MiniLM by default) and puts the
stored layers on top. A fingerprint of the frozen weights is stored with the
delta, so loading on top of a different base encoder fails with a clear error
instead of giving silently wrong scores.

A frozen layer may still have changed by a low-rank update (``train-head``
with ``lora_rank``: adapters on layers below the trainable ones, merged into
their weights). The saved copy then also stores, for each weight that differs
from the pretrained encoder's, the factors U (out x r) and V (r x in) of the
difference (rank r <= MAX_LOW_RANK, found by SVD), and loading adds U V to the
pretrained weight; the fingerprint is the pretrained encoder's. Any other
change to a frozen weight cannot be stored and is an error (E092).

Files written into the component directory:
    compact.json          encoder name, trainable layers, fingerprint, sizes
    encoder.safetensors   the trained encoder layers (float16)
    head.safetensors      the inter-sentence head (float16)
    lowrank.safetensors   only with low-rank updates of frozen weights:
                          NAME.U and NAME.V per weight (float16)
"""
import functools
import hashlib
import json
from pathlib import Path
from typing import Collection, Dict, List, Optional, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from thinc.api import Model

from .architectures import get_head_module, get_hf_model
from .encoder import trainable_param_names
from .errors import Errors

META_FILE = "compact.json"
ENCODER_FILE = "encoder.safetensors"
HEAD_FILE = "head.safetensors"
LOW_RANK_FILE = "lowrank.safetensors"
#: 1: trained layers and head; 2: also low-rank updates of frozen weights.
FORMAT_VERSION = 2
#: The highest rank of a frozen weight's update that a compact save stores as
#: factors (and at most half the weight's smaller side: beyond it, the
#: factors would be about as big as the weight).
MAX_LOW_RANK = 64
#: Singular values below this share of the largest are rounding noise.
_RANK_TOLERANCE = 1e-3
#: Frozen weights within this share of their largest value of the pretrained
#: ones are the pretrained ones.
_ROUNDING = 1e-5


def trained_param_names(model: Model) -> List[str]:
    """Names (in the HF state dict) of the encoder parameters that training changes."""
    return trainable_param_names(get_hf_model(model), model.get_ref("encoder").attrs["trainable_layers"])


def base_fingerprint(model: Model) -> str:
    """sha256 over the encoder parameters that training leaves unchanged."""
    return params_digest(model, trained=False)


def params_digest(
    model: Model, *, trained: Optional[bool], salt: str = "", skip: Collection[str] = (),
    values: Optional[Dict[str, torch.Tensor]] = None,
) -> str:
    """sha256 (after ``salt``) over the names and float32 values of the encoder
    parameters that training changes (``trained``), leaves unchanged (not
    ``trained``) or all of them (``trained`` None), except those in ``skip``;
    ``values``: other values to hash under those names (e.g. the pretrained
    encoder's)."""
    names = set(trained_param_names(model))
    skip = set(skip)
    digest = hashlib.sha256(salt.encode("utf8"))
    for name, param in get_hf_model(model).named_parameters():
        if (trained is not None and (name in names) != trained) or name in skip:
            continue
        value = param if values is None else values[name]
        digest.update(name.encode("utf8"))
        digest.update(value.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=2)
def _pretrained_params(name: str) -> Optional[Dict[str, torch.Tensor]]:
    """The parameters of the pretrained encoder ``name`` (None where it cannot
    be loaded here)."""
    from transformers import AutoModel

    from .util import resolve_encoder_name

    try:
        hf_model = AutoModel.from_pretrained(resolve_encoder_name(name))
    except (OSError, ValueError):
        return None
    return {k: v.detach().to(torch.float32) for k, v in hf_model.named_parameters()}


def low_rank_updates(model: Model) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, torch.Tensor]]]:
    """The factors (``NAME.U``, ``NAME.V``) of the update of each frozen
    encoder weight that differs from the pretrained encoder's, and the
    pretrained parameters (None where the pretrained encoder cannot be loaded:
    then the frozen weights are taken as they are). Raises E092 where a frozen
    parameter changed by more than a low-rank update of a weight."""
    encoder = model.get_ref("encoder")
    pretrained = _pretrained_params(str(encoder.attrs["encoder_name"]))
    if pretrained is None:
        return {}, None
    trained = set(trained_param_names(model))
    factors: Dict[str, torch.Tensor] = {}
    for name, param in get_hf_model(model).named_parameters():
        if name in trained:
            continue
        current = param.detach().to(torch.float32).cpu()
        if name not in pretrained or pretrained[name].shape != current.shape:
            return {}, None  # another encoder: loading will say so (E018)
        delta = current - pretrained[name]
        # Differences at float32 rounding (e.g. an update added and taken
        # away again) are no update.
        if float(delta.abs().max()) <= _ROUNDING * float(pretrained[name].abs().max()):
            continue
        rank, limit = MAX_LOW_RANK + 1, MAX_LOW_RANK
        if delta.dim() == 2:
            U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
            rank = int((S > S[0] * _RANK_TOLERANCE).sum())
            limit = min(MAX_LOW_RANK, min(delta.shape) // 2)  # beyond it, no smaller than the weight
        if rank > limit:
            raise ValueError(Errors.E092.format(name=name, limit=limit))
        factors[f"{name}.U"] = (U[:, :rank] * S[:rank]).to(torch.float16).contiguous()
        factors[f"{name}.V"] = Vh[:rank].to(torch.float16).contiguous()
    return factors, pretrained


def save_compact(model: Model, path: Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = dict(get_hf_model(model).named_parameters())
    delta = {name: params[name].detach().to(torch.float16).cpu().contiguous() for name in trained_param_names(model)}
    head = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in get_head_module(model).state_dict().items()}
    factors, pretrained = low_rank_updates(model)
    files = [(ENCODER_FILE, delta), (HEAD_FILE, head)] + ([(LOW_RANK_FILE, factors)] if factors else [])
    (path / LOW_RANK_FILE).unlink(missing_ok=True)  # from an earlier save into the same directory
    for name, tensors in files:
        save_file(tensors, str(path / name))
        (path / name).chmod(0o644)  # safetensors writes them 0600
    encoder = model.get_ref("encoder")
    meta = {
        # A copy without low-rank updates loads with older versions too.
        "format": FORMAT_VERSION if factors else 1,
        "encoder_name": encoder.attrs["encoder_name"],
        "trainable_layers": encoder.attrs["trainable_layers"],
        # Of the weights that loading starts from: the pretrained encoder's.
        "fingerprint": params_digest(model, trained=False, values=pretrained) if pretrained else base_fingerprint(model),
        "n_encoder_tensors": len(delta),
        "n_low_rank_updates": len(factors) // 2,
        # Checked at load time: a flipped byte inside a tensor keeps the file
        # readable but would silently give NaN scores.
        "sha256": {name: _sha256(path / name) for name, _ in files},
    }
    (path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf8")


def is_compact(path: Path) -> bool:
    return (Path(path) / META_FILE).exists()


def load_compact(model: Model, path: Path) -> None:
    """Initialize ``model`` from its pretrained encoder, then load the stored
    layers and head. Raises a clear error on a different base encoder or an
    unreadable file."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise ValueError(Errors.E016.format(path=path / META_FILE, err=err)) from err
    if meta.get("format", 1) > FORMAT_VERSION:
        raise ValueError(Errors.E093.format(path=path, format=meta.get("format"), supported=FORMAT_VERSION))
    encoder = model.get_ref("encoder")
    if meta.get("trainable_layers") != encoder.attrs["trainable_layers"]:
        raise ValueError(
            Errors.E017.format(
                path=path, saved=meta.get("trainable_layers"), config=encoder.attrs["trainable_layers"]
            )
        )
    model.initialize()  # loads the pretrained base encoder, builds the head
    fingerprint = base_fingerprint(model)
    if fingerprint != meta.get("fingerprint"):
        raise ValueError(
            Errors.E018.format(
                path=path, name=meta.get("encoder_name"), loaded=encoder.attrs["encoder_name"]
            )
        )
    for name, digest in (meta.get("sha256") or {}).items():  # older compact saves have none
        if not (path / name).exists() or _sha256(path / name) != digest:
            raise ValueError(Errors.E016.format(path=path / name, err="the file's checksum does not match the one recorded at save time"))
    delta = _read_tensors(path / ENCODER_FILE)
    head = _read_tensors(path / HEAD_FILE)
    transformer = get_hf_model(model)
    expected = set(trained_param_names(model))
    if set(delta) != expected:
        raise ValueError(Errors.E016.format(path=path / ENCODER_FILE, err="unexpected tensor names"))
    params = dict(transformer.named_parameters())
    factors = _read_tensors(path / LOW_RANK_FILE) if meta.get("n_low_rank_updates") else {}
    if set(factors) != {f"{n}.{k}" for n in params if f"{n}.U" in factors for k in "UV"}:
        raise ValueError(Errors.E016.format(path=path / LOW_RANK_FILE, err="unexpected tensor names"))
    with torch.no_grad():
        for key in [k for k in factors if k.endswith(".U")]:
            name = key[:-2]
            update = factors[key].to(torch.float32) @ factors[f"{name}.V"].to(torch.float32)
            if update.shape != params[name].shape:
                raise ValueError(Errors.E016.format(path=path / LOW_RANK_FILE, err=f"shape mismatch for {name}"))
            params[name].add_(update.to(params[name].dtype))
        for name, value in delta.items():
            if params[name].shape != value.shape:
                raise ValueError(Errors.E016.format(path=path / ENCODER_FILE, err=f"shape mismatch for {name}"))
            params[name].copy_(value.to(params[name].dtype))
    module = get_head_module(model)
    target = module.state_dict()
    try:
        module.load_state_dict({k: v.to(target[k].dtype) for k, v in head.items()})
    except (KeyError, RuntimeError) as err:
        raise ValueError(Errors.E016.format(path=path / HEAD_FILE, err=err)) from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_tensors(path: Path) -> Dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError) as err:
        raise ValueError(Errors.E016.format(path=path, err=err)) from err
