"""The twin's training-free landscape: every classic baseline at each scale and twin seed, beside the published MS1M.

For each twin seed, generates parts 1..9 of a preset (face features and labels only), and for each subset
(part1, part1-3, ...) builds the pipeline's k = 80 cosine kNN graph and runs the training-free methods with the
settings of ``config/config.yaml`` (Infomap alone at its fixed floor, K-Means with k = the true number of
identities, DBSCAN, single-linkage HAC, ARO, CDP). Writes, under ``--out``:

* ``runs.csv``: one row per seed x subset x method (pairwise P / R / F, BCubed F, clusters, seconds);
* ``landscape.csv`` / ``landscape.md``: per subset and method the mean F_P over seeds, its sd and range, and the
  published MS1M value at that scale (quoted: CLIP-Cluster Tables 2, 3 and 5); the markdown then gives part1's
  precision / recall / F_P beside the published row, part1's face verification per seed (the twin card's LFW /
  CFP / AgeDB-30 analogues, also in ``verification.csv``) beside ArcFace's, and ends with the twin's generative
  parameters, which ``params.json`` also holds. It is the twin's calibration report.

The seed spread says whether a preset can separate methods; the columns across subsets say whether F_P falls with
scale as every published method's does.

    python benchmarks/twin_landscape.py --preset small --seeds 0 1 2 --out benchmarks/out/landscape/small
    python benchmarks/twin_landscape.py --preset small --set ids_per_part=1000 mean_size=14 --out ...
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipcluster.atomic import atomic_path, write_text  # noqa: E402
from clipcluster.config import load as load_config  # noqa: E402
from clipcluster.evaluation.metrics import evaluate  # noqa: E402
from clipcluster.graph.knn import build_knn  # noqa: E402
from clipcluster.graph.methods import REGISTRY, cluster_arrays  # noqa: E402
from clipcluster.reporting.tables import MS1M_SIZES, read_paper  # noqa: E402
from clipcluster.twin.generate import iter_part_chunks, twin_params  # noqa: E402
from clipcluster.twin.verification import PUBLISHED, verification_block  # noqa: E402

log = logging.getLogger("twin_landscape")

METHODS = ("infomap", "kmeans", "dbscan", "hac", "aro", "cdp")
PAPER_ROWS = {
    "infomap": "Only Infomap",
    "kmeans": "K-Means",
    "dbscan": "DBSCAN",
    "hac": "HAC",
    "aro": "ARO",
    "cdp": "CDP",
}
# learn-to-cluster's own runs on the same part1 features (its README; the CSV says at which commit), which state their
# settings: DBSCAN, HAC and ARO ran with ours, K-Means with 5,000 clusters instead of the true count.
L2C_ROWS = {
    "kmeans": "MiniBatchKmeans",
    "dbscan": "KNN DBSCAN",
    "hac": "FastHAC",
    "aro": "Approx Rank Order",
    "cdp": "CDP",
}
SUBSETS = {n: [f"part{i}" for i in range(1, n + 1)] for n in (1, 3, 5, 7, 9)}


def subset_name(n_parts: int) -> str:
    return "part1" if n_parts == 1 else f"part1-{n_parts}"


def paper_fp(method: str, subset: str) -> float:
    """The published MS1M F_P of ``method`` at ``subset``'s scale (NaN where none is published)."""
    row, size = PAPER_ROWS[method], MS1M_SIZES[subset]
    if size == "584K":
        for name in ("table3_part1.csv", "table2_refinement.csv"):
            table = read_paper(name)
            if row in table.index:
                return float(table.loc[row, "f_pairwise"])
        return float("nan")
    table = read_paper("table5_scales.csv")
    return float(table.loc[row, f"fp_{size}"]) if row in table.index else float("nan")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (values parsed as YAML: numbers stay numbers)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected key=value")
        out[key] = yaml.safe_load(value)
    return out


def face_part(params: Any, part: int, attributes: bool = False) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """Face features and labels of one part, and its attributes if asked (the CLIP view is dropped chunk by chunk)."""
    faces, labels, attrs = [], [], []
    for chunk in iter_part_chunks(params, part):
        faces.append(chunk.face)
        labels.append(chunk.labels)
        if attributes:
            attrs.append(chunk.attributes)
    return np.concatenate(faces), np.concatenate(labels), pd.concat(attrs, ignore_index=True) if attributes else None


