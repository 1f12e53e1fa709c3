"""benchmarks/bench_knn_twin.py on two small twin parts: every back end measured, exact ones at recall 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_knn_twin.py"


def test_cli_measures_every_back_end_on_a_twin_part(tmp_path):
    out = tmp_path / "knn.json"
    cache = tmp_path / "part.npz"
    cmd = [sys.executable, str(SCRIPT), "--preset", "tiny", "--ids", "40", "--parts", "1", "2", "--k", "10",
           "--cache", str(cache),
           "--truth-queries", "200", "--time-queries", "300", "--nprobe", "1", "4096", "--ef-search", "64",
           "--nnd-k", "12", "--nnd-iter", "3", "--factory", "IVF16,Flat", "--factory-params", "nprobe=16",
           "--factory-train", "2000", "--methods", "ivf", "hnsw", "nndescent", "factory", "--full", "exact",
           "ivf:nprobe=2", "ivfpq", "--json", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    assert cache.exists()
    report = json.loads(out.read_text())
    rows = report["rows"]
    with np.load(cache) as z:  # part1 then part2, as a subset part1-2
        assert report["n"] == len(z["labels"]) and len(np.unique(z["labels"])) == 80
    by = {(r["method"], r.get("nprobe"), r.get("params")): r for r in rows}
    assert by[("exact", None, None)]["recall"] == 1.0
    assert by[("full exact", None, None)]["recall"] == 1.0
    # probing every cell (faiss caps nprobe at nlist) is exact; one cell misses neighbours
    assert by[("ivf", 4096, None)]["nlist"] < 4096 and by[("ivf", 4096, None)]["recall"] == 1.0
    assert by[("ivf", 1, None)]["recall"] < 1.0
    assert by[("factory", None, "nprobe=16")]["recall"] == 1.0  # IVF16,Flat with all 16 cells probed
    assert {"hnsw", "nndescent", "full ivf:nprobe=2"} <= {r["method"] for r in rows}
    pq = next(r for r in rows if r["method"] == "full ivfpq")
    assert pq["nprobe"] == pq["nlist"] and pq["recall"] >= 0.99  # a few cells, all probed
    assert all(0.0 <= r["recall"] <= 1.0 for r in rows)
    tail = by[("exact", None, None)]["tail"]  # similarities fall along the list
    assert (
        tail["median_sim_rank1"] >= tail["median_sim_rank5"] >= tail["median_sim_rank10"] >= tail["median_sim_rank30"]
    )
    assert 0.0 <= tail["same_identity_rank10"] <= 1.0
