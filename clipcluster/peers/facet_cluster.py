"""FaceT's clustering step: keep the kNN links whose predicted probability exceeds a threshold, union-find them.

Ye et al., "Learning to Cluster Faces via Transformer" (seed: ``facet-learning-to-cluster-faces-via-transformer.md``),
Sec. 3.1: the Linkage Predictor assigns a linkage probability to each (query, hop-1 candidate) pair; "given a
threshold tau, we form the link between query sample and a candidate sample whose pair linkage probability is
larger than tau", over all queries, and "clustering procedure with linkage predictions could be done with
Union-Find". Union-find over undirected links yields exactly the connected components of the link graph, so
this uses ``scipy.sparse.csgraph.connected_components`` (C, O(N k)), with the link kept if either end predicts it.

Threshold: the paper names tau but gives no value. The Linkage Predictor's MLP outputs the probability that an
edge is positive (Sec. 3.4, Eq. 9), trained as a two-class classifier (Sec. 4.4's "only RE" ablation maps a
distance onto the same two-class distribution, Eqs. 11-12), whose decision boundary is p = 0.5, so
``FACET_TAU = 0.5``; pass the value tuned on held-out data when there is one.

With raw cosine similarities in place of the learned probabilities this is single-linkage thresholding of the kNN
graph: a training-free sanity check of the procedure, not FaceT's published result.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from clipcluster.errors import DataError
from clipcluster.graph.baselines import _check_knn, normalize_labels

__all__ = ["FACET_TAU", "facet_cluster"]

FACET_TAU = 0.5  # not stated in the paper: the two-class Linkage Predictor's decision boundary


def facet_cluster(nbrs: np.ndarray, probs: np.ndarray, *, tau: float = FACET_TAU) -> np.ndarray:
    """Cluster by FaceT's rule (Sec. 3.1): link i and ``nbrs[i, m]`` when ``probs[i, m] > tau``; components.

    Why: FaceT's learned part is the per-pair linkage probability; turning links into clusters is plain
    union-find, whose result does not depend on edge order, so a component labelling reproduces it exactly.

    Args:
        nbrs: N x k neighbour indices (the kNN contract of :mod:`clipcluster.graph.knn`: -1 = missing).
        probs: N x k linkage probabilities aligned with ``nbrs`` (FaceT's LP output; any score works).
        tau: link threshold, strict ``>`` as in the paper ("larger than tau"); default 0.5, see the module note.

    Returns:
        int64 labels 0..C-1, one per sample.
    """
    where = "facet.facet_cluster"
    nbrs, probs = _check_knn(nbrs, probs, where)
    if not math.isfinite(tau):
        raise DataError(where, f"tau must be finite, got {tau}")
    n, k = nbrs.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = nbrs.ravel()
    keep = (cols >= 0) & (cols != rows) & (probs.ravel() > tau)
    graph = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.int8), (rows[keep], cols[keep])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return normalize_labels(comp)
