"""Train the embedding network with ArcFace on a (pseudo-)labelled set; checkpoints every epoch, resumes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..clip_cluster.trainer import train
from ..errors import DataError
from ..peers.pipeline import _claim_checkpoint_dir
from .arcface import ArcFaceHead
from .data import TrainingSet
from .network import DEFAULT_MODEL, EmbeddingNet

log = logging.getLogger(__name__)

DEFAULT_TRAIN: dict[str, Any] = {
    "epochs": 8,
    "batch_size": 512,
    "lr": 0.1,
    "optimizer": "sgd",
    "weight_decay": 5e-4,
    "warmup_epochs": 0.5,
}
DEFAULT_ARCFACE: dict[str, Any] = {"scale": 64.0, "margin": 0.5}


class RecognitionModel(nn.Module):
    """The embedding network and its ArcFace head (the head is dropped after training)."""

    def __init__(self, in_dim: int, classes: int, model: dict[str, Any], arcface: dict[str, Any]) -> None:
        super().__init__()
        self.net = EmbeddingNet(in_dim, **model)
        self.head = ArcFaceHead(int(model["embed_dim"]), classes, **arcface)


def _merged(cfg: dict[str, Any] | None, key: str, default: dict[str, Any]) -> dict[str, Any]:
    given = dict((cfg or {}).get(key) or {})
    unknown = set(given) - set(default)
    if unknown:
        raise DataError(
            f"recognition.{key}", f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(default)})"
        )
    return {**default, **given}


def train_recognition(
    feats: np.ndarray,
    data: TrainingSet,
    cfg: dict[str, Any] | None,
    *,
    checkpoint_dir: str | Path,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = False,
) -> tuple[EmbeddingNet, list[dict[str, Any]]]:
    """Train on ``feats[data.rows]`` with classes ``data.labels``; return the network (eval, CPU) and history.

    ``cfg`` holds ``model`` (:data:`.network.DEFAULT_MODEL`), ``arcface`` (scale, margin) and ``train`` (epochs,
    batch_size, lr, optimizer, weight_decay, warmup_epochs; cosine decay). Same seed, same weights; a killed run
    resumes from its last epoch in ``checkpoint_dir``.
    """
    where = "recognition.train"
    if threads:
        torch.set_num_threads(int(threads))
    model_cfg = _merged(cfg, "model", DEFAULT_MODEL)
    arc_cfg = _merged(cfg, "arcface", DEFAULT_ARCFACE)
    tr = _merged(cfg, "train", DEFAULT_TRAIN)
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or data.rows.size == 0 or data.rows.max() >= feats.shape[0]:
        raise DataError(where, f"{feats.shape[0]} feature rows, but the training set indexes up to {data.rows.max()}")
    if not np.isfinite(feats[data.rows]).all():
        raise DataError(where, "training features hold NaN or inf")
    _claim_checkpoint_dir(
        checkpoint_dir,
        {"model": model_cfg, "arcface": arc_cfg, "train": tr, "rows": int(data.rows.size), "classes": data.classes},
    )
    torch.manual_seed(int(seed))
    model = RecognitionModel(feats.shape[1], data.classes, model_cfg, arc_cfg)
    x = torch.from_numpy(np.ascontiguousarray(feats[data.rows]))
    y = torch.from_numpy(data.labels)
    n, batch = x.shape[0], int(tr["batch_size"])
    steps = max(1, n // batch) if n >= batch else 1

    def batches(epoch: int) -> list[np.ndarray]:
        perm = np.random.default_rng([int(seed), 4711, epoch]).permutation(n)
        if n < batch:
            return [perm] if n >= 2 else []
        return [perm[s * batch : (s + 1) * batch] for s in range(steps)]  # drop the ragged tail (BatchNorm)

    def step(m: RecognitionModel, idx: np.ndarray) -> dict[str, torch.Tensor]:
        dev = next(m.parameters()).device
        i = torch.from_numpy(idx)
        return {"total": m.head(m.net(x[i].to(dev)), y[i].to(dev))}

    history = train(
        model,
        batches,
        step,
        epochs=int(tr["epochs"]),
        lr=float(tr["lr"]),
        optimizer=str(tr["optimizer"]),
        weight_decay=float(tr["weight_decay"]),
        schedule="cosine",
        warmup_epochs=float(tr["warmup_epochs"]),
        steps_per_epoch=steps,
        checkpoint_dir=checkpoint_dir,
        seed=int(seed),
        device=device,
        log=log,
        progress=progress,
    )
    return model.net.eval().cpu(), history


@torch.no_grad()
def embed(net: EmbeddingNet, feats: np.ndarray, batch: int = 65536) -> np.ndarray:
    """L2-normalised embeddings of ``feats`` (float32), in batches, in eval mode on the CPU."""
    net.eval()
    out = [
        net.embed(torch.from_numpy(np.ascontiguousarray(feats[s : s + batch], dtype=np.float32))).numpy()
        for s in range(0, feats.shape[0], batch)
    ]
    return np.concatenate(out) if out else np.empty((0, net.neck[-1].num_features), np.float32)
