"""One folder per identity (WebFace42M's layout, ORL, LFW, a user's photos): the image index and image decoding.

``root/<identity>/<image>``: each folder directly under the root is one identity, named by the folder; the images
are the files directly in it whose extension is one of ``extensions`` (case-insensitive). Order is sorted by
identity name, then file name, so the index (and the labels 0..K-1 in that order) is the same on every machine.
Files are not opened while indexing (millions of them would take hours on a network file system): an image that
does not decode is found when a stage decodes it, and the lenient decoder counts and lists it instead of dropping it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image

from clipcluster.errors import DataError

DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".tif", ".tiff")


class SkippedImage(NamedTuple):
    source: str
    reason: str  # the one-line message the strict decoder would have raised


def _normalise(extensions: Sequence[str]) -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def index_folder(root: str | Path, extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> pd.DataFrame:
    """The image index: ``source`` (path relative to ``root``, '/'-separated), ``label`` (0..K-1), ``identity``.

    Hidden entries (names starting with '.') are ignored; an identity folder without images gets no label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder (expected one sub-folder of images per identity)")
    exts = _normalise(extensions)
    rows: list[tuple[str, int, str]] = []
    label = 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        files = sorted(
            f.name
            for f in os.scandir(entry.path)
            if not f.name.startswith(".") and f.is_file() and os.path.splitext(f.name)[1].lower() in exts
        )
        if files:
            rows.extend((f"{entry.name}/{name}", label, entry.name) for name in files)
            label += 1
    if not rows:
        raise DataError(root, f"no images with extensions {sorted(exts)} in any sub-folder (one folder per identity)")
    return pd.DataFrame(rows, columns=["source", "label", "identity"]).astype({"label": "int64"})


def decode_image(data: bytes | str | Path, where: str | Path | None = None) -> np.ndarray:
    """Decode an image (file path or encoded bytes, e.g. a RecordIO JPEG) to an H x W x 3 uint8 RGB array.

    Raises DataError naming ``where`` (default: the path) for anything Pillow cannot fully decode, truncated
    files included (Pillow only notices those when it loads the pixels, so they are loaded here).
    """
    if where is None:
        where = data if isinstance(data, (str, Path)) else "image bytes"
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(source) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(where, "file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(where, f"not a decodable image: {reason}") from None


class LenientDecoder:
    """Iterates (source, RGB array) over ``root/source`` paths; every image that fails is kept in ``skipped``."""

    def __init__(self, root: str | Path, sources: Iterable[str]) -> None:
        self._root = Path(root)
        self._sources = sources
        self.skipped: list[SkippedImage] = []

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for source in self._sources:
            try:
                yield source, decode_image(self._root / source)
            except DataError as err:
                self.skipped.append(SkippedImage(source, str(err)))
