"""Sweep a training-free method's threshold on the training part (part0), to set it for new features.

Thresholds tuned for one feature extractor do not carry over to another (dlib's 128-d descriptors have cosine
~0.97 within a person and 0.80-0.86 between people; MS1M's 256-d features are far more spread). Tune on the training
part, never on the test parts the tables report. Prints pairwise and BCubed F per value.

    python benchmarks/tune_on_train_part.py --bin results/faces_demo/faces/part0.bin \
        --meta results/faces_demo/parts/part0.meta --dim 128 --method infomap --key sim_floor \
        --values 0.88 0.9 0.92 0.93 0.94 0.95 --k 10
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from clipcluster.config import load
from clipcluster.evaluation.metrics import evaluate
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import build_knn, save_knn
from clipcluster.graph.methods import MethodInputs, run_method
from clipcluster.io import read_bin, read_meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--method", required=True, help="infomap, dbscan, hac, aro")
    ap.add_argument("--key", required=True, help="the option to sweep, e.g. sim_floor, eps, distance_threshold")
    ap.add_argument("--values", type=float, nargs="+", required=True)
    ap.add_argument("--k", type=int, default=10, help="the method's k (and the graph's)")
    args = ap.parse_args()
    defaults = load(Path(__file__).resolve().parent.parent / "config" / "config.yaml")["methods"][args.method]
    labels = read_meta(args.meta)
    feats = l2_normalize(read_bin(args.bin, args.dim, labels.size), where=args.bin)
    graph = build_knn(feats, args.k, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        knn = Path(tmp) / "knn.npz"
        save_knn(knn, graph)
        inputs = MethodInputs(knn_path=knn, bins=[args.bin], metas=[args.meta], dim=args.dim)
        print(f"{args.method} on {args.bin} ({labels.size} samples, {np.unique(labels).size} identities), k={args.k}")
        print(f"{args.key:>20} {'F_P':>7} {'F_B':>7} {'clusters':>9}")
        for value in args.values:
            opts = {**defaults, "k": args.k, args.key: value}
            result = run_method(args.method, opts, inputs)
            m = evaluate(labels, result.labels)
            n_clusters = np.unique(result.labels).size
            print(f"{value:>20} {100 * m['pairwise_f']:7.2f} {100 * m['bcubed_f']:7.2f} {n_clusters:9d}")


if __name__ == "__main__":
    main()
