"""Calibration check of the MS1M twin: classic baselines on a twin part beside their published MS1M part1 numbers.

Generates one part of the twin (default: the ``ms1m`` preset's part 1, 8,573 identities, ~584K samples; or a
scaled stand-in with ``--ids``, same per-identity statistics), builds the k = 50 cosine kNN graph, runs
"Infomap alone" (similarity floor 0.58, as face-cluster-by-infomap's MS1M run) and K-Means with k = the true
number of identities, and prints pairwise / BCubed scores next to the paper's (CLIP-Cluster Tables 2 and 3;
learn-to-cluster's K-Means 79.21).

    python benchmarks/calibrate_twin.py --ids 1000            # ~68K samples, ~1-2 min on 2 cores
    python benchmarks/calibrate_twin.py                       # full part1 (584K): IVF kNN, ~30 min on 2 cores

K-Means: ``--kmeans faiss`` (default) runs faiss' Lloyd K-Means (``--kmeans-iter`` iterations), which finishes
at part1 size on 2 cores; ``--kmeans package`` runs the pipeline's ``clipcluster.graph.baselines.kmeans``
(scikit-learn, mini-batch above 50K; hours at part1 size on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clipcluster.evaluation.metrics import evaluate  # noqa: E402
from clipcluster.graph.infomap_cluster import cluster_knn_infomap  # noqa: E402
from clipcluster.graph.knn import build_knn  # noqa: E402
from clipcluster.twin.generate import generate_part, twin_params  # noqa: E402

log = logging.getLogger("calibrate_twin")

# MS1M part1 (584K, 8,573 identities): pairwise precision / recall / F (BCubed F where published).
PAPER = {
    "infomap": {"source": "CLIP-Cluster Table 2 (Only Infomap)", "P": 95.50, "R": 92.51, "F": 93.98},
    "kmeans": {"source": "CLIP-Cluster Table 3 / learn-to-cluster", "P": 52.52, "R": 70.45, "F": 60.18, "F_l2c": 79.21},
}


def _scores(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    m = evaluate(gt, pred)
    keys = ("pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall", "bcubed_f")
    out = {k: round(100 * float(m[k]), 2) for k in keys}
    out["pred_clusters"] = int(m["n_pred_clusters"])
    return out


def _faiss_kmeans(feats: np.ndarray, k: int, seed: int, niter: int) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(feats.shape[1], k, niter=niter, seed=seed, max_points_per_centroid=1 << 20, verbose=False)
    km.train(feats)
    _, assign = km.index.search(feats, 1)
    return assign[:, 0].astype(np.int64)


def run(args: argparse.Namespace) -> dict:
    overrides = {"ids_per_part": args.ids} if args.ids else {}
    params = twin_params(args.preset, args.seed, overrides)
    t0 = time.perf_counter()
    part = generate_part(params, args.part)
    gen_s = time.perf_counter() - t0
    feats, gt = part.face, part.labels
    n_ids = int(np.unique(gt).size)
    result: dict = {
        "preset": args.preset,
        "seed": args.seed,
        "part": args.part,
        "samples": int(gt.size),
        "identities": n_ids,
        "generate_seconds": round(gen_s, 1),
    }
    log.info("twin %s part %d: %d samples, %d identities in %.1fs", args.preset, args.part, gt.size, n_ids, gen_s)
    del part

    graph = build_knn(feats, args.k, index=args.index, seed=args.seed, progress=args.progress)
    result["knn"] = {k: v for k, v in graph.info.items() if k in ("index", "k", "nlist", "nprobe", "seconds")}
    same = gt[graph.nbrs] == gt[:, None]
    above = graph.sims >= args.sim_floor
    result["knn"]["neighbour_precision"] = round(float(same.mean()), 4)
    result["knn"]["edges_above_floor_per_node"] = round(float(above.sum(1).mean()), 2)
    result["knn"]["true_share_of_edges_above_floor"] = round(float((same & above).sum() / max(above.sum(), 1)), 4)

    for directed in args.directed:
        name = "infomap_directed" if directed else "infomap"
        t0 = time.perf_counter()
        labels = cluster_knn_infomap(
            graph.nbrs, graph.sims, sim_floor=args.sim_floor, seed=args.seed, directed=directed
        )
        result[name] = {**_scores(gt, labels), "seconds": round(time.perf_counter() - t0, 1)}
        log.info("%s: %s", name, result[name])
    del graph

    if args.kmeans != "none":
        t0 = time.perf_counter()
        if args.kmeans == "faiss":
            labels = _faiss_kmeans(feats, n_ids, args.seed, args.kmeans_iter)
        else:
            from clipcluster.graph.baselines import kmeans

            labels = kmeans(feats, n_ids, seed=args.seed)
        result["kmeans"] = {
            **_scores(gt, labels),
            "seconds": round(time.perf_counter() - t0, 1),
            "impl": args.kmeans,
        }
        log.info("kmeans: %s", result["kmeans"])
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def print_table(result: dict) -> None:
    """Twin vs paper, side by side."""
    print(
        f"\nMS1M twin ({result['preset']}, seed {result['seed']}) part {result['part']}: {result['samples']} samples, "
        f"{result['identities']} identities; kNN {result['knn']}"
    )
    print(
        f"{'method':<18}{'twin P':>8}{'twin R':>8}{'twin F':>8}{'twin FB':>9}{'paper P':>9}{'paper R':>9}{'paper F':>9}"
    )
    for name, paper_key in (("infomap", "infomap"), ("infomap_directed", "infomap"), ("kmeans", "kmeans")):
        if name not in result:
            continue
        r, p = result[name], PAPER[paper_key]
        extra = f"  (learn-to-cluster F {p['F_l2c']})" if "F_l2c" in p else ""
        print(
            f"{name:<18}{r['pairwise_precision']:>8.2f}{r['pairwise_recall']:>8.2f}{r['pairwise_f']:>8.2f}"
            f"{r['bcubed_f']:>9.2f}{p['P']:>9.2f}{p['R']:>9.2f}{p['F']:>9.2f}{extra}  [{r['seconds']}s]"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="ms1m", choices=("tiny", "small", "ms1m"))
    ap.add_argument("--ids", type=int, default=None, help="identities in the part (scaled stand-in; default preset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", type=int, default=1)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--sim-floor", type=float, default=0.58)
    ap.add_argument("--index", default="auto", choices=("auto", "exact", "ivf"))
    ap.add_argument(
        "--directed",
        default="both",
        choices=("both", "yes", "no"),
        help="Infomap flow model: directed (reference implementation), undirected (pipeline default) or both",
    )
    ap.add_argument("--kmeans", default="faiss", choices=("faiss", "package", "none"))
    ap.add_argument("--kmeans-iter", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    args.directed = {"both": (False, True), "yes": (True,), "no": (False,)}[args.directed]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args)
    print_table(result)
    print(json.dumps(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
