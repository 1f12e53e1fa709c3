"""benchmarks/aro_list_quality.py on a small twin part: exact-like lists at recall 1, rougher lists below it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "aro_list_quality.py"


def test_aro_is_scored_on_lists_of_each_quality(tmp_path):
    out = tmp_path / "aro.json"
    cmd = [sys.executable, str(SCRIPT), "--preset", "tiny", "--ids", "60", "--k", "20", "--grid", "16:16", "16:1",
           "--queries", "300", "--json", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    exact, rough = json.loads(out.read_text())
    assert exact["list_recall"] == 1.0  # every cell probed: the IVF search is exact
    assert rough["list_recall"] < exact["list_recall"]
    for r in (exact, rough):
        assert 0.0 <= r["aro_precision"] <= 100.0 and 0.0 <= r["aro_f"] <= 100.0 and r["clusters"] >= 1
