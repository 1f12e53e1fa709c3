"""Whether CLIP-Cluster's learned edge scores beat the raw cosine on a finished run, and where its F comes from.

From a finished run's files (nothing there is written), on one test subset:

1. each stored model's edge scores against the cosine, ROC AUC over the kNN edges (k = methods.clipcluster.k),
   and the pairwise F of prune-at-tau + Infomap for several tau;
2. Infomap alone on the same kNN graph: cosine weights at several similarity floors, and uniform weights, which
   separates what the refinement graph gives from what the learned scores give;
3. with ``--retrain JSON ...``: the model retrained on the training part with those settings merged into the
   config's (e.g. ``'{"train": {"lr": 0.01}, "sampler": {"subgraphs_per_epoch": 32}}'``), scored the same way;
   ``--train-parts part0 part2 ...`` trains on more identities instead (a diagnostic of how the learned correction
   behaves with more training identities: it reads test parts, so it chooses nothing).

Each model's AUC is printed beside its own pair baseline's (the frozen logistic regression under its logit) and the
cosine's, with the mean of its learned correction (its logit minus the baseline's) over the graph's edges: how far
the network lifts every edge, which moves its effective threshold (``centre_correction`` keeps it at zero).
``--subset part0`` scores the training part itself (the identities the models were trained on); ``--kept`` adds
the edges each tau keeps and how many of them join two identities; ``--by-pose`` (the twin) each model's AUC over
the frontal-frontal, frontal-profile and profile-profile edges (true poses) beside the cosine's and its baseline's.
Infomap runs with seed 0 here; the workflow gives it the run's seed, and on part1 that alone can move F by a point
(docs/edge_quality.md).

    python benchmarks/diagnose_clipcluster_edges.py --results results/twin --subset part1 --models cross nohall \
        --retrain '{"train": {"lr": 0.01}, "sampler": {"subgraphs_per_epoch": 32}}'
    python benchmarks/diagnose_clipcluster_edges.py --results results/twin_webface --table4 --subset test --models cross
    python benchmarks/diagnose_clipcluster_edges.py --subset part1 --models cross --retrain '{}' \
        --train-parts part0 part2 part3 part4 part5
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.metrics import roc_auc_score

from clipcluster.clip_cluster.pipeline import (
    load_inference_data,
    load_model,
    load_run_parts,
    load_transfer,
    part_edge_scores,
    read_prompts,
    train_model,
    variant_train_config,
)
from clipcluster.clip_cluster.score import baseline_probs, prune_and_refine
from clipcluster.config import load, merge, table4_config
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.evaluation.metrics import evaluate
from clipcluster.graph.knn import load_knn_columns
from clipcluster.io import read_meta

VARIANTS = {"cross": {"fusion": "cross"}, "average": {"fusion": "average"}, "self": {"fusion": "self"},
            "nohall": {"hallucinate": False}}  # fmt: skip


def _f(truth: np.ndarray, labels: np.ndarray) -> str:
    return f"{100 * evaluate(truth, labels)['pairwise_f']:.2f}"


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7))


def _by_pose(
    profile: np.ndarray, nbrs: np.ndarray, ok: np.ndarray, truth: np.ndarray, scores: dict[str, np.ndarray]
) -> str:
    """ROC AUC of each score over the edges grouped by the two ends' true poses: frontal-frontal, frontal-profile,
    profile-profile (where attribute hallucination should matter: the frontal-profile ones)."""
    src = np.broadcast_to(np.arange(nbrs.shape[0])[:, None], nbrs.shape)[ok]
    dst = nbrs[ok]
    same = truth[src] == truth[dst]
    n_prof = profile[src].astype(int) + profile[dst]
    on_edges = [v[ok] for v in scores.values()]  # once, not once per pose group
    cells = []
    for kind, sel in (("FF", n_prof == 0), ("FP", n_prof == 1), ("PP", n_prof == 2)):
        if same[sel].all() or not same[sel].any():
            continue
        aucs = " / ".join(f"{roc_auc_score(same[sel], v[sel]):.4f}" for v in on_edges)
        cells.append(f"{kind} ({sel.sum():,} edges) {aucs}")
    return f" | by true pose, AUC {' / '.join(scores)}: " + ", ".join(cells)


def _score(
    res: Path, parts: list[str], text: np.ndarray, model: Any, graph: tuple[np.ndarray, np.ndarray, np.ndarray],
    taus: list[float], kept: bool = False, profile: np.ndarray | None = None,
) -> str:  # fmt: skip
    nbrs, sims, truth = graph
    data = load_inference_data(
        [str(res / "faces" / f"{p}.bin") for p in parts],
        [str(res / "parts" / f"{p}.meta") for p in parts],
        [str(res / "clip" / f"{p}.bin") for p in parts],
        [str(res / "targets" / f"{p}.npz") for p in parts],
        dim=model.config["face_dim"],
    )
    probs = part_edge_scores(model, data, text, nbrs, sims)
    stats = edge_auc(nbrs, probs, sims, truth)
    ok = (nbrs >= 0) & (nbrs != np.arange(nbrs.shape[0])[:, None])  # the graph's edges (self and missing out)
    base = ""
    if model.edge.baseline is not None:
        pb = baseline_probs(model.edge.baseline, nbrs, sims)
        base_auc = edge_auc(nbrs, pb, sims, truth)["auc_model"]
        # the learned correction's mean logit over the graph's edges: how far the network moves every edge
        corr = float(np.mean(_logit(probs[ok]) - _logit(pb[ok])))
        base = f" vs its pair baseline {base_auc:.4f} (correction mean {corr:+.2f})"
    cells = [f"tau {tau}: {_f(truth, prune_and_refine(nbrs, probs, sims, tau=tau))}" for tau in taus]
    out = f"AUC {stats['auc_model']:.4f}{base} vs cosine {stats['auc_cosine']:.4f} | F_P " + ", ".join(cells)
    if profile is not None:
        scores = {"model": probs, "cosine": sims}
        if model.edge.baseline is not None:
            scores["pair baseline"] = pb
        out += _by_pose(profile, nbrs, ok, truth, scores)
    if kept:  # the edges each tau keeps, and the wrong ones among them (another identity)
        wrong = truth[np.broadcast_to(np.arange(nbrs.shape[0])[:, None], nbrs.shape)[ok]] != truth[nbrs[ok]]
        p = probs[ok]
        out += " | kept (wrong) " + ", ".join(f"tau {t}: {(p > t).sum():,} ({(wrong & (p > t)).sum():,})" for t in taus)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--subset", default="part1", help="with --table4: test")
    ap.add_argument("--table4", action="store_true", help="Table 4's run (tables.table4.dataset, its own config)")
    ap.add_argument("--models", nargs="*", default=["cross", "nohall"], help="stored models/clipcluster_<name>.pt")
    ap.add_argument("--taus", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9])
    ap.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.4, 0.5, 0.58])
    ap.add_argument("--retrain", nargs="*", default=[], metavar="JSON", help="settings merged into the config's")
    ap.add_argument("--variant", default="cross", choices=sorted(VARIANTS), help="the model --retrain trains")
    ap.add_argument("--train-parts", nargs="+", default=None, help="what --retrain trains on (default: part0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kept", action="store_true", help="also the edges each tau keeps and the wrong ones among them")
    ap.add_argument("--by-pose", action="store_true", help="also each model's AUC by the edge ends' true poses")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load(args.config)
    if args.table4:
        cfg = table4_config(cfg)
    cc, ds = cfg["methods"]["clipcluster"], cfg["datasets"][cfg["dataset"]]
    train0 = ds.get("parts", ["part0"])[0]
    res = Path(args.results)
    parts = [train0] if args.subset == train0 else cfg["subsets"][args.subset]
    knn = res / "knn" / f"{args.subset}_k{cfg['knn']['k']}.npz"
    _, text = read_prompts(res / "prompts" / "text.npz")
    k = cc["k"]
    nbrs, sims, _ = load_knn_columns(knn, k)
    truth = np.concatenate([read_meta(res / "parts" / f"{p}.meta") for p in parts])
    graph = (nbrs, sims, truth)
    profile = None
    if args.by_pose:  # the twin's true poses (photos have none: their attributes are estimates)
        poses = pd.concat([pd.read_parquet(res / "attributes" / f"{p}.parquet", columns=["true_pose"]) for p in parts])
        profile = poses["true_pose"].to_numpy() != "frontal"
    print(f"{args.subset}: kNN k = {k}, CLIP-Cluster tau / Infomap floor -> pairwise F (%)")
    for name in args.models:
        model = load_model(res / "models" / f"clipcluster_{name}.pt")
        print(f"stored {name:>8}: {_score(res, parts, text, model, graph, args.taus, args.kept, profile)}", flush=True)

    w = np.clip(sims, 0, None)
    cells = [f"floor {fl}: {_f(truth, prune_and_refine(nbrs, w, sims, tau=fl))}" for fl in args.floors]
    cells.append(f"uniform: {_f(truth, prune_and_refine(nbrs, np.ones_like(sims), sims, tau=0.5))}")
    print(f"Infomap alone, k = {k}: " + ", ".join(cells), flush=True)

    if not args.retrain:
        return
    train_parts = args.train_parts or [train0]
    data = load_run_parts(res, train_parts, dim=ds["feature_dim"])
    base = variant_train_config(cc, ds["feature_dim"], VARIANTS[args.variant])
    transfer = load_transfer(res / "models" / "B.pt") if base["model"].get("hallucinate", True) else None
    train_graph = None  # several parts: train_model builds their exact graph
    if train_parts == [train0]:
        train_graph = load_knn_columns(res / "knn" / f"{train0}_k{cfg['knn']['k']}.npz", base["baseline_fit_k"])[:2]
    for spec in args.retrain:
        tcfg = merge(copy.deepcopy(base), json.loads(spec))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as ckpt:
            model, hist = train_model(
                data, text, transfer, tcfg, checkpoint_dir=ckpt, seed=args.seed, threads=args.threads, device="cpu",
                train_graph=train_graph,
            )  # fmt: skip
        secs = time.perf_counter() - t0
        loss = hist[-1]["losses"]["cross"]
        score = _score(res, parts, text, model, graph, args.taus, args.kept)
        on = "+".join(train_parts)
        print(f"retrained {args.variant} on {on} {spec} ({secs:.0f} s, cross loss {loss:.3f}): {score}", flush=True)


if __name__ == "__main__":
    main()
