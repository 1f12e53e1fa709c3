"""InsightFace RecordIO (``train.rec`` + ``train.idx``, e.g. MS1M-ArcFace) read and written in pure Python, no mxnet.

The format, as followed here (public sources, read for this module):

- framing, from dmlc-core ``include/dmlc/recordio.h`` and ``src/recordio.cc`` (the current version, magic
  0xced7230a): every record is ``magic`` (uint32 LE), ``lrec`` (uint32 LE: continuation flag ``cflag`` in the upper
  3 bits, payload length in the lower 29), the payload, then zero padding to a multiple of 4 bytes. When the payload
  holds the magic at a 4-byte-aligned offset the writer cuts it there and drops those 4 bytes: cflag 1 starts such a
  record, 2 continues it, 3 ends it (0 is a whole record); the reader joins the parts with the magic between them.
- ``.idx``, from mxnet ``python/mxnet/recordio.py`` (``MXIndexedRecordIO``): one ``"{key}\\t{offset}\\n"`` line per
  record, the byte offset of its first part.
- the record payload, from the same file (``pack``/``unpack``): the header ``struct.pack("IfQQ", flag, label, id,
  id2)``; when ``flag > 0`` the label is instead ``flag`` float32 values that follow the header; the image bytes
  (JPEG as InsightFace ships them) are the rest.
- the InsightFace layout, from insightface ``src/data/face2rec2.py`` and ``src/data/dataset_merge.py`` (writers) and
  ``recognition/arcface_torch/dataset.py`` (reader): key 0 is a header record with ``flag > 0`` and
  ``label = (a, b)``: images are keys ``1 .. a-1``, identity records keys ``a .. b-1``, and identity record ``k`` has
  ``label = (start, end)``, the image keys of that identity. An image's class is its label, or ``label[0]`` when it
  carries several (face2rec2 writes ``[class, aligned]``). Without such a header every key is an image
  (arcface_torch does the same).

``write_recordio`` output was compared once with mxnet 1.9.1's (``MXIndexedRecordIO`` + ``pack``, split records
included): byte-identical, and mxnet read it back; tests/test_recordio.py keeps mxnet's bytes for one small file.
Reading is strict (``read_*``, ``iter_images``: the first fault raises a one-line DataError naming the file, the key
and what was expected) or lenient (``iter_images_lenient``, ``image_index``: faults are skipped and listed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pandas as pd

from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LEN_BITS = 29
_LEN_MASK = (1 << _LEN_BITS) - 1
_IR_FORMAT = "<IfQQ"  # mxnet packs with native order ("IfQQ"), which is little-endian on every machine it ships for
_IR_SIZE = struct.calcsize(_IR_FORMAT)  # 24


class IRHeader(NamedTuple):
    """mxnet's record header; ``label`` is a float, or a tuple of floats when ``flag > 0``."""

    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int


class ImageRecord(NamedTuple):
    key: int
    label: int
    image: bytes


class SkippedRecord(NamedTuple):
    key: int
    reason: str  # the one-line message the strict reader would have raised


@dataclass(frozen=True)
class InsightFaceHeader:
    """What key 0 says: images are keys ``1 .. first_identity_key - 1``, identity records the keys after."""

    first_identity_key: int
    end_key: int

    @property
    def image_keys(self) -> range:
        return range(1, self.first_identity_key)

    @property
    def identity_keys(self) -> range:
        return range(self.first_identity_key, self.end_key)


# ---- payload: IRHeader + labels + image ----------------------------------------------------------------------


def pack(header: IRHeader, data: bytes) -> bytes:
    """mxnet ``recordio.pack``: a tuple label sets ``flag`` to its length and is stored as float32 after the header."""
    if isinstance(header.label, (int, float, np.integer, np.floating)):
        return struct.pack(_IR_FORMAT, 0, float(header.label), header.id, header.id2) + data
    label = np.asarray(header.label, dtype="<f4").ravel()
    if label.size == 0:
        raise ValueError("a tuple label needs at least one value")
    return struct.pack(_IR_FORMAT, label.size, 0.0, header.id, header.id2) + label.tobytes() + data


