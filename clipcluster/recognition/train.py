"""Train the embedding network with ArcFace on a (pseudo-)labelled set; checkpoints every epoch, resumes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clipcluster.training.loop import train

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
    """A backbone (the MLP on features, or the ResNet on photos) and its ArcFace head (dropped after training)."""

    def __init__(self, net: nn.Module, embed_dim: int, classes: int, arcface: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.head = ArcFaceHead(int(embed_dim), classes, **arcface)


def merged(cfg: dict[str, Any] | None, key: str, default: dict[str, Any]) -> dict[str, Any]:
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
    model_cfg = merged(cfg, "model", DEFAULT_MODEL)
    arc_cfg = merged(cfg, "arcface", DEFAULT_ARCFACE)
    tr = merged(cfg, "train", DEFAULT_TRAIN)
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or data.rows.size == 0 or data.rows.max() >= feats.shape[0]:
        raise DataError(where, f"{feats.shape[0]} feature rows, but the training set indexes up to {data.rows.max()}")
    if not np.isfinite(feats[data.rows]).all():
        raise DataError(where, "training features hold NaN or inf")
    torch.manual_seed(int(seed))
    net = EmbeddingNet(feats.shape[1], **model_cfg)
    x = torch.from_numpy(np.ascontiguousarray(feats[data.rows]))
    history = fit_arcface(
        net,
        int(model_cfg["embed_dim"]),
        lambda idx, epoch: x[torch.from_numpy(idx)],
        data,
        arc_cfg,
        tr,
        claim={"model": model_cfg},
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        device=device,
        progress=progress,
    )
    return net.eval().cpu(), history


def fit_arcface(
    net: nn.Module,
    embed_dim: int,
    batch_input: Callable[[np.ndarray, int], torch.Tensor],
    data: TrainingSet,
    arc_cfg: dict[str, Any],
    tr: dict[str, Any],
    *,
    claim: dict[str, Any],
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """Train ``net`` with an ArcFace head on ``data``; ``batch_input(positions, epoch)`` gives the inputs of the
    training rows at those positions (of ``data.rows``). Checkpoints every epoch in ``checkpoint_dir`` (which
    ``claim`` and the training settings must match) and resumes there. Returns the history."""
    _claim_checkpoint_dir(
        checkpoint_dir,
        {**claim, "arcface": arc_cfg, "train": tr, "rows": int(data.rows.size), "classes": data.classes},
    )
    model = RecognitionModel(net, embed_dim, data.classes, arc_cfg)
    y = torch.from_numpy(data.labels)
    n, batch = int(data.rows.size), int(tr["batch_size"])
    steps = max(1, n // batch) if n >= batch else 1

    def batches(epoch: int) -> list[tuple[int, np.ndarray]]:
        perm = np.random.default_rng([int(seed), 4711, epoch]).permutation(n)
        if n < batch:
            return [(epoch, perm)] if n >= 2 else []
        return [(epoch, perm[s * batch : (s + 1) * batch]) for s in range(steps)]  # no ragged tail (BatchNorm)

    def step(m: RecognitionModel, item: tuple[int, np.ndarray]) -> dict[str, torch.Tensor]:
        epoch, idx = item
        dev = next(m.parameters()).device
        return {"total": m.head(m.net(batch_input(idx, epoch).to(dev)), y[torch.from_numpy(idx)].to(dev))}

    return train(
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


@torch.no_grad()
def embed(net: EmbeddingNet, feats: np.ndarray, batch: int = 65536) -> np.ndarray:
    """L2-normalised embeddings of ``feats`` (float32), in batches, in eval mode on the CPU."""
    net.eval()
    out = [
        net.embed(torch.from_numpy(np.ascontiguousarray(feats[s : s + batch], dtype=np.float32))).numpy()
        for s in range(0, feats.shape[0], batch)
    ]
    return np.concatenate(out) if out else np.empty((0, net.neck[-1].num_features), np.float32)
