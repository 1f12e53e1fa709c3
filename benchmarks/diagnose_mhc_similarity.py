"""Diagnose MHC on a part of a finished run: its learned similarity vs the raw cosine it replaces.

Prints the ROC AUC of "same identity" for MHC's learned similarities of each anchor to its K neighbours and for
the kNN graph's cosine similarities, then MHC's clustering (transition matrix, NDDe, TPDi, density peaks at tau)
run once on the learned similarities (what the workflow does) and once on the cosines (clipped to [0, 1]), each
scored by pairwise precision / recall / F. Reads ``models/mhc.pt``, the part's ``.bin``/``.meta`` and its cached
kNN graph.

    python benchmarks/diagnose_mhc_similarity.py --results results/twin --part part1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from clipcluster.evaluation.metrics import evaluate
from clipcluster.io import load_parts
from clipcluster.peers.mhc_cluster import mhc_cluster
from clipcluster.peers.pipeline import load_peer_model, mhc_similarities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--part", default="part1")
    ap.add_argument("--knn-k", type=int, default=80, help="k of the cached graph knn/<part>_k<k>.npz")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = a.results
    feats, labels = load_parts([f"{r}/faces/{a.part}.bin"], [f"{r}/parts/{a.part}.meta"], a.dim)
    with np.load(f"{r}/knn/{a.part}_k{a.knn_k}.npz") as z:
        nbrs, sims = z["nbrs"], z["sims"]
    model = load_peer_model(f"{r}/models/mhc.pt")
    k, tau, eps = model.config["k"], float(model.config["tau"]), float(model.config["eps"])
    learned = mhc_similarities(model, feats, nbrs)
    cand = nbrs[:, :k]
    valid = cand >= 0
    same = labels[np.where(valid, cand, 0)] == labels[:, None]
    cos = sims[:, :k]
    print(f"{a.part}: {feats.shape[0]} samples, K {k}, same-identity share of neighbours {same[valid].mean():.3f}")
    print(f"ROC AUC of same identity: learned {roc_auc_score(same[valid], learned[valid]):.4f}, "
          f"raw cosine {roc_auc_score(same[valid], cos[valid]):.4f}")  # fmt: skip
    for name, s in (("learned similarity", learned), ("raw cosine", np.clip(cos, 0.0, 1.0))):
        res = mhc_cluster(cand, s.astype(np.float32), k=None, tau=tau, eps=eps)
        m = evaluate(labels, res.labels)
        print(f"MHC clustering on {name}: pairwise P {100 * m['pairwise_precision']:.2f} "
              f"R {100 * m['pairwise_recall']:.2f} F {100 * m['pairwise_f']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
