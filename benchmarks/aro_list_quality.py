"""ARO against the quality of the kNN lists it reads: the same twin part, IVF lists from exact-like to rough.

learn-to-cluster's published ARO row (precision 99.8, recall 7.2, F 13.4 on MS1M part1) ran on pyflann's randomized
kd-tree lists, far rougher than the exact or IVF lists this pipeline builds (docs/twin.md). This measures how ARO's
pairwise P / R / F move with the lists' recall against exact search, on one twin part: faiss IVF-flat with
``nlist:nprobe`` cells (nprobe = nlist is exact), each timed, its recall@k measured on seeded queries.

    python benchmarks/aro_list_quality.py --cache benchmarks/out/twin_ms1m_part1.npz \
        --grid 3087:32 3087:4 3087:1 16384:1
    python benchmarks/aro_list_quality.py --preset small --grid 128:128 128:8 128:1 1024:1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_knn_twin import twin_vectors  # noqa: E402

from clipcluster.evaluation.metrics import evaluate  # noqa: E402
from clipcluster.graph.baselines import aro  # noqa: E402
from clipcluster.graph.knn import build_knn, measure_recall  # noqa: E402


def measure(feats, labels, nlist: int, nprobe: int, k: int, queries: int, seed: int) -> dict:  # noqa: ANN001
    """IVF lists at (nlist, nprobe), their recall, and ARO's scores on them."""
    t0 = time.perf_counter()
    graph = build_knn(feats, k, index="ivf", nlist=nlist, nprobe=nprobe, seed=seed, progress=False)
    knn_s = time.perf_counter() - t0
    recall = measure_recall(feats, graph, queries, seed)
    t0 = time.perf_counter()
    m = evaluate(labels, aro(graph.nbrs, graph.sims))
    return {
        "nlist": nlist,
        "nprobe": nprobe,
        "list_recall": round(recall, 4),
        "knn_s": round(knn_s, 1),
        "aro_s": round(time.perf_counter() - t0, 1),
        **{f"aro_{key}": round(100 * m[f"pairwise_{key}"], 2) for key in ("precision", "recall", "f")},
        "clusters": int(m["n_pred_clusters"]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="ms1m")
    ap.add_argument("--part", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", type=int, default=None, help="identities in the part (a scaled stand-in)")
    ap.add_argument("--cache", type=Path, default=None, help=".npz of the part's vectors (bench_knn_twin.py's)")
    ap.add_argument("--k", type=int, default=79, help="neighbours besides the face (learn-to-cluster's 80 count it)")
    ap.add_argument("--grid", nargs="+", default=["3087:32", "3087:1"], metavar="NLIST:NPROBE")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    feats, labels = twin_vectors(args.preset, [args.part], args.seed, args.ids, args.cache)
    rows = []
    print(f"# {feats.shape[0]} faces, {len(set(labels.tolist()))} identities, k = {args.k}")
    print("nlist nprobe  list recall  ARO P   ARO R   ARO F_P  clusters  knn s")
    for cell in args.grid:
        nlist, nprobe = (int(v) for v in cell.split(":"))
        r = measure(feats, labels, nlist, nprobe, args.k, args.queries, args.seed)
        rows.append(r)
        print(
            f"{r['nlist']:>5} {r['nprobe']:>6} {r['list_recall']:>12.3f} {r['aro_precision']:>6.2f} "
            f"{r['aro_recall']:>7.2f} {r['aro_f']:>8.2f} {r['clusters']:>9} {r['knn_s']:>6}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
