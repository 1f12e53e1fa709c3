"""Readers and writers for the learn-to-cluster on-disk format.

``.bin``: raw little-endian float32, N x D, row-major, no header (the widely shared
pre-extracted MS1M features use exactly this). ``.meta``: one integer label per line.
Every reader validates what it can (size versus dimension and label count, NaN/inf,
parseable labels) and raises :class:`~clipcluster.errors.DataError` with one line
naming the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError

FLOAT = np.dtype("<f4")
_CHECK_ROWS = 1 << 18  # rows per block when scanning a large memmap for NaN


def bin_rows(path: str | Path, dim: int) -> int:
    """Number of rows in a ``.bin`` file of ``dim`` float32 columns; error if the size does not divide."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    size = path.stat().st_size
    row_bytes = dim * FLOAT.itemsize
    if size == 0:
        raise DataError(path, f"empty file, expected N x {dim} float32 values")
    if size % row_bytes:
        raise DataError(
            path,
            f"size {size} bytes is not a multiple of one {dim}-d float32 row ({row_bytes} bytes): "
            f"truncated file or wrong feature_dim ({size / row_bytes:.3f} rows)",
        )
    return size // row_bytes


def check_finite(path: str | Path, feats: np.ndarray) -> None:
    """Raise if any value is NaN or infinite, naming the first bad row; scans in blocks (memmap-friendly)."""
    for start in range(0, feats.shape[0], _CHECK_ROWS):
        block = np.asarray(feats[start : start + _CHECK_ROWS])
        bad = ~np.isfinite(block)
        if bad.any():
            row = start + int(np.argmax(bad.any(axis=1)))
            raise DataError(path, f"row {row} has a NaN or infinite value; features must be finite")


def read_bin(
    path: str | Path,
    dim: int,
    expected_rows: int | None = None,
    *,
    mmap: bool = False,
    check: bool = True,
) -> np.ndarray:
    """Read an N x ``dim`` float32 ``.bin``; validate size, optional row count, and finiteness.

    ``mmap=True`` returns a read-only memory map (for subsets larger than memory is comfortable with).
    """
    n = bin_rows(path, dim)
    if expected_rows is not None and n != expected_rows:
        raise DataError(path, f"has {n} rows of dim {dim} but {expected_rows} labels were given (counts must match)")
    if mmap:
        feats = np.memmap(path, dtype=FLOAT, mode="r", shape=(n, dim))
    else:
        feats = np.fromfile(path, dtype=FLOAT).reshape(n, dim)
    if check:
        check_finite(path, feats)
    return feats


def write_bin(path: str | Path, feats: np.ndarray) -> None:
    """Write a 2-d array as little-endian float32 ``.bin``, atomically."""
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d array, got shape {feats.shape}")
    with atomic_path(path) as tmp:
        np.ascontiguousarray(feats, dtype=FLOAT).tofile(tmp)


def read_meta(path: str | Path, expected_rows: int | None = None) -> np.ndarray:
    """Read a ``.meta`` file (one integer label per line) as int64; error names the first bad line."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        labels = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except ValueError:
        # Find the offending line so the message can name it.
        with open(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    int(line.strip())
                except ValueError:
                    raise DataError(path, f"line {lineno}: {line.strip()!r} is not an integer label") from None
        raise
    if labels.ndim != 1:
        raise DataError(path, f"expected one integer label per line, got shape {labels.shape}")
    if expected_rows is not None and labels.shape[0] != expected_rows:
        raise DataError(path, f"has {labels.shape[0]} labels but the features have {expected_rows} rows")
    return labels


def write_meta(path: str | Path, labels: np.ndarray) -> None:
    """Write integer labels, one per line, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: expected a 1-d integer array, got {labels.dtype} {labels.shape}")
    with atomic_path(path) as tmp:
        np.savetxt(tmp, labels, fmt="%d")


def load_features(
    bin_path: str | Path, meta_path: str | Path, dim: int, *, mmap: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``.bin`` and its ``.meta`` together, checking that the counts agree."""
    labels = read_meta(meta_path)
    n = bin_rows(bin_path, dim)
    if n != labels.shape[0]:
        raise DataError(
            meta_path, f"has {labels.shape[0]} labels but {bin_path} has {n} rows of dim {dim} (counts must match)"
        )
    return read_bin(bin_path, dim, n, mmap=mmap), labels


def file_rows(bin_paths: Sequence[str | Path], dim: int) -> list[tuple[str, int]]:
    """``(path, rows)`` of each ``.bin``: where a row of their concatenation comes from (for error messages)."""
    return [(str(b), bin_rows(b, dim)) for b in bin_paths]


def load_parts(
    bin_paths: Sequence[str | Path], meta_paths: Sequence[str | Path], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate several parts (a subset such as part1-3) into one float32 array and one label array.

    Allocates the output once and fills it part by part, so peak memory is the subset plus one label file.
    """
    if len(bin_paths) != len(meta_paths):
        raise ValueError("need one .meta per .bin")
    metas = [read_meta(m) for m in meta_paths]
    rows = []
    for b, m, lab in zip(bin_paths, meta_paths, metas, strict=True):
        n = bin_rows(b, dim)
        if n != lab.shape[0]:
            raise DataError(m, f"has {lab.shape[0]} labels but {b} has {n} rows of dim {dim} (counts must match)")
        rows.append(n)
    out = np.empty((sum(rows), dim), dtype=np.float32)
    start = 0
    for b, n in zip(bin_paths, rows, strict=True):
        out[start : start + n] = read_bin(b, dim, n, mmap=True)
        start += n
    return out, np.concatenate(metas)
