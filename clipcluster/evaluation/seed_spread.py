"""How much of a difference between two methods is more than the seed-to-seed spread.

One twin seed's pairwise F is far from another's at the default preset's size (200 identities per part: a few large
identities dominate pairwise F), so a single run cannot say whether one method beats another. This module
summarises the same comparison repeated over seeds: per method the mean and sample standard deviation of F_P, F_B
and the edge AUC, and per pair of methods the paired per-seed differences, with the verdict used in the README:
a difference counts when the mean difference exceeds twice the larger of the two methods' seed-to-seed standard
deviations (and, as a second reading, whether every seed agrees on the sign).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clipcluster.errors import DataError

__all__ = ["compare", "summarise"]

Runs = Mapping[int, Mapping[str, Mapping[str, Any]]]  # seed -> method -> metrics dict (metrics/<m>/<subset>.json)


def _pct(runs: Runs, method: str, key: str) -> np.ndarray:
    out = []
    for seed, per_method in runs.items():
        m = per_method.get(method)
        if m is None or m.get(key) is None:
            raise DataError(f"seed {seed}", f"no {key} for {method}")
        out.append(100.0 * float(m[key]))
    return np.asarray(out)


def _auc(runs: Runs, method: str, which: str) -> float:
    vals = [((pm.get(method) or {}).get("edge_auc") or {}).get(which) for pm in runs.values()]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else float("nan")


def summarise(runs: Runs, methods: Sequence[str]) -> pd.DataFrame:
    """One row per method: F_P per seed, mean and sd of F_P and F_B, mean edge AUC of the model and the cosine."""
    if not runs:
        raise DataError("seed spread", "no runs")
    rows = []
    for method in methods:
        fp, fb = _pct(runs, method, "pairwise_f"), _pct(runs, method, "bcubed_f")
        row: dict[str, Any] = {"method": method}
        row |= {f"F_P seed {s}": v for s, v in zip(runs, fp, strict=True)}
        row |= {"F_P mean": fp.mean(), "F_P sd": _sd(fp), "F_B mean": fb.mean(), "F_B sd": _sd(fb)}
        row |= {"edge AUC": _auc(runs, method, "auc_model"), "cosine AUC": _auc(runs, method, "auc_cosine")}
        rows.append(row)
    return pd.DataFrame(rows)


def compare(runs: Runs, a: str, b: str) -> dict[str, Any]:
    """``a`` minus ``b`` in F_P, seed by seed: the differences, their mean and sd, and whether the mean difference
    exceeds twice the larger seed-to-seed sd of the two methods (``beyond_2sd``) and every seed agrees in sign."""
    fa, fb = _pct(runs, a, "pairwise_f"), _pct(runs, b, "pairwise_f")
    d = fa - fb
    spread = 2.0 * max(_sd(fa), _sd(fb))
    return {
        "a": a,
        "b": b,
        "differences": [round(float(x), 4) for x in d],
        "mean": float(d.mean()),
        "sd": _sd(d),
        "two_sd": spread,
        "beyond_2sd": bool(abs(d.mean()) > spread) if np.isfinite(spread) else False,
        "same_sign": bool((d > 0).all() or (d < 0).all()),
    }
