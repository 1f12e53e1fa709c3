"""Choose a CLIP-Cluster setting on the training part only: fit on part of part0's identities, score the rest.

A seeded quarter of part0's identities is held out; the model (``--variant``, the run's config otherwise) is
trained on the other three quarters once per ``--settings`` JSON (merged into methods.clipcluster's model /
sampler / train keys) and scored on the held-out faces' own kNN graph (k = methods.clipcluster.k): edge ROC AUC
against the cosine's. No test part is read. Reads a finished run's part0 files (faces, CLIP, targets, prompts, B);
writes only ``--out``. ``--configfile`` is merged over config/config.yaml, as Snakemake does.

    python benchmarks/select_on_train_part.py --results results/twin --out results/diagnostics/lr_part0.md \
        --settings '{"train": {"lr": 0.001}}' '{"train": {"lr": 0.003}}' '{"train": {"lr": 0.01}}'
    python benchmarks/select_on_train_part.py --results results/faces_demo --configfile config/faces-demo.yaml \
        --settings '{}' '{"model": {"pair_cosine_standardise": true}}'
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from clipcluster.atomic import write_text
from clipcluster.clip_cluster.pipeline import (
    PartData,
    load_run_parts,
    load_transfer,
    part_edge_scores,
    read_prompts,
    train_model,
    variant_train_config,
)
from clipcluster.config import merge, validate
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.graph.knn import build_knn

VARIANTS = {"cross": {}, "nohall": {"hallucinate": False}}


def split_identities(labels: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the fitting identities and of the held-out ones (a seeded share of the identities)."""
    ids = np.unique(labels)
    rng = np.random.default_rng(seed)
    out = rng.choice(ids, size=max(1, int(round(held_out * ids.size))), replace=False)
    mask = np.isin(labels, out)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def subset(data: PartData, rows: np.ndarray) -> PartData:
    return PartData(f=data.f[rows], i=data.i[rows], labels=data.labels[rows], src=data.src[rows], tgt=data.tgt[rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--configfile", default=None, help="merged over config/config.yaml")
    ap.add_argument("--variant", default="cross", choices=sorted(VARIANTS))
    ap.add_argument("--settings", nargs="+", required=True, metavar="JSON", help="settings merged into the config's")
    ap.add_argument("--held-out", type=float, default=0.25, help="share of part0's identities held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table here (Markdown)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    raw = yaml.safe_load(Path("config/config.yaml").read_text())
    if args.configfile:
        raw = merge(raw, yaml.safe_load(Path(args.configfile).read_text()))
    cfg = validate(raw)
    cc, ds = cfg["methods"]["clipcluster"], cfg["datasets"][cfg["dataset"]]
    res = Path(args.results)
    train0 = ds.get("parts", ["part0"])[0]
    data = load_run_parts(res, [train0], dim=ds["feature_dim"])
    fit_rows, val_rows = split_identities(data.labels, args.held_out, args.seed)
    fit, val = subset(data, fit_rows), subset(data, val_rows)
    graph = build_knn(val.f, cc["k"], threads=args.threads, progress=False)
    _, text = read_prompts(res / "prompts" / "text.npz")
    base = variant_train_config(cc, ds["feature_dim"], VARIANTS[args.variant])
    transfer = load_transfer(res / "models" / "B.pt") if base["model"].get("hallucinate", True) else None
    print(f"{train0}: {fit.f.shape[0]} faces to fit, {val.f.shape[0]} held out ({np.unique(val.labels).size} ids)")
    rows = []
    for spec in args.settings:
        tcfg = merge(copy.deepcopy(base), json.loads(spec))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as ckpt:
            model, _ = train_model(
                fit, text, transfer, tcfg, checkpoint_dir=ckpt, seed=args.seed, threads=args.threads, device="cpu"
            )
        probs = part_edge_scores(model, subset(val, np.arange(val.f.shape[0])), text, graph.nbrs, graph.sims)
        stats = edge_auc(graph.nbrs, probs, graph.sims, val.labels)
        rows.append((spec, stats["auc_model"], stats["auc_cosine"], time.perf_counter() - t0))
        print(f"{spec}: held-out edge AUC {rows[-1][1]:.4f} vs cosine {rows[-1][2]:.4f} ({rows[-1][3]:.0f} s)")
    best = max(rows, key=lambda r: r[1])
    lines = [
        f"# CLIP-Cluster ({args.variant}): a setting chosen on {train0} alone",
        "",
        f"{datetime.date.today()}, {platform.node()}, {args.threads} threads; `{' '.join(__import__('sys').argv)}`",
        f"Fit on {fit.f.shape[0]} faces, scored on {val.f.shape[0]} faces of {np.unique(val.labels).size} held-out "
        f"identities (kNN k = {cc['k']}).",
        "",
        "| setting | held-out edge AUC | cosine AUC | seconds |",
        "|---|---:|---:|---:|",
        *[f"| `{spec}` | {a:.4f} | {c:.4f} | {s:.0f} |" for spec, a, c, s in rows],
        "",
        f"Chosen: `{best[0]}` (the highest held-out edge AUC).",
    ]
    print(f"chosen {best[0]}")
    if args.out:
        write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
