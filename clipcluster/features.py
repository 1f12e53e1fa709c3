"""Feature hygiene shared by every consumer of face features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clipcluster.errors import DataError


def l2_normalize(
    feats: np.ndarray, where: str | Path = "features", *, files: Sequence[tuple[str | Path, int]] | None = None
) -> np.ndarray:
    """L2-normalise rows in place (float32) so inner product is cosine similarity.

    A zero row has no direction: it is an error naming the row, never silently kept. ``files`` (the ``(path, rows)``
    of the files ``feats`` was concatenated from, in order) makes the error name the file and the row in it.
    """
    feats = np.asarray(feats, dtype=np.float32)
    norms = np.linalg.norm(feats, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        row = int(zero[0])
        for path, rows in files or ():
            if row < rows:
                where = path
                break
            row -= rows
        raise DataError(where, f"row {row} is all zeros ({zero.size} such rows); features need a direction")
    feats /= norms[:, None]
    return feats