def unpack(payload: bytes, where: str = "record") -> tuple[IRHeader, bytes]:
    """mxnet ``recordio.unpack``; ``where`` names the file and key in the error if the payload is too short."""
    if len(payload) < _IR_SIZE:
        raise DataError(where, f"payload of {len(payload)} bytes is shorter than the {_IR_SIZE}-byte IRHeader")
    flag, label, id_, id2 = struct.unpack_from(_IR_FORMAT, payload)
    rest = payload[_IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise DataError(where, f"IRHeader flag {flag} needs {4 * flag} label bytes but {len(rest)} follow")
        label = tuple(float(x) for x in np.frombuffer(rest, dtype="<f4", count=flag))
        rest = rest[4 * flag :]
    return IRHeader(flag, label, id_, id2), rest


def class_label(header: IRHeader, where: str) -> int:
    """An image's identity class: the label, or the first of several (InsightFace's face2rec2 layout)."""
    value = header.label[0] if isinstance(header.label, tuple) else header.label
    if not np.isfinite(value) or value != int(value) or value < 0:
        raise DataError(where, f"label {value!r} is not a non-negative integer class")
    return int(value)


# ---- framing ---------------------------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """dmlc ``RecordIOWriter::WriteRecord``: magic + lrec + data + padding, cut at aligned copies of the magic."""
    if len(payload) >= 1 << _LEN_BITS:
        raise ValueError(f"RecordIO records must be shorter than 2^29 bytes, got {len(payload)}")
    out = bytearray()
    start = 0
    i = payload.find(_MAGIC_BYTES)
    while i != -1:  # dmlc checks every aligned word; find() skips to candidates (a JPEG rarely holds one)
        if i % 4:
            i = payload.find(_MAGIC_BYTES, i + 1)
            continue
        out += _MAGIC_BYTES + struct.pack("<I", (1 if start == 0 else 2) << _LEN_BITS | (i - start))
        out += payload[start:i]
        start = i + 4
        i = payload.find(_MAGIC_BYTES, start)
    last = len(payload) - start
    out += _MAGIC_BYTES + struct.pack("<I", (3 if start else 0) << _LEN_BITS | last) + payload[start:]
    out += b"\0" * (-len(payload) % 4)  # the writer pads the whole record's length, which equals the parts' padding
    return bytes(out)


def _read_record(fh: BinaryIO, offset: int, size: int, where: str) -> tuple[bytes, int]:
    """The payload starting at ``offset`` (parts joined) and the offset after it; DataError on any framing fault."""
    parts: list[bytes] = []
    pos = offset
    while True:
        if pos + 8 > size:
            raise DataError(where, f"truncated: record head at offset {pos} needs 8 bytes but the file ends at {size}")
        fh.seek(pos)
        magic, lrec = struct.unpack("<II", fh.read(8))
        if magic != MAGIC:
            raise DataError(where, f"bad magic 0x{magic:08x} at offset {pos}, expected 0x{MAGIC:08x} (corrupt record)")
        cflag, length = lrec >> _LEN_BITS, lrec & _LEN_MASK
        expected = (0, 1) if not parts else (2, 3)
        if cflag not in expected:
            raise DataError(where, f"continuation flag {cflag} at offset {pos}, expected one of {expected}")
        padded = (length + 3) & ~3
        if pos + 8 + padded > size:
            raise DataError(
                where, f"truncated: record of {length} bytes at offset {pos} runs past the end of the file ({size})"
            )
        parts.append(fh.read(length))
        pos += 8 + padded
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts), pos


