"""A logistic baseline under a learned edge score: the cosine, locally scaled, fit on the training edges.

Why: on the twin a logistic regression on two numbers per kNN edge, the cosine ``c`` and the sum of the two ends'
*local densities* ``r_u + r_v`` (``r`` = a face's mean cosine to its ``k_local`` nearest neighbours), fit on part0's
edges, ranks part1's edges at AUC 0.989 / 0.978 / 0.989 on twin seeds 0 / 1 / 2, against the cosine's 0.943 /
0.933 / 0.948 (``benchmarks/pair_baseline_auc.py``). Identities differ in how tightly their photos gather, so one
cosine means "same person" inside a loose identity and "a look-alike" beside a tight one; subtracting each end's
local density is cross-domain similarity local scaling (CSLS: ``2c - r_u - r_v``, k = 10; Conneau et al., "Word
Translation Without Parallel Data", ICLR 2018), here with its two weights fit instead of fixed. The learned models,
trained for a few dozen steps on 200 identities, did not find this on their own and ranked edges below the plain
cosine on some twin seeds (``docs/edge_quality.md``).

So the models may start from it: the edge logit is this baseline's logit (frozen after its fit) plus the learned
network's, whose output layer starts near zero. Before training the model ranks edges exactly as the baseline does;
training then learns what the baseline misses (for CLIP-Cluster, what the hallucinated attributes add). The
baseline is fit, and the densities are taken, on the whole graph of the part at hand: the training part's kNN
graph while training (also for the faces of a training subgraph, whose own lists are not the whole part's), the
test subset's at inference.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from clipcluster.errors import DataError
from clipcluster.training.pair_cosine import edge_cosines

__all__ = ["PairBaseline", "add_same_logit", "density_from_features", "local_density", "neighbour_cosines"]


def local_density(nbrs: np.ndarray, sims: np.ndarray, k_local: int) -> np.ndarray:
    """Each row's mean cosine to its first ``k_local`` real neighbours (``nbrs >= 0``, not itself), float32.

    ``nbrs`` / ``sims``: N x k, most similar first. A row with no real neighbour gets 0.
    """
    nbrs, sims = np.asarray(nbrs), np.asarray(sims)
    if nbrs.ndim != 2 or sims.shape != nbrs.shape:
        raise DataError("local_density", f"nbrs {nbrs.shape} and sims {sims.shape}: need one N x k shape")
    if int(k_local) < 1:
        raise DataError("local_density", f"k_local must be >= 1, got {k_local}")
    n = nbrs.shape[0]
    out = np.zeros(n, dtype=np.float32)
    for s in range(0, n, 65536):  # row blocks: the masks are N x k
        nb, si = nbrs[s : s + 65536], sims[s : s + 65536]
        ok = (nb >= 0) & (nb != np.arange(s, s + nb.shape[0])[:, None])
        ok &= np.cumsum(ok, axis=1) <= int(k_local)
        cnt = ok.sum(axis=1)
        tot = np.where(ok, si, 0.0).sum(axis=1, dtype=np.float64)
        out[s : s + nb.shape[0]] = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)
    return out


def density_from_features(feats: np.ndarray, nbrs: np.ndarray, k_local: int) -> np.ndarray:
    """:func:`local_density` where only the neighbour lists are at hand: the cosines are recomputed from the
    L2-normalised ``feats`` (N x d) for the first ``k_local`` columns of ``nbrs``."""
    nb = np.asarray(nbrs)[:, : int(k_local) + 1]  # one spare column, in case a row lists itself
    return local_density(nb, neighbour_cosines(feats, nb), k_local)


def neighbour_cosines(feats: np.ndarray, nbrs: np.ndarray) -> np.ndarray:
    """N x k cosines ``feats[i] . feats[nbrs[i, j]]`` of L2-normalised ``feats``, ``-inf`` where ``nbrs < 0``."""
    sims = np.full(nbrs.shape, -np.inf, dtype=np.float32)
    sims[nbrs >= 0] = edge_cosines(feats, nbrs)
    return sims


def add_same_logit(logits: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """``logits`` with ``base`` added to the "same identity" class: the last axis's class 1 of a 2-way softmax
    (``logits`` one axis more than ``base``), or the sigmoid logit itself (same shape)."""
    base = base.to(logits.dtype)
    if logits.dim() == base.dim():
        return logits + base
    return logits + torch.stack([torch.zeros_like(base), base], dim=-1)


class PairBaseline(nn.Module):
    """``forward(cos, r_u, r_v)`` -> the "same identity" logit ``a * cos + b * (r_u + r_v) + c`` (frozen buffers).

    :meth:`fit` sets ``a, b, c`` by logistic regression on training edges; unfit, it is the zero logit.
    """

    def __init__(self, k_local: int = 10) -> None:
        super().__init__()
        if int(k_local) < 1:
            raise DataError("pair baseline", f"k_local must be >= 1, got {k_local}")
        self.k_local = int(k_local)
        self.register_buffer("coef", torch.zeros(3))  # cosine, density sum, intercept

    def fit(self, cos: np.ndarray, density_sum: np.ndarray, same: np.ndarray) -> dict[str, float]:
        """Logistic regression of ``same`` (bool) on ``[cos, density_sum]`` over the training edges; returns the
        fitted weights and the training edges' AUC of the baseline and of the cosine."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        x = np.stack([np.asarray(cos, np.float64).ravel(), np.asarray(density_sum, np.float64).ravel()], axis=1)
        y = np.asarray(same, dtype=bool).ravel()
        if x.shape[0] != y.size or not np.isfinite(x).all():
            raise DataError("pair baseline", f"{x.shape[0]} edges, {y.size} labels, finite: {np.isfinite(x).all()}")
        if y.all() or not y.any():
            raise DataError("pair baseline", f"the {y.size} training edges hold one class only; cannot fit")
        lr = LogisticRegression(C=100.0, max_iter=1000).fit(x, y)
        a, b = (float(v) for v in lr.coef_[0])
        c = float(lr.intercept_[0])
        with torch.no_grad():
            self.coef.copy_(torch.tensor([a, b, c]))
        z = x @ lr.coef_[0] + c
        return {"cos_weight": a, "density_weight": b, "intercept": c, "train_auc": float(roc_auc_score(y, z)),
                "train_auc_cosine": float(roc_auc_score(y, x[:, 0])), "edges": int(y.size)}  # fmt: skip

    def fit_graph(
        self, labels: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, density: np.ndarray
    ) -> dict[str, float]:
        """:meth:`fit` on every real edge of a labelled part's kNN graph (``nbrs`` / ``sims`` N x k, self and
        missing entries left out), with the nodes' local ``density`` (N)."""
        labels, nbrs, sims = np.asarray(labels), np.asarray(nbrs), np.asarray(sims)
        if nbrs.shape[0] != labels.size or sims.shape != nbrs.shape or density.shape != labels.shape:
            raise DataError(
                "pair baseline",
                f"training graph {nbrs.shape} / {sims.shape}, {density.shape} densities, {labels.size} labels",
            )
        ok = (nbrs >= 0) & (nbrs != np.arange(labels.size)[:, None])
        src = np.broadcast_to(np.arange(labels.size)[:, None], nbrs.shape)[ok]
        dst = nbrs[ok]
        return self.fit(sims[ok], density[src] + density[dst], labels[src] == labels[dst])

    def forward(self, cos: torch.Tensor, r_u: torch.Tensor, r_v: torch.Tensor) -> torch.Tensor:
        a, b, c = self.coef.to(cos.dtype)
        return a * cos + b * (r_u + r_v) + c

    def add_to(
        self, logits: torch.Tensor, feats: torch.Tensor, queries: torch.Tensor, cand: torch.Tensor,
        density: torch.Tensor | None,
    ) -> torch.Tensor:  # fmt: skip
        """``logits`` (B x c x 2, softmax; or B x c, sigmoid) of the pairs ``(queries[b], cand[b, j])`` with the
        baseline's logit added to the "same" class; ``density``: every node's local density (N)."""
        if density is None:
            raise DataError("pair baseline", "the model has a pair baseline: pass the nodes' local densities")
        c = cand.clamp_min(0)
        cos = (feats[queries][:, None, :] * feats[c]).sum(-1)
        return add_same_logit(logits, self(cos, density[queries][:, None], density[c]))

    def logits_np(self, cos: np.ndarray, r_u: np.ndarray, r_v: np.ndarray) -> np.ndarray:
        """The same logit on NumPy arrays (float32), for whole-graph inference."""
        a, b, c = (float(v) for v in self.coef)
        cos = np.asarray(cos, np.float32)
        cos = np.where(np.isfinite(cos), cos, np.float32(0))  # missing entries (-inf): masked by the caller
        return (a * cos + b * (np.asarray(r_u, np.float32) + r_v) + c).astype(np.float32)
