"""Low-rank adapters (LoRA, Hu et al. 2021) for training encoder layers on a cache.

``train-head`` with ``[training] lora_rank = r`` trains the top encoder layers
through adapters: each Linear of a layer keeps its weights W (frozen) and
learns a rank-r update, ``W x + B A x`` with B starting at 0, so training
starts from the base model exactly. What is put back into the pipeline is the
plain layer with ``W + B A`` (:func:`merge_lora`): the pipeline runs as fast as
before, and a compact save stores the update of a frozen layer as its low-rank
factors (see ``spacy_bertsum.compact``), so all six layers of MiniLM can be
adapted within the size of a pipeline that stores two.
"""
import copy
import math
from typing import Sequence

import torch


class LoRALinear(torch.nn.Module):
    """``base(x) + x A^T B^T`` with ``base`` (a Linear) frozen; A is (rank,
    in), B is (out, rank) and starts at zero."""

    def __init__(self, base: torch.nn.Linear, rank: int):
        super().__init__()
        self.base = base
        for param in base.parameters():
            param.requires_grad_(False)
        self.lora_A = torch.nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T) @ self.lora_B.T

    def merged(self) -> torch.nn.Linear:
        """A plain Linear with the update added to its weight (trainable again)."""
        out = copy.deepcopy(self.base)
        with torch.no_grad():
            out.weight += self.lora_B @ self.lora_A
        for param in out.parameters():
            param.requires_grad_(True)
        return out


def add_lora(layers: Sequence[torch.nn.Module], rank: int) -> int:
    """Freeze ``layers`` (in place) and wrap each of their Linear modules in a
    :class:`LoRALinear` of ``rank``; returns how many were wrapped."""
    count = 0
    for layer in layers:
        for param in layer.parameters():
            param.requires_grad_(False)
        for name, module in [(n, m) for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear)]:
            _set_submodule(layer, name, LoRALinear(module, rank))
            count += 1
    return count


def merge_lora(layer: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``layer`` whose adapters are merged into plain Linear modules
    (a layer without adapters comes back as a plain copy)."""
    layer = copy.deepcopy(layer)
    for name, module in [(n, m) for n, m in layer.named_modules() if isinstance(m, LoRALinear)]:
        _set_submodule(layer, name, module.merged())
    return layer


def _set_submodule(root: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)
