"""The per-image stages of real data, one shard at a time, and the gather that turns shards into a part's files.

A shard is a fixed row range of a part's image index (clipcluster.images.shards). Every stage uses the same ranges:

* ``faces``: decode, detect, 68 landmarks, face features. Each row gets a status: ``ok``, ``no_face`` or
  ``unreadable`` (with the reason, one line naming the file or record). Nothing is dropped silently: the gather
  lists every row that is not ``ok`` in ``faces/{part}.skipped.tsv`` and counts them in ``faces/{part}.json``.
* ``clip``: the CLIP image embedding of every ``ok`` row's aligned crop (landmarks from the faces shard).
* ``attributes``: gender, age, expression, yaw of every ``ok`` row (clipcluster.images.attributes backends).

The gather writes what the rest of the workflow reads for any dataset: ``faces/{part}.bin``, ``parts/{part}.meta``,
``clip/{part}.bin``, ``attributes/{part}.parquet``, all over the ``ok`` rows in index order, plus
``faces/{part}.kept.parquet`` (those rows' source, label, identity, box, landmarks) for figures and tracing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from clipcluster.atomic import atomic_path, write_json
from clipcluster.errors import DataError
from clipcluster.images.faces import N_LANDMARKS, Face, FaceDetector, FaceEmbedder, align_crop
from clipcluster.images.image_sources import ImageSource
from clipcluster.images.shards import shard_bounds
from clipcluster.images.split import assign_parts, check_index, read_part, read_part_lists, split_identities, write_part
from clipcluster.io import write_bin, write_meta

log = logging.getLogger("clipcluster.images")
STATUSES = ("ok", "no_face", "unreadable")
CLIP_CROP = 224  # CLIP's input size; open_clip's preprocessing resizes again for other models
CLIP_PADDING = 0.25  # CLIP was trained on whole photos: give it the face with some context, not ArcFace's tight crop


def split_dataset(
    kind: str,
    images: dict[str, Any],
    split: dict[str, Any],
    parts: Sequence[str],
    index_out: str | Path,
    part_outs: Sequence[str | Path],
    summary_out: str | Path,
) -> dict[str, Any]:
    """Index the photos and write each part's index: equal random parts by identity, or the user's part lists."""
    source = ImageSource(kind, images)
    index, unlabelled = source.index()
    source.close()
    check_index(index, index_out)
    if split["part_lists"]:
        lists = read_part_lists(split["part_lists"])
        missing = [p for p in parts if p not in lists]
        if missing:
            raise DataError(split["part_lists"], f"no list for parts {missing} (the dataset's parts are {list(parts)})")
        assigned = assign_parts(index, {p: lists[p] for p in parts}, split["part_lists"])
    else:
        named = dict(zip(parts, split_identities(index["identity"].tolist(), len(parts), split["seed"]), strict=True))
        assigned = assign_parts(index, named, index_out)
    with atomic_path(index_out) as tmp:
        index.to_parquet(tmp, index=False)
    for part, path in zip(parts, part_outs, strict=True):
        write_part(assigned[part], path)
    summary = {
        "photos": int(len(index)),
        "identities": int(index["label"].nunique()),
        "unlabelled_records": len(unlabelled),
        "unlabelled": [f"{src}: {why}" for src, why in unlabelled[:100]],
        "parts": {p: {"photos": int(len(t)), "identities": int(t["label"].nunique())} for p, t in assigned.items()},
        "not_in_any_part": int(len(index) - sum(len(t) for t in assigned.values())),
    }
    for src, why in unlabelled:
        log.warning("skipped record %s: %s", src, why)
    write_json(summary_out, summary)
    return summary


def read_shard_rows(index_path: str | Path, shard_size: int, shard: int) -> pd.DataFrame:
    """The rows of shard number ``shard`` of a part's index."""
    index = read_part(index_path)
    bounds = shard_bounds(len(index), shard_size)
    if not 0 <= shard < len(bounds):
        raise DataError(index_path, f"shard {shard} does not exist: {len(index)} rows in shards of {shard_size}")
    start, stop = bounds[shard]
    return index.iloc[start:stop].reset_index(drop=True)


