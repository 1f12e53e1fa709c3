"""Time CLIP-Cluster inference (score_edges + refinement) on a synthetic MS1M-part-sized graph.

The paper reports 584K faces (MS1M part1) in under 280 s, kNN build excluded. This builds a random-weight
CLIPClusterModel (default config, B with 512 hidden units) and a synthetic clustered kNN graph (clusters of ~68
faces like part1's 8.6K identities, ``--intra`` of the k neighbours from the face's own cluster, the rest random),
then times :func:`score_edges` and the two refinements. Wall seconds on a shared machine are inflated by other
load; the ``*_cpu_seconds`` (process CPU time, all threads) divided by ``--threads`` bound the unloaded wall time
from below. A random-weight model scores every edge near 0.5, which
makes Infomap's input unrealistic; with ``--probs label`` (default) refinement instead runs on synthetic scores
drawn from the true clusters (same cluster ~ 0.8, other ~ 0.2, ``--flip`` of them swapped) so its time reflects
a trained model's pruned graph; ``--probs model`` uses the model's own scores.

    python benchmarks/bench_clip_cluster_infer.py --n 100000
    python benchmarks/bench_clip_cluster_infer.py                 # 584000 faces, k = 50, 2 threads
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning made 2 threads ~3x slower
# than 1 (measured); must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clipcluster import prompts  # noqa: E402
from clipcluster.clip_cluster import (  # noqa: E402
    CLIPClusterModel,
    SpaceTransfer,
    hallucination_targets,
    naive_prune,
    prune_and_refine,
    score_edges,
)


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(n: int, k: int, cluster: int, intra: int, seed: int) -> dict[str, np.ndarray]:
    """Features, attributes, kNN lists and labels of a clustered synthetic part (vectorised)."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, n // cluster)
    labels = np.sort(rng.integers(0, n_ids, n))
    _, start, size = np.unique(labels, return_index=True, return_counts=True)
    pos = np.arange(n) - start[labels]
    z = size[labels]
    centres = unit(rng.standard_normal((n_ids, 256)).astype(np.float32))
    f = unit(centres[labels] + 0.08 * rng.standard_normal((n, 256), dtype=np.float32))
    i = unit(rng.standard_normal((n, 512), dtype=np.float32))
    own = np.minimum(intra, z - 1)[:, None]  # same-cluster neighbours available
    r = rng.integers(1, np.maximum(z, 2)[:, None], (n, k))  # offset != 0 within the cluster: never self
    same = start[labels][:, None] + (pos[:, None] + r) % np.maximum(z, 1)[:, None]
    other = rng.integers(0, n, (n, k))
    other = np.where(other == np.arange(n)[:, None], (other + 1) % n, other)
    nbrs = np.where(np.arange(k)[None, :] < own, same, other).astype(np.int64)
    sims = np.sort(rng.uniform(0.3, 0.9, (n, k)).astype(np.float32), axis=1)[:, ::-1].copy()
    attrs = pd.DataFrame(
        {
            "gender": rng.choice(prompts.GENDERS, n),
            "age_group": rng.choice(prompts.AGE_VALUES, n),
            "expression": rng.choice(prompts.EXPRESSIONS, n),
            "pose": rng.choice(prompts.POSES, n),
        }
    )
    text = unit(rng.standard_normal((len(prompts.prompt_table()), 512), dtype=np.float32))
    return {"f": f, "i": i, "nbrs": nbrs, "sims": sims, "labels": labels, "attrs": attrs, "text": text}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=584000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--cluster", type=int, default=68, help="mean faces per identity")
    ap.add_argument("--intra", type=int, default=30, help="same-identity neighbours per face (at most)")
    ap.add_argument("--probs", choices=("label", "model"), default="label")
    ap.add_argument("--flip", type=float, default=0.05)
    ap.add_argument("--fusion", default="cross")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive-pruning timing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    data = synthetic(args.n, args.k, args.cluster, args.intra, args.seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    src, tgt = hallucination_targets(data["attrs"], prompts.prompt_table())
    targets_s = time.perf_counter() - t0
    rss_data = peak_rss_gb()
    model = CLIPClusterModel({"fusion": args.fusion, "seed": args.seed}, SpaceTransfer())

    stats: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    probs = score_edges(
        model,
        data["f"],
        data["i"],
        src,
        tgt,
        data["text"],
        data["nbrs"],
        batch_size=args.batch_size,
        threads=args.threads,
        stats=stats,
    )
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_score = peak_rss_gb()
    if args.probs == "label":
        rng = np.random.default_rng(args.seed + 1)
        same = data["labels"][data["nbrs"]] == data["labels"][:, None]
        same ^= rng.random(same.shape) < args.flip
        probs = np.clip(np.where(same, 0.8, 0.2) + 0.15 * rng.standard_normal(same.shape), 0, 1).astype(np.float32)
    refine_stats: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    labels = prune_and_refine(data["nbrs"], probs, tau=0.5, stats=refine_stats)
    refine_s, refine_cpu = time.perf_counter() - t0, time.process_time() - c0
    naive_s = None
    if not args.no_naive:
        t0 = time.perf_counter()
        naive = naive_prune(data["nbrs"], probs, tau=0.5)
        naive_s = time.perf_counter() - t0
    out = {
        "n": args.n,
        "k": args.k,
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_end": os.getloadavg()[0],
        "fusion": args.fusion,
        "probs_for_refinement": args.probs,
        "generate_seconds": round(gen_s, 2),
        "targets_seconds": round(targets_s, 2),
        "score_edges_seconds": round(score_s, 2),
        "score_edges_cpu_seconds": round(score_cpu, 2),
        "score_stages": stats,
        "refine_seconds": round(refine_s, 2),
        "refine_cpu_seconds": round(refine_cpu, 2),
        "refine_stats": refine_stats,
        "total_score_plus_refine_seconds": round(score_s + refine_s, 2),
        "naive_prune_seconds": None if naive_s is None else round(naive_s, 2),
        "clusters": int(labels.max()) + 1,
        "naive_clusters": None if naive_s is None else int(naive.max()) + 1,
        "peak_rss_gb_after_data": round(rss_data, 2),
        "peak_rss_gb_after_score": round(rss_score, 2),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
