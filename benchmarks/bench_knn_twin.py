"""Benchmark: approximate kNN back ends on the twin's own vectors (time including build, recall against exact).

One part of the MS1M twin (default: the ``ms1m`` preset's part1, 8,573 identities, ~584K x 256) is generated (or
read from ``--cache``), the exact top-k of a seeded sample of queries is computed as ground truth (with a summary
of how crowded the lists' tails are), and each candidate is measured on the same vectors:

``ivf``
    the pipeline's ``IndexIVFFlat`` (inner product; k-means on ``train_per_list`` points per cell, then add),
    searched with each ``nprobe``. Recall is read on the ground-truth queries; the search
    time of all N queries is extrapolated from ``--time-queries`` timed ones (marked ``est``).
``hnsw``
    faiss ``IndexHNSWFlat`` (``M``, ``efConstruction``), searched with each ``efSearch``; same timing as ivf.
``nndescent``
    faiss ``IndexNNDescentFlat``: the kNN graph itself is what NN-descent builds, so its time is the build.
``factory``
    any faiss ``index_factory`` string, e.g. ``IVF1024,PQ64x4fsr,RFlat`` (4-bit PQ fast scan whose top
    ``k_factor_rf * k`` are re-ranked exactly), trained on a seeded sample; same timing as ivf.

    python benchmarks/bench_knn_twin.py --cache benchmarks/out/twin_ms1m_part1.npz --methods ivf   # 584K part1
    python benchmarks/bench_knn_twin.py --ids 1500 --methods hnsw nndescent                       # ~106K, quick
    python benchmarks/bench_knn_twin.py --methods --full ivfpq ivf:nprobe=64                       # full graphs

``--full`` runs ``build_knn`` itself over all N rows for each named setting and reports its measured seconds
and ``measure_recall`` (the pipeline's own recall check).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipcluster.atomic import atomic_path  # noqa: E402
from clipcluster.graph.knn import (  # noqa: E402
    _build_ivf,
    _drop_self,
    _seeded_sample,
    build_knn,
    default_nlist,
    exact_neighbours,
    measure_recall,
    recall_against,
    set_threads,
)
from clipcluster.twin.generate import generate_part, twin_params  # noqa: E402

TAIL = 20  # ranks past k whose similarity the tail summary reports


def twin_vectors(
    preset: str, parts: list[int], seed: int, ids: int | None, cache: Path | None
) -> tuple[np.ndarray, ...]:
    """Twin parts' face features (N x 256 float32, unit rows; several parts concatenated in order, as a subset
    such as part1-3) and identity labels; cached as .npz."""
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            return z["face"], z["labels"]
    params = twin_params(preset, seed, {"ids_per_part": ids} if ids else None)
    t = time.perf_counter()
    faces, labs = [], []
    for part in parts:  # keep only the faces and labels of each part: part1-9 is 5.3 GB of faces alone
        got = generate_part(params, part)
        faces.append(np.asarray(got.face, dtype=np.float32))
        labs.append(got.labels)
        del got
    feats = np.concatenate(faces)
    del faces
    labels = np.concatenate(labs)
    name = "+".join(f"part{p}" for p in parts)
    print(f"# generated {preset} {name} ({feats.shape[0]} x {feats.shape[1]}) in {time.perf_counter() - t:.1f}s")
    if cache is not None:
        with atomic_path(cache) as tmp:
            np.savez(tmp, face=feats, labels=labels)
    return feats, labels


def tail_summary(labels: np.ndarray, rows: np.ndarray, ids: np.ndarray, sims: np.ndarray, k: int) -> dict:
    """How crowded the end of a k-NN list is: median similarity at ranks 1, k/2, k and k + TAIL, and the share of
    rank-k neighbours from the query's own identity."""
    ranks = (1, k // 2, k, k + TAIL)
    out = {f"median_sim_rank{r}": round(float(np.median(sims[:, r - 1])), 4) for r in ranks}
    out[f"same_identity_rank{k}"] = round(float((labels[ids[:, k - 1]] == labels[rows]).mean()), 3)
    return out


def _timed_search(index: Any, feats: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    dist, ids = index.search(feats[rows], k + 1)
    secs = time.perf_counter() - t
    return _drop_self(np.asarray(ids, dtype=np.int64), np.asarray(dist, dtype=np.float32), rows, k)[0], secs


def _sweep(index: Any, feats, k, truth_rows, truth, time_rows, settings, build: float, row: dict) -> list[dict]:
    """Search with each ``(set_up, fields)`` in ``settings``: ``set_up(index)`` applies one setting; a row per
    setting with ``row``, ``fields``, the build, the extrapolated search and recall on the ground-truth queries."""
    rows = []
    for set_up, fields in settings:
        set_up(index)
        found, _ = _timed_search(index, feats, truth_rows, k)
        _, secs = _timed_search(index, feats, time_rows, k)
        search = secs * feats.shape[0] / len(time_rows)
        rec = round(recall_against(found, truth), 4)
        rows.append({**row, **fields, "build_s": round(build, 1), "search_s_est": round(search, 1),
                     "total_s_est": round(build + search, 1), "recall": rec})  # fmt: skip
        print(_fmt(rows[-1]), flush=True)
    return rows


def bench_ivf(feats, k, truth_rows, truth, time_rows, nlist, nprobes, train_per_list, seed) -> list[dict]:
    """The pipeline's IVF-flat index (``clipcluster.graph.knn``'s build: its log gives the k-means time)."""
    nlist = nlist or default_nlist(feats.shape[0])
    t = time.perf_counter()
    index = _build_ivf(feats, nlist, 1, seed, train_per_list, gpu=False, progress=False)
    build = time.perf_counter() - t
    settings = [(lambda ix, p=p: setattr(ix, "nprobe", p), {"nprobe": p}) for p in nprobes]
    row = {"method": "ivf", "nlist": nlist, "train_per_list": train_per_list}
    return _sweep(index, feats, k, truth_rows, truth, time_rows, settings, build, row)


def bench_hnsw(feats, k, truth_rows, truth, time_rows, m, ef_construction, ef_searches) -> list[dict]:
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(feats.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(feats)
    build = time.perf_counter() - t
    efs = [max(ef, k + 1) for ef in ef_searches]
    settings = [(lambda ix, ef=ef: setattr(ix.hnsw, "efSearch", ef), {"efSearch": ef}) for ef in efs]
    row = {"method": "hnsw", "M": m, "efConstruction": ef_construction}
    return _sweep(index, feats, k, truth_rows, truth, time_rows, settings, build, row)


def bench_nndescent(feats, k, truth_rows, truth, big_k, iters, s, r, seed) -> list[dict]:
    n, d = feats.shape
    t = time.perf_counter()
    index = faiss.IndexNNDescentFlat(d, big_k, faiss.METRIC_INNER_PRODUCT)
    index.nndescent.S, index.nndescent.R, index.nndescent.iter = s, r, iters
    index.nndescent.L = big_k + 50
    index.nndescent.random_seed = seed
    index.add(feats)
    build = time.perf_counter() - t
    graph = faiss.vector_to_array(index.nndescent.final_graph).reshape(n, big_k)
    rec = round(recall_against(graph[truth_rows, :k], truth), 4)
    row = {"method": "nndescent", "K": big_k, "iter": iters, "S": s, "R": r, "build_s": round(build, 1),
           "total_s_est": round(build, 1), "recall": rec}  # fmt: skip
    print(_fmt(row), flush=True)
    return [row]


def bench_factory(feats, k, truth_rows, truth, time_rows, factory, params, train_n, seed, niter) -> list[dict]:
    """Any faiss index_factory string (e.g. ``IVF3087,PQ64x4fsr,RFlat``: 4-bit PQ fast scan re-ranked exactly),
    trained on a seeded sample of ``train_n`` rows (``niter`` k-means iterations for an IVF's cells; 0: faiss's
    default), searched with each ParameterSpace string in ``params``."""
    d = feats.shape[1]
    t = time.perf_counter()
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    if niter:
        faiss.extract_index_ivf(index).cp.niter = niter
    index.train(_seeded_sample(feats, train_n, seed))
    index.add(feats)
    build = time.perf_counter() - t
    space = faiss.ParameterSpace()
    settings = [(lambda ix, ps=ps: space.set_index_parameters(ix, ps), {"params": ps}) for ps in params]
    row = {"method": "factory", "factory": factory, "niter": niter or "default"}
    return _sweep(index, feats, k, truth_rows, truth, time_rows, settings, build, row)


def run_full(feats: np.ndarray, k: int, spec: str, recall_queries: int) -> dict:
    """``build_knn`` over all rows with ``spec`` = ``index:key=value,...``; measured seconds and recall."""
    name, _, rest = spec.partition(":")
    opts = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in rest.split(",") if kv}
    t = time.perf_counter()
    graph = build_knn(feats, k, index=name, progress=True, **opts)  # bars on stderr: part1-9 runs for an hour
    secs = time.perf_counter() - t
    rec = measure_recall(feats, graph, n_queries=recall_queries)
    row = {"method": f"full {spec}", **{kk: v for kk, v in graph.info.items() if kk not in ("k", "dim")},
           "total_s": round(secs, 1), "recall": round(rec, 4)}  # fmt: skip
    print(_fmt(row), flush=True)
    return row


def _fmt(row: dict) -> str:
    return "  " + "  ".join(f"{k}={v}" for k, v in row.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ms1m")
    ap.add_argument("--parts", type=int, nargs="+", default=[1], help="twin parts, concatenated (1 2 3: part1-3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", type=int, default=None, help="identities per part (a scaled stand-in)")
    ap.add_argument(
        "--cache", type=Path, default=None, help=".npz of the part's features and labels (written if absent)"
    )
    ap.add_argument("--k", type=int, default=80)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--truth-queries", type=int, default=2000)
    ap.add_argument("--time-queries", type=int, default=20_000)
    ap.add_argument("--methods", nargs="*", default=["ivf", "hnsw", "nndescent"])
    ap.add_argument("--nlist", type=int, nargs="+", default=[0], help="IVF cells (0: the package default)")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--train-per-list", type=int, default=64)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=40)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--nnd-k", type=int, default=96)
    ap.add_argument("--nnd-iter", type=int, default=10)
    ap.add_argument("--nnd-s", type=int, default=10)
    ap.add_argument("--nnd-r", type=int, default=100)
    ap.add_argument("--factory", default="IVF3087,PQ64x4fsr,RFlat", help="faiss index_factory string (factory)")
    ap.add_argument("--factory-params", nargs="+", default=["nprobe=64,k_factor_rf=4", "nprobe=128,k_factor_rf=4"])
    ap.add_argument("--factory-train", type=int, default=100_000, help="rows the factory index is trained on")
    ap.add_argument("--factory-niter", type=int, default=0, help="k-means iterations of its IVF (0: faiss's 25)")
    ap.add_argument("--full", nargs="*", default=[], help="build_knn settings to run over all rows")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    set_threads(args.threads)
    env = {"machine": platform.machine(), "cpus": faiss.omp_get_max_threads(), "faiss": faiss.__version__,
           "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    feats, labels = twin_vectors(args.preset, args.parts, args.seed, args.ids, args.cache)
    n = feats.shape[0]
    print(f"# {env} N={n} d={feats.shape[1]} k={args.k}", flush=True)
    rng = np.random.default_rng(args.seed)
    truth_rows = np.sort(rng.choice(n, size=min(n, args.truth_queries), replace=False))
    time_rows = np.sort(rng.choice(n, size=min(n, args.time_queries), replace=False))
    t = time.perf_counter()
    truth_ids, truth_sims = exact_neighbours(feats, truth_rows, min(n - 1, args.k + TAIL))
    exact_qps = len(truth_rows) / (time.perf_counter() - t)
    truth = truth_ids[:, : args.k]
    rows: list[dict] = [{"method": "exact", "total_s_est": round(n / exact_qps, 1), "recall": 1.0}]
    if truth_ids.shape[1] == args.k + TAIL:
        rows[0]["tail"] = tail_summary(labels, truth_rows, truth_ids, truth_sims, args.k)
    print(_fmt(rows[-1]), flush=True)
    for method in args.methods:
        if method == "ivf":
            for nlist in args.nlist:
                rows += bench_ivf(feats, args.k, truth_rows, truth, time_rows, nlist, args.nprobe,
                                  args.train_per_list, args.seed)  # fmt: skip
        elif method == "hnsw":
            rows += bench_hnsw(feats, args.k, truth_rows, truth, time_rows, args.hnsw_m, args.ef_construction,
                               args.ef_search)  # fmt: skip
        elif method == "nndescent":
            rows += bench_nndescent(feats, args.k, truth_rows, truth, max(args.nnd_k, args.k), args.nnd_iter,
                                    args.nnd_s, args.nnd_r, args.seed)  # fmt: skip
        elif method == "factory":
            rows += bench_factory(feats, args.k, truth_rows, truth, time_rows, args.factory, args.factory_params,
                                  args.factory_train, args.seed, args.factory_niter)  # fmt: skip
        else:
            raise SystemExit(f"unknown method {method!r}; expected ivf, hnsw, nndescent or factory")
    for spec in args.full:
        rows.append(run_full(feats, args.k, spec, args.truth_queries))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"# peak RSS {peak:.2f} GB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "n": n, "k": args.k, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
