"""Startup checks of a features dataset's files: each problem is one DataError naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.input_checks import check_feature_files, count_labels


@pytest.fixture
def part(tmp_path):
    np.zeros((5, 4), dtype="<f4").tofile(tmp_path / "p.bin")
    np.zeros((5, 8), dtype="<f4").tofile(tmp_path / "p_clip.bin")
    (tmp_path / "p.meta").write_text("1\n2\n2\n3\n3\n\n")  # a trailing blank line is not a label
    return {"bin": str(tmp_path / "p.bin"), "meta": str(tmp_path / "p.meta"), "clip": str(tmp_path / "p_clip.bin")}


def test_good_files_pass(part):
    check_feature_files({"part0": part}, 4, {"clip": 8})
    assert count_labels(part["meta"]) == 5


def test_truncated_bin_names_the_file(part):
    with open(part["bin"], "r+b") as fh:
        fh.truncate(5 * 16 - 3)
    with pytest.raises(DataError, match=r"p\.bin: size 77 bytes is not a multiple of one 4-d float32 row"):
        check_feature_files({"part0": part}, 4)


def test_label_count_mismatch_names_the_meta(part):
    with open(part["meta"], "a") as fh:
        fh.write("9\n")
    with pytest.raises(DataError, match=r"p\.meta: has 6 labels but .*p\.bin has 5 rows"):
        check_feature_files({"part0": part}, 4)


def test_missing_file_and_clip_rows(part, tmp_path):
    np.zeros((4, 8), dtype="<f4").tofile(part["clip"])
    with pytest.raises(DataError, match=r"p_clip\.bin: has 4 rows of dim 8 but .*p\.bin has 5"):
        check_feature_files({"part0": part}, 4, {"clip": 8})
    with pytest.raises(DataError, match=r"nope\.meta: file not found"):
        check_feature_files({"part0": {**part, "meta": str(tmp_path / "nope.meta")}}, 4)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 24])
def test_count_labels_across_chunk_boundaries(tmp_path, chunk):
    path = tmp_path / "labels.meta"
    path.write_text("12\n345\n6\n\n7890\n11")  # no newline after the last label
    assert count_labels(path, chunk) == 5