# the twin card's verification analogues (keys of verification_block and PUBLISHED) and their column names
VERIFICATION = {"lfw": "LFW", "cfp_ff": "CFP-FF", "cfp_fp": "CFP-FP", "agedb_30": "AgeDB-30"}


def part1_verification(seed: int, part: tuple[np.ndarray, np.ndarray, pd.DataFrame | None]) -> dict[str, Any]:
    """The twin card's face verification protocol on part1 (its LFW / CFP / AgeDB-30 analogues), with pairs of this
    report's own draw (seed, 17), so its accuracies differ from the card's by the pairs' sampling."""
    face, labels, attrs = part
    block = verification_block(face, attrs, labels, np.random.default_rng([seed, 17]))
    return {"seed": seed, **{name: block[name]["twin"] for name in VERIFICATION}}


def run_seed(
    preset: str,
    seed: int,
    overrides: dict[str, Any],
    scales: list[int],
    methods: list[str],
    cfg: dict,
    k: int,
    verification: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every method at every scale for one twin seed (rows of runs.csv); appends part1's face verification to
    ``verification`` if given."""
    params = twin_params(preset, seed, overrides)
    parts = {i: face_part(params, i, attributes=i == 1 and verification is not None) for i in range(1, max(scales) + 1)}
    if verification is not None:
        verification.append(part1_verification(seed, parts[1]))
    rows = []
    for n_parts in scales:
        subset = subset_name(n_parts)
        feats = np.concatenate([parts[i][0] for i in range(1, n_parts + 1)])
        gt = np.concatenate([parts[i][1] for i in range(1, n_parts + 1)])
        n_ids = int(np.unique(gt).size)
        graph = build_knn(feats, k, index=cfg["knn"]["index"], exact_max_n=cfg["knn"]["exact_max_n"], seed=seed)
        knn_s = graph.info["seconds"]
        log.info("seed %d %s: %d samples, %d identities, kNN %.1f s", seed, subset, gt.size, n_ids, knn_s)
        for method in methods:
            opts = cfg["methods"][method]
            t0 = time.perf_counter()
            labels = cluster_arrays(method, opts, knn=graph, feats=feats, n_ids=n_ids, seed=seed)
            seconds = time.perf_counter() - t0
            m = evaluate(gt, labels)
            rows.append(
                {
                    "seed": seed,
                    "subset": subset,
                    "samples": int(gt.size),
                    "identities": n_ids,
                    "method": method,
                    "precision": 100 * m["pairwise_precision"],
                    "recall": 100 * m["pairwise_recall"],
                    "f_pairwise": 100 * m["pairwise_f"],
                    "f_bcubed": 100 * m["bcubed_f"],
                    "clusters": int(m["n_pred_clusters"]),
                    "seconds": round(seconds, 2),
                }
            )
            scores = (rows[-1][c] for c in ("f_pairwise", "precision", "recall"))
            log.info("  %-8s F_P %.2f (P %.2f R %.2f) in %.1f s", method, *scores, seconds)
    return rows


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and range of F_P over seeds per subset and method, with the published value beside."""
    g = runs.groupby(["method", "subset"], sort=False)["f_pairwise"]
    out = g.agg(mean="mean", sd="std", low="min", high="max", seeds="count").reset_index()
    out["paper_f_pairwise"] = [paper_fp(m, s) for m, s in zip(out["method"], out["subset"], strict=True)]
    return out


def markdown(summary: pd.DataFrame, header: str) -> str:
    lines = [header, "", "F_P: twin mean +- sd over seeds [range] / published MS1M (quoted)", ""]
    subsets = list(dict.fromkeys(summary["subset"]))
    lines.append("| method | " + " | ".join(subsets) + " |")
    lines.append("|---|" + "---|" * len(subsets))
    for method, rows in summary.groupby("method", sort=False):
        cells = []
        for s in subsets:
            r = rows[rows["subset"] == s].iloc[0]
            paper = "-" if np.isnan(r["paper_f_pairwise"]) else f"{r['paper_f_pairwise']:.2f}"
            sd = 0.0 if np.isnan(r["sd"]) else r["sd"]
            cells.append(f"{r['mean']:.2f} +- {sd:.2f} [{r['low']:.1f}, {r['high']:.1f}] / {paper}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def part1_markdown(runs: pd.DataFrame) -> str:
    """Part1's pairwise precision / recall / F (mean over seeds) beside the published row where one is quoted."""
    part1 = runs[runs["subset"] == "part1"]
    if part1.empty:
        return ""
    lines = ["", "## Part1: precision / recall / F_P", "",
             "| method | twin P / R / F_P | CLIP-Cluster Tables 2-3 P / R / F_P | learn-to-cluster P / R / F_P (its "
             "settings) |", "|---|---|---|---|"]  # fmt: skip
    tables = [read_paper(name) for name in ("table3_part1.csv", "table2_refinement.csv")]
    l2c = read_paper("learn_to_cluster_part1.csv")
    for method, rows in part1.groupby("method", sort=False):
        twin = _prf(rows.mean(numeric_only=True))
        found = [t.loc[PAPER_ROWS[method]] for t in tables if PAPER_ROWS[method] in t.index]
        paper = _prf(found[0]) if found else "-"
        row = L2C_ROWS.get(method)
        other = f"{_prf(l2c.loc[row])} ({l2c.loc[row, 'settings']})" if row in l2c.index else "-"
        lines.append(f"| {method} | {twin} | {paper} | {other} |")
    return "\n".join(lines) + "\n"


def _prf(row: pd.Series) -> str:
    return " / ".join("-" if pd.isna(row.get(c)) else f"{row[c]:.2f}" for c in ("precision", "recall", "f_pairwise"))


def verification_markdown(rows: list[dict[str, Any]]) -> str:
    """Part1's face verification per seed beside ArcFace R100 on the real benchmarks (quoted; the twin card's)."""
    lines = ["", "## Part1's face verification (the twin card's protocol)", "",
             "| twin seed | " + " | ".join(VERIFICATION.values()) + " |",
             "|---|" + "---:|" * len(VERIFICATION)]  # fmt: skip
    for r in rows:
        cells = ("-" if r[n] is None else f"{r[n]:.2f}" for n in VERIFICATION)
        lines.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    quoted = " | ".join(f"{PUBLISHED[n]:.2f}" for n in VERIFICATION)
    lines.append(f"| ArcFace R100, real benchmarks (quoted) | {quoted} |")
    return "\n".join(lines) + "\n"


def parameters_markdown(params: dict[str, Any]) -> str:
    """The generative parameters every seed shared (overrides applied), as a two-column table."""
    lines = ["", "## Twin parameters", "", "| parameter | value |", "|---|---|"]
    for key, value in params.items():
        lines.append(f"| {key} | {json.dumps(value) if isinstance(value, list | tuple) else value} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="twin parameter overrides")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 3, 5, 9], choices=sorted(SUBSETS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=[m for m in METHODS if m in REGISTRY])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml", help="method settings")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(args.config)
    overrides = parse_overrides(args.set)
    k = max(int(cfg["knn"]["k"]), *(int(cfg["methods"][m].get("k", 0)) for m in args.methods))
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    verification: list[dict[str, Any]] = []
    for seed in args.seeds:
        rows += run_seed(args.preset, seed, overrides, sorted(args.scales), args.methods, cfg, k, verification)
    runs = pd.DataFrame(rows)
    summary = summarise(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    frames = {"runs.csv": runs, "landscape.csv": summary, "verification.csv": pd.DataFrame(verification)}
    for name, frame in frames.items():
        with atomic_path(args.out / name) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4f")
    header = (
        f"# Twin landscape: preset {args.preset}, overrides {json.dumps(overrides)}, seeds {args.seeds}\n\n"
        f"{datetime.date.today()}, {platform.node()} ({platform.machine()}), {time.perf_counter() - t0:.0f} s; "
        f"`python benchmarks/twin_landscape.py {shlex.join(sys.argv[1:] if argv is None else argv)}`"
    )
    params = twin_params(args.preset, args.seeds[0], overrides).to_dict()
    params.pop("seed", None)
    write_text(args.out / "params.json", json.dumps(params, indent=1, sort_keys=True) + "\n")
    report = markdown(summary, header) + part1_markdown(runs) + verification_markdown(verification)
    report += parameters_markdown(params)
    write_text(args.out / "landscape.md", report)
    print(report)


if __name__ == "__main__":
    main()
