"""MegaFace challenge 1 identification: rank-1 of each probe against its gallery photo hidden among distractors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError


def _best_distractor(probes: np.ndarray, distractors: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Highest cosine of each probe to any distractor (exact; faiss's flat inner-product search)."""
    import faiss

    index = faiss.IndexFlatIP(distractors.shape[1])
    index.add(np.ascontiguousarray(distractors, dtype=np.float32))
    best = np.empty(probes.shape[0], dtype=np.float32)
    for s in range(0, probes.shape[0], batch):
        sims, _ = index.search(np.ascontiguousarray(probes[s : s + batch], dtype=np.float32), 1)
        best[s : s + batch] = sims[:, 0]
    return best


def megaface_rank1(
    probes: np.ndarray, probe_labels: np.ndarray, distractors: np.ndarray, where: str = "identification"
) -> dict[str, Any]:
    """Rank-1 identification rate of MegaFace challenge 1 on L2-normalised embeddings.

    For every identity of the probe set, each of its photos in turn is the gallery photo, added to the distractors,
    and each other photo of that identity is a probe: the probe is identified at rank 1 when its gallery photo is
    more similar to it than every distractor. Returns the rate over all such (probe, gallery) pairs, the pair
    count, and the identity and distractor counts.
    """
    probes = np.asarray(probes, dtype=np.float32)
    distractors = np.asarray(distractors, dtype=np.float32)
    probe_labels = np.asarray(probe_labels)
    if probes.ndim != 2 or distractors.ndim != 2 or probes.shape[1] != distractors.shape[1]:
        raise DataError(where, f"probes {probes.shape} and distractors {distractors.shape} must be N x D, same D")
    if probe_labels.shape != (probes.shape[0],):
        raise DataError(where, f"{probe_labels.size} probe labels for {probes.shape[0]} probes")
    if not (np.isfinite(probes).all() and np.isfinite(distractors).all()):
        raise DataError(where, "embeddings hold NaN or inf")
    best = _best_distractor(probes, distractors)
    order = np.argsort(probe_labels, kind="stable")
    ids, starts, counts = np.unique(probe_labels[order], return_index=True, return_counts=True)
    hits = pairs = 0
    for s, c in zip(starts, counts, strict=True):
        if c < 2:
            continue  # one photo: it cannot be both gallery and probe
        rows = order[s : s + c]
        sims = probes[rows] @ probes[rows].T  # [probe, gallery]
        ok = sims > best[rows][:, None]
        np.fill_diagonal(ok, False)
        hits += int(ok.sum())
        pairs += int(c * (c - 1))
    if pairs == 0:
        raise DataError(where, "no probe identity has two photos")
    return {
        "rank1": hits / pairs,
        "pairs": pairs,
        "identities": int((counts >= 2).sum()),
        "probe_photos": int(probes.shape[0]),
        "distractors": int(distractors.shape[0]),
    }
