"""Training data for recognition: part0's true labels plus one method's clusters of a test subset as pseudo-labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError


@dataclass
class TrainingSet:
    """Rows of the training features to use and their class ids (0..classes-1), with what was dropped."""

    rows: np.ndarray  # int64 indices into [labelled rows, then unlabelled rows]
    labels: np.ndarray  # int64 class of each kept row
    classes: int
    labelled: int  # rows from the labelled part
    pseudo: int  # pseudo-labelled rows kept
    pseudo_classes: int
    dropped_singletons: int  # pseudo-labelled rows dropped because their cluster had fewer than min_size members


def _dense(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return inv.astype(np.int64), counts


def pseudo_labelled(
    labelled: np.ndarray, pseudo: np.ndarray | None = None, *, min_size: int = 2, where: str = "recognition"
) -> TrainingSet:
    """Classes for training: ``labelled`` (true ids of the labelled part) then ``pseudo`` (cluster ids of the
    unlabelled rows that follow it, or None for the labelled part alone).

    Clusters smaller than ``min_size`` (singletons, by the field's practice) are dropped and counted; the labelled
    part is kept whole. Class ids are renumbered densely, labelled classes first, so a cluster id that equals a true
    id never merges two classes.
    """
    labelled = np.asarray(labelled)
    if labelled.ndim != 1 or labelled.size == 0:
        raise DataError(where, "the labelled part has no labels")
    lab, _ = _dense(labelled)
    n_lab_classes = int(lab.max()) + 1
    rows = [np.arange(labelled.size, dtype=np.int64)]
    labels = [lab]
    kept = pseudo_classes = 0
    dropped = 0
    if pseudo is not None:
        pseudo = np.asarray(pseudo)
        if pseudo.ndim != 1:
            raise DataError(where, f"pseudo-labels must be one per row, got shape {pseudo.shape}")
        inv, counts = _dense(pseudo)
        keep = counts[inv] >= int(min_size)
        dropped = int((~keep).sum())
        cls, _ = _dense(inv[keep]) if keep.any() else (np.empty(0, np.int64), None)
        kept = int(keep.sum())
        pseudo_classes = int(cls.max()) + 1 if kept else 0
        rows.append(labelled.size + np.flatnonzero(keep).astype(np.int64))
        labels.append(n_lab_classes + cls)
    return TrainingSet(
        rows=np.concatenate(rows),
        labels=np.concatenate(labels),
        classes=n_lab_classes + pseudo_classes,
        labelled=int(labelled.size),
        pseudo=kept,
        pseudo_classes=pseudo_classes,
        dropped_singletons=dropped,
    )
