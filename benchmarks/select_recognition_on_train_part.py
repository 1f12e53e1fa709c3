"""Choose Figure 4's recognition network on the training part only: train on part of part0's identities, score the rest.

A seeded quarter of part0's identities is held out; for each ``--settings`` JSON (merged into recognition's
``model`` / ``arcface`` / ``train`` keys of the run's config) the network is trained on the other three quarters and
scored by MegaFace-style rank-1 among the held-out identities: half of them are probes, every photo of the other
half a distractor. Neither a test part nor Figure 4's probe and distractor set is read. Reads a finished run's
part0 files in ``--view`` (face or clip); writes only ``--out``.

    python benchmarks/select_recognition_on_train_part.py --results results/twin --view clip \
        --out results/diagnostics/recognition_part0.md \
        --settings '{}' '{"model": {"layers": 0}}' '{"train": {"epochs": 8}}'
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipcluster.atomic import write_text  # noqa: E402
from clipcluster.config import load as load_config  # noqa: E402
from clipcluster.config import merge  # noqa: E402
from clipcluster.io import load_parts  # noqa: E402
from clipcluster.recognition.data import pseudo_labelled  # noqa: E402
from clipcluster.recognition.identification import megaface_rank1  # noqa: E402
from clipcluster.recognition.train import embed, train_recognition  # noqa: E402

KEYS = ("model", "arcface", "train", "min_cluster_size")


def split_identities(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row masks (train, probe, distractor): a seeded quarter of the identities held out, half probes, half
    distractors; the rest trains."""
    ids = np.unique(labels)
    rng = np.random.default_rng([seed, 9071])
    held = rng.permutation(ids)[: max(2, ids.size // 4)]
    probe_ids, distractor_ids = held[: held.size // 2], held[held.size // 2 :]
    probe = np.isin(labels, probe_ids)
    distractor = np.isin(labels, distractor_ids)
    return ~(probe | distractor), probe, distractor


def score(feats: np.ndarray, labels: np.ndarray, cfg: dict, seed: int) -> dict:
    """Train on the training rows with ``cfg``, return held-out rank-1 and the training time."""
    train, probe, distractor = split_identities(labels, seed)
    data = pseudo_labelled(labels[train])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as ckpt:
        net, _ = train_recognition(feats[train], data, cfg, checkpoint_dir=ckpt, seed=seed, device="cpu", threads=1)
    seconds = time.perf_counter() - t0
    result = megaface_rank1(embed(net, feats[probe]), labels[probe], embed(net, feats[distractor]))
    return {**result, "train_seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "twin", help="a finished run's results folder")
    ap.add_argument("--view", choices=("face", "clip"), default="clip")
    ap.add_argument("--configfile", type=Path, default=None, help="merged over config/config.yaml")
    ap.add_argument("--settings", nargs="+", default=["{}"], help="JSON merged into recognition's keys")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    overrides = yaml.safe_load(args.configfile.read_text()) if args.configfile else None
    cfg = load_config(ROOT / "config" / "config.yaml", overrides)
    rec = {k: cfg["recognition"][k] for k in KEYS}
    dim = 512 if args.view == "clip" else int(cfg["datasets"][cfg["dataset"]]["feature_dim"])
    feats, labels = load_parts([args.results / args.view / "part0.bin"], [args.results / "parts" / "part0.meta"], dim)
    rows = []
    for text in args.settings:
        setting = json.loads(text)
        run_cfg = merge(copy.deepcopy(rec), setting)
        r = score(feats, labels, run_cfg, args.seed)
        rows.append((text, r))
        rate = 100 * r["rank1"]
        print(f"{text}: held-out rank-1 {rate:.2f} ({r['pairs']:,} pairs), {r['train_seconds']} s", flush=True)
    lines = [
        f"# Figure 4's network chosen on part0 alone ({args.view} view)",
        "",
        f"{datetime.date.today()}, {platform.node()}; `python benchmarks/select_recognition_on_train_part.py "
        f"{shlex.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        f"Trained on three quarters of part0's identities, rank-1 of half the held-out identities' photos among "
        f"every photo of the other half ({rows[0][1]['distractors']:,} distractors).",
        "",
        "| setting | held-out rank-1 (%) | pairs | train s |",
        "|---|---:|---:|---:|",
        *[f"| `{t}` | {100 * r['rank1']:.2f} | {r['pairs']:,} | {r['train_seconds']} |" for t, r in rows],
    ]
    write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
