"""Feature hygiene shared by every consumer of face features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipcluster.errors import DataError


def l2_normalize(feats: np.ndarray, where: str | Path = "features") -> np.ndarray:
    """L2-normalise rows in place (float32) so inner product is cosine similarity.

    A zero row has no direction: it is an error naming the row, never silently kept.
    """
    feats = np.asarray(feats, dtype=np.float32)
    norms = np.linalg.norm(feats, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise DataError(where, f"row {int(zero[0])} is all zeros ({zero.size} such rows); features need a direction")
    feats /= norms[:, None]
    return feats
