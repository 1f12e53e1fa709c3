"""The edge's input cosine as one more input of a learned pair classifier, as it is or standardised.

The first layer sees ``w * c`` for the cosine ``c``. How far apart a same-identity and a different-identity edge
are in ``c`` depends on the features, not on the model: 0.3-0.9 on the twin (mean 0.63, sd 0.16 over part0's kNN
edges), 0.88-0.99 with dlib's descriptors (the faces demo; mean 0.93, sd 0.03). Neither form suits both
(``docs/edge_quality.md``, measured by ``benchmarks/select_on_train_part.py`` on held-out training identities):

* ``standardise=False`` (the default): ``c`` as it is. On the twin the classifier then learns a similarity of its
  own beside ``c`` and ranks part1's edges at AUC 0.946 (no-hallucination model) against 0.906 standardised,
  where it leans on the easy z-scored ``c`` and learns less; centring alone gave 0.911.
* ``standardise=True``: the z-score ``(c - mean) / sd`` over the training edges (buffers kept with the model, so
  inference uses the training part's values). On dlib's compressed cosines the raw ``c`` barely moves the first
  layer and the classifier memorises the 22 training identities instead (faces demo part1 AUC 0.83-0.90 against
  the cosine's 1.00); standardised it reaches 1.00.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from clipcluster.errors import DataError

__all__ = ["PairCosine", "edge_cosines"]


class PairCosine(nn.Module):
    """``forward(cos)`` (...) -> (..., hidden): a bias-free linear map of the cosine (standardised if asked)."""

    def __init__(self, hidden: int, standardise: bool = False) -> None:
        super().__init__()
        self.standardised = bool(standardise)
        self.lin = nn.Linear(1, hidden, bias=False)
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def set_stats(self, cos: np.ndarray | torch.Tensor) -> None:
        """Record the mean and standard deviation of the training edges' cosines ``cos`` (used if standardised)."""
        c = torch.as_tensor(np.asarray(cos, dtype=np.float64)).reshape(-1)
        c = c[torch.isfinite(c)]
        if c.numel() < 2:
            raise DataError("pair cosine", f"needs at least 2 finite training cosines, got {c.numel()}")
        with torch.no_grad():
            self.mean.fill_(float(c.mean()))
            self.std.fill_(max(float(c.std()), 1e-6))

    def transform(self, cos: torch.Tensor) -> torch.Tensor:
        """What the layer reads: ``(cos - mean) / std`` in ``cos``'s dtype if standardised, else ``cos``."""
        if not self.standardised:
            return cos
        return (cos - self.mean.to(cos.dtype)) / self.std.to(cos.dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The first layer's column for the (standardised) cosine, hidden x 1."""
        return self.lin.weight

    def forward(self, cos: torch.Tensor) -> torch.Tensor:
        return self.lin(self.transform(cos.to(self.lin.weight.dtype))[..., None])


def edge_cosines(feats: np.ndarray, nbrs: np.ndarray, rows: int = 1024) -> np.ndarray:
    """Cosines ``feats[i] . feats[nbrs[i, j]]`` of the valid (``>= 0``) kNN entries, flattened, row block by block."""
    out = []
    for s in range(0, nbrs.shape[0], rows):
        nb = nbrs[s : s + rows]
        ok = nb >= 0
        c = np.einsum("nd,nkd->nk", feats[s : s + rows], feats[np.where(ok, nb, 0)])
        out.append(c[ok])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