def read_idx(path: str | Path) -> dict[int, int]:
    """The ``.idx`` as {key: offset} in file order; error names the first bad line."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    index: dict[int, int] = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                key, offset = int(fields[0]), int(fields[1])
                if len(fields) != 2 or offset < 0:
                    raise ValueError
            except (ValueError, IndexError):
                raise DataError(path, f"line {lineno}: {line.strip()!r} is not 'key<TAB>offset'") from None
            if key in index:
                raise DataError(path, f"line {lineno}: key {key} is listed twice")
            index[key] = offset
    return index


def scan_rec(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Every record of a ``.rec`` in file order as (offset, payload), without the ``.idx`` (strict)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            payload, nxt = _read_record(fh, pos, size, f"{path} at offset {pos}")
            yield pos, payload
            pos = nxt


# ---- reader ------------------------------------------------------------------------------------------------------


class RecordReader:
    """Random access to an indexed ``.rec`` by key, as mxnet's ``MXIndexedRecordIO`` gives, plus image iteration."""

    def __init__(self, rec_path: str | Path, idx_path: str | Path | None = None) -> None:
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        if not self.rec_path.exists():
            raise DataError(self.rec_path, "file not found")
        self.index = read_idx(self.idx_path)
        self.size = self.rec_path.stat().st_size
        self._fh: BinaryIO = open(self.rec_path, "rb")
        self.header = self._insightface_header()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def keys(self) -> list[int]:
        return list(self.index)

    def where(self, key: int) -> str:
        """How messages name a record: the file and the key (pass it to imagefolder.decode_image)."""
        return f"{self.rec_path} key {key}"

    def read_raw(self, key: int) -> bytes:
        """The payload of record ``key`` (strict: DataError naming the file, the key and what was expected)."""
        if key not in self.index:
            raise DataError(self.idx_path, f"key {key} is not in the index ({len(self.index)} keys)")
        offset = self.index[key]
        if offset >= self.size:
            raise DataError(self.where(key), f"index offset {offset} is past the end of the file ({self.size} bytes)")
        return _read_record(self._fh, offset, self.size, self.where(key))[0]

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        return unpack(self.read_raw(key), self.where(key))

    def read_image(self, key: int) -> ImageRecord:
        header, image = self.read(key)
        if not image:
            raise DataError(self.where(key), "record has no image bytes (an identity or header record?)")
        return ImageRecord(key, class_label(header, self.where(key)), image)

    def read_label(self, key: int) -> int:
        """An image's class without reading its image bytes (one small read per key, so indexing millions is quick)."""
        offset = self.index.get(key)
        if offset is not None and offset + 8 + _IR_SIZE <= self.size:
            self._fh.seek(offset)
            magic, lrec = struct.unpack("<II", self._fh.read(8))
            length = lrec & _LEN_MASK
            # The fast path covers whole records (cflag 0) whose framing is sound; the rest take the strict read.
            if magic == MAGIC and lrec >> _LEN_BITS == 0 and offset + 8 + ((length + 3) & ~3) <= self.size:
                head = self._fh.read(min(length, _IR_SIZE))
                flag = struct.unpack_from(_IR_FORMAT, head)[0] if len(head) == _IR_SIZE else -1
                if flag >= 0 and length > _IR_SIZE + 4 * flag:  # labels fit and image bytes follow
                    head += self._fh.read(4 * flag)
                    return class_label(unpack(head, self.where(key))[0], self.where(key))
        return self.read_image(key).label

    def _insightface_header(self) -> InsightFaceHeader | None:
        """InsightFace's key 0: ``flag > 0``, label ``(a, b)``, no image bytes (im2rec images have some)."""
        if 0 not in self.index:
            return None
        header, rest = self.read(0)
        if header.flag <= 0 or rest:
            return None  # a plain im2rec file: key 0 is an image
        label = header.label
        if len(label) < 2 or not 1 <= label[0] <= label[1]:
            raise DataError(self.where(0), f"header label {label}, expected (first identity key a, end key b), 1<=a<=b")
        return InsightFaceHeader(int(label[0]), int(label[1]))

    def image_keys(self, *, check: bool = True) -> list[int]:
        """Keys of the image records: ``1 .. a-1`` under an InsightFace header, else every key in the index.

        With ``check`` every key of the header's range must be in the index (one error for all that are missing);
        the lenient readers pass ``check=False`` and skip each missing key as they reach it.
        """
        if self.header is None:
            return self.keys
        if check:
            missing = [k for k in self.header.image_keys if k not in self.index]
            if missing:
                raise DataError(
                    self.idx_path,
                    f"{len(missing)} image keys of the header's range 1..{self.header.first_identity_key - 1} are "
                    f"missing from the index, first {missing[0]}",
                )
        return list(self.header.image_keys)

    def identity_ranges(self) -> dict[int, range]:
        """{identity record key: range of its image keys} from the identity records (InsightFace header only)."""
        if self.header is None:
            return {}
        out = {}
        for key in self.header.identity_keys:
            label = self.read(key)[0].label
            if not isinstance(label, tuple) or len(label) < 2:
                raise DataError(self.where(key), f"identity record label {label!r}, expected (start key, end key)")
            out[key] = range(int(label[0]), int(label[1]))
        return out

    def iter_images(self, keys: Iterable[int] | None = None) -> Iterator[ImageRecord]:
        """Image records in key order (strict: the first bad record raises)."""
        for key in self.image_keys() if keys is None else keys:
            yield self.read_image(key)

    def iter_images_lenient(self, keys: Iterable[int] | None = None) -> LenientImages:
        """Image records, skipping bad ones: the returned iterator's ``skipped`` lists them as the loop goes."""
        return LenientImages(self, self.image_keys(check=False) if keys is None else keys)

    def image_index(self, keys: Iterable[int] | None = None) -> tuple[pd.DataFrame, list[SkippedRecord]]:
        """The index split.py works on (``source`` = key, ``label``, ``identity``) and the records that had no label."""
        rows: list[tuple[int, int]] = []
        skipped: list[SkippedRecord] = []
        for key in self.image_keys(check=False) if keys is None else keys:
            try:
                rows.append((key, self.read_label(key)))
            except DataError as err:
                skipped.append(SkippedRecord(key, str(err)))
        table = pd.DataFrame(rows, columns=["source", "label"]).astype({"source": "int64", "label": "int64"})
        table["identity"] = table["label"].astype(str)
        return table, skipped


