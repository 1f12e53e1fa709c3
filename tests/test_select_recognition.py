"""benchmarks/select_recognition_on_train_part.py: part0's identities split three ways, a setting scored on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from clipcluster.twin import generate as twin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import select_recognition_on_train_part as sel  # noqa: E402


def test_held_out_identities_are_disjoint_from_training():
    labels = np.repeat(np.arange(40), 5)
    train, probe, distractor = sel.split_identities(labels, seed=0)
    assert not (train & probe).any() and not (train & distractor).any() and not (probe & distractor).any()
    assert (train | probe | distractor).all()
    held = np.unique(labels[probe | distractor])
    assert held.size == 10 and not set(held) & set(np.unique(labels[train]))  # a quarter, whole identities
    again = sel.split_identities(labels, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, probe, distractor), again, strict=True))


def test_cli_scores_each_setting_on_part0_alone(tmp_path):
    res = tmp_path / "results"
    for sub in ("faces", "clip", "parts", "attributes"):
        (res / sub).mkdir(parents=True)
    params = twin.twin_params("tiny", 1, {"ids_per_part": 40})
    twin.write_part(params, 0, face_bin=res / "faces/part0.bin", clip_bin=res / "clip/part0.bin",
                    meta=res / "parts/part0.meta", attributes_parquet=res / "attributes/part0.parquet")  # fmt: skip
    out = tmp_path / "sel.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "select_recognition_on_train_part.py"), "--results", str(res),
           "--view", "clip", "--out", str(out), "--settings", '{"train": {"epochs": 1}}',
           '{"model": {"layers": 0}, "train": {"epochs": 1}}']  # fmt: skip
    run = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    table = [line for line in out.read_text().splitlines() if line.startswith("| `")]
    assert len(table) == 2 and '"layers": 0' in table[1]
    rates = [float(line.split("|")[2]) for line in table]
    assert all(0.0 <= r <= 100.0 for r in rates)
    assert "held-out rank-1" in run.stdout
