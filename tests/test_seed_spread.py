"""The seed-spread summary behind benchmarks/seed_spread.py: means, sds and the two-sd verdict, by hand."""

from __future__ import annotations

import pytest

from clipcluster.errors import DataError
from clipcluster.evaluation.seed_spread import compare, summarise


def _runs(a: list[float], b: list[float]) -> dict:
    return {
        s: {
            "a": {"pairwise_f": x, "bcubed_f": x, "edge_auc": {"auc_model": 0.9, "auc_cosine": 0.8}},
            "b": {"pairwise_f": y, "bcubed_f": y},
        }
        for s, (x, y) in enumerate(zip(a, b, strict=True))
    }


def test_summary_means_and_sample_sds():
    df = summarise(_runs([0.90, 0.92, 0.94], [0.80, 0.80, 0.80]), ["a", "b"]).set_index("method")
    assert df.loc["a", "F_P mean"] == pytest.approx(92.0) and df.loc["a", "F_P sd"] == pytest.approx(2.0)
    assert df.loc["a", "F_P seed 1"] == pytest.approx(92.0) and df.loc["b", "F_P sd"] == 0.0
    assert df.loc["a", "edge AUC"] == pytest.approx(0.9) and df.loc["a", "cosine AUC"] == pytest.approx(0.8)


def test_difference_beyond_two_sd_and_sign_agreement():
    far = compare(_runs([0.90, 0.92, 0.94], [0.80, 0.81, 0.79]), "a", "b")
    assert far["mean"] == pytest.approx(12.0) and far["two_sd"] == pytest.approx(4.0)
    assert far["beyond_2sd"] and far["same_sign"] and far["differences"] == pytest.approx([10, 11, 15])
    near = compare(_runs([0.90, 0.92, 0.94], [0.91, 0.90, 0.95]), "a", "b")
    assert not near["beyond_2sd"] and not near["same_sign"]


def test_missing_method_names_the_seed():
    runs = _runs([0.9, 0.9], [0.8, 0.8])
    del runs[1]["b"]
    with pytest.raises(DataError, match="seed 1: no pairwise_f for b"):
        summarise(runs, ["a", "b"])


def _bench():
    from conftest import load_benchmark

    return load_benchmark("seed_spread")


def test_seed_configs_name_their_runs_and_carry_twin_overrides_to_every_seed():
    import yaml

    bench = _bench()
    base = yaml.safe_load((bench.ROOT / "config" / "config.yaml").read_text())
    plain = bench.seed_config(1, base)
    assert plain["dataset"] == "twin_seed1" and "overrides" not in plain["datasets"]["twin_seed1"]["twin"]
    assert bench.seed_config(0, base)["dataset"] == "twin"  # seed 0 is the default run's dataset
    for seed, name in ((0, "twin_poseid"), (2, "twin_poseid_seed2")):
        cfg = bench.seed_config(seed, base, "twin_poseid", {"face_pose_id": 5.0})
        twin = cfg["datasets"][name]["twin"]
        assert cfg["dataset"] == name and cfg["seed"] == seed
        assert twin == {"preset": "small", "seed": seed, "overrides": {"face_pose_id": 5.0}}
    # the committed config of the pose experiment is its seed 0, so the two share every cached file
    pose = yaml.safe_load((bench.ROOT / "config" / "twin-pose.yaml").read_text())
    assert pose["datasets"] == bench.seed_config(0, base, "twin_poseid", {"face_pose_id": 5.0})["datasets"]
