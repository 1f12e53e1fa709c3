"""Repeat the part1 comparison over twin seeds: mean and seed-to-seed spread of every learned method's F.

For each seed s the workflow runs on the default preset with the twin's seed and the run's seed both s (dataset
``twin`` for s = 0, which the default run shares, ``twin_seed<s>`` otherwise), asking only for the part1 metrics of
the compared methods (no figures, no Table 4). Then it writes, under ``--out``:

* ``part1.csv`` / ``part1.md``: per method F_P per seed, mean and sd of F_P and F_B, mean edge AUC vs the cosine;
* ``differences.csv`` and the same table in ``part1.md``: paired differences (CLIP-Cluster against its pair baseline,
  both Infomap-alone rows, its no-hallucination ablation, FaceT and MHC), and whether each exceeds twice the
  seed-to-seed sd;
* with ``--subsets part1 part1-9``: the same for each subset (``part1-9.csv``, ``part1-9_differences.csv``,
  ``part1-9.md``); ``--methods`` keeps the comparison to some methods (the peers cost minutes per seed at part1-9).

    python benchmarks/seed_spread.py                      # seeds 0 1 2, all cores (about 25 min on 2 cores)
    python benchmarks/seed_spread.py --seeds 0 1 2 3 4 --cores 8
    python benchmarks/seed_spread.py --subsets part1 part1-9 --methods clipcluster clipcluster_nohall pair_baseline \
        infomap_tuned infomap                             # the same at scale, for the cheap methods
    python benchmarks/seed_spread.py --twin face_pose_id=5.0 --name twin_poseid ...   # another twin, its own runs
    python benchmarks/seed_spread.py ... --extra-config my.yaml --name NAME            # methods' keys changed too
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipcluster.atomic import write_text  # noqa: E402
from clipcluster.evaluation.seed_spread import compare, summarise  # noqa: E402

METHODS = ["clipcluster", "clipcluster_nohall", "pair_baseline", "infomap_tuned", "infomap", "facet", "mhc", "kmeans"]
PAIRS = [
    ("clipcluster", "pair_baseline"),
    ("clipcluster_nohall", "pair_baseline"),
    ("mhc", "pair_baseline"),
    ("clipcluster", "infomap_tuned"),
    ("clipcluster", "infomap"),
    ("clipcluster", "clipcluster_nohall"),
    ("clipcluster", "facet"),
    ("clipcluster", "mhc"),
    ("clipcluster_nohall", "infomap_tuned"),
    ("facet", "kmeans"),
    ("mhc", "kmeans"),
]


def dataset_name(seed: int, name: str = "twin") -> str:
    return name if seed == 0 else f"{name}_seed{seed}"


def seed_config(seed: int, base: dict, name: str = "twin", overrides: dict | None = None) -> dict:
    """The overrides layered over ``config/config.yaml`` for one seed (``overrides``: the twin's generative
    parameters replaced, for every seed)."""
    twin = dict(base["datasets"]["twin"])
    twin["twin"] = {**twin.get("twin", {}), "seed": seed}
    if overrides:
        twin["twin"]["overrides"] = {**twin["twin"].get("overrides", {}), **overrides}
    return {"dataset": dataset_name(seed, name), "seed": seed, "datasets": {dataset_name(seed, name): twin}}


def run_seed(
    seed: int, base_cfg: Path, cores: str, out: Path, nolock: bool = False, subsets: tuple[str, ...] = ("part1",),
    methods: tuple[str, ...] = tuple(METHODS), name: str = "twin", overrides: dict | None = None,
    extra_configs: tuple[Path, ...] = (),
) -> float:  # fmt: skip
    base = yaml.safe_load(base_cfg.read_text())
    cfg_path = out / f"seed{seed}.yaml"
    write_text(cfg_path, yaml.safe_dump(seed_config(seed, base, name, overrides), sort_keys=True))
    targets = [f"results/{dataset_name(seed, name)}/metrics/{m}/{sub}.json" for sub in subsets for m in methods]
    cmd = ["snakemake", *targets, "--cores", cores, *(["--nolock"] if nolock else []), "--configfile", str(base_cfg)]
    cmd.append(str(cfg_path))
    cmd += [str(c) for c in extra_configs]
    print(f"seed {seed}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(out / f"seed{seed}.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configfile", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "seed_spread")
    ap.add_argument("--nolock", action="store_true", help="beside another Snakemake run on other datasets")
    ap.add_argument("--subsets", nargs="+", default=["part1"], help="test subsets compared (one table each)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS, help="methods compared")
    ap.add_argument("--twin", nargs="+", default=[], metavar="KEY=VALUE", help="twin generative overrides")
    ap.add_argument("--name", default="twin", help="dataset name of seed 0 (seed s: <name>_seed<s>)")
    ap.add_argument("--extra-config", type=Path, nargs="+", default=[], help="configs layered last")
    args = ap.parse_args()
    overrides = {}
    for item in args.twin:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--twin {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    if (overrides or args.extra_config) and args.name == "twin":
        ap.error("--twin / --extra-config change the runs: give them their own --name (seed 0's is the default run)")
    args.out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in METHODS if m in args.methods]
    pairs = [(a, b) for a, b in PAIRS if a in methods and b in methods]
    run = (args.configfile, args.cores, args.out, args.nolock, tuple(args.subsets), tuple(methods), args.name)
    seconds = {s: run_seed(s, *run, overrides, tuple(args.extra_config)) for s in args.seeds}
    for sub in args.subsets:
        runs = {
            s: {
                m: json.loads((ROOT / f"results/{dataset_name(s, args.name)}/metrics/{m}/{sub}.json").read_text())
                for m in methods
            }
            for s in args.seeds
        }
        write_summary(
            args.out,
            sub,
            args.seeds,
            summarise(runs, methods),
            pd.DataFrame([compare(runs, a, b) for a, b in pairs]),
            seconds,
            overrides,
        )


def write_summary(
    out: Path, subset: str, seeds: list[int], table: pd.DataFrame, diffs: pd.DataFrame, seconds: dict[int, float],
    overrides: dict | None = None,
) -> None:  # fmt: skip
    """``<subset>.csv``, ``<subset>_differences.csv`` (part1: ``differences.csv``, as before) and ``<subset>.md``."""
    write_text(out / f"{subset}.csv", table.to_csv(index=False, float_format="%.4f"))
    diff_name = "differences.csv" if subset == "part1" else f"{subset}_differences.csv"
    write_text(out / diff_name, diffs.to_csv(index=False, float_format="%.4f"))
    stamp = f"{datetime.date.today()}, {platform.node()}, {platform.processor() or platform.machine()}"
    md = [
        f"# {subset.capitalize()} over twin seeds {', '.join(map(str, seeds))} (default preset"
        + (f" with {', '.join(f'{k} {v}' for k, v in overrides.items())}" if overrides else "")
        + f"; {stamp})",
        "",
        table.to_markdown(index=False, floatfmt=".2f"),
        "",
        "Paired differences in F_P (a - b, seed by seed). beyond_2sd: |mean| > 2 x the larger of the two methods'"
        " seed-to-seed sd; same_sign: every seed agrees on the sign.",
        "",
        diffs.to_markdown(index=False, floatfmt=".2f"),
        "",
        "Wall seconds per seed (shared steps of seed 0 may come from an earlier default run): "
        + ", ".join(f"{s}: {t:.0f}" for s, t in seconds.items()),
        "",
    ]
    write_text(out / f"{subset}.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
