"""Benchmark: exact vs IVF kNN (seconds, recall) and Infomap on the resulting graph, on MS1M-like vectors.

Synthetic identities stand in for MS1M part1 (584K faces, ~68 per identity, 256-d, L2-normalised): long-tailed
identity sizes, identity centres grouped into "look-alike" families so that other identities sit at cosine
~0.3-0.4 (the hard tail of a k=80 list), same-identity cosine ~0.55 on average. Not the twin generator
(clipcluster.twin.generate), so this file runs on its own; it measures speed and recall, not clustering quality claims.

    python benchmarks/bench_knn.py                       # 200K, k=80 and 50 (a few minutes on 2 cores)
    python benchmarks/bench_knn.py --sizes 200000 584000 --json benchmarks/out/knn.json

Exact search runs in full up to ``--exact-full-max`` rows; above, its time is extrapolated from a timed sample of
queries (exact cost is linear in the number of queries) and marked ``estimated``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from clipcluster.graph.infomap_cluster import DEFAULT_SIM_FLOOR, cluster_knn_infomap
from clipcluster.graph.knn import _exact_searcher, build_knn, measure_recall, set_threads


def ms1m_like(n: int, dim: int = 256, mean_size: float = 68.0, intra: float = 0.55, seed: int = 0):
    """N x dim unit vectors in identity clusters; returns (features, identity labels)."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, rng.lognormal(np.log(mean_size) - 0.5, 1.0, size=max(16, 2 * n // int(mean_size))))
    sizes = sizes.astype(np.int64)
    m = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    labels = np.repeat(np.arange(m), sizes[:m])[:n]
    families = rng.standard_normal((64, dim)).astype(np.float32)
    families /= np.linalg.norm(families, axis=1, keepdims=True)
    centres = rng.standard_normal((m, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres += 0.6 * families[rng.integers(0, len(families), m)]
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = np.sqrt(1.0 / intra - 1.0) / np.sqrt(dim)  # cos(x, centre)^2 ~ intra, so same-identity cos ~ intra
    feats = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, 1 << 17):
        b = min(n, a + (1 << 17))
        block = centres[labels[a:b]] + noise * rng.standard_normal((b - a, dim), dtype=np.float32)
        feats[a:b] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return feats, labels


def pairwise_f(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F (learn-to-cluster definition), from the contingency table."""
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    joint = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)[1].astype(np.float64)
    tp = (joint * (joint - 1)).sum()
    pp = (lambda c: (c * (c - 1)).sum())(np.bincount(p).astype(np.float64))
    tt = (lambda c: (c * (c - 1)).sum())(np.bincount(t).astype(np.float64))
    prec, rec = tp / max(pp, 1), tp / max(tt, 1)
    return prec, rec, 2 * prec * rec / max(prec + rec, 1e-12)


def time_exact(feats: np.ndarray, k: int, full_max: int, sample: int, progress: bool) -> dict:
    n = feats.shape[0]
    if n <= full_max:
        t = time.perf_counter()
        build_knn(feats, k, index="exact", progress=progress)
        return {"seconds": round(time.perf_counter() - t, 1), "estimated": False}
    rows = np.sort(np.random.default_rng(1).choice(n, size=sample, replace=False))
    search = _exact_searcher(feats, gpu=False)
    t = time.perf_counter()
    for a in range(0, sample, 16_384):
        search(feats[rows[a : a + 16_384]], k + 1)
    return {"seconds": round((time.perf_counter() - t) * n / sample, 1), "estimated": True}


def faiss_knn_qps(feats: np.ndarray, k: int, sample: int) -> tuple[float, float]:
    """Queries per second of faiss.knn (the former exact back end) and of ours, the same sampled queries each."""
    rows = np.sort(np.random.default_rng(2).choice(feats.shape[0], size=min(sample, feats.shape[0]), replace=False))
    q = feats[rows]
    t = time.perf_counter()
    ref = faiss.knn(q, feats, k + 1, metric=faiss.METRIC_INNER_PRODUCT)[1]
    t_faiss = time.perf_counter() - t
    t = time.perf_counter()
    ours = _exact_searcher(feats, gpu=False)(q, k + 1)[1]
    t_ours = time.perf_counter() - t
    agree = np.mean([len(np.intersect1d(a, b)) / (k + 1) for a, b in zip(ref, ours, strict=True)])
    if agree < 0.999:
        raise SystemExit(f"exact back ends disagree: {agree:.4f} of the neighbour lists shared")
    return len(rows) / t_faiss, len(rows) / t_ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000])
    ap.add_argument("--ks", type=int, nargs="+", default=[80, 50])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[None], help="IVF nprobe values to sweep")
    ap.add_argument("--exact-full-max", type=int, default=200_000, help="run exact in full up to this N")
    ap.add_argument("--exact-sample", type=int, default=16_384, help="queries timed to extrapolate exact above it")
    ap.add_argument("--no-exact", action="store_true")
    ap.add_argument("--recall-queries", type=int, default=2000)
    ap.add_argument("--infomap-k", type=int, default=50, help="k of the graph Infomap runs on (0: skip)")
    ap.add_argument("--sim-floor", type=float, default=DEFAULT_SIM_FLOOR)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    set_threads(args.threads)
    rows = []
    env = {"machine": platform.machine(), "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__}
    print(f"# {env}")
    for n in args.sizes:
        t = time.perf_counter()
        feats, truth = ms1m_like(n, args.dim)
        print(f"\nN={n} dim={args.dim} identities={truth.max() + 1} (generated in {time.perf_counter() - t:.1f}s)")
        for k in args.ks:
            if not args.no_exact:
                ex = time_exact(feats, k, args.exact_full_max, args.exact_sample, args.progress)
                tag = " (extrapolated)" if ex["estimated"] else ""
                print(f"  k={k:3d} exact        {ex['seconds']:8.1f}s{tag}")
                qps_faiss, qps_ours = faiss_knn_qps(feats, k, args.exact_sample)
                print(f"  k={k:3d} exact queries/s: torch mm + topk {qps_ours:.0f}, faiss.knn {qps_faiss:.0f}")
                ex.update(qps_torch=round(qps_ours), qps_faiss_knn=round(qps_faiss))
                rows.append({"n": n, "k": k, "index": "exact", "recall": 1.0, **ex})
            for nprobe in args.nprobe:
                g = build_knn(feats, k, index="ivf", nprobe=nprobe, progress=args.progress)
                rec = measure_recall(feats, g, n_queries=args.recall_queries)
                info = g.info
                print(
                    f"  k={k:3d} ivf nlist={info['nlist']} nprobe={info['nprobe']:3d} {info['seconds']:8.1f}s"
                    f"  recall={rec:.4f}  missing={info['missing']}"
                )
                rows.append({"n": n, "k": k, **info, "recall": round(rec, 5), "estimated": False})
                if k == args.infomap_k and nprobe == args.nprobe[0]:
                    stats: dict = {}
                    labels = cluster_knn_infomap(g.nbrs, g.sims, sim_floor=args.sim_floor, stats=stats)
                    p, r, f = pairwise_f(truth, labels)
                    print(
                        f"  infomap k={k} floor={args.sim_floor}: edges {stats['edge_seconds']:.1f}s, "
                        f"network {stats['build_seconds']:.1f}s, run {stats['run_seconds']:.1f}s; "
                        f"{stats['links']} links, {stats['clusters']} clusters, pairwise P/R/F "
                        f"{100 * p:.2f}/{100 * r:.2f}/{100 * f:.2f}"
                    )
                    rows.append({"n": n, "k": k, "index": "infomap", **stats, "pairwise_f": round(f, 5)})
                del g
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