def attribute_backend(
    cfg: dict[str, Any], clip_cfg: dict[str, Any], prompts_path: str | Path | None, seed: int, logger: Any = None
) -> Any:
    """The configured AttributeBackend; the ``clip`` one gets the CLIP encoder and the prompts' text embeddings."""
    from clipcluster.images.attributes import make_backend

    options = dict(cfg["options"])
    if cfg["backend"] == "clip":
        from clipcluster.images.clip_encoders import encode_images, load_clip, resolve_device
        from clipcluster.prompt_file import read_prompts

        if prompts_path is None:
            raise DataError("attributes.backend", "the clip backend needs prompts/text.npz")
        encoder = load_clip(
            clip_cfg["model"], clip_cfg["pretrained"], device=resolve_device(clip_cfg["device"], logger), seed=seed
        )
        table, emb = read_prompts(prompts_path)
        options.update(
            encode_images=lambda crops: encode_images(encoder, crops, clip_cfg["batch_size"]),
            prompt_table=table,
            text_emb=emb,
        )
    return make_backend(cfg["backend"], **options)


def _progress(n: int, what: str) -> tqdm:
    return tqdm(total=n, desc=what, unit="img", mininterval=5.0, file=None)


def faces_shard(
    rows: pd.DataFrame,
    source: ImageSource,
    detector: FaceDetector,
    embedder: FaceEmbedder,
    out: str | Path,
    batch_size: int = 32,
) -> dict[str, int]:
    """Detect and embed the faces of ``rows``; write one npz (per-row status and geometry, features of ok rows)."""
    n = len(rows)
    status = np.full(n, "ok", dtype=object)
    reason = np.full(n, "", dtype=object)
    n_detected = np.zeros(n, dtype=np.int32)
    boxes = np.full((n, 4), np.nan, dtype=np.float32)
    landmarks = np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32)
    feats: list[np.ndarray] = []
    pending: list[tuple[np.ndarray, Face]] = []

    def flush() -> None:
        if pending:
            feats.append(embedder.embed([p[0] for p in pending], [p[1] for p in pending]))
            pending.clear()

    with _progress(n, "faces") as bar:
        for row, src in enumerate(rows["source"]):
            bar.update(1)
            try:
                rgb = source.decode(src)
            except DataError as err:
                status[row], reason[row] = "unreadable", str(err)
                continue
            face = detector.detect(rgb)
            if face is None:
                status[row], reason[row] = "no_face", f"{source.where(src)}: no face found"
                continue
            n_detected[row], boxes[row], landmarks[row] = face.n_detected, face.box, face.landmarks
            pending.append((rgb, face))
            if len(pending) >= batch_size:
                flush()
    flush()
    features = np.concatenate(feats) if feats else np.zeros((0, embedder.dim), dtype=np.float32)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            status=status.astype(str),
            reason=reason.astype(str),
            n_detected=n_detected,
            box=boxes,
            landmarks=landmarks,
            features=features,
        )
    counts = {s: int((status == s).sum()) for s in STATUSES}
    counts["multi_face"] = int((n_detected > 1).sum())
    return counts


def read_faces_shard(path: str | Path, rows: int | None = None) -> dict[str, np.ndarray]:
    """A faces shard, checked: row count (when given) and one feature row per ok row."""
    try:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as err:
        raise DataError(path, f"not a readable faces shard: {str(err).splitlines()[0]}") from None
    if rows is not None and data["status"].shape[0] != rows:
        raise DataError(path, f"{data['status'].shape[0]} rows, expected {rows} (the shard's index range)")
    n_ok = int((data["status"] == "ok").sum())
    if data["features"].shape[0] != n_ok:
        raise DataError(path, f"{data['features'].shape[0]} feature rows for {n_ok} faces")
    return data


def _ok_faces(rows: pd.DataFrame, faces: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    ok = np.flatnonzero(faces["status"] == "ok")
    return [(rows["source"].iloc[i], faces["landmarks"][i], faces["box"][i]) for i in ok]


def clip_shard(
    rows: pd.DataFrame,
    faces: dict[str, np.ndarray],
    source: ImageSource,
    encode: Callable[[list[np.ndarray]], np.ndarray],
    out: str | Path,
    batch_size: int = 64,
) -> int:
    """CLIP image embeddings (ok rows, in order) of aligned face crops; writes an N_ok x 512 float32 ``.npy``."""
    todo = _ok_faces(rows, faces)
    chunks: list[np.ndarray] = []
    with _progress(len(todo), "clip") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            crops = [align_crop(source.decode(src), lm, CLIP_CROP, CLIP_PADDING) for src, lm, _ in batch]
            chunks.append(encode(crops))
            bar.update(len(batch))
    emb = np.concatenate(chunks) if chunks else np.zeros((0, 512), dtype=np.float32)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb.astype(np.float32))
    return int(emb.shape[0])


