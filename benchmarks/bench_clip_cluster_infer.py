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
import tempfile
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
from clipcluster.clip_cluster.pipeline import BinRows, _small_ints  # noqa: E402


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


_SAMPLER = r"""
import os, sys, time
pid, path, dt = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
with open(path, "w", buffering=1) as out:
    while True:
        try:
            with open(f"/proc/{pid}/status") as fh:
                kb = {l.split(":")[0]: l.split()[1] for l in fh if l.startswith(("VmRSS", "RssAnon", "RssFile"))}
        except (FileNotFoundError, ProcessLookupError):
            break
        out.write(f"{time.perf_counter():.4f} {kb['VmRSS']} {kb['RssAnon']} {kb['RssFile']}\n")
        time.sleep(dt)
"""


class RssTrace:
    """RSS of this process sampled every ``dt`` s by a child process (sees through the GIL); per-phase peaks.

    ``mark(name)`` closes the running phase and opens ``name``; :meth:`phases` returns, per phase, its seconds,
    the RSS at its start and end and its peak (GB, VmRSS = anonymous + file-backed pages).
    """

    def __init__(self, dt: float = 0.02) -> None:
        import subprocess
        import tempfile

        self.path = tempfile.mktemp(prefix="rss_trace_", suffix=".txt")
        self.proc = subprocess.Popen([sys.executable, "-c", _SAMPLER, str(os.getpid()), self.path, str(dt)])
        self.marks: list[tuple[str, float]] = []
        time.sleep(0.2)

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def split(self, t_start: float, stages: list[tuple[str, float]]) -> None:
        """Sub-phases of a call that reported only its stage durations (consecutive, from ``t_start``)."""
        t = t_start
        for name, secs in stages:
            self.marks.append((name, t))
            t += secs
        self.marks.sort(key=lambda m: m[1])

    def phases(self) -> dict[str, dict[str, float]]:
        self.mark("end")
        time.sleep(0.1)
        self.proc.terminate()
        self.proc.wait()
        rows = np.loadtxt(self.path, ndmin=2)
        os.unlink(self.path)
        t, rss = rows[:, 0], rows[:, 1] / 2**20
        out = {}
        for (name, a), (_, b) in zip(self.marks[:-1], self.marks[1:], strict=True):
            inside = (t >= a) & (t <= b)
            before, after = rss[t <= a], rss[t <= b]
            start = float(before[-1]) if before.size else 0.0
            end = float(after[-1]) if after.size else 0.0
            peak = max([start, end] + ([float(rss[inside].max())] if inside.any() else []))
            entry = {"seconds": round(b - a, 2), "rss_start_gb": round(start, 2), "rss_end_gb": round(end, 2)}
            out[name] = entry | {"rss_peak_gb": round(peak, 2)}
        return out


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


_CHUNK = 1 << 16  # rows generated at a time: the generator never holds more than the arrays the rule loads


