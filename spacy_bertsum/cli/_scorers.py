"""What trains on a cache (``cache_vectors``): the head alone on cached
sentence vectors, or with copies of the top encoder layers on cached layer
inputs; and putting what was trained back into a pipeline."""
import copy
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch

from ..architectures import HEAD_SETTINGS, get_encoder_layers, set_head_module
from ..inter_sentence import InterSentenceEncoder
from ..lora import add_lora, merge_lora
from .cache_vectors import LayerInputs
from .compact import save_compact_pipeline


# ---------------------------------------------------------------------------
# What is trained: the head alone, or the top encoder layers and the head
# ---------------------------------------------------------------------------


class VectorScorer(torch.nn.Module):
    """The head alone, on cached sentence vectors (the encoder fixed)."""

    def __init__(self, head: InterSentenceEncoder):
        super().__init__()
        self.head = head

    def doc_vectors(self, inputs: Sequence[numpy.ndarray]) -> List[torch.Tensor]:
        return [torch.from_numpy(numpy.asarray(x, dtype="float32")) for x in inputs]


class TopLayerScorer(torch.nn.Module):
    """The top encoder layers and the head, on cached layer inputs
    (``sentvecs.LayerInputs``): the layers run over each encoder window of
    each doc, their output is pooled into sentence vectors exactly as the
    pipeline pools it, and the head scores those. Dropout in the layers is
    active in training, as in the pipeline's own training."""

    def __init__(self, layers: Sequence[torch.nn.Module], head: InterSentenceEncoder):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.head = head

    def doc_vectors(self, inputs: Sequence[LayerInputs]) -> List[torch.Tensor]:
        windows = [(d, n) for d, x in enumerate(inputs) for n in x.wp_lengths.tolist()]
        length = max(n for _, n in windows)
        width = inputs[0].wp.shape[1]
        H = torch.zeros(len(windows), length, width)
        mask = torch.zeros(len(windows), length, dtype=torch.bool)
        gather, sent_index, weights = [], [], []
        row = sent_offset = 0
        for x in inputs:
            wp = torch.from_numpy(x.wp.astype("float32"))
            flat_of_wp = []  # the row*length+position of each of the doc's wordpieces
            start = 0
            for n in x.wp_lengths.tolist():
                H[row, :n] = wp[start : start + n]
                mask[row, :n] = True
                flat_of_wp.append(torch.arange(n) + row * length)
                start += n
                row += 1
            flat_of_wp_t = torch.cat(flat_of_wp)
            gather.append(flat_of_wp_t[torch.from_numpy(x.pool_wp.astype("int64"))])
            sent_index.append(torch.from_numpy(x.pool_sent.astype("int64")) + sent_offset)
            weights.append(torch.from_numpy(x.pool_w))
            sent_offset += len(x.vecs)
        additive = torch.zeros(mask.shape, dtype=H.dtype).masked_fill(~mask, torch.finfo(H.dtype).min)
        additive = additive[:, None, None, :]
        for layer in self.layers:
            H = layer(H, attention_mask=additive)[0]
        flat = H.reshape(-1, width)
        g = torch.cat(gather)
        sents = torch.zeros(sent_offset, width).index_add(0, torch.cat(sent_index), flat[g] * torch.cat(weights)[:, None])
        vecs = list(torch.split(sents, [len(x.vecs) for x in inputs]))
        if inputs[0].features is not None:
            vecs = [torch.cat([v, torch.from_numpy(x.features)], 1) for v, x in zip(vecs, inputs)]
        return vecs


def _pad(vecs: Sequence[torch.Tensor], max_sents: int) -> Tuple[torch.Tensor, torch.Tensor]:
    n = [min(len(v), max_sents) for v in vecs]
    X = torch.zeros(len(vecs), max(n), vecs[0].shape[1])
    M = torch.zeros(len(vecs), max(n), dtype=torch.bool)
    for b, (v, k) in enumerate(zip(vecs, n)):
        X[b, :k] = v[:k]
        M[b, :k] = True
    return X, M


@torch.no_grad()
def scorer_vectors(scorer: torch.nn.Module, inputs: Sequence, batch_size: int = 16) -> List[numpy.ndarray]:
    """The sentence vectors ``scorer`` gives its head for each doc (eval mode)."""
    scorer.eval()
    out: List[numpy.ndarray] = []
    for b in range(0, len(inputs), batch_size):
        out.extend(v.numpy() for v in scorer.doc_vectors(inputs[b : b + batch_size]))
    return out