def attributes_shard(
    rows: pd.DataFrame,
    faces: dict[str, np.ndarray],
    source: ImageSource,
    backend: Any,
    out: str | Path,
    batch_size: int = 32,
) -> int:
    """Attributes of the ok rows (in order) from an ``AttributeBackend``; writes parquet."""
    todo = _ok_faces(rows, faces)
    tables: list[pd.DataFrame] = []
    with _progress(len(todo), "attributes") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            images = [source.decode(src) for src, _, _ in batch]
            tables.append(backend.estimate(images, [lm for _, lm, _ in batch], [box for _, _, box in batch]))
            bar.update(len(batch))
    table = pd.concat(tables, ignore_index=True) if tables else None
    if table is None:
        from clipcluster.images.attributes import ATTRIBUTE_COLUMNS

        table = pd.DataFrame({c: [] for c in ATTRIBUTE_COLUMNS})
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    return len(table)


def gather_part(
    index: pd.DataFrame,
    shard_size: int,
    faces_paths: Sequence[str | Path],
    clip_paths: Sequence[str | Path],
    attribute_paths: Sequence[str | Path],
    out: dict[str, str | Path],
    feature_dim: int | None = None,
) -> dict[str, Any]:
    """Concatenate a part's shards (checked against their index ranges) into the part's files; returns the summary."""
    bounds = shard_bounds(len(index), shard_size)
    for name, paths in (("faces", faces_paths), ("clip", clip_paths), ("attributes", attribute_paths)):
        if len(paths) != len(bounds):
            raise DataError(out["bin"], f"{len(paths)} {name} shards, expected {len(bounds)}")
    status, reason, n_det, boxes, lms, feats, clips, attrs = [], [], [], [], [], [], [], []
    for (start, stop), fp, cp, ap in zip(bounds, faces_paths, clip_paths, attribute_paths, strict=True):
        faces = read_faces_shard(fp, stop - start)
        n_ok = faces["features"].shape[0]
        if feature_dim is not None and n_ok and faces["features"].shape[1] != feature_dim:
            raise DataError(fp, f"{faces['features'].shape[1]}-d features, the dataset's feature_dim is {feature_dim}")
        feats.append(faces["features"])
        clip = np.load(cp)
        if clip.shape[0] != n_ok:
            raise DataError(cp, f"{clip.shape[0]} CLIP rows, expected {n_ok} (the faces shard's ok rows)")
        attr = pd.read_parquet(ap)
        if len(attr) != n_ok:
            raise DataError(ap, f"{len(attr)} attribute rows, expected {n_ok} (the faces shard's ok rows)")
        status.append(faces["status"])
        reason.append(faces["reason"])
        n_det.append(faces["n_detected"])
        boxes.append(faces["box"])
        lms.append(faces["landmarks"])
        clips.append(clip)
        attrs.append(attr)
    status_all = np.concatenate(status) if status else np.zeros(0, dtype=str)
    ok = status_all == "ok"
    kept = index.loc[ok].reset_index(drop=True)
    face = np.concatenate(feats) if feats else np.zeros((0, 0), dtype=np.float32)
    write_bin(out["bin"], face)
    write_meta(out["meta"], kept["label"].to_numpy(dtype=np.int64))
    write_bin(out["clip"], np.concatenate(clips) if clips else np.zeros((0, 512), dtype=np.float32))
    with atomic_path(out["attributes"]) as tmp:
        pd.concat(attrs, ignore_index=True).to_parquet(tmp, index=False)
    kept["n_detected"] = np.concatenate(n_det)[ok]
    kept["box"] = list(np.concatenate(boxes)[ok])
    kept["landmarks"] = [lm.reshape(-1) for lm in np.concatenate(lms)[ok]]
    with atomic_path(out["kept"]) as tmp:
        kept.to_parquet(tmp, index=False)
    skipped = index.loc[~ok, ["source", "label", "identity"]].assign(
        status=status_all[~ok], reason=np.concatenate(reason)[~ok] if reason else []
    )
    with atomic_path(out["skipped"]) as tmp:
        skipped.to_csv(tmp, sep="\t", index=False)
    summary = {
        "images": int(len(index)),
        **{s: int((status_all == s).sum()) for s in STATUSES},
        "multi_face": int((np.concatenate(n_det) > 1).sum()) if n_det else 0,
        "identities": int(index["label"].nunique()),
        "identities_kept": int(kept["label"].nunique()),
        "feature_dim": int(face.shape[1]) if face.size else 0,
    }
    write_json(out["summary"], summary)
    return summary
