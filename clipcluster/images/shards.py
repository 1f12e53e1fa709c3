"""Shards of a per-image stage: fixed row ranges that separate jobs (SLURM) compute, and an in-order gather.

Boundaries depend only on the number of rows and the shard size, so a rerun (or a failed shard alone) reproduces
the same ranges; Snakemake then reruns just the shards whose outputs are missing. The gather checks that every
shard file is present and holds exactly its range's rows before concatenating, so a lost or short shard is named
instead of silently shifting every row after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError
from clipcluster.io import FLOAT, bin_rows


def shard_bounds(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering ``0..n_rows`` in order; every shard has ``shard_size`` rows but the last."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    if n_rows < 0:
        raise ValueError(f"row count must be non-negative, got {n_rows}")
    return [(start, min(start + shard_size, n_rows)) for start in range(0, n_rows, shard_size)]


def n_shards(n_rows: int, shard_size: int) -> int:
    return len(shard_bounds(n_rows, shard_size))


def shard_rows(n_rows: int, shard_size: int, shard: int) -> slice:
    """The rows of shard number ``shard`` (what a shard job reads from the image index)."""
    bounds = shard_bounds(n_rows, shard_size)
    if not 0 <= shard < len(bounds):
        raise ValueError(f"shard {shard} does not exist: {n_rows} rows in shards of {shard_size} give {len(bounds)}")
    return slice(*bounds[shard])


def shard_ids(n_rows: int, shard_size: int) -> list[str]:
    """Zero-padded shard names ('00000', '00001', ...) for file names, so they also sort in order."""
    return [f"{i:05d}" for i in range(n_shards(n_rows, shard_size))]


def _check_count(paths: Sequence[str | Path], n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    bounds = shard_bounds(n_rows, shard_size)
    if len(paths) != len(bounds):
        raise ValueError(
            f"{len(paths)} shard files given but {n_rows} rows in shards of {shard_size} make {len(bounds)} shards"
        )
    for path in paths:
        if not Path(path).exists():
            raise DataError(path, "shard file not found (rerun that shard)")
    return bounds


def _check_rows(path: str | Path, got: int, start: int, stop: int) -> None:
    if got != stop - start:
        raise DataError(path, f"has {got} rows, expected {stop - start} (rows {start}..{stop - 1}); rerun that shard")


def gather_arrays(paths: Sequence[str | Path], n_rows: int, shard_size: int) -> np.ndarray:
    """Concatenate per-shard ``.npy`` arrays (rows first) in shard order, checking each shard's row count."""
    bounds = _check_count(paths, n_rows, shard_size)
    arrays = []
    for path, (start, stop) in zip(paths, bounds, strict=True):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(path, f"not a readable .npy file: {str(err).splitlines()[0]}") from None
        _check_rows(path, arr.shape[0] if arr.ndim else 0, start, stop)
        if arrays and arr.shape[1:] != arrays[0].shape[1:]:
            raise DataError(path, f"row shape {arr.shape[1:]} differs from the first shard's {arrays[0].shape[1:]}")
        arrays.append(arr)
    if not arrays:
        raise ValueError("no shards to gather")
    return np.concatenate(arrays, axis=0)


def gather_tables(paths: Sequence[str | Path], n_rows: int, shard_size: int) -> pd.DataFrame:
    """Concatenate per-shard parquet tables in shard order, checking each shard's row count and columns."""
    bounds = _check_count(paths, n_rows, shard_size)
    tables = []
    for path, (start, stop) in zip(paths, bounds, strict=True):
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for a damaged file; all mean the same here
            raise DataError(path, f"not a readable parquet file: {str(err).splitlines()[0]}") from None
        _check_rows(path, len(table), start, stop)
        if tables and list(table.columns) != list(tables[0].columns):
            raise DataError(
                path, f"columns {list(table.columns)} differ from the first shard's {list(tables[0].columns)}"
            )
        tables.append(table)
    if not tables:
        raise ValueError("no shards to gather")
    return pd.concat(tables, ignore_index=True)


def gather_bin(paths: Sequence[str | Path], n_rows: int, shard_size: int, dim: int, out: str | Path) -> None:
    """Concatenate per-shard learn-to-cluster ``.bin`` files into ``out`` (streamed, atomic), checking row counts."""
    bounds = _check_count(paths, n_rows, shard_size)
    for path, (start, stop) in zip(paths, bounds, strict=True):
        _check_rows(path, bin_rows(path, dim) if Path(path).stat().st_size else 0, start, stop)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as dst:
            for path in paths:
                with open(path, "rb") as src:
                    while block := src.read(1 << 24):
                        dst.write(block)
        size = tmp.stat().st_size
        if size != n_rows * dim * FLOAT.itemsize:  # a shard changed while it was copied: leave no output
            raise DataError(out, f"gathered {size} bytes, expected {n_rows} rows of {dim} float32")
