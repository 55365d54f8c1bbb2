"""Compact checkpoints: the trained part of a bertsum model without the encoder
it was fine-tuned from.

With ``trainable_layers = k`` only the top k encoder layers change in training,
so a pipeline only needs to store those layers and the scoring head (in
float16): about 12 MB for MiniLM-L6 with k=2, instead of ~95 MB. Loading
starts from the pretrained encoder (the bundled MiniLM by default) and puts the
stored layers on top. A fingerprint of the frozen weights is stored with the
delta, so loading on top of a different base encoder fails with a clear error
instead of giving silently wrong scores.

Files written into the component directory:
    compact.json          encoder name, trainable layers, fingerprint, sizes
    encoder.safetensors   the trained encoder layers (float16)
    head.safetensors      the inter-sentence head (float16)
"""
import hashlib
import json
from pathlib import Path
from typing import Collection, Dict, List, Optional

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
FORMAT_VERSION = 1


def trained_param_names(model: Model) -> List[str]:
    """Names (in the HF state dict) of the encoder parameters that training changes."""
    return trainable_param_names(get_hf_model(model), model.get_ref("encoder").attrs["trainable_layers"])


def base_fingerprint(model: Model) -> str:
    """sha256 over the encoder parameters that training leaves unchanged."""
    return params_digest(model, trained=False)


def params_digest(model: Model, *, trained: Optional[bool], salt: str = "", skip: Collection[str] = ()) -> str:
    """sha256 (after ``salt``) over the names and float32 values of the encoder
    parameters that training changes (``trained``), leaves unchanged (not
    ``trained``) or all of them (``trained`` None), except those in ``skip``."""
    names = set(trained_param_names(model))
    skip = set(skip)
    digest = hashlib.sha256(salt.encode("utf8"))
    for name, param in get_hf_model(model).named_parameters():
        if (trained is not None and (name in names) != trained) or name in skip:
            continue
        digest.update(name.encode("utf8"))
        digest.update(param.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_compact(model: Model, path: Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = dict(get_hf_model(model).named_parameters())
    delta = {name: params[name].detach().to(torch.float16).cpu().contiguous() for name in trained_param_names(model)}
    head = {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in get_head_module(model).state_dict().items()}
    save_file(delta, str(path / ENCODER_FILE))
    save_file(head, str(path / HEAD_FILE))
    for name in (ENCODER_FILE, HEAD_FILE):  # safetensors writes them 0600
        (path / name).chmod(0o644)
    encoder = model.get_ref("encoder")
    meta = {
        "format": FORMAT_VERSION,
        "encoder_name": encoder.attrs["encoder_name"],
        "trainable_layers": encoder.attrs["trainable_layers"],
        "fingerprint": base_fingerprint(model),
        "n_encoder_tensors": len(delta),
        # Checked at load time: a flipped byte inside a tensor keeps the file
        # readable but would silently give NaN scores.
        "sha256": {name: _sha256(path / name) for name in (ENCODER_FILE, HEAD_FILE)},
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
    with torch.no_grad():
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
