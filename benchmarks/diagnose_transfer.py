"""How far B, CLIP-Cluster's CLIP-to-face transfer, moves a photo towards another photo of the same person.

For each ``--gates`` value, B is pretrained on a finished run's training part exactly as the workflow's
``pretrain_B`` does (``clipcluster.clip_cluster.pipeline.pretrain_transfer`` with the run's transfer settings, 0 =
the paper's MLP), then scored on a test part: the mean cosine of ``f_r + B(i - i_r, f_r)`` to ``f`` against
``cos(f_r, f)`` for (a) a frontal reference and a profile photo of the same person (true yaw of at least 60
degrees, one pair per profile photo) and (b) any two photos of one person. The CLIP offset is the true one
(``i - i_r``), so this measures what B can do, not what the hallucinator's prompts give it. Prints the part0
held-out report the workflow writes too (``models/B.json``).

    python benchmarks/diagnose_transfer.py --results results/twin_poseid --gates 0 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipcluster.clip_cluster.pipeline import _reference_pairs, load_data, pretrain_transfer  # noqa: E402

DEFAULT_TRANSFER = {"hidden": 512, "epochs": 10, "lr": 0.001, "batch_size": 1024, "weight_decay": 0.0001}


def _part(res: Path, part: str, dim: int):  # noqa: ANN202
    p = str
    return load_data(
        [p(res / "faces" / f"{part}.bin")], [p(res / "parts" / f"{part}.meta")], [p(res / "clip" / f"{part}.bin")],
        [p(res / "targets" / f"{part}.npz")], dim=dim,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "twin_poseid")
    ap.add_argument("--train", default="part0")
    ap.add_argument("--test", default="part1")
    ap.add_argument("--gates", type=int, nargs="+", default=[0, 4])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    train, test = _part(a.results, a.train, a.dim), _part(a.results, a.test, a.dim)
    attrs = pd.read_parquet(a.results / "attributes" / f"{a.test}.parquet", columns=["true_pose", "true_yaw"])
    frontal = (attrs["true_pose"] == "frontal").to_numpy()
    profile = ~frontal & (attrs["true_yaw"].abs() >= 60).to_numpy()
    rng = np.random.default_rng(a.seed)
    prof, front = [], []
    for k in np.flatnonzero(profile):
        cand = np.flatnonzero(frontal & (test.labels == test.labels[k]))
        if cand.size:
            prof.append(k)
            front.append(rng.choice(cand))
    anyone = _reference_pairs(test.labels, rng)
    pairs = {
        "frontal -> profile": (np.array(front), np.array(prof)),
        "any two photos": (anyone, np.arange(test.labels.size)),
    }
    f, i = torch.from_numpy(test.f), torch.from_numpy(test.i)
    print(f"{a.results} {a.test}: {len(prof)} frontal -> profile pairs, {test.labels.size} any-two pairs")
    for gates in a.gates:
        with tempfile.TemporaryDirectory() as ckpt:
            model, report = pretrain_transfer(
                train, {**DEFAULT_TRANSFER, "gates": gates}, checkpoint_dir=ckpt, seed=a.seed, threads=a.threads,
                device="cpu",
            )  # fmt: skip
        cells = []
        with torch.no_grad():
            for name, (ref, tgt) in pairs.items():
                r, t = torch.from_numpy(ref), torch.from_numpy(tgt)
                base = torch.nn.functional.cosine_similarity(f[r], f[t], dim=1).mean().item()
                moved = torch.nn.functional.cosine_similarity(f[r] + model(i[t] - i[r], f[r]), f[t], dim=1).mean()
                cells.append(f"{name} {base:.3f} -> {moved.item():.3f}")
        print(f"gates {gates}: {'; '.join(cells)}; part0 held-out {report['heldout_cos_reference_only']:.3f} -> "
              f"{report['heldout_cos_with_B']:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
