"""What made the learned edge scores lose to the cosine, fix by fix: each model retrained on the training part with
the fixes switched on one after the other, its test-part edge ROC AUC next to the cosine's.

Reads a finished run's files (parts, kNN graph of the test subset, B, prompts, targets); writes nothing there. The
ladders (each step keeps the ones before it):

* CLIP-Cluster (``--cc nohall cross``): the paper's concatenated pair MLP as first built (no prior, no cosine input,
  lr 0.001) -> output bias at the class prior -> product pair features -> the edge's cosine as a pair feature ->
  lr 0.003 (today's default);
* FaceT: Eq. 8's concatenation without prior -> prior -> product pair features (today's default);
* MHC (K = 80): the paper's [t_i, t_ij] without prior, unscaled tokens -> prior -> tokens scaled by sqrt(d) ->
  product pair features -> the pair's cosine (today's default).

    python benchmarks/diagnose_edge_fixes.py --results results/twin --out results/diagnostics/edge_fixes.md
"""

from __future__ import annotations

import argparse
import copy
import datetime
import logging
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from clipcluster.atomic import write_text
from clipcluster.clip_cluster.pipeline import (
    load_inference_data,
    load_run_parts,
    load_transfer,
    part_edge_scores,
    read_prompts,
    train_model,
    variant_train_config,
)
from clipcluster.config import load, merge
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import load_knn_columns
from clipcluster.io import load_parts
from clipcluster.peers.pipeline import peer_scores, train_peer

CC_LADDER = [
    ("paper reading (concat), as first built",
     {"model": {"pair_features": "concat", "pair_cosine": False, "prior_init": False}, "train": {"lr": 0.001}}),
    ("+ output bias at the class prior",
     {"model": {"pair_features": "concat", "pair_cosine": False}, "train": {"lr": 0.001}}),
    ("+ product pair features", {"model": {"pair_cosine": False}, "train": {"lr": 0.001}}),
    ("+ edge cosine as a pair feature", {"train": {"lr": 0.001}}),
    ("+ lr 0.003 (default)", {}),
]  # fmt: skip
FACET_LADDER = [
    ("paper reading (Eq. 8 concat), as first built", {"pair_features": "concat", "prior_init": False}),
    ("+ output bias at the class prior", {"pair_features": "concat"}),
    ("+ product pair features (default)", {}),
]
MHC_LADDER = [
    ("paper reading ([t_i, t_ij]), as first built",
     {"pair_features": "concat", "pair_cosine": False, "scale_input": False, "prior_init": False}),
    ("+ output bias at the class prior", {"pair_features": "concat", "pair_cosine": False, "scale_input": False}),
    ("+ tokens scaled by sqrt(d)", {"pair_features": "concat", "pair_cosine": False}),
    ("+ product pair features", {"pair_cosine": False}),
    ("+ pair cosine as an input (default)", {}),
]  # fmt: skip
VARIANTS = {"cross": {"fusion": "cross"}, "nohall": {"hallucinate": False}}


def _files(res: Path, parts: list[str], kind: str, ext: str) -> list[str]:
    return [str(res / kind / f"{p}.{ext}") for p in parts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--subset", default="part1")
    ap.add_argument("--cc", nargs="*", default=["nohall", "cross"], choices=sorted(VARIANTS))
    ap.add_argument("--peers", nargs="*", default=["facet", "mhc"], choices=["facet", "mhc"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table here (Markdown)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load(args.config)
    ds = cfg["datasets"][cfg["dataset"]]
    res, parts, dim = Path(args.results), cfg["subsets"][args.subset], ds["feature_dim"]
    train0 = ds.get("parts", ["part0"])[0]
    knn = res / "knn" / f"{args.subset}_k{cfg['knn']['k']}.npz"
    rows: list[tuple[str, str, float, float, float]] = []

    def report(model: str, step: str, auc: dict[str, Any], seconds: float) -> None:
        rows.append((model, step, auc["auc_model"], auc["auc_cosine"], seconds))
        print(f"{model:>16} | {step:<48} | AUC {auc['auc_model']:.4f} vs cosine {auc['auc_cosine']:.4f} "
              f"({seconds:.0f} s)", flush=True)  # fmt: skip

    if args.cc:
        cc = cfg["methods"]["clipcluster"]
        _, text = read_prompts(res / "prompts" / "text.npz")
        data0 = load_run_parts(res, [train0], dim=dim)
        nbrs, sims, _ = load_knn_columns(knn, cc["k"])
        for variant in args.cc:
            base = variant_train_config(cc, dim, VARIANTS[variant])
            transfer = load_transfer(res / "models" / "B.pt") if variant != "nohall" else None
            for step, over in CC_LADDER:
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as ckpt:
                    model, _ = train_model(
                        data0,
                        text,
                        transfer,
                        merge(copy.deepcopy(base), over),
                        checkpoint_dir=ckpt,
                        seed=args.seed,
                        threads=args.threads,
                        device="cpu",
                    )
                test = load_inference_data(_files(res, parts, "faces", "bin"), _files(res, parts, "parts", "meta"),
                                           _files(res, parts, "clip", "bin"), _files(res, parts, "targets", "npz"),
                                           dim=dim)  # fmt: skip
                truth = test.labels
                scores = part_edge_scores(model, test, text, nbrs, sims, threads=args.threads)
                report(f"CLIP-Cluster {variant}", step, edge_auc(nbrs, scores, sims, truth), time.perf_counter() - t0)

    if args.peers:
        f0, y0 = load_parts([str(res / "faces" / f"{train0}.bin")], [str(res / "parts" / f"{train0}.meta")], dim)
        f0 = l2_normalize(f0, where=train0)
        f1, y1 = load_parts(_files(res, parts, "faces", "bin"), _files(res, parts, "parts", "meta"), dim)
        f1 = l2_normalize(f1, where=args.subset)
        nbrs, sims, _ = load_knn_columns(knn, cfg["knn"]["k"])
        for peer in args.peers:
            base = {k: v for k, v in cfg["methods"][peer].items() if k not in ("enabled", "device", "tau", "eps")}
            ladder = FACET_LADDER if peer == "facet" else MHC_LADDER
            for step, over in ladder:
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as ckpt:
                    model, _ = train_peer(
                        peer,
                        f0,
                        y0,
                        {**base, "feat_dim": dim, **over},
                        checkpoint_dir=ckpt,
                        seed=args.seed,
                        threads=args.threads,
                        device="cpu",
                    )
                scores = peer_scores(model, f1, nbrs, threads=args.threads)
                k = scores.shape[1]
                auc = edge_auc(nbrs[:, :k], scores, sims[:, :k], y1)
                report({"facet": "FaceT", "mhc": "MHC"}[peer], step, auc, time.perf_counter() - t0)

    if args.out:
        stamp = f"{datetime.date.today()}, {platform.node()}, {args.threads} threads"
        lines = [f"# Edge AUC on {args.subset} ({args.results}), fix by fix ({stamp})", "",
                 "| model | step | edge AUC | cosine AUC | seconds |", "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {m} | {s} | {a:.4f} | {c:.4f} | {t:.0f} |" for m, s, a, c, t in rows]
        write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