def synthetic(n: int, k: int, cluster: int, intra: int, seed: int, workdir: Path) -> dict:
    """A clustered synthetic part in the dtypes whole-graph inference holds (as ``load_inference_data`` and
    ``load_knn_columns`` give them to the rule), generated in row chunks.

    Face features ``f`` (N x 256 float32) in memory; CLIP embeddings written to ``workdir/clip.bin`` and read back
    per batch by :class:`~clipcluster.clip_cluster.pipeline.BinRows` like the rule's; kNN ids int32 and
    similarities float32 (N x k); prompt rows int16; labels int64.
    """
    rng = np.random.default_rng(seed)
    n_ids = max(1, n // cluster)
    labels = np.sort(rng.integers(0, n_ids, n))
    _, start, size = np.unique(labels, return_index=True, return_counts=True)
    centres = unit(rng.standard_normal((n_ids, 256)).astype(np.float32))
    text = unit(rng.standard_normal((len(prompts.prompt_table()), 512), dtype=np.float32))
    table = prompts.prompt_table()
    f = np.empty((n, 256), dtype=np.float32)
    nbrs = np.empty((n, k), dtype=np.int32)
    sims = np.empty((n, k), dtype=np.float32)
    src = np.empty((n, 10), dtype=np.int16)
    tgt = np.empty((n, 10), dtype=np.int16)
    workdir.mkdir(parents=True, exist_ok=True)
    clip_path = workdir / "clip.bin"
    with open(clip_path, "wb") as fh:
        for s in range(0, n, _CHUNK):
            e = min(n, s + _CHUNK)
            m, lab = e - s, labels[s:e]
            f[s:e] = unit(centres[lab] + 0.08 * rng.standard_normal((m, 256), dtype=np.float32))
            unit(rng.standard_normal((m, 512), dtype=np.float32)).tofile(fh)
            pos = np.arange(s, e) - start[lab]
            z = size[lab]
            own = np.minimum(intra, z - 1)[:, None]  # same-cluster neighbours available
            r = rng.integers(1, np.maximum(z, 2)[:, None], (m, k))  # offset != 0 within the cluster: never self
            same = start[lab][:, None] + (pos[:, None] + r) % np.maximum(z, 1)[:, None]
            other = rng.integers(0, n, (m, k))
            other = np.where(other == np.arange(s, e)[:, None], (other + 1) % n, other)
            nbrs[s:e] = np.where(np.arange(k)[None, :] < own, same, other)
            sims[s:e] = np.sort(rng.uniform(0.3, 0.9, (m, k)).astype(np.float32), axis=1)[:, ::-1]
            attrs = pd.DataFrame(
                {
                    "gender": rng.choice(prompts.GENDERS, m),
                    "age_group": rng.choice(prompts.AGE_VALUES, m),
                    "expression": rng.choice(prompts.EXPRESSIONS, m),
                    "pose": rng.choice(prompts.POSES, m),
                }
            )
            a, b = hallucination_targets(attrs, table)
            src[s:e], tgt[s:e] = _small_ints(a), _small_ints(b)
    i = BinRows([str(clip_path)], 512, [n])
    return {"f": f, "i": i, "nbrs": nbrs, "sims": sims, "labels": labels, "src": src, "tgt": tgt, "text": text}


def label_probs(labels: np.ndarray, nbrs: np.ndarray, flip: float, seed: int) -> np.ndarray:
    """Synthetic scores from the true clusters (same ~ 0.8, other ~ 0.2, ``flip`` of them swapped), in chunks."""
    rng = np.random.default_rng(seed)
    probs = np.empty(nbrs.shape, dtype=np.float32)
    for s in range(0, nbrs.shape[0], _CHUNK):
        e = min(nbrs.shape[0], s + _CHUNK)
        same = labels[nbrs[s:e]] == labels[s:e, None]
        same ^= rng.random(same.shape) < flip
        noise = 0.15 * rng.standard_normal(same.shape)
        probs[s:e] = np.clip(np.where(same, 0.8, 0.2) + noise, 0, 1)
    return probs


def rule_inputs_gb(n: int, k: int, knn_k: int = 150, m: int = 10, proposed: bool = True) -> dict[str, float]:
    """GB of the arrays scripts/cc_infer.py holds during inference at ``n`` faces (kNN file with ``knn_k`` columns).

    ``proposed=False``: the rule as it is (load_data, load_knn, column slices); True: with load_inference_data and
    load_knn_columns (CLIP rows read per batch, int32 ids, int16 prompt rows, only k columns).
    """
    gb = 1e-9
    if not proposed:
        return {
            "face_f_float32": n * 256 * 4 * gb,
            "clip_i_float32": n * 512 * 4 * gb,
            "clip_i_concatenate_transient": n * 512 * 4 * gb,
            "knn_graph_all_columns_int64_float32": n * knn_k * (8 + 4) * gb,
            "knn_load_int32_to_int64_transient": n * knn_k * 4 * gb,
            "nbrs_k_int64": n * k * 8 * gb,
            "sims_k_float32": n * k * 4 * gb,
            "src_tgt_int64": 2 * n * m * 8 * gb,
            "labels_int64": n * 8 * gb,
            "probs_float32": n * k * 4 * gb,
        }
    return {
        "face_f_float32_consumed_as_scratch": n * 256 * 4 * gb,
        "proxy_v_float32": n * 256 * 4 * gb,
        "nbrs_k_int32": n * k * 4 * gb,
        "sims_k_float32": n * k * 4 * gb,
        "src_tgt_int16": 2 * n * m * 2 * gb,
        "labels_int64": n * 8 * gb,
        "probs_float32": n * k * 4 * gb,
    }


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
    ap.add_argument("--workdir", type=Path, default=None, help="where the CLIP .bin goes (default: a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trace = RssTrace()

    trace.mark("generate")
    t0 = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_cc_infer_"))
    data = synthetic(args.n, args.k, args.cluster, args.intra, args.seed, workdir)
    gen_s = time.perf_counter() - t0
    targets_s = 0.0  # computed per chunk inside the generator now
    rss_data = peak_rss_gb()
    model = CLIPClusterModel({"fusion": args.fusion, "seed": args.seed}, SpaceTransfer())

    stats: dict = {}
    trace.mark("score")
    t0, c0 = time.perf_counter(), time.process_time()
    t_score = t0
    probs = score_edges(
        model,
        data["f"],
        data["i"],
        data["src"],
        data["tgt"],
        data["text"],
        data["nbrs"],
        batch_size=args.batch_size,
        threads=args.threads,
        stats=stats,
        consume_f=True,  # as pipeline.infer does
    )
    del data["f"]  # overwritten as scratch; infer() drops it the same way
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_score = peak_rss_gb()
    trace.split(
        t_score, [("score:" + k.removesuffix("_seconds"), v) for k, v in stats.items() if k.endswith("_seconds")]
    )
    if not args.workdir:
        (workdir / "clip.bin").unlink()
        workdir.rmdir()
    trace.mark("label_probs")
    if args.probs == "label":
        probs = label_probs(data["labels"], data["nbrs"], args.flip, args.seed + 1)
    refine_stats: dict = {}
    trace.mark("refine")
    t0, c0 = time.perf_counter(), time.process_time()
    t_refine = t0
    labels = prune_and_refine(data["nbrs"], probs, tau=0.5, stats=refine_stats)
    refine_s, refine_cpu = time.perf_counter() - t0, time.process_time() - c0
    trace.split(
        t_refine,
        [("refine:" + k, refine_stats.get(k + "_seconds", 0.0)) for k in ("edge", "build", "run")],
    )
    naive_s = None
    if not args.no_naive:
        trace.mark("naive")
        t0 = time.perf_counter()
        naive = naive_prune(data["nbrs"], probs, tau=0.5)
        naive_s = time.perf_counter() - t0
    phases = trace.phases()
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
        "phases": phases,
        "rule_inputs_gb_now": {k: round(v, 2) for k, v in rule_inputs_gb(args.n, args.k, proposed=False).items()},
        "rule_inputs_gb_proposed": {k: round(v, 2) for k, v in rule_inputs_gb(args.n, args.k).items()},
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
