"""Figure 4's probe and distractor photos (MegaFace challenge 1 style), read from the user's lists and embedded.

``probe_list`` is a tab-separated file ``path<TAB>identity`` per line (FaceScrub in MegaFace: every probe identity's
photos; each photo serves once as the gallery photo of the others), and ``distractor_list`` one ``path`` per line
(MegaFace's 1M distractors). Relative paths are taken from the list's folder. Each photo is detected and aligned
with the dataset's own face settings; photos without a face or that do not decode are counted and listed, never
dropped silently. (Apart from clipcluster.recognition so that its rule needs no torch training stack.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from clipcluster.atomic import atomic_path, write_json
from clipcluster.errors import DataError
from clipcluster.images.faces import FaceDetector, make_embedder
from clipcluster.images.imagefolder import decode_image

log = logging.getLogger(__name__)


def read_photo_list(path: str | Path, with_identity: bool) -> pd.DataFrame:
    """``path`` (absolute) and, for probes, ``identity`` of every line; one-line errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "photo list not found")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if with_identity and (len(fields) != 2 or not fields[1].strip()):
            raise DataError(f"{path} line {number}", f"expected 'photo path<TAB>identity', got {line!r}")
        photo = Path(fields[0].strip())
        rows.append(
            (str(photo if photo.is_absolute() else path.parent / photo), fields[1].strip() if with_identity else "")
        )
    if not rows:
        raise DataError(path, "no photos listed")
    return pd.DataFrame(rows, columns=["path", "identity"])


def identification_photos(
    probe_list: str | Path,
    distractor_list: str | Path,
    faces_cfg: dict[str, Any],
    out_npz: str | Path,
    out_parquet: str | Path,
    out_summary: str | Path,
) -> dict[str, Any]:
    """Detect, align and embed (with the dataset's face features) every listed photo.

    Writes the twin's identification layout (``probe_face``, ``probe_labels``, ``distractor_face``: what the
    feature backbone and the input-feature reference read) and a parquet of the kept photos' landmarks (what the
    ResNet reads).
    """
    probes = read_photo_list(probe_list, True).assign(role="probe")
    distractors = read_photo_list(distractor_list, False).assign(role="distractor")
    photos = pd.concat([probes, distractors], ignore_index=True)
    names = sorted(probes["identity"].unique())
    photos["label"] = photos["identity"].map({n: i for i, n in enumerate(names)}).fillna(-1).astype(np.int64)
    detector = FaceDetector(aligned=faces_cfg["aligned"], upsample=faces_cfg["upsample"])
    embedder = make_embedder(faces_cfg["backend"], faces_cfg["onnx_model"], faces_cfg["batch_size"])
    feats, landmarks, kept, skipped = [], [], [], []
    for row in tqdm(photos.itertuples(), total=len(photos), desc="identification photos", mininterval=5.0):
        try:
            rgb = decode_image(row.path)
        except DataError as err:
            skipped.append((row.path, row.role, str(err)))
            continue
        face = detector.detect(rgb)
        if face is None:
            skipped.append((row.path, row.role, f"{row.path}: no face found"))
            continue
        feats.append(embedder.embed([rgb], [face])[0])
        landmarks.append(face.landmarks.reshape(-1))
        kept.append(row.Index)
    table = photos.loc[kept].reset_index(drop=True)
    table["landmarks"] = landmarks
    feats_arr = np.asarray(feats, dtype=np.float32).reshape(len(kept), -1)
    is_probe = (table["role"] == "probe").to_numpy()
    if is_probe.sum() < 2 or (~is_probe).sum() < 1:
        raise DataError(
            probe_list,
            f"{int(is_probe.sum())} probe and {int((~is_probe).sum())} distractor photos "
            "with a face; rank-1 needs at least 2 probes and 1 distractor",
        )
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            probe_face=feats_arr[is_probe],
            probe_labels=table["label"].to_numpy()[is_probe],
            distractor_face=feats_arr[~is_probe],
        )
    with atomic_path(out_parquet) as tmp:
        table.to_parquet(tmp, index=False)
    summary = {
        "probe_photos": int(len(probes)),
        "probe_identities": len(names),
        "distractor_photos": int(len(distractors)),
        "kept_probes": int(is_probe.sum()),
        "kept_distractors": int((~is_probe).sum()),
        "skipped": [{"path": p, "role": r, "reason": why} for p, r, why in skipped],
    }
    write_json(out_summary, summary)
    for path, role, why in skipped:
        log.warning("%s %s left out: %s", role, path, why)
    return summary
