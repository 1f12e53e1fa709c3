"""Checks of a features dataset's files that need no data reading, run when the workflow starts (common.smk).

A user pointing ``source: features`` at learn-to-cluster files learns about a missing file, a truncated ``.bin`` or a
label count that does not match before any job runs, in one line naming the file, as a config error does; the jobs'
own checks (NaN values, bad label lines) remain for what needs the data read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clipcluster.errors import DataError
from clipcluster.io import bin_rows

__all__ = ["check_feature_files", "count_labels"]


def count_labels(path: str | Path, chunk: int = 1 << 24) -> int:
    """Labels in a ``.meta`` file: its whitespace-separated entries (one per line; blank lines do not count), read
    ``chunk`` bytes at a time."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    n = 0
    with open(path, "rb") as fh:
        tail = b""
        while block := fh.read(chunk):
            block = tail + block
            cut = max(block.rfind(b"\n"), block.rfind(b" "), block.rfind(b"\t"), block.rfind(b"\r"))
            head, tail = (block[: cut + 1], block[cut + 1 :]) if cut >= 0 else (b"", block)
            n += len(head.split())
        n += len(tail.split())
    return n


def check_feature_files(
    parts: Mapping[str, Mapping[str, str]], dim: int, extra_dims: Mapping[str, int] | None = None
) -> None:
    """For every part: ``bin`` and ``meta`` present, the ``.bin`` a whole number of ``dim``-float32 rows, as many
    labels as rows; other ``.bin`` kinds in ``extra_dims`` (e.g. ``{"clip": 512}``) the same number of rows.

    ``parts`` maps a part to its files by kind (``{"bin": ..., "meta": ..., "clip": ...}``). Raises a
    :class:`DataError` naming the first bad file.
    """
    for files in parts.values():
        rows = bin_rows(files["bin"], dim)
        labels = count_labels(files["meta"])
        if labels != rows:
            raise DataError(files["meta"], f"has {labels} labels but {files['bin']} has {rows} rows")
        for kind, kind_dim in (extra_dims or {}).items():
            if kind in files:
                other = bin_rows(files[kind], kind_dim)
                if other != rows:
                    raise DataError(files[kind], f"has {other} rows of dim {kind_dim} but {files['bin']} has {rows}")