class LenientImages:
    """Iterates (key, label, image) and keeps a SkippedRecord for every record that fails, so a run goes on."""

    def __init__(self, reader: RecordReader, keys: Iterable[int]) -> None:
        self._reader = reader
        self._keys = keys
        self.skipped: list[SkippedRecord] = []

    def __iter__(self) -> Iterator[ImageRecord]:
        for key in self._keys:
            try:
                yield self._reader.read_image(key)
            except DataError as err:
                self.skipped.append(SkippedRecord(key, str(err)))


# ---- writer -------------------------------------------------------------------------------------------------------


def write_recordio(
    path_rec: str | Path,
    path_idx: str | Path,
    items: Iterable[tuple[int | float | Sequence[float], bytes]],
    *,
    insightface_header: bool = True,
) -> None:
    """Write (label, image bytes) items as ``.rec`` + ``.idx`` that this reader and mxnet both read, atomically.

    With ``insightface_header`` the layout is InsightFace's (``dataset_merge.py`` order: images as keys 1..n, one
    identity record per run of equal class labels, then the header as key 0, last in the file); each class must
    form one contiguous run, as in MS1M-ArcFace. Without it the items are keys 0..n-1 (plain im2rec).
    """
    with atomic_path(path_rec) as tmp_rec, atomic_path(path_idx) as tmp_idx:
        with open(tmp_rec, "wb") as rec, open(tmp_idx, "w") as idx:

            def put(key: int, header: IRHeader, data: bytes) -> None:
                idx.write(f"{key}\t{rec.tell()}\n")
                rec.write(frame(pack(header, data)))

            first = 1 if insightface_header else 0
            runs: list[list[int]] = []  # [class, start key, end key]
            seen: set[int] = set()
            key = first
            for label, image in items:
                header = IRHeader(0, tuple(map(float, label)) if isinstance(label, Sequence) else float(label), key, 0)
                cls = class_label(header, f"item {key - first}")
                put(key, header, image)
                if insightface_header and runs and runs[-1][0] == cls:
                    runs[-1][2] = key + 1
                elif insightface_header:  # a plain file needs no identity runs
                    if cls in seen:
                        raise ValueError(f"item {key - first}: class {cls} appears in two separate runs")
                    seen.add(cls)
                    runs.append([cls, key, key + 1])
                key += 1
            if insightface_header:
                first_identity = key
                for _, start, end in runs:
                    put(key, IRHeader(2, (float(start), float(end)), key, 0), b"")
                    key += 1
                put(0, IRHeader(2, (float(first_identity), float(key)), 0, 0), b"")
