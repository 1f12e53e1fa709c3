"""CDP's graph propagation: connected components, oversized ones split again at a rising threshold.

Shared by the CDP baseline (:func:`clipcluster.graph.baselines.cdp`) and Table 2's naive pruning
(:func:`clipcluster.clip_cluster.score.naive_prune`), which differ only in the options below (XiaohangZhan/cdp
``source/graph.py``; learn-to-cluster reuses it for GCN edge scores).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["propagate"]


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


def propagate(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    *,
    start: float,
    max_size: int,
    step: float,
    max_iter: int,
    keep_at: Literal["above", "at_least"],
    leftovers: Literal["each", "together"],
) -> np.ndarray:
    """Cluster ``n`` nodes over the undirected edges (``src``, ``dst``, ``weight``); labels 0..C-1, by component id.

    Round 0 takes the connected components of every edge; components of at most ``max_size`` nodes are final.
    Each later round raises the threshold t (from ``start``) to t + (1 - t) ``step`` and takes the components of
    the remaining nodes over their edges with weight above t (``keep_at="above"``) or at least t (``"at_least"``,
    CDP's own comparison). After ``max_iter`` raised rounds the still-oversized components are kept as they are
    (``leftovers="each"``) or merged into one cluster (``"together"``, CDP's forced stop). Nodes with no edge are
    singletons.
    """
    if max_size < 1 or not 0 < step <= 1 or max_iter < 0:
        raise ValueError(f"need max_size >= 1, 0 < step <= 1, max_iter >= 0; got {max_size}, {step}, {max_iter}")
    out = np.full(n, -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    next_label, th = 0, float(start)
    for rounds in range(max_iter + 1):
        if rounds:
            th += (1.0 - th) * step
            keep = active[src] & ((weight > th) if keep_at == "above" else (weight >= th))
            src, dst, weight = src[keep], dst[keep], weight[keep]
        comp = _components(n, src, dst)
        sizes = np.bincount(comp, minlength=n)
        done = active & (sizes[comp] <= max_size)
        if rounds == max_iter and leftovers == "each":
            done = active.copy()
        uniq, inv = np.unique(comp[done], return_inverse=True)
        out[done] = next_label + inv
        next_label += uniq.size
        active &= ~done
        if not active.any():
            return out
    out[active] = next_label  # CDP's forced stop: every leftover node in one cluster
    return out
