"""Why FaceT collapses on the twin: how well its trained linkage predictor separates same- from other-identity
candidates, on the training part and on a test part, at several thresholds tau.

Reads a finished run's files (the trained ``models/facet.pt``, the parts' ``.bin``/``.meta`` and, for test parts,
the cached kNN graph; the training part's graph is rebuilt exactly) and prints, per tau: the share of candidate
links kept, the false links (different identities), the missed links (same identity), and FaceT's clustering
(union-find) scored by pairwise F; and the ROC AUC of the linkage probabilities against "same identity", next to
the AUC of the raw cosine similarities FaceT starts from.

``--rotate SEED`` multiplies the features by a random orthogonal matrix first. Every pairwise similarity, hence
the kNN graph, is unchanged, so a model that judges pairs by their relation scores the rotated part as the
original; a model that has memorised absolute feature directions (the training identities) does not. On the
default twin's training part the stored model's AUC drops from 0.986 to 0.659 under rotation.

    python benchmarks/diagnose_facet_links.py --results results/twin --part part1
    python benchmarks/diagnose_facet_links.py --results results/twin --part part0
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from clipcluster.evaluation.metrics import evaluate
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import build_knn, load_knn
from clipcluster.io import load_parts
from clipcluster.peers.facet_cluster import facet_cluster
from clipcluster.peers.pipeline import facet_link_probs, load_peer_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--part", default="part1", help="a part (part0 = training; test parts need knn/<part>_k<k>.npz)")
    ap.add_argument("--k", type=int, default=80, help="the cached graph's k (config knn.k)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--taus", type=float, nargs="+", default=[0.5, 0.9, 0.99, 0.999, 0.9999])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rotate", type=int, default=None, metavar="SEED", help="rotate the features (see above)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = a.results
    feats, labels = load_parts([f"{r}/faces/{a.part}.bin"], [f"{r}/parts/{a.part}.meta"], a.dim)
    feats = l2_normalize(feats, where=a.part)
    if a.rotate is not None:  # the kNN graph (built or cached) is the same: rotation keeps every similarity
        q, _ = np.linalg.qr(np.random.default_rng(a.rotate).standard_normal((feats.shape[1], feats.shape[1])))
        feats = (feats @ q).astype(np.float32)
    if a.part == "part0":  # no cached graph for the training part: build it as FaceT's training does (exact)
        nbrs = build_knn(feats, a.k, index="exact", threads=a.threads).nbrs
    else:
        nbrs = load_knn(f"{r}/knn/{a.part}_k{a.k}.npz").nbrs
    probs = facet_link_probs(load_peer_model(f"{r}/models/facet.pt"), feats, nbrs)
    hop1 = probs.shape[1]
    cand = nbrs[:, :hop1]
    same = labels[cand] == labels[:, None]
    cos = np.einsum("nd,nkd->nk", feats, feats[cand])
    print(f"{a.part}: {feats.shape[0]} samples, hop1 {hop1}, same-identity share of candidates {same.mean():.3f}, "
          f"other-identity candidates {int((~same).sum())}")  # fmt: skip
    print(f"ROC AUC of same identity: FaceT's p {roc_auc_score(same.ravel(), probs.ravel()):.4f}, "
          f"raw cosine {roc_auc_score(same.ravel(), cos.ravel()):.4f}")  # fmt: skip
    for tau in a.taus:
        link = probs > tau
        m = evaluate(labels, facet_cluster(cand, probs, tau=tau))
        print(f"tau {tau}: links kept {link.mean():.3f}, false links {int((link & ~same).sum())}, "
              f"missed {int((~link & same).sum())}, F_P {100 * m['pairwise_f']:.2f} "
              f"(P {100 * m['pairwise_precision']:.2f}, R {100 * m['pairwise_recall']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
