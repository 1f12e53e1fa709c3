"""benchmarks/twin_landscape.py on the tiny twin: every method at every scale and seed, and what its summary says."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import twin_landscape  # noqa: E402


def test_cli_runs_every_method_and_seed_and_quotes_the_papers(tmp_path):
    out = tmp_path / "land"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "twin_landscape.py"), "--preset", "tiny", "--seeds", "0", "1",
           "--scales", "1", "3", "--set", "p_lookalike_cross=0.2", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * 2 * len(twin_landscape.METHODS) and set(runs["method"]) == set(twin_landscape.METHODS)
    assert "cdp" in twin_landscape.METHODS
    assert runs["f_pairwise"].between(0, 100).all()
    # the part1-3 subset holds three parts' identities
    sizes = runs.groupby("subset")["identities"].first()
    assert sizes["part1-3"] == 3 * sizes["part1"]
    summary = pd.read_csv(out / "landscape.csv").set_index(["method", "subset"])
    one = runs[(runs["method"] == "infomap") & (runs["subset"] == "part1")]["f_pairwise"]
    assert abs(summary.loc[("infomap", "part1"), "mean"] - one.mean()) < 1e-3
    assert abs(summary.loc[("infomap", "part1"), "sd"] - one.std()) < 1e-3
    assert summary.loc[("infomap", "part1"), "paper_f_pairwise"] == 93.98  # CLIP-Cluster Table 2, Only Infomap
    assert summary.loc[("aro", "part1-3"), "paper_f_pairwise"] == 8.78  # Table 5 at 1.74M
    assert summary.loc[("cdp", "part1"), "paper_f_pairwise"] == 75.01  # Table 3
    report = (out / "landscape.md").read_text()
    assert "p_lookalike_cross" in report and "| p_lookalike_cross | 0.2 |" in report  # the override, in the table
    params = json.loads((out / "params.json").read_text())
    assert params["p_lookalike_cross"] == 0.2 and params["ids_per_part"] == 12  # tiny's own size, overrides applied
    # the calibration report's other parts: part1 beside the published P / R / F, and the card's verification
    assert "| kmeans | " in report and "| 52.52 / 70.45 / 60.18 |" in report  # CLIP-Cluster Table 3's K-Means row
    # and learn-to-cluster's own run with our DBSCAN settings (its README since 2020-04-22), settings named
    part1 = report.split("## Part1: precision")[1].split("##")[0].splitlines()
    dbscan = next(line for line in part1 if line.startswith("| dbscan |"))
    assert "| 95.25 / 52.79 / 67.93 (k=80, th=0.7, eps=0.25, min=1) |" in dbscan
    assert next(line for line in part1 if line.startswith("| infomap |")).endswith("| - |")
    assert "| ArcFace R100, real benchmarks (quoted) | 99.77 | 99.83 | 94.21 | 97.87 |" in report
    ver = pd.read_csv(out / "verification.csv")
    assert list(ver["seed"]) == [0, 1] and list(ver.columns) == ["seed", "lfw", "cfp_ff", "cfp_fp", "agedb_30"]
    assert ver["lfw"].between(50, 100).all()  # tiny parts have pairs for LFW's protocol at least


def test_methods_run_with_the_configs_settings():
    cfg = twin_landscape.load_config(ROOT / "config" / "config.yaml")
    rows = twin_landscape.run_seed("tiny", 2, {}, [1], ["infomap"], cfg, 50)
    _, gt, attrs = twin_landscape.face_part(twin_landscape.twin_params("tiny", 2, {}), 1)
    assert attrs is None  # attributes only when asked (part1's verification)
    assert rows[0]["samples"] == gt.size and rows[0]["identities"] == np.unique(gt).size
    assert rows[0]["f_pairwise"] > 50 and not math.isnan(rows[0]["f_bcubed"])
    # a floor no edge passes leaves every face alone: the config's setting is what ran
    cfg["methods"]["infomap"]["sim_floor"] = 0.999
    alone = twin_landscape.run_seed("tiny", 2, {}, [1], ["infomap"], cfg, 50)[0]
    assert alone["clusters"] == gt.size and alone["recall"] == 0.0
