"""Shards: fixed boundaries that cover every row once, and a gather that names a missing or short shard."""

import numpy as np
import pandas as pd
import pytest

from clipcluster.errors import DataError
from clipcluster.images.shards import (
    gather_arrays,
    gather_bin,
    gather_tables,
    n_shards,
    shard_bounds,
    shard_ids,
    shard_rows,
)
from clipcluster.io import read_bin, write_bin


@pytest.mark.parametrize(("n", "size"), [(0, 3), (1, 1), (10, 3), (12, 4), (7, 100), (50_001, 50_000)])
def test_bounds_cover_every_row_once_in_order(n, size):
    bounds = shard_bounds(n, size)
    rows = np.concatenate([np.arange(a, b) for a, b in bounds]) if bounds else np.array([], int)
    np.testing.assert_array_equal(rows, np.arange(n))
    assert all(b - a == size for a, b in bounds[:-1]) and all(0 < b - a <= size for a, b in bounds)
    assert n_shards(n, size) == len(bounds) == -(-n // size)
    assert [shard_rows(n, size, i) for i in range(len(bounds))] == [slice(a, b) for a, b in bounds]
    assert shard_ids(n, size) == sorted(shard_ids(n, size)) and len(shard_ids(n, size)) == len(bounds)


def test_bad_shard_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        shard_bounds(10, 0)
    with pytest.raises(ValueError, match="shard 4 does not exist: 10 rows in shards of 3 give 4"):
        shard_rows(10, 3, 4)


def _write_npy_shards(tmp_path, data, size):
    paths = []
    for i, (a, b) in enumerate(shard_bounds(len(data), size)):
        paths.append(tmp_path / f"s{i:05d}.npy")
        np.save(paths[-1], data[a:b])
    return paths


def test_gather_arrays_in_order(tmp_path):
    data = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    paths = _write_npy_shards(tmp_path, data, 3)
    np.testing.assert_array_equal(gather_arrays(paths, 10, 3), data)
    np.testing.assert_array_equal(gather_arrays(paths[::-1][::-1], 10, 3), data)


def test_gather_names_missing_and_short_shards(tmp_path):
    data = np.arange(20).reshape(10, 2)
    paths = _write_npy_shards(tmp_path, data, 3)
    paths[2].unlink()
    with pytest.raises(DataError) as e:
        gather_arrays(paths, 10, 3)
    assert str(e.value) == f"{paths[2]}: shard file not found (rerun that shard)"
    np.save(paths[2], data[6:8])  # one row short
    with pytest.raises(DataError) as e:
        gather_arrays(paths, 10, 3)
    assert str(e.value) == f"{paths[2]}: has 2 rows, expected 3 (rows 6..8); rerun that shard"
    np.save(paths[2], np.zeros((3, 5)))
    with pytest.raises(DataError, match=r"row shape \(5,\) differs from the first shard's \(2,\)"):
        gather_arrays(paths, 10, 3)
    paths[2].write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npy file"):
        gather_arrays(paths, 10, 3)
    with pytest.raises(ValueError, match="3 shard files given but 10 rows in shards of 3 make 4 shards"):
        gather_arrays(paths[:3], 10, 3)


def test_gather_tables(tmp_path):
    table = pd.DataFrame({"yaw": np.linspace(-90, 90, 7), "gender": list("mfmfmff")})
    paths = []
    for i, (a, b) in enumerate(shard_bounds(7, 2)):
        paths.append(tmp_path / f"t{i}.parquet")
        table.iloc[a:b].to_parquet(paths[-1])
    pd.testing.assert_frame_equal(gather_tables(paths, 7, 2), table)
    table.iloc[0:1].to_parquet(paths[1])
    with pytest.raises(DataError, match=r"t1\.parquet: has 1 rows, expected 2 \(rows 2\.\.3\)"):
        gather_tables(paths, 7, 2)
    table.iloc[2:4][["yaw"]].to_parquet(paths[1])
    with pytest.raises(DataError, match="columns \\['yaw'\\] differ"):
        gather_tables(paths, 7, 2)


def test_gather_bin(tmp_path):
    data = np.random.default_rng(1).standard_normal((9, 3)).astype(np.float32)
    paths = []
    for i, (a, b) in enumerate(shard_bounds(9, 4)):
        paths.append(tmp_path / f"f{i}.bin")
        write_bin(paths[-1], data[a:b])
    gather_bin(paths, 9, 4, 3, tmp_path / "out" / "part1.bin")
    np.testing.assert_array_equal(read_bin(tmp_path / "out" / "part1.bin", 3), data)
    write_bin(paths[1], data[4:7])
    with pytest.raises(DataError, match=r"f1\.bin: has 3 rows, expected 4 \(rows 4\.\.7\)"):
        gather_bin(paths, 9, 4, 3, tmp_path / "out2.bin")
    assert not (tmp_path / "out2.bin").exists()
