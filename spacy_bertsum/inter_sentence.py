"""The BertSum inter-sentence Transformer, in plain PyTorch (no spaCy imports).

Sentence vectors of a document get a sinusoidal position encoding of the
sentence index (capped at ``max_position``: a model trained on the first few
hundred tokens of news has never seen sentence 40, and without the cap it
scores such positions erratically), pass through ``n_layers`` pre-norm Transformer encoder layers
(as PreSumm's ``ExtTransformerEncoder``) and a linear layer that gives one
logit per sentence. With ``n_layers=0`` this is a position-aware linear scorer.

With ``n_features > 0`` each input row carries that many extra columns after
the ``width`` of the sentence vector: per-sentence features such as lexical
centrality (see ``spacy_bertsum.features``). A small MLP scores them and its
output is added to the logit; its last layer starts at zero, so a trained head
that gains features starts from the scores it gave without them.

Long documents: attention is computed inside blocks of ``block_size``
consecutive sentences (positions stay global), so time and memory grow
linearly with the number of sentences instead of quadratically. Training docs
(a few dozen sentences) fit in one block, where this is plain full attention.
"""
import math
from typing import Optional

import torch
from torch import nn


def sinusoidal_positions(n_positions: int, dim: int, device=None) -> torch.Tensor:
    position = torch.arange(n_positions, dtype=torch.float32, device=device).unsqueeze(1)
    div_term = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / dim)
    )
    pe = torch.zeros(n_positions, dim, device=device)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: dim // 2])
    return pe


class InterSentenceEncoder(nn.Module):
    def __init__(
        self,
        width: int,
        n_layers: int = 2,
        heads: int = 8,
        ff_size: int = 2048,
        dropout: float = 0.1,
        block_size: int = 128,
        max_position: Optional[int] = None,
        n_features: int = 0,
        feature_hidden: int = 32,
    ):
        super().__init__()
        self.width = width
        self.n_features = n_features
        self.max_position = max_position
        self.n_layers = n_layers
        self.block_size = block_size
        self.dropout = nn.Dropout(dropout)
        if n_layers > 0:
            layer = nn.TransformerEncoderLayer(
                d_model=width,
                nhead=heads,
                dim_feedforward=ff_size,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.layers = nn.TransformerEncoder(
                layer, num_layers=n_layers, enable_nested_tensor=False
            )
        else:
            self.layers = None
        self.layer_norm = nn.LayerNorm(width, eps=1e-6)
        self.output = nn.Linear(width, 1)
        if n_features > 0:
            self.feature_scorer = nn.Sequential(
                nn.Linear(n_features, feature_hidden), nn.ReLU(), nn.Linear(feature_hidden, 1)
            )
            nn.init.zeros_(self.feature_scorer[2].weight)
            nn.init.zeros_(self.feature_scorer[2].bias)
        else:
            self.feature_scorer = None

    def forward(self, sent_vecs: torch.Tensor, mask: torch.Tensor, offsets=None) -> torch.Tensor:
        """sent_vecs: (batch, n_sents, width + n_features); mask: (batch,
        n_sents), True for real sentences; offsets: optional (batch,) index of
        each row's first sentence in its document. Returns logits (batch,
        n_sents), 0 at padding."""
        features = None
        if self.feature_scorer is not None:
            sent_vecs, features = sent_vecs[..., : self.width], sent_vecs[..., self.width :]
        batch, n_sents, width = sent_vecs.shape
        maskf = mask.to(sent_vecs.dtype)
        x = sent_vecs * maskf.unsqueeze(-1)
        x = x + self.positions(n_sents, offsets, device=x.device)
        x = self.dropout(x)
        if self.layers is not None and n_sents > 0:
            x = self._blockwise(x, mask)
        logits = self.output(self.layer_norm(x)).squeeze(-1)
        if features is not None:
            logits = logits + self.feature_scorer(features).squeeze(-1)
        return logits * maskf

    def positions(self, n_sents: int, offsets=None, device=None) -> torch.Tensor:
        """Position encodings, shape (1 or batch, n_sents, width), for sentences
        ``offset + 0 .. offset + n_sents - 1`` (offset 0 unless ``offsets`` gives
        one per doc: training windows that start later in a document). Positions
        from ``max_position`` on all share the encoding of ``max_position``."""
        index = torch.arange(n_sents, device=device).unsqueeze(0)
        if offsets is not None:
            index = index + offsets.to(device=device, dtype=index.dtype).unsqueeze(1)
        if self.max_position is not None:
            index = index.clamp(max=self.max_position)
        n_table = int(index.max()) + 1 if index.numel() else 1
        return sinusoidal_positions(n_table, self.width, device=device)[index]

    def _blockwise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, n_sents, width = x.shape
        block = min(self.block_size, n_sents)
        n_blocks = (n_sents + block - 1) // block
        pad = n_blocks * block - n_sents
        if pad:
            x = torch.nn.functional.pad(x, (0, 0, 0, pad))
            mask = torch.nn.functional.pad(mask, (0, pad), value=False)
        xb = x.reshape(batch * n_blocks, block, width)
        mb = mask.reshape(batch * n_blocks, block)
        # A block with no real sentence would be fully masked, which gives NaN
        # in softmax; let it attend to its (ignored) padding instead.
        empty = ~mb.any(dim=1)
        key_padding = ~mb
        key_padding[empty] = False
        yb = self.layers(xb, src_key_padding_mask=key_padding)
        y = yb.reshape(batch, n_blocks * block, width)
        return y[:, :n_sents]
