"""How well simple pair features rank a test part's kNN edges, fit on the training part: the learned models' floor.

For each finished run given, on its kNN graphs (``knn/<part>_k80.npz``, the first ``--k`` columns):

1. the cosine alone;
2. the pair baseline under the learned models (:mod:`clipcluster.training.pair_baseline`): logistic regression on
   the cosine and the two ends' local densities, fit on the training part's edges;
3. a wider logistic regression that adds kNN structure (the ranks of each end in the other's list and the share of
   shared neighbours), to show what is left for a model that reads the graph;

each as the test subset's edge ROC AUC, and (2) also as pairwise F of prune-at-tau + Infomap on its probabilities,
CLIP-Cluster's inference tail without the network, with tau chosen on the training part's own graph (best F over
``--taus``, as the workflow chooses CLIP-Cluster's). Nothing is tuned on a test subset: the weights and tau come from
the training part alone. ``--test part1-9`` reads the subset's cached graph and the metas of part1 ... part9.

    python benchmarks/pair_baseline_auc.py results/twin results/twin_seed1 results/twin_seed2
    python benchmarks/pair_baseline_auc.py results/twin --test part1 part1-3 part1-5 part1-7 part1-9
    python benchmarks/pair_baseline_auc.py results/twin results/twin_seed1 results/twin_seed2 --attributes

``--wide-infomap`` also feeds the wider regression to Infomap (tau chosen on the training part, as the baseline's).
``--attributes`` adds two regressions that also read the estimated attributes the pipeline sees (whether the two
ends' estimated genders differ; their estimated age gap): what an attribute-aware correction could gain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from clipcluster.clip_cluster.score import prune_and_refine
from clipcluster.evaluation.metrics import evaluate
from clipcluster.graph.knn import load_knn_columns
from clipcluster.io import read_meta
from clipcluster.training.pair_baseline import PairBaseline, local_density


def _edges(res: Path, part: str, k: int, k_local: int, attributes: bool = False) -> dict[str, np.ndarray]:
    nbrs, sims, _ = load_knn_columns(res / "knn" / f"{part}_k80.npz", k)
    parts = [part]
    if "-" in part:  # a subset: part1-9 = part1 ... part9
        a, b = (int(x) for x in part.removeprefix("part").split("-"))
        parts = [f"part{i}" for i in range(a, b + 1)]
    y = np.concatenate([read_meta(res / "parts" / f"{p}.meta") for p in parts])
    n = y.size
    ok = (nbrs >= 0) & (nbrs != np.arange(n)[:, None])
    src = np.broadcast_to(np.arange(n)[:, None], nbrs.shape)[ok]
    dst, cos = nbrs[ok], sims[ok]
    r = local_density(nbrs, sims, k_local)
    # rank of dst in src's list (its column) and of src in dst's list (k when absent), shared neighbours
    col = np.broadcast_to(np.arange(k)[None, :], nbrs.shape)[ok]
    key = np.sort(src.astype(np.int64) * n + dst)
    order = np.argsort(src.astype(np.int64) * n + dst, kind="stable")
    rev = dst.astype(np.int64) * n + src
    at = np.clip(np.searchsorted(key, rev), 0, key.size - 1)
    rrank = np.where(key[at] == rev, col[order][at], k)
    shared = np.empty(src.size, dtype=np.float32)
    for s in range(0, src.size, 200_000):
        a, b = nbrs[src[s : s + 200_000]], nbrs[dst[s : s + 200_000]]
        both = np.sort(np.concatenate([a, b], axis=1), axis=1)
        shared[s : s + 200_000] = ((both[:, 1:] == both[:, :-1]) & (both[:, 1:] >= 0)).sum(1) / k
    wide = np.stack([cos, r[src] + r[dst], np.abs(r[src] - r[dst]), col / k, rrank / k, shared], axis=1)
    out = {"nbrs": nbrs, "sims": sims, "y": y, "same": y[src] == y[dst], "cos": cos, "dens": r[src] + r[dst],
           "wide": wide, "ok": ok, "r": r}  # fmt: skip
    if attributes:  # the estimated attributes the pipeline sees (attributes/<part>.parquet), not the true ones
        t = pd.concat([pd.read_parquet(res / "attributes" / f"{p}.parquet", columns=["gender", "age"]) for p in parts])
        if len(t) != n:
            raise SystemExit(f"{res}/attributes: {len(t)} rows for {n} faces of {part}")
        male, age = (t["gender"] == "male").to_numpy(), t["age"].to_numpy(np.float64)
        out["gender"] = np.stack([cos, out["dens"], male[src] != male[dst]], axis=1)
        out["age"] = np.stack([cos, out["dens"], np.abs(age[src] - age[dst]) / 30], axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="finished runs' results/<dataset> folders")
    ap.add_argument("--train", default="part0")
    ap.add_argument("--test", nargs="+", default=["part1"], help="test parts or subsets (part1-9)")
    ap.add_argument("--taus", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98])
    ap.add_argument("--k", type=int, default=50, help="kNN columns (CLIP-Cluster's inference k)")
    ap.add_argument("--k-local", type=int, default=10, help="neighbours behind a local density")
    ap.add_argument("--attributes", action="store_true", help="also the baseline + estimated gender / age columns")
    ap.add_argument("--wide-infomap", action="store_true", help="also Infomap on the + kNN structure regression")
    args = ap.parse_args()
    cols = ["cosine AUC", "pair baseline AUC", "+ kNN structure AUC", "Infomap on baseline, F_P (tau)",
            "Infomap on cosine floor 0.58, F_P"]  # fmt: skip
    extra = ["gender", "age"] if args.attributes else []
    cols += [f"+ estimated {a} AUC" for a in extra]
    if args.wide_infomap:
        cols.append("Infomap on + kNN structure, F_P (tau)")
    print("| run | subset | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for res in args.results:
        tr = _edges(res, args.train, args.k, args.k_local, args.attributes)
        base = PairBaseline(args.k_local)
        base.fit(tr["cos"], tr["dens"], tr["same"])
        wide = LogisticRegression(C=100.0, max_iter=2000).fit(tr["wide"], tr["same"])
        fits = {a: LogisticRegression(C=100.0, max_iter=1000).fit(tr[a], tr["same"]) for a in extra}
        f_train = [_infomap_f(tr, base, tau) for tau in args.taus]
        tau = args.taus[int(np.argmax(f_train))]  # chosen on the training part
        if args.wide_infomap:
            tau_wide = args.taus[int(np.argmax([_infomap_f(tr, wide, t) for t in args.taus]))]
        for test in args.test:
            te = _edges(res, test, args.k, args.k_local, args.attributes)
            z = base.logits_np(te["cos"], te["dens"], np.zeros_like(te["dens"]))
            w = np.clip(te["sims"], 0, None)
            f_cos = evaluate(te["y"], prune_and_refine(te["nbrs"], w, te["sims"], tau=0.58))["pairwise_f"]
            cells = [f"{roc_auc_score(te['same'], te['cos']):.4f}", f"{roc_auc_score(te['same'], z):.4f}",
                     f"{roc_auc_score(te['same'], wide.decision_function(te['wide'])):.4f}",
                     f"{100 * _infomap_f(te, base, tau):.2f} ({tau})", f"{100 * f_cos:.2f}"]  # fmt: skip
            cells += [f"{roc_auc_score(te['same'], fits[a].decision_function(te[a])):.4f}" for a in extra]
            if args.wide_infomap:
                cells.append(f"{100 * _infomap_f(te, wide, tau_wide):.2f} ({tau_wide})")
            print(f"| {res} | {test} | " + " | ".join(cells) + " |")
            sys.stdout.flush()


def _infomap_f(e: dict[str, np.ndarray], base: PairBaseline | LogisticRegression, tau: float) -> float:
    """Pairwise F of prune-at-tau + Infomap on the baseline's (or the wider regression's) probabilities over a
    graph's edges."""
    if isinstance(base, PairBaseline):
        z = base.logits_np(e["cos"], e["dens"], np.zeros_like(e["dens"]))
    else:
        z = base.decision_function(e["wide"])
    probs = np.zeros(e["nbrs"].shape, dtype=np.float32)
    probs[e["ok"]] = 1.0 / (1.0 + np.exp(-z))
    return float(evaluate(e["y"], prune_and_refine(e["nbrs"], probs, e["sims"], tau=tau))["pairwise_f"])


if __name__ == "__main__":
    main()
