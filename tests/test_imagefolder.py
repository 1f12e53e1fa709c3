"""One folder per identity: a deterministic index, and unreadable images counted and named, not dropped."""

import io

import numpy as np
import pytest
from PIL import Image

from clipcluster.errors import DataError
from clipcluster.images.imagefolder import LenientDecoder, decode_image, index_folder


def _save(path, seed, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return arr


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "faces"
    _save(root / "zoe" / "b.png", 0)
    _save(root / "zoe" / "a.PNG", 1)
    _save(root / "adam" / "2.jpg", 2)
    _save(root / "adam" / "10.jpeg", 3)
    _save(root / "Mia" / "x.bmp", 4)
    (root / "adam" / "notes.txt").write_text("not an image")
    (root / "adam" / ".hidden.jpg").write_bytes(b"")
    (root / "empty").mkdir()
    (root / ".cache").mkdir()
    _save(root / ".cache" / "c.png", 5)
    _save(root / "loose.png", 6)  # not in an identity folder
    return root


def test_index_is_sorted_and_labelled(folder):
    index = index_folder(folder)
    assert index["source"].tolist() == ["Mia/x.bmp", "adam/10.jpeg", "adam/2.jpg", "zoe/a.PNG", "zoe/b.png"]
    assert index["identity"].tolist() == ["Mia", "adam", "adam", "zoe", "zoe"]
    assert index["label"].tolist() == [0, 1, 1, 2, 2]
    assert index["label"].dtype == np.int64


def test_extensions_are_configurable(folder):
    index = index_folder(folder, extensions=["png", ".TXT"])
    assert index["source"].tolist() == ["adam/notes.txt", "zoe/a.PNG", "zoe/b.png"]
    assert index["label"].tolist() == [0, 1, 1]  # labels follow the identities that have images


def test_index_does_not_depend_on_creation_order(tmp_path):
    for order, root in ((["b", "a", "c"], tmp_path / "r1"), (["c", "a", "b"], tmp_path / "r2")):
        for i, name in enumerate(order):
            _save(root / name / f"{name}.png", i)
    assert index_folder(tmp_path / "r1").equals(index_folder(tmp_path / "r2"))


def test_empty_or_missing_root(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        index_folder(tmp_path / "nope")
    (tmp_path / "id1").mkdir()
    (tmp_path / "id1" / "a.txt").write_text("x")
    with pytest.raises(DataError) as e:
        index_folder(tmp_path)
    assert "no images with extensions" in str(e.value) and "\n" not in str(e.value)


def test_decode_image_paths_and_bytes(tmp_path):
    arr = _save(tmp_path / "a.png", 0)
    np.testing.assert_array_equal(decode_image(tmp_path / "a.png"), arr)
    got = decode_image((tmp_path / "a.png").read_bytes(), where="train.rec key 5")
    np.testing.assert_array_equal(got, arr)
    gray = tmp_path / "g.png"
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(gray)
    assert decode_image(gray).shape == (4, 5, 3) and decode_image(gray).dtype == np.uint8


def test_unreadable_images_raise_one_line_naming_the_file(tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(DataError) as e:
        decode_image(tmp_path / "text.jpg")
    assert str(e.value).startswith(f"{tmp_path / 'text.jpg'}: not a decodable image") and "\n" not in str(e.value)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buf, format="JPEG")
    with pytest.raises(DataError, match=r"train\.rec key 9: not a decodable image"):
        decode_image(buf.getvalue()[: len(buf.getvalue()) // 2], where="train.rec key 9")  # truncated JPEG
    with pytest.raises(DataError, match="file not found"):
        decode_image(tmp_path / "gone.png")


def test_lenient_decoder_counts_and_lists_unreadable(folder):
    (folder / "adam" / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (folder / "zoe" / "b.png").write_bytes((folder / "zoe" / "b.png").read_bytes()[:40])
    index = index_folder(folder)
    decoder = LenientDecoder(folder, index["source"])
    got = [source for source, arr in decoder]
    assert got == ["Mia/x.bmp", "adam/10.jpeg", "zoe/a.PNG"]
    assert [s.source for s in decoder.skipped] == ["adam/2.jpg", "zoe/b.png"]
    assert all(str(folder) in s.reason and "not a decodable image" in s.reason for s in decoder.skipped)
    assert len(got) + len(decoder.skipped) == len(index)
