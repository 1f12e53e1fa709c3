"""Why the ground truth's labels train a weaker recognition model than Infomap's clusters on the twin (Figure 4).

Retrains Figure 4's embedding network on part0 + a subset labelled by the truth and by a method's clusters, for
several epoch budgets, from a finished default run's files (nothing is written there), and prints rank-1 for each:
a deficit that shrinks with more epochs would be a training-budget effect. Measured 2026-12-05 (default run,
part1-9): 4 epochs truth 96.35 / Infomap 97.43, 12 epochs 95.06 / 96.27: both overfit, the gap stays.

    python benchmarks/diagnose_figure4_truth.py --results results/twin --subset part1-9 --epochs 4 12
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

from clipcluster.config import load
from clipcluster.recognition.pipeline import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/twin")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--subset", default="part1-9")
    ap.add_argument("--method", default="infomap")
    ap.add_argument("--epochs", type=int, nargs="+", default=[4, 12])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cfg = load(args.config)
    rec = {k: cfg["recognition"][k] for k in ("model", "arcface", "train", "min_cluster_size")}
    res = Path(args.results)
    parts = cfg["subsets"][args.subset]
    print(f"{'labels':>10} {'epochs':>6} {'rank-1 %':>9} {'classes':>8} {'kept rows':>10} {'final loss':>10}")
    for epochs in args.epochs:
        for labels in ("truth", args.method):
            c = copy.deepcopy(rec)
            c["train"]["epochs"] = epochs
            with tempfile.TemporaryDirectory() as ckpt:
                _, m, _ = run(
                    face0=res / "faces" / "part0.bin",
                    meta0=res / "parts" / "part0.meta",
                    subset_faces=[res / "faces" / f"{p}.bin" for p in parts],
                    subset_metas=[res / "parts" / f"{p}.meta" for p in parts],
                    pseudo=None if labels == "truth" else res / "clusters" / labels / f"{args.subset}.labels",
                    ident=[res / "recognition" / "identification.npz"],
                    dim=cfg["datasets"][cfg["dataset"]]["feature_dim"],
                    cfg=c,
                    checkpoint_dir=ckpt,
                    seed=args.seed,
                    device="cpu",
                    threads=args.threads,
                    progress=False,
                )
            rows = m["labelled_rows"] + m["pseudo_rows"]
            print(
                f"{labels:>10} {epochs:>6} {100 * m['rank1']:9.2f} {m['classes']:>8} {rows:>10} {m['final_loss']:10.3f}"
            )


if __name__ == "__main__":
    main()
