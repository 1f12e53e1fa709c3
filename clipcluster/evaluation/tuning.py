"""Thresholds chosen on the training part, never on a test part.

Every method that clusters by a threshold (Infomap alone's similarity floor, CLIP-Cluster's pruning tau, FaceT's
link tau, MHC's density-peak tau) can take it from here instead of a fixed published value: the method runs on the
training part's own kNN graph once per value of a grid, and the value with the highest pairwise F on the training
part's labels is chosen (the first one on ties). The learned models score the training part with the weights
trained on it, so their scores there are more confident than on unseen identities; the chosen value is what a
user with only the labelled part could pick, and the test part's figures at it are what the tables report.

The result is one JSON per method (``tuning/<method>.json``): the grid, the F at every value, the chosen value and
the method's fixed (published) value with its F, so a reader sees how much the choice mattered on the training part.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipcluster.atomic import write_json
from clipcluster.errors import DataError
from clipcluster.evaluation.metrics import contingency, pairwise, pairwise_f_jackknife_se

__all__ = ["read_chosen", "sweep", "tune_infomap", "write_sweep"]

log = logging.getLogger(__name__)


def sweep(
    grid: Sequence[float],
    cluster: Callable[[float], np.ndarray],
    truth: np.ndarray,
    *,
    param: str,
    fewer_links: str,
    rule: str = "best",
    fixed: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``cluster(value)`` for every grid value (and ``fixed``, if not in it) and choose one.

    ``rule="best"``: the value with the highest training-part pairwise F (the first on ties). For a training-free
    method (Infomap alone's floor) the training part is a sample of the same kind of graph as a test part, so its
    best value is the natural estimate.

    ``rule="one_se"``, for thresholds on learned scores: the one-standard-error rule (Hastie, Tibshirani and
    Friedman, The Elements of Statistical Learning, 2009, Sec. 7.10). Among the values whose training-part F is
    within one standard error of the best, take the most conservative, the one that keeps the fewest links
    (``fewer_links="higher"``: the highest value, for a score threshold or a similarity floor; ``"lower"``: the
    lowest, for MHC's distance threshold). The standard error is the jackknife over the training part's identities
    at the best value. Why: a learned model has seen the training part's identities, so its scores there are more
    confident than on unseen ones and the best threshold there leans towards keeping too many links; between
    values the training part cannot tell apart, the one keeping fewer is the safer bet. (FaceT's union-find on the
    default twin before its 2026-12-07 recalibration: the best value, 0.995, gives part1 89.5 F_P and part1-9 6.1;
    the rule's 0.9995, 93 and 93.)

    Returns ``param``, ``grid``, ``f_pairwise`` (percentages, one per grid value), ``best`` and ``best_f``, ``se``
    (percentage points, at the best value), ``chosen``, ``chosen_f``, ``rule`` (in words), ``fixed``, ``fixed_f``
    and ``seconds``. ``fixed`` is only reported, never chosen unless it is in the grid.
    """
    values = [float(v) for v in grid]
    if not values or any(not math.isfinite(v) for v in values):
        raise DataError(f"tuning grid of {param}", f"needs finite values, got {list(grid)}")
    if fewer_links not in ("higher", "lower"):
        raise DataError(f"tuning {param}", f"fewer_links must be 'higher' or 'lower', got {fewer_links!r}")
    if rule not in ("best", "one_se"):
        raise DataError(f"tuning {param}", f"rule must be 'best' or 'one_se', got {rule!r}")
    truth = np.asarray(truth)
    t0 = time.perf_counter()
    scores: dict[float, float] = {}
    se: dict[float, float] = {}
    for v in [*values, *([] if fixed is None or float(fixed) in values else [float(fixed)])]:
        labels = np.asarray(cluster(v))
        if labels.shape != truth.shape:
            raise DataError(f"tuning {param}", f"{labels.size} labels for {truth.size} training samples")
        table = contingency(truth, labels)
        scores[v] = round(100.0 * pairwise(table)[2], 4)
        se[v] = 100.0 * pairwise_f_jackknife_se(table)
        if progress is not None:
            progress(f"{param} = {v:g}: pairwise F {scores[v]:.2f} (jackknife se {se[v]:.2f})")
    f = [scores[v] for v in values]
    best = int(np.argmax(f))
    margin = se[values[best]] if math.isfinite(se[values[best]]) else 0.0
    chosen, words = best, "the best pairwise F"
    if rule == "one_se":
        near = [j for j, x in enumerate(f) if x >= f[best] - margin]
        chosen = max(near, key=lambda j: values[j] if fewer_links == "higher" else -values[j])
        words = f"one standard error: the {fewer_links[:-2]}est value within {margin:.2f} F_P of the best"
    return {
        "param": param,
        "grid": values,
        "f_pairwise": f,
        "best": values[best],
        "best_f": f[best],
        "se": round(margin, 4),
        "chosen": values[chosen],
        "chosen_f": f[chosen],
        "rule": words,
        "fixed": None if fixed is None else float(fixed),
        "fixed_f": None if fixed is None else scores[float(fixed)],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def write_sweep(path: str | Path, result: dict[str, Any], **extra: Any) -> None:
    """The sweep and where it ran (``extra``: method, part, samples...), written atomically."""
    write_json(path, {**extra, **result})


def read_chosen(path: str | Path, param: str) -> float:
    """The chosen value of ``param`` in a tuning JSON written by :func:`write_sweep`; a DataError names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a readable tuning JSON ({type(exc).__name__}: {exc})") from exc
    if data.get("param") != param or not isinstance(data.get("chosen"), int | float):
        raise DataError(path, f"expected a tuning of {param!r} with a numeric 'chosen', got {data.get('param')!r}")
    return float(data["chosen"])


# ---------------------------------------------------------------------------------------------------------------
# Infomap alone's floor (the learned methods' thresholds: clipcluster.evaluation.tuning_scores, which needs torch)


def tune_infomap(
    nbrs: np.ndarray,
    sims: np.ndarray,
    truth: np.ndarray,
    grid: Sequence[float],
    *,
    fixed: float | None = None,
    seed: int = 0,
    num_trials: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Infomap alone's similarity floor on a training graph (``nbrs``/``sims``: its first k columns)."""
    from clipcluster.graph.infomap_cluster import cluster_knn_infomap

    def run(floor: float) -> np.ndarray:
        return cluster_knn_infomap(nbrs, sims, sim_floor=floor, seed=seed, num_trials=num_trials)

    return sweep(grid, run, truth, param="sim_floor", fewer_links="higher", fixed=fixed, progress=progress)
