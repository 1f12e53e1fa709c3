"""Identity-disjoint parts: seeded equal splits, a user's own lists (validated), and the per-part files."""

import numpy as np
import pandas as pd
import pytest

from clipcluster.errors import DataError
from clipcluster.images.split import (
    assign_parts,
    check_index,
    equal_parts,
    read_part,
    read_part_lists,
    split_identities,
    write_part,
)
from clipcluster.io import read_meta


def _index(n_ids=23, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_ids)
    labels = np.repeat(np.arange(n_ids), sizes)
    return pd.DataFrame(
        {
            "source": [f"id{lab:03d}/{i}.jpg" for i, lab in enumerate(labels)],
            "label": labels.astype(np.int64),
            "identity": [f"id{lab:03d}" for lab in labels],
        }
    )


def test_equal_parts_are_disjoint_cover_and_balanced():
    index = _index().assign(row=lambda t: np.arange(len(t)))
    parts = equal_parts(index, 10, seed=7)
    assert list(parts) == [f"part{i}" for i in range(10)]
    names = [n for p in parts.values() for n in p]
    assert sorted(names) == sorted(index["identity"].unique())  # every identity once
    assert {len(p) for p in parts.values()} == {2, 3}  # 23 identities: sizes differ by at most one
    rows = assign_parts(index, parts, "test")
    assert sum(len(r) for r in rows.values()) == len(index)
    for a in rows:
        for b in rows:
            if a != b:
                assert not set(rows[a]["identity"]) & set(rows[b]["identity"])
    # each part keeps the index's row order
    for r in rows.values():
        assert r["row"].is_monotonic_increasing


def test_split_is_seeded_and_order_free():
    index = _index()
    a = equal_parts(index, 5, seed=1)
    assert a == equal_parts(index.sample(frac=1, random_state=3), 5, seed=1)  # row order does not matter
    assert a != equal_parts(index, 5, seed=2)
    with pytest.raises(ValueError, match="cannot split 3 identities into 4"):
        split_identities(["a", "b", "c", "a"], 4, 0)


def test_user_lists_from_yaml(tmp_path):
    index = _index(6)
    path = tmp_path / "parts.yaml"
    path.write_text("train: [id000, id001]\ntest:\n  - id003\n  - id005\n")
    parts = read_part_lists(path)
    assert parts == {"train": ["id000", "id001"], "test": ["id003", "id005"]}
    rows = assign_parts(index, parts, path)
    assert set(rows["test"]["identity"]) == {"id003", "id005"}
    assert len(rows["train"]) + len(rows["test"]) < len(index)  # unlisted identities are left out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p0: [id000]\np1: [nobody]\n", "part 'p1' lists identity 'nobody', which is not in the image index"),
        ("p0: [id000, id001]\np1: [id001]\n", "identity 'id001' is listed in both 'p0' and 'p1'"),
        ("p0: [id002, id002]\n", "identity 'id002' is listed twice"),
        ("p0: []\n", "part 'p0': expected a non-empty list of identity names"),
        ("- id000\n", "expected a mapping 'part name: [identity names]'"),
        ("p0: [id000\n", "not valid YAML"),
    ],
)
def test_user_list_errors_are_one_line(tmp_path, text, message):
    path = tmp_path / "parts.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        assign_parts(_index(6), read_part_lists(path), path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value) and "\n" not in str(e.value)


def test_write_and_read_part(tmp_path):
    index = _index()
    rows = assign_parts(index, equal_parts(index, 3, seed=0), "test")
    write_part(rows["part1"], tmp_path / "parts" / "part1.parquet", tmp_path / "parts" / "part1.meta")
    back = read_part(tmp_path / "parts" / "part1.parquet")
    pd.testing.assert_frame_equal(back, rows["part1"])
    np.testing.assert_array_equal(read_meta(tmp_path / "parts" / "part1.meta"), rows["part1"]["label"])
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["part1.meta", "part1.parquet"]  # no temp left


def test_integer_sources_round_trip(tmp_path):
    # a RecordIO index: source is the record key
    rows = pd.DataFrame({"source": np.arange(1, 5), "label": np.array([3, 3, 8, 8]), "identity": ["3", "3", "8", "8"]})
    write_part(rows, tmp_path / "p.parquet")
    assert read_part(tmp_path / "p.parquet")["source"].tolist() == [1, 2, 3, 4]


def test_read_part_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_part(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable parquet file"):
        read_part(tmp_path / "bad.parquet")
    pd.DataFrame({"source": ["a"], "label": [1]}).to_parquet(tmp_path / "cols.parquet")
    with pytest.raises(DataError, match=r"missing columns \['identity'\]"):
        read_part(tmp_path / "cols.parquet")


def test_check_index_catches_two_labels_for_one_identity():
    index = pd.DataFrame({"source": ["a", "b"], "label": [1, 2], "identity": ["x", "x"]})
    with pytest.raises(DataError, match="identity 'x' has more than one label"):
        check_index(index, "idx.parquet")
    with pytest.raises(DataError, match="column 'label' has dtype"):
        check_index(index.assign(label=[1.5, 2.0]), "idx.parquet")
