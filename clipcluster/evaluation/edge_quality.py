"""How well a learned edge score separates same-identity kNN edges from the rest, next to the raw cosine.

Why: a GCN edge classifier (CLIP-Cluster, STAR-FC-style) only helps when its scores rank the kNN edges better than
the input similarity does. Trained too briefly, or on too few identities, it can fall below the cosine it was
given, and the clustering that follows then owes its numbers to the refinement graph, not to the learned scores.
The ROC AUC of both on the same edges says which case a run is in; it uses the ground truth, so it is a report
next to the metrics, never an input to the clustering.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from clipcluster.errors import DataError

__all__ = ["edge_auc"]


def edge_auc(
    nbrs: np.ndarray,
    scores: np.ndarray,
    sims: np.ndarray,
    labels: np.ndarray,
    *,
    max_edges: int = 1_000_000,
    seed: int = 0,
) -> dict[str, Any]:
    """ROC AUC of ``scores`` and of ``sims`` over the kNN edges ``n -> nbrs[n, j]`` (positive: same label).

    Self edges and missing entries (``nbrs < 0``) are left out. Graphs of more than ``max_edges`` entries are
    scored on a seeded uniform sample of that many entries (the same edges for both), less the left-out ones.
    Returns ``edges`` (used), ``positive_rate``, ``auc_model`` and ``auc_cosine`` (None when the edges hold a
    single class).
    """
    nbrs, scores, sims = np.asarray(nbrs), np.asarray(scores), np.asarray(sims)
    labels = np.asarray(labels)
    if nbrs.ndim != 2 or scores.shape != nbrs.shape or sims.shape != nbrs.shape:
        raise DataError("edge_auc", f"nbrs {nbrs.shape}, scores {scores.shape}, sims {sims.shape}: need one N x k")
    if labels.shape != (nbrs.shape[0],):
        raise DataError("edge_auc", f"{labels.size} labels for a kNN graph of {nbrs.shape[0]} rows")
    total = nbrs.size
    # Sample entries before testing them: at part1-9's 5.21M x 50 a whole-graph mask and index list would be 2 GB.
    flat = (
        np.arange(total)
        if total <= max_edges
        else np.sort(np.random.default_rng(seed).choice(total, max_edges, replace=False))
    )
    src, col = np.divmod(flat, nbrs.shape[1])
    dst = nbrs[src, col]
    ok = (dst >= 0) & (dst != src)
    src, col, dst = src[ok], col[ok], dst[ok]
    same = labels[src] == labels[dst]
    out: dict[str, Any] = {"edges": int(src.size), "positive_rate": float(same.mean()) if src.size else None}
    both = src.size and 0 < int(same.sum()) < src.size
    out["auc_model"] = float(roc_auc_score(same, scores[src, col])) if both else None
    out["auc_cosine"] = float(roc_auc_score(same, sims[src, col])) if both else None
    return out
