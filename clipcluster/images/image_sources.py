"""The two image sources behind one interface: InsightFace RecordIO (``mxrecord``) and one folder per identity
(``imagefolder``). Each gives the image index split.py works on and decodes an image by its ``source`` value (a
record key or a path relative to the root), raising a one-line DataError naming the record or file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipcluster.images.imagefolder import DEFAULT_EXTENSIONS, decode_image, index_folder
from clipcluster.images.recordio import RecordReader

SOURCES = ("mxrecord", "imagefolder")


class ImageSource:
    """Index and decode the images of one dataset (``kind`` is ``mxrecord`` or ``imagefolder``)."""

    def __init__(self, kind: str, opts: Mapping[str, Any]) -> None:
        if kind not in SOURCES:
            raise ValueError(f"unknown image source {kind!r}; expected one of {SOURCES}")
        self.kind = kind
        self.opts = dict(opts)
        self._reader: RecordReader | None = None

    @property
    def root(self) -> Path:
        return Path(self.opts["root"])

    def _records(self) -> RecordReader:
        if self._reader is None:
            rec = self.root / self.opts.get("rec", "train.rec")
            self._reader = RecordReader(rec, self.root / self.opts.get("idx", "train.idx"))
        return self._reader

    def index(self) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
        """(index with ``source``, ``label``, ``identity``; [(source, reason)] of records that have no label).

        ``source`` is a string in both cases (a RecordIO key as text), so part tables have one schema.
        """
        if self.kind == "imagefolder":
            return index_folder(self.root, self.opts.get("extensions") or DEFAULT_EXTENSIONS), []
        table, skipped = self._records().image_index()
        table["source"] = table["source"].astype(str)
        return table, [(str(s.key), s.reason) for s in skipped]

    def where(self, source: str) -> str:
        """How an error names this image: the file, or the RecordIO file and key."""
        if self.kind == "imagefolder":
            return str(self.root / source)
        return self._records().where(int(source))

    def decode(self, source: str) -> np.ndarray:
        """H x W x 3 uint8 RGB; DataError (naming the file or record) for anything unreadable."""
        if self.kind == "imagefolder":
            return decode_image(self.root / source)
        record = self._records().read_image(int(source))
        return decode_image(record.image, self.where(int(source)))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
