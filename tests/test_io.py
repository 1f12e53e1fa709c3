"""The learn-to-cluster readers: round trips and the one-line errors for bad files."""

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.features import l2_normalize
from clipcluster.io import bin_rows, file_rows, load_features, load_parts, read_bin, read_meta, write_bin, write_meta


@pytest.fixture
def part(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((7, 4)).astype(np.float32)
    labels = np.array([3, 3, 1, 1, 1, -2, 9])
    write_bin(tmp_path / "p.bin", feats)
    write_meta(tmp_path / "p.meta", labels)
    return tmp_path / "p.bin", tmp_path / "p.meta", feats, labels


def test_round_trip(part):
    b, m, feats, labels = part
    got_f, got_l = load_features(b, m, 4)
    np.testing.assert_array_equal(got_f, feats)
    np.testing.assert_array_equal(got_l, labels)
    assert read_bin(b, 4, mmap=True).shape == (7, 4)
    # little-endian float32, no header: the file is exactly N * D * 4 bytes
    assert b.stat().st_size == 7 * 4 * 4


def test_truncated_bin_names_file_and_sizes(part):
    b, m, _, _ = part
    with open(b, "r+b") as fh:
        fh.truncate(7 * 4 * 4 - 3)
    with pytest.raises(DataError, match=r"p\.bin: size 109 bytes is not a multiple of one 4-d float32 row") as e:
        read_bin(b, 4)
    assert "\n" not in str(e.value)


def test_wrong_dim_is_caught(part):
    b, _, _, _ = part
    with pytest.raises(DataError, match="not a multiple"):
        bin_rows(b, 5)


def test_meta_count_mismatch(part, tmp_path):
    b, _, _, _ = part
    write_meta(tmp_path / "short.meta", np.arange(6))
    with pytest.raises(DataError, match=r"short\.meta: has 6 labels but .*p\.bin has 7 rows of dim 4"):
        load_features(b, tmp_path / "short.meta", 4)


def test_meta_bad_line_is_named(tmp_path):
    (tmp_path / "bad.meta").write_text("1\n2\nthree\n4\n")
    with pytest.raises(DataError, match=r"bad\.meta: line 3: 'three' is not an integer label"):
        read_meta(tmp_path / "bad.meta")


def test_nan_features_name_the_row(part):
    b, _, feats, _ = part
    feats = feats.copy()
    feats[5, 2] = np.nan
    write_bin(b, feats)
    with pytest.raises(DataError, match=r"p\.bin: row 5 has a NaN or infinite value"):
        read_bin(b, 4)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_bin(tmp_path / "nope.bin", 4)
    with pytest.raises(DataError, match="file not found"):
        read_meta(tmp_path / "nope.meta")


def test_load_parts_concatenates_in_order(tmp_path):
    rng = np.random.default_rng(1)
    bins, metas, all_f, all_l = [], [], [], []
    for i, n in enumerate([3, 5, 2]):
        f = rng.standard_normal((n, 6)).astype(np.float32)
        lab = np.full(n, i)
        write_bin(tmp_path / f"{i}.bin", f)
        write_meta(tmp_path / f"{i}.meta", lab)
        bins.append(tmp_path / f"{i}.bin")
        metas.append(tmp_path / f"{i}.meta")
        all_f.append(f)
        all_l.append(lab)
    feats, labels = load_parts(bins, metas, 6)
    np.testing.assert_array_equal(feats, np.concatenate(all_f))
    np.testing.assert_array_equal(labels, np.concatenate(all_l))


def test_write_is_atomic_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(ValueError):
        write_bin(target, np.zeros(3))  # 1-d: refused before anything is written
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_l2_normalize_rejects_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    with pytest.raises(DataError, match="row 1 is all zeros"):
        l2_normalize(x, "feats.bin")
    y = l2_normalize(np.array([[3.0, 4.0]], dtype=np.float32))
    np.testing.assert_allclose(y, [[0.6, 0.8]])


def test_zero_row_of_a_subset_names_its_file_and_row(tmp_path):
    """A subset concatenates parts: the error points into the file the row came from, at that file's row."""
    a, b = tmp_path / "part1.bin", tmp_path / "part2.bin"
    write_bin(a, np.ones((3, 2)))
    write_bin(b, np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]]))
    feats, _ = load_parts([a, b], [_meta(tmp_path, "m1", 3), _meta(tmp_path, "m2", 3)], 2)
    with pytest.raises(DataError, match=r"part2\.bin: row 1 is all zeros \(1 such rows\)"):
        l2_normalize(feats, files=file_rows([a, b], 2))


def _meta(folder, name: str, n: int):
    path = folder / f"{name}.meta"
    path.write_text("".join(f"{i}\n" for i in range(n)))
    return path


def test_atomic_path_leaves_nothing_when_the_writer_dies(tmp_path):
    from clipcluster.atomic import atomic_path

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"  # the previous version stays; no half file under the real name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    write_meta(tmp_path / "l.meta", np.array([1, 2]))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "l.meta").stat().st_mode) == 0o666 & ~mask
