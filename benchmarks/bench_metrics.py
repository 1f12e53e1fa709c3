"""Benchmark clipcluster.evaluation.metrics.evaluate on MS1M-sized labels against a plain per-class implementation.

The straightforward one is the style widely used in face-clustering code (learn-to-cluster): dicts of
label -> sample indices, Python loops over ground-truth classes with set intersections for pairwise and BCubed,
and sklearn for NMI. Both must agree to 1e-9 on every metric.

    python benchmarks/bench_metrics.py                    # 5.21M samples (MS1M part1-9), ~76K identities
    python benchmarks/bench_metrics.py --n 584000 --ids 8573 --json benchmarks/out/metrics_part1.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clipcluster.atomic import write_json  # noqa: E402
from clipcluster.evaluation.metrics import evaluate  # noqa: E402

METRICS = (
    "pairwise_precision",
    "pairwise_recall",
    "pairwise_f",
    "bcubed_precision",
    "bcubed_recall",
    "bcubed_f",
    "nmi",
)


def make_labels(n: int, n_ids: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MS1M-like ground truth (long-tailed identity sizes) and a prediction with splits, merges and outliers.

    Sizes follow a log-normal (median ~45, long right tail, at least 2 images), rescaled to sum to ``n``; samples
    are shuffled, as in a .meta file of concatenated parts. The prediction splits ~20% of identities into 2-4
    pieces, merges ~5% of the resulting clusters into another cluster, and makes ~2% of samples singletons.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(mean=np.log(45.0), sigma=0.9, size=n_ids)
    sizes = np.maximum(2, np.round(sizes / sizes.sum() * n)).astype(np.int64)
    sizes[np.argmax(sizes)] += n - sizes.sum()  # exact total; the largest class absorbs the rounding
    gt = rng.permutation(np.repeat(np.arange(n_ids, dtype=np.int64), sizes))

    # Split: a sample of a split identity goes to one of 2..4 sub-clusters, coded id * 4 + piece.
    pieces = np.where(rng.random(n_ids) < 0.2, rng.integers(2, 5, n_ids), 1)
    pred = gt * 4 + (rng.random(n) * pieces[gt]).astype(np.int64)
    # Merge: ~5% of predicted clusters are relabelled as another random cluster.
    ids, pred = np.unique(pred, return_inverse=True)
    target = np.arange(ids.size)
    merged = rng.random(ids.size) < 0.05
    target[merged] = rng.integers(0, ids.size, int(merged.sum()))
    pred = target[pred]
    # Outliers: ~2% of samples become singletons with fresh labels.
    out = rng.random(n) < 0.02
    pred[out] = ids.size + np.arange(int(out.sum()))
    return gt, pred


def straightforward(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Per-class Python loops (learn-to-cluster style): label -> indices dicts, set intersections, sklearn NMI."""
    from sklearn.metrics import normalized_mutual_info_score

    gt_idx: dict[int, list[int]] = {}
    pred_idx: dict[int, list[int]] = {}
    for i, (g, p) in enumerate(zip(gt.tolist(), pred.tolist(), strict=True)):
        gt_idx.setdefault(g, []).append(i)
        pred_idx.setdefault(p, []).append(i)
    pred_sets = {p: set(idx) for p, idx in pred_idx.items()}

    n = len(gt)
    tp = 0
    pre = rec = 0.0
    for idx in gt_idx.values():
        members = set(idx)
        for p in set(pred[idx].tolist()):
            both = len(members & pred_sets[p])
            tp += both * (both - 1) // 2
            pre += both * both / len(pred_sets[p])
            rec += both * both / len(members)
    gt_pairs = sum(len(v) * (len(v) - 1) // 2 for v in gt_idx.values())
    pred_pairs = sum(len(v) * (len(v) - 1) // 2 for v in pred_idx.values())
    pp = tp / pred_pairs if pred_pairs else 1.0
    pr = tp / gt_pairs if gt_pairs else 1.0
    bp, br = pre / n, rec / n

    def f(a: float, b: float) -> float:
        return 0.0 if a + b == 0 else 2 * a * b / (a + b)

    return {
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_f": f(pp, pr),
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f": f(bp, br),
        "nmi": float(normalized_mutual_info_score(gt, pred)),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table; returns a non-zero exit status if the implementations disagree."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_210_000, help="samples (MS1M part1-9: 5.21M)")
    ap.add_argument("--ids", type=int, default=76_000, help="identities (~N / 68 as in MS1M)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of evaluate (best is reported)")
    ap.add_argument("--skip-baseline", action="store_true", help="time evaluate only")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    import scipy

    print(f"machine: {cpu_model()}, nproc={len(os.sched_getaffinity(0))}, {platform.system()} {platform.release()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    t_gen, (gt, pred) = timed(lambda: make_labels(args.n, args.ids, args.seed))
    print(
        f"labels: n={gt.size:,}, gt clusters={np.unique(gt).size:,}, pred clusters={np.unique(pred).size:,} "
        f"(generated in {t_gen:.1f} s, seed {args.seed})"
    )

    first, res = timed(lambda: evaluate(gt, pred))
    runs = [timed(lambda: evaluate(gt, pred))[0] for _ in range(args.repeats)]
    best = min(runs)
    # The hashed path: the same partition under sparse, huge label values (no dense presence table possible).
    big = np.int64(1_000_000_007)
    gt_h, pred_h = gt * big + 13, pred * big - 5
    t_hash = min(timed(lambda: evaluate(gt_h, pred_h))[0] for _ in range(max(1, args.repeats - 1)))
    assert all(abs(evaluate(gt_h, pred_h)[k] - res[k]) < 1e-12 for k in METRICS)

    rows = [
        ("evaluate, first run", first),
        (f"evaluate, best of {args.repeats}", best),
        ("evaluate, huge sparse label ids (hashed)", t_hash),
    ]
    agree = True
    max_diff = float("nan")
    if not args.skip_baseline:
        t_ref, ref = timed(lambda: straightforward(gt, pred))
        max_diff = max(abs(res[k] - ref[k]) for k in METRICS)
        agree = max_diff <= 1e-9
        rows.append(("straightforward per-class loops + sklearn NMI", t_ref))

    print()
    print(f"{'what':<48} {'seconds':>9} {'speedup':>9}")
    for what, sec in rows:
        speedup = "-" if args.skip_baseline else f"{rows[-1][1] / sec:.1f}x"
        print(f"{what:<48} {sec:>9.3f} {speedup:>9}")
    print()
    print("metrics: " + ", ".join(f"{k}={res[k]:.6f}" for k in METRICS))
    if not args.skip_baseline:
        print(f"max |evaluate - straightforward| = {max_diff:.2e} -> {'AGREE' if agree else 'DISAGREE'} (tol 1e-9)")

    if args.json:
        write_json(
            args.json,
            {
                "machine": {"cpu": cpu_model(), "nproc": len(os.sched_getaffinity(0))},
                "n": int(gt.size),
                "ids": args.ids,
                "seed": args.seed,
                "seconds": {what: sec for what, sec in rows},
                "metrics": {k: res[k] for k in METRICS},
                "max_abs_diff": max_diff,
            },
        )
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
