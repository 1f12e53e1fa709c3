"""The embedding network trained on (pseudo-)labelled data.

On images the field uses a ResNet backbone; the twin and the ``features`` source have no images, so the network
here maps a face feature to a new embedding: FC-BN-PReLU blocks, then ArcFace's BN-FC-BN neck. Captions say so.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_MODEL: dict[str, Any] = {"hidden": 512, "layers": 2, "embed_dim": 128, "dropout": 0.0}


class EmbeddingNet(nn.Module):
    """``in_dim`` -> ``layers`` x (Linear, BN, PReLU) of width ``hidden`` -> BN -> Linear -> BN (``embed_dim``)."""

    def __init__(self, in_dim: int, hidden: int = 512, layers: int = 2, embed_dim: int = 128, dropout: float = 0.0):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(int(layers)):
            blocks += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.PReLU(hidden)]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.neck = nn.Sequential(
            nn.BatchNorm1d(width), nn.Dropout(dropout), nn.Linear(width, embed_dim), nn.BatchNorm1d(embed_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.body(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings (eval mode is the caller's job)."""
        return F.normalize(self(x), dim=1)