# ---------------------------------------------------------------------------
# A pipeline with a new head; training from a config file
# ---------------------------------------------------------------------------


def head_config(nlp, pipe_name: str = "bertsum") -> Dict:
    """The head settings of a pipeline's bertsum model (as the config names them)."""
    attrs = nlp.get_pipe(pipe_name).model.attrs
    return {key: attrs[key] for key in HEAD_SETTINGS}


def install_head(nlp, head: InterSentenceEncoder, cfg: Dict, pipe_name: str = "bertsum") -> None:
    """Replace the scoring head of ``nlp``'s bertsum model by ``head`` (built
    with the settings ``cfg``). ``compact.save_compact_pipeline`` writes the settings
    into the saved config, so that the copy rebuilds the same head."""
    set_head_module(nlp.get_pipe(pipe_name).model, head, cfg)


def top_encoder_layers(nlp, n: int, pipe_name: str = "bertsum") -> List[torch.nn.Module]:
    """The top ``n`` layers of the bertsum encoder's Hugging Face model."""
    layers = get_encoder_layers(nlp.get_pipe(pipe_name).model)
    return list(layers[len(layers) - n :])


def install_layers(nlp, trained: Sequence[torch.nn.Module], pipe_name: str = "bertsum") -> None:
    """Copy the weights of ``trained`` (a :class:`TopLayerScorer`'s layers,
    their adapters merged) into the top encoder layers of ``nlp``'s bertsum model."""
    for layer, new in zip(top_encoder_layers(nlp, len(trained), pipe_name), trained):
        layer.load_state_dict(merge_lora(new).state_dict())


def build_scorer(
    nlp, head: InterSentenceEncoder, top_layers: int, attention_dropout: Optional[float] = None, lora_rank: int = 0
) -> torch.nn.Module:
    """What training changes: ``head`` alone on cached sentence vectors
    (``top_layers`` 0), or with copies of ``nlp``'s top encoder layers, whose
    attention dropout is set to ``attention_dropout`` unless None (see
    :func:`set_attention_dropout`); with ``lora_rank`` > 0 the layers keep
    their weights and train low-rank adapters of that rank (``spacy_bertsum.lora``)."""
    if top_layers:
        layers = [copy.deepcopy(layer) for layer in top_encoder_layers(nlp, top_layers)]
        if attention_dropout is not None:
            set_attention_dropout(layers, attention_dropout)
        if lora_rank:
            add_lora(layers, lora_rank)
        return TopLayerScorer(layers, head)
    return VectorScorer(head)


def set_attention_dropout(layers: Sequence[torch.nn.Module], p: float) -> int:
    """Set the dropout on the attention probabilities of Hugging Face
    Transformer ``layers`` (BERT-style self-attention: ``dropout_prob`` of the
    SDPA module, the ``dropout`` of the eager one) to ``p``; returns how many
    attention modules were changed. With 0, torch's SDPA takes its fused
    (flash) kernel in training on a CPU too, instead of materializing the
    attention matrix and its dropout mask: a faster training step
    (``docs/experiments/top_step_speed.py``; docs/benchmarks.md)."""
    changed = 0
    for layer in layers:
        for module in layer.modules():
            if hasattr(module, "dropout_prob") and isinstance(getattr(module, "dropout", None), torch.nn.Dropout):
                module.dropout_prob = p
                module.dropout.p = p
                changed += 1
    return changed


def save_scorer(nlp, scorer: torch.nn.Module, head_settings: Dict, path: Path) -> None:
    """Put a trained scorer's layers (if any) and head into ``nlp`` and save it compact."""
    if isinstance(scorer, TopLayerScorer):
        install_layers(nlp, scorer.layers)
    install_head(nlp, scorer.head, head_settings)
    save_compact_pipeline(nlp, path)


def init_head_from(head: InterSentenceEncoder, base: InterSentenceEncoder) -> None:
    """Start ``head`` from the weights of ``base`` (built with the same
    settings); a feature scorer that ``base`` lacks (``lexical_features``)
    keeps its zero start. Raises RuntimeError where the settings differ."""
    missing, unexpected = head.load_state_dict(base.state_dict(), strict=False)
    other = [key for key in missing if not key.startswith("feature_scorer.")] + list(unexpected)
    if other:
        raise RuntimeError(f"Parameters that do not match: {', '.join(other)}")
