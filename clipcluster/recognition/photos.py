"""Figure 4 on photos: the user's probe and distractor lists, aligned face crops, and the ResNet's training data.

Lists (MegaFace challenge 1 style): ``probe_list`` is a tab-separated file ``path<TAB>identity`` per line (FaceScrub
in MegaFace: every probe identity's photos; each photo serves once as the gallery photo of the others), and
``distractor_list`` one ``path`` per line (MegaFace's 1M distractors). Relative paths are taken from the list's
folder. Each photo is detected and aligned with the dataset's own face settings; photos without a face or that do
not decode are counted and listed, never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..errors import DataError
from ..faces import FaceDetector, align_crop, make_embedder
from ..image_sources import ImageSource
from ..imagefolder import decode_image
from .data import TrainingSet
from .resnet import DEFAULT_RESNET, IResNet
from .train import DEFAULT_ARCFACE, DEFAULT_TRAIN, fit_arcface, merged

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


class CropStore:
    """Aligned face crops by row, decoded on demand; kept in memory while they fit ``cache_bytes``."""

    def __init__(
        self,
        decode: Callable[[int], np.ndarray],
        landmarks: Sequence[np.ndarray],
        size: int,
        cache_bytes: int = 2 << 30,
    ) -> None:
        self._decode = decode
        self._landmarks = [np.asarray(lm, dtype=np.float32).reshape(-1, 2) for lm in landmarks]
        self.size = int(size)
        self._cache: np.ndarray | None = None
        if len(self._landmarks) * size * size * 3 <= cache_bytes:
            self._cache = np.stack([self._crop(i) for i in range(len(self._landmarks))]) if self._landmarks else None

    def __len__(self) -> int:
        return len(self._landmarks)

    def _crop(self, i: int) -> np.ndarray:
        return align_crop(self._decode(i), self._landmarks[i], self.size)

    def batch(self, rows: np.ndarray, flip: np.ndarray | None = None) -> torch.Tensor:
        """n x 3 x S x S float tensor, (x - 127.5) / 127.5, horizontally flipped where ``flip``."""
        crops = self._cache[rows] if self._cache is not None else np.stack([self._crop(int(i)) for i in rows])
        if flip is not None:
            crops = np.where(flip[:, None, None, None], crops[:, :, ::-1], crops)
        x = (crops.astype(np.float32) - 127.5) / 127.5
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def part_store(kept_paths: Sequence[str | Path], source: ImageSource, size: int) -> tuple[CropStore, np.ndarray]:
    """The crops of parts' kept photos (``faces/<part>.kept.parquet``, in order) and their labels."""
    kept = pd.concat([pd.read_parquet(p) for p in kept_paths], ignore_index=True)
    sources = kept["source"].tolist()
    return CropStore(lambda i: source.decode(sources[i]), kept["landmarks"].tolist(), size), kept["label"].to_numpy()


def identification_store(parquet: str | Path, size: int) -> tuple[CropStore, CropStore, np.ndarray]:
    """(probe crops, distractor crops, probe labels) from :func:`identification_photos`' parquet."""
    table = pd.read_parquet(parquet)
    out = []
    for role in ("probe", "distractor"):
        rows = table[table["role"] == role]
        paths = rows["path"].tolist()
        out.append(CropStore(lambda i, paths=paths: decode_image(paths[i]), rows["landmarks"].tolist(), size))
    return out[0], out[1], table.loc[table["role"] == "probe", "label"].to_numpy()


def train_resnet(
    store: CropStore,
    data: TrainingSet,
    cfg: dict[str, Any],
    *,
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    threads: int | None,
    progress: bool = False,
) -> tuple[IResNet, list[dict[str, Any]]]:
    """Train the ResNet with ArcFace on the crops ``data.rows`` (random horizontal flips, seeded)."""
    if threads:
        torch.set_num_threads(int(threads))
    res_cfg = merged(cfg, "resnet", DEFAULT_RESNET)
    if res_cfg["input_size"] != store.size:
        raise DataError("recognition.resnet.input_size", f"{res_cfg['input_size']}, but the crops are {store.size}")
    torch.manual_seed(int(seed))
    net = IResNet(**res_cfg)

    def batch_input(positions: np.ndarray, epoch: int) -> torch.Tensor:
        flip = np.random.default_rng([int(seed), 917, epoch, int(positions[0])]).random(positions.size) < 0.5
        return store.batch(data.rows[positions], flip)

    history = fit_arcface(
        net,
        int(res_cfg["embed_dim"]),
        batch_input,
        data,
        merged(cfg, "arcface", DEFAULT_ARCFACE),
        merged(cfg, "train", DEFAULT_TRAIN),
        claim={"resnet": res_cfg},
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        device=device,
        progress=progress,
    )
    return net.eval().cpu(), history


@torch.no_grad()
def embed_store(net: IResNet, store: CropStore, batch: int = 256) -> np.ndarray:
    """L2-normalised embeddings of every crop of ``store``, in eval mode on the CPU."""
    net.eval()
    out = [
        net.embed(store.batch(np.arange(s, min(s + batch, len(store))))).numpy() for s in range(0, len(store), batch)
    ]
    return np.concatenate(out) if out else np.empty((0, net.features.num_features), np.float32)
