"""The thresholds of the learned edge scores, chosen on the training part (the sweep of
:mod:`clipcluster.evaluation.tuning`).

Apart from :mod:`clipcluster.evaluation.tuning` because these clustering steps import the models' packages (torch),
which the training-free rules' environment does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from clipcluster.clip_cluster.score import naive_prune, prune_and_refine
from clipcluster.errors import DataError
from clipcluster.evaluation.tuning import sweep
from clipcluster.peers.facet_cluster import facet_cluster
from clipcluster.peers.mhc_cluster import mhc_cluster

__all__ = ["tune_edge_threshold"]


def tune_edge_threshold(
    nbrs: np.ndarray,
    scores: np.ndarray,
    sims: np.ndarray,
    truth: np.ndarray,
    grid: Sequence[float],
    *,
    refine: str,
    fixed: float | None = None,
    seed: int = 0,
    mhc_eps: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The threshold of a learned edge score's clustering step, given the scores of the training graph's edges.

    ``refine``: ``"infomap"`` (CLIP-Cluster: prune below tau, Infomap), ``"naive"`` (Table 2's naive pruning),
    ``"facet"`` (links above tau, union-find) or ``"mhc"`` (NDDe, TPDi, density peaks with tau; ``mhc_eps``).

    Which value: where every kept link joins two clusters for good (naive pruning's connected components, FaceT's
    union-find, MHC's parent links), one wrong link too many merges identities, and the scores of a model trained on
    this very graph are sharper here than on a test part; so those take the value keeping fewest links within one
    jackknife standard error of the best F (``rule="one_se"``). Infomap's refinement weighs the links it keeps and
    cuts weak bridges, while a link pruned is lost for good; so CLIP-Cluster's tau, like Infomap alone's floor,
    takes the best F (``rule="best"``).
    """
    k = scores.shape[1]
    nb = np.ascontiguousarray(nbrs[:, :k])
    runs: dict[str, Callable[[float], np.ndarray]] = {
        "infomap": lambda t: prune_and_refine(nb, scores, sims[:, :k], tau=t, seed=seed),
        "naive": lambda t: naive_prune(nb, scores, tau=t),
        "facet": lambda t: facet_cluster(nb, scores, tau=t),
        "mhc": lambda t: mhc_cluster(nb, scores, k=None, tau=t, eps=mhc_eps).labels,
    }
    if refine not in runs:
        raise DataError("tuning", f"refine {refine!r} is not one of {sorted(runs)}")
    # MHC links a point to its parent when their distance is BELOW tau; the others keep edges scored above it
    fewer = "lower" if refine == "mhc" else "higher"
    rule = "best" if refine == "infomap" else "one_se"
    return sweep(grid, runs[refine], truth, param="tau", fewer_links=fewer, rule=rule, fixed=fixed, progress=progress)
