"""Identity-disjoint parts of an image index: MS1M's protocol (N equal parts by identity, part0 trains) or a user's.

An image index is a table with columns ``source`` (RecordIO key or image path), ``label`` (integer class) and
``identity`` (name); recordio.py and imagefolder.py build it. Each part keeps the index's row order, and its labels
are the index's own (not renumbered), so a part's ``.meta`` can be traced back to the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError
from clipcluster.io import write_meta

INDEX_COLUMNS = ("source", "label", "identity")


def check_index(index: pd.DataFrame, where: str | Path) -> None:
    """An index has the three columns, integer labels, and one label per identity name."""
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DataError(where, f"missing columns {missing}, expected {list(INDEX_COLUMNS)}")
    if not pd.api.types.is_integer_dtype(index["label"]):
        raise DataError(where, f"column 'label' has dtype {index['label'].dtype}, expected integers")
    per_identity = index.groupby("identity", sort=True)["label"].nunique()
    if (per_identity > 1).any():
        name = per_identity.index[np.argmax(per_identity.to_numpy() > 1)]
        raise DataError(where, f"identity {name!r} has more than one label")


def split_identities(identities: Sequence[str], n_parts: int, seed: int) -> list[list[str]]:
    """Seeded permutation of the sorted distinct names cut into ``n_parts`` parts whose sizes differ by at most 1.

    Sorting first makes the parts depend on the set of identities and the seed only, not on the index's row order.
    """
    names = sorted(set(identities))
    if n_parts < 1 or n_parts > len(names):
        raise ValueError(f"cannot split {len(names)} identities into {n_parts} non-empty parts")
    order = np.random.default_rng(seed).permutation(len(names))
    return [[names[i] for i in chunk] for chunk in np.array_split(order, n_parts)]


def equal_parts(index: pd.DataFrame, n_parts: int, seed: int, prefix: str = "part") -> dict[str, list[str]]:
    """{part0: names, part1: names, ...}: MS1M's split (10 parts, part0 for training)."""
    parts = split_identities(index["identity"].tolist(), n_parts, seed)
    return {f"{prefix}{i}": names for i, names in enumerate(parts)}


def read_part_lists(path: str | Path) -> dict[str, list[str]]:
    """A user's parts: a YAML mapping ``part name: [identity names]`` (a one-line error for anything else)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataError(path, f"not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a mapping 'part name: [identity names]'")
    parts: dict[str, list[str]] = {}
    for name, ids in data.items():
        if not isinstance(ids, list) or not ids:
            raise DataError(path, f"part {name!r}: expected a non-empty list of identity names")
        parts[str(name)] = [str(i) for i in ids]
    return parts


def check_parts(index: pd.DataFrame, parts: Mapping[str, Sequence[str]], where: str | Path) -> None:
    """Every listed identity exists in the index and lies in exactly one part (error names the first fault)."""
    known = set(index["identity"].unique())
    owner: dict[str, str] = {}
    for part, names in parts.items():
        for name in names:
            if name not in known:
                raise DataError(where, f"part {part!r} lists identity {name!r}, which is not in the image index")
            if name in owner:
                where_else = "twice" if owner[name] == part else f"in both {owner[name]!r} and {part!r}"
                raise DataError(where, f"identity {name!r} is listed {where_else}; parts must be identity-disjoint")
            owner[name] = part


def assign_parts(index: pd.DataFrame, parts: Mapping[str, Sequence[str]], where: str | Path) -> dict[str, pd.DataFrame]:
    """The index rows of each part, in index order. Identities in no part are left out (a user may take a subset)."""
    check_parts(index, parts, where)
    out = {}
    for part, names in parts.items():
        rows = index[index["identity"].isin(set(names))]
        out[part] = rows.reset_index(drop=True)
    return out


def write_part(rows: pd.DataFrame, index_path: str | Path, meta_path: str | Path | None = None) -> None:
    """A part's image index as parquet and, optionally, its labels as a learn-to-cluster ``.meta``; both atomic."""
    with atomic_path(index_path) as tmp:
        rows.loc[:, list(INDEX_COLUMNS)].to_parquet(tmp, index=False)
    if meta_path is not None:
        write_meta(meta_path, rows["label"].to_numpy(dtype=np.int64))


def read_part(path: str | Path) -> pd.DataFrame:
    """A part's image index written by :func:`write_part`, checked."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        rows = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file; all mean the same here
        raise DataError(path, f"not a readable parquet file: {str(err).splitlines()[0]}") from None
    check_index(rows, path)
    return rows
