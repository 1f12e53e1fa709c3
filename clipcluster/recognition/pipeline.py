"""One Figure 4 run: train on part0 (+ a pseudo-labelled subset), then MegaFace-style rank-1 on held-out identities."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clipcluster.images.image_sources import ImageSource

from ..errors import DataError
from ..io import load_parts, read_bin, read_meta
from .data import pseudo_labelled
from .identification import megaface_rank1
from .photos import embed_store, identification_store, part_store, train_resnet
from .resnet import DEFAULT_RESNET
from .train import embed, merged, train_recognition

log = logging.getLogger(__name__)


VIEWS = ("face", "clip")


def load_identification(
    paths: Sequence[str | Path], dim: int, view: str = "face"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probe features, probe labels, distractor features) of ``view``: the twin's one ``.npz`` (``probe_<view>``,
    ``distractor_<view>``) or a features dataset's probe ``.bin`` + ``.meta`` and distractor ``.bin`` (face only)."""
    if view not in VIEWS:
        raise DataError("recognition.view", f"unknown view {view!r} (allowed: {', '.join(VIEWS)})")
    if len(paths) == 1:
        keys = (f"probe_{view}", "probe_labels", f"distractor_{view}")
        with np.load(paths[0]) as z:
            missing = set(keys) - set(z.files)
            if missing:
                raise DataError(paths[0], f"lacks {', '.join(sorted(missing))}")
            return tuple(z[k] for k in keys)
    if view != "face":
        raise DataError("recognition.view", f"{view!r} needs the twin's identification set; the files give faces")
    probe_bin, probe_meta, distractor_bin = paths
    probes = read_bin(probe_bin, dim)
    labels = read_meta(probe_meta, expected_rows=probes.shape[0])
    return probes, labels, read_bin(distractor_bin, dim)


def run(
    *,
    face0: str | Path,
    meta0: str | Path,
    subset_faces: Sequence[str | Path],
    subset_metas: Sequence[str | Path],
    pseudo: str | Path | None,
    ident: Sequence[str | Path],
    dim: int,
    cfg: dict[str, Any],
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    threads: int | None,
    view: str = "face",
    progress: bool = True,
) -> tuple[torch.nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """Train one Figure 4 model and evaluate it; returns (network, metrics, training history).

    ``subset_faces`` empty: part0 alone. Else the subset's rows follow part0's, labelled by ``pseudo`` (a method's
    ``.labels``) or, when ``pseudo`` is None, by the subset's true labels (the upper bound). ``face0`` and
    ``subset_faces`` are the ``.bin`` files of ``view`` (``dim`` wide); the probes and distractors are read in it too.
    """
    feats0, labels0 = load_parts([face0], [meta0], dim)
    pseudo_labels = None
    feats = feats0
    if subset_faces:
        feats_s, truth = load_parts(subset_faces, subset_metas, dim)
        pseudo_labels = _subset_labels(truth, pseudo)
        feats = np.concatenate([feats0, feats_s])
        del feats_s
    data = _training_set(labels0, pseudo_labels, cfg, str(pseudo or face0))
    kw = {"checkpoint_dir": checkpoint_dir, "seed": seed, "device": device, "threads": threads, "progress": progress}

    def identification() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probes, probe_labels, distractors = load_identification(ident, dim, view)
        return probes, distractors, probe_labels

    return _train_and_identify(lambda: train_recognition(feats, data, cfg, **kw), embed, identification, data,
                               pseudo_labels)  # fmt: skip


def run_photos(
    *,
    kept0: str | Path,
    subset_kept: Sequence[str | Path],
    pseudo: str | Path | None,
    ident_photos: str | Path,
    source: ImageSource,
    cfg: dict[str, Any],
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    threads: int | None,
    progress: bool = True,
) -> tuple[torch.nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """:func:`run` on photos: the ResNet (``cfg['resnet']``) trained on aligned crops of part0's kept photos and the
    subset's, then rank-1 on the user's probe and distractor photos (``ident_photos``)."""
    size = int(merged(cfg, "resnet", DEFAULT_RESNET)["input_size"])
    store, labels = part_store([kept0, *subset_kept], source, size)
    n0 = len(pd.read_parquet(kept0, columns=["label"]))
    pseudo_labels = None
    if subset_kept:
        pseudo_labels = _subset_labels(labels[n0:], pseudo)
    data = _training_set(labels[:n0], pseudo_labels, cfg, str(pseudo or kept0))
    kw = {"checkpoint_dir": checkpoint_dir, "seed": seed, "device": device, "threads": threads, "progress": progress}
    return _train_and_identify(lambda: train_resnet(store, data, cfg, **kw), embed_store,
                               lambda: identification_store(ident_photos, size), data, pseudo_labels)  # fmt: skip


def _subset_labels(truth: np.ndarray, pseudo: str | Path | None) -> np.ndarray:
    """The subset's labels for training: a method's clusters (``pseudo``), or the truth (the upper bound)."""
    return truth if pseudo is None else read_meta(pseudo, expected_rows=truth.shape[0])


def _train_and_identify(
    train: Any, embed_fn: Any, identification: Any, data: Any, pseudo_labels: np.ndarray | None
) -> tuple[torch.nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """The tail both variants share: ``train() -> (net, history)``, then rank-1 of the embedded probes among the
    embedded distractors (``identification() -> (probes, distractors, probe labels)``), both timed."""
    t0 = time.perf_counter()
    net, history = train()
    train_s = time.perf_counter() - t0
    probes, distractors, probe_labels = identification()
    t0 = time.perf_counter()
    result = megaface_rank1(embed_fn(net, probes), probe_labels, embed_fn(net, distractors))
    return net, _metrics(result, data, pseudo_labels, history, train_s, time.perf_counter() - t0), history


def _training_set(labels0: np.ndarray, pseudo_labels: np.ndarray | None, cfg: dict[str, Any], where: str):
    data = pseudo_labelled(labels0, pseudo_labels, min_size=int(cfg["min_cluster_size"]), where=where)
    if pseudo_labels is not None:
        log.info(
            "pseudo-labelled: %d rows in %d clusters kept, %d rows in clusters under %d dropped",
            data.pseudo,
            data.pseudo_classes,
            data.dropped_singletons,
            cfg["min_cluster_size"],
        )
    return data


def _metrics(
    result: dict[str, Any],
    data: Any,
    pseudo_labels: np.ndarray | None,
    history: list[dict[str, Any]],
    train_s: float,
    eval_s: float,
) -> dict[str, Any]:
    unlabelled = 0 if pseudo_labels is None else int(pseudo_labels.shape[0])
    metrics = {
        **result,
        "labelled_rows": data.labelled,
        "unlabelled_rows": unlabelled,
        "ratio": unlabelled / data.labelled,  # Figure 4's x axis: unlabelled over labelled data
        "pseudo_rows": data.pseudo,
        "pseudo_classes": data.pseudo_classes,
        "dropped_singletons": data.dropped_singletons,
        "classes": data.classes,
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "final_loss": history[-1]["losses"]["total"] if history else None,
    }
    log.info("rank-1 %.4f over %d pairs (%d distractors)", result["rank1"], result["pairs"], result["distractors"])
    return metrics


def raw_rank1(ident: Sequence[str | Path], dim: int, view: str = "face") -> dict[str, Any]:
    """Rank-1 of the input features of ``view`` themselves (no training): a reference for the trained networks."""
    probes, labels, distractors = load_identification(ident, dim, view)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return megaface_rank1(unit(probes.astype(np.float32)), labels, unit(distractors.astype(np.float32)))
