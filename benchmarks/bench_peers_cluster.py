"""Benchmark the peers' training-free clustering stages (MHC: P, NDDe, TPDi, DPC; FaceT: threshold + union-find).

Raw cosine similarities stand in for the learned per-edge scores (MHC's similarity MLP, FaceT's Linkage
Predictor), so the F-scores printed here are sanity checks of the clustering machinery, not the peers' results.

Two inputs:

- a synthetic kNN-like graph of ``--n`` nodes (default 584,000, MS1M part1's size) with ``--k`` = 80 neighbours:
  identities of log-normal sizes (~68 faces each); each node lists its ``k`` most similar members of its own
  identity (all of them in identities of at most ``k + 1``) and fills the rest with random other nodes, and the
  similarity of every listed pair is the exact cosine of synthetic features (identity centre plus noise of a
  per-identity scale). Not a true kNN graph (that takes hours to
  build at this size on 2 cores) and easier than real faces (cross-identity cosines are ~0), but it has MS1M
  part1's size, degree and cluster sizes, which is what the timings depend on.
- an MS1M twin part (``clipcluster.twin.generate``; default: preset ``small``, part 1, ~14.7K samples) with its exact
  80-NN graph (``clipcluster.graph.knn.build_knn(..., index="exact")``).

    python benchmarks/bench_peers_cluster.py                      # both inputs, N = 584,000
    python benchmarks/bench_peers_cluster.py --n 100000 --skip-twin --json benchmarks/out/peers.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clipcluster.atomic import write_json  # noqa: E402
from clipcluster.evaluation.metrics import evaluate  # noqa: E402
from clipcluster.graph.knn import build_knn  # noqa: E402
from clipcluster.peers import (  # noqa: E402
    FACET_TAU,
    MHC_EPS,
    MHC_MAX_ITER,
    MHC_TAU,
    density_peak_clustering,
    facet_cluster,
    ndde,
    tpdi,
    transition_matrix,
)
from clipcluster.twin.generate import generate_part, twin_params  # noqa: E402

DIM = 256


def synthetic_graph(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nbrs, sims, labels)``: the kNN-like graph described in the module docstring, rows sorted by similarity."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, round(n / 68))
    sizes = rng.lognormal(mean=np.log(45.0), sigma=0.9, size=n_ids)
    sizes = np.maximum(2, np.round(sizes / sizes.sum() * n)).astype(np.int64)
    sizes[np.argmax(sizes)] += n - sizes.sum()
    labels = np.repeat(np.arange(n_ids, dtype=np.int64), sizes)
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    size = sizes[labels]
    pos = np.arange(n, dtype=np.int64) - start
    # features: unit identity centre + isotropic noise whose scale varies by identity (sparse and tight clusters)
    centres = rng.standard_normal((n_ids, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.uniform(0.6, 1.1, n_ids).astype(np.float32)[labels, None] / np.sqrt(DIM, dtype=np.float32)
    feats = centres[labels]
    feats += rng.standard_normal((n, DIM), dtype=np.float32) * noise
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    # neighbours: every other member of the identity when it has at most k + 1 members, else its k nearest
    # members by cosine; the remaining slots take a random run of other nodes (distinct, never own identity)
    r = np.arange(1, k + 1, dtype=np.int64)[None, :]
    own = r <= (size - 1)[:, None]
    run_start = (rng.random(n) * (n - size - k + 1)).astype(np.int64)
    fill = run_start[:, None] + r - size[:, None]
    fill += np.where(fill >= start[:, None], size[:, None], 0)
    nbrs = np.where(own, start[:, None] + (pos[:, None] + r) % size[:, None], fill)
    for ident in np.flatnonzero(sizes > k + 1):
        lo = int(start[np.searchsorted(labels, ident)])
        blk = feats[lo : lo + sizes[ident]]
        gram = blk @ blk.T
        np.fill_diagonal(gram, -np.inf)
        nbrs[lo : lo + sizes[ident]] = lo + np.argpartition(-gram, k - 1, axis=1)[:, :k]
    sims = np.empty((n, k), dtype=np.float32)
    step = 8192
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        sims[lo:hi] = np.einsum("bd,bkd->bk", feats[lo:hi], feats[nbrs[lo:hi]])
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(nbrs, order, 1), np.take_along_axis(sims, order, 1), labels


def _scores(gt: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    e = evaluate(gt, pred)
    keys = ("pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_f", "n_pred_clusters")
    return {key: (round(e[key], 4) if isinstance(e[key], float) else e[key]) for key in keys}


def run_one(
    name: str,
    nbrs: np.ndarray,
    sims: np.ndarray,
    labels: np.ndarray,
    mhc_taus: list[float],
    facet_taus: list[float],
    max_iter: int,
) -> dict[str, Any]:
    """Time MHC's four stages once and DPC / FaceT at each threshold; score each against ``labels``."""
    n, k = nbrs.shape
    print(f"\n== {name}: N={n:,} k={k} identities={len(np.unique(labels)):,}")
    out: dict[str, Any] = {"name": name, "n": int(n), "k": int(k), "n_ids": int(len(np.unique(labels)))}
    t0 = time.perf_counter()
    trans = transition_matrix(nbrs, sims, k=k)
    t1 = time.perf_counter()
    density, iterations, converged = ndde(trans, eps=MHC_EPS, max_iter=max_iter)
    t2 = time.perf_counter()
    dist = tpdi(trans, nbrs)
    t3 = time.perf_counter()
    out["mhc"] = {
        "transition_s": round(t1 - t0, 2),
        "ndde_s": round(t2 - t1, 2),
        "ndde_iterations": iterations,
        "ndde_converged": converged,
        "ndde_s_per_iteration": round((t2 - t1) / iterations, 4),
        "tpdi_s": round(t3 - t2, 2),
        "dpc": [],
    }
    print(
        f"MHC  P {t1 - t0:.1f}s | NDDe {t2 - t1:.1f}s, {iterations} iterations (eps {MHC_EPS}, "
        f"converged {converged}) | TPDi {t3 - t2:.1f}s"
    )
    for tau in mhc_taus:
        t = time.perf_counter()
        pred, _ = density_peak_clustering(nbrs, density, dist, tau=tau)
        secs = time.perf_counter() - t
        row = {"tau": tau, "dpc_s": round(secs, 2), "total_s": round(t3 - t0 + secs, 2), **_scores(labels, pred)}
        out["mhc"]["dpc"].append(row)
        print(
            f"MHC  tau={tau:.2f} DPC {secs:.1f}s total {row['total_s']:.1f}s  pairwise P/R/F "
            f"{row['pairwise_precision']:.4f}/{row['pairwise_recall']:.4f}/{row['pairwise_f']:.4f}  "
            f"BCubed F {row['bcubed_f']:.4f}  clusters {row['n_pred_clusters']:,}"
        )
    out["facet"] = []
    for tau in facet_taus:
        t = time.perf_counter()
        pred = facet_cluster(nbrs, sims, tau=tau)
        secs = time.perf_counter() - t
        row = {"tau": tau, "seconds": round(secs, 2), **_scores(labels, pred)}
        out["facet"].append(row)
        print(
            f"FaceT tau={tau:.2f} {secs:.1f}s  pairwise P/R/F {row['pairwise_precision']:.4f}/"
            f"{row['pairwise_recall']:.4f}/{row['pairwise_f']:.4f}  BCubed F {row['bcubed_f']:.4f}  "
            f"clusters {row['n_pred_clusters']:,}"
        )
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the selected inputs, print (and optionally save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=584_000, help="synthetic graph nodes (MS1M part1: 584K)")
    ap.add_argument("--k", type=int, default=80, help="neighbours per node (MHC's K = 80)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--twin-preset", default="small")
    ap.add_argument("--twin-part", type=int, default=1)
    ap.add_argument("--mhc-taus", default=f"0.5,0.6,{MHC_TAU},0.8,0.9", help="DPC thresholds (paper: 0.7)")
    ap.add_argument("--facet-taus", default=f"{FACET_TAU},0.6,0.65,0.7,0.75", help="link thresholds")
    ap.add_argument("--max-iter", type=int, default=MHC_MAX_ITER, help="NDDe iteration guard")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-twin", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, nproc={len(os.sched_getaffinity(0))}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print("raw cosine similarities stand in for the learned scores: sanity checks, not the peers' results")
    mhc_taus, facet_taus = _floats(args.mhc_taus), _floats(args.facet_taus)
    results: dict[str, Any] = {"args": {key: str(val) for key, val in vars(args).items()}, "runs": []}
    if not args.skip_twin:
        t = time.perf_counter()
        part = generate_part(twin_params(args.twin_preset, seed=args.seed), args.twin_part)
        graph = build_knn(part.face, args.k, index="exact", progress=False)
        print(
            f"\ntwin {args.twin_preset} part {args.twin_part}: generated + exact kNN in {time.perf_counter() - t:.1f}s"
        )
        name = f"twin-{args.twin_preset}-part{args.twin_part}"
        results["runs"].append(run_one(name, graph.nbrs, graph.sims, part.labels, mhc_taus, facet_taus, args.max_iter))
    if not args.skip_synthetic:
        t = time.perf_counter()
        nbrs, sims, labels = synthetic_graph(args.n, args.k, args.seed)
        print(f"\nsynthetic graph built in {time.perf_counter() - t:.1f}s")
        results["runs"].append(run_one("synthetic", nbrs, sims, labels, mhc_taus, facet_taus, args.max_iter))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
