"""Figure 4 on photos: aligned face crops of the parts and of the probe/distractor photos
(clipcluster.images.photo_lists), and the IResNet's training and embedding."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clipcluster.images.faces import align_crop
from clipcluster.images.image_sources import ImageSource
from clipcluster.images.imagefolder import decode_image

from ..errors import DataError
from .data import TrainingSet
from .resnet import DEFAULT_RESNET, IResNet
from .train import DEFAULT_ARCFACE, DEFAULT_TRAIN, fit_arcface, merged

log = logging.getLogger(__name__)


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
