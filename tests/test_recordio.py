"""InsightFace RecordIO without mxnet: round trips, the framing of split records, and corrupt files."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from clipcluster.errors import DataError
from clipcluster.images.imagefolder import decode_image
from clipcluster.images.recordio import (
    MAGIC,
    IRHeader,
    RecordReader,
    frame,
    pack,
    read_idx,
    scan_rec,
    unpack,
    write_recordio,
)

M = struct.pack("<I", MAGIC)


def _jpeg(seed: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


LABELS = [0, 0, 0, 5, 5, 2, 7, 7, 7, 7]


@pytest.fixture
def rec(tmp_path):
    items = [(lab, _jpeg(i, "PNG" if i % 3 == 0 else "JPEG")) for i, lab in enumerate(LABELS)]
    write_recordio(tmp_path / "train.rec", tmp_path / "train.idx", items)
    return tmp_path / "train.rec", tmp_path / "train.idx", items


def _one_line_error(exc_info, *parts):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, msg


def test_round_trip_with_insightface_header(rec):
    path_rec, path_idx, items = rec
    with RecordReader(path_rec, path_idx) as r:
        assert r.header is not None
        n = len(items)
        assert list(r.header.image_keys) == list(range(1, n + 1))
        got = list(r.iter_images())
        assert [g.key for g in got] == list(range(1, n + 1))
        assert [g.label for g in got] == LABELS
        assert [g.image for g in got] == [img for _, img in items]
        # one identity record per run of equal labels, with the image key range of that identity
        ranges = r.identity_ranges()
        assert list(ranges.values()) == [range(1, 4), range(4, 6), range(6, 7), range(7, 11)]
        assert list(ranges) == list(range(n + 1, n + 5))
        assert r.header.end_key == n + 5
        assert [r.read_label(k) for k in r.image_keys()] == LABELS


def test_files_follow_the_mxnet_layout(rec):
    path_rec, path_idx, items = rec
    lines = path_idx.read_text().splitlines()
    assert all(len(line.split("\t")) == 2 for line in lines)
    idx = read_idx(path_idx)
    # dataset_merge.py's order: images, identity records, then the header as key 0, last in the file
    assert list(idx)[-1] == 0 and list(idx)[:3] == [1, 2, 3]
    records = list(scan_rec(path_rec))
    assert [off for off, _ in records] == sorted(idx.values())
    assert path_rec.stat().st_size % 4 == 0
    header, rest = unpack(records[-1][1])
    assert header.flag == 2 and header.label == (len(items) + 1.0, len(items) + 5.0) and rest == b""
    # the first record starts with the magic, then lrec = its payload length (cflag 0)
    magic, lrec = struct.unpack_from("<II", path_rec.read_bytes())
    assert magic == 0xCED7230A and lrec == 24 + len(items[0][1])


def test_frame_matches_dmlc_writer_by_hand():
    # payload: 4 bytes, magic (aligned: cut), 2 bytes -> parts with cflag 1 and 3, the magic dropped, padded to 4
    payload = b"abcd" + M + b"xy"
    expected = M + struct.pack("<I", 1 << 29 | 4) + b"abcd" + M + struct.pack("<I", 3 << 29 | 2) + b"xy\0\0"
    assert frame(payload) == expected
    # an unaligned magic is left in place
    assert frame(b"a" + M + b"bcd") == M + struct.pack("<I", 8) + b"a" + M + b"bcd"
    # magic first and last: empty first and last parts, a middle part with cflag 2
    payload = M + b"1234" + M + b"5678" + M
    framed = frame(payload)
    flags = [lrec >> 29 for _, lrec in struct.iter_unpack("<II", framed[:8])]
    assert flags == [1]
    assert framed.count(M) == 4  # four part heads, no magic left in the data


@pytest.mark.parametrize(
    "image",
    [M + b"payload", b"abcd" + M + b"efgh" + M + b"ij", b"\0" * 8 + M, M + M + M, b"x" + M + b"unaligned"],
)
def test_split_records_round_trip(tmp_path, image):
    items = [(1, _jpeg(0)), (1, image), (3, image + b"tail")]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items)
    with RecordReader(tmp_path / "t.rec", tmp_path / "t.idx") as r:
        assert [(g.label, g.image) for g in r.iter_images()] == items
        assert [r.read_label(k) for k in r.image_keys()] == [1, 1, 3]
    assert [unpack(p)[1] for _, p in scan_rec(tmp_path / "t.rec")][:3] == [img for _, img in items]


def test_multi_value_labels_use_the_first_as_class(tmp_path):
    # face2rec2.py writes label = [class, aligned]
    items = [([4.0, 1.0], _jpeg(1)), ([4.0, 1.0], _jpeg(2)), ([9.0, 0.0], _jpeg(3))]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items)
    with RecordReader(tmp_path / "t.rec") as r:
        assert [g.label for g in r.iter_images()] == [4, 4, 9]
        header, _ = r.read(1)
        assert header.flag == 2 and header.label == (4.0, 1.0)
        assert [r.read_label(k) for k in r.image_keys()] == [4, 4, 9]


def test_pack_unpack_like_mxnet():
    packed = pack(IRHeader(0, 14.0, 20129312, 0), b"img")
    assert packed[:24] == struct.pack("<IfQQ", 0, 14.0, 20129312, 0)
    assert unpack(packed) == (IRHeader(0, 14.0, 20129312, 0), b"img")
    packed = pack(IRHeader(0, (1.0, 2.5), 3, 0), b"x")
    assert struct.unpack_from("<I", packed)[0] == 2 and len(packed) == 24 + 8 + 1
    assert unpack(packed) == (IRHeader(2, (1.0, 2.5), 3, 0), b"x")


def test_plain_im2rec_file_without_header(tmp_path):
    items = [(i % 2, _jpeg(i)) for i in range(4)]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items, insightface_header=False)
    with RecordReader(tmp_path / "t.rec") as r:
        assert r.header is None and r.image_keys() == [0, 1, 2, 3]
        assert [(g.label, g.image) for g in r.iter_images()] == items
        assert r.identity_ranges() == {}


def test_split_class_runs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="class 0 appears in two separate runs"):
        write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", [(0, b"a"), (1, b"b"), (0, b"c")])
    assert not (tmp_path / "t.rec").exists() and not (tmp_path / "t.idx").exists()  # atomic: nothing left behind


def _corrupt_magic(path_rec, offset):
    data = bytearray(path_rec.read_bytes())
    data[offset] ^= 0xFF
    path_rec.write_bytes(bytes(data))


def test_flipped_magic_strict_and_lenient(rec):
    path_rec, path_idx, items = rec
    idx = read_idx(path_idx)
    _corrupt_magic(path_rec, idx[3])
    _corrupt_magic(path_rec, idx[7])
    with RecordReader(path_rec, path_idx) as r:
        with pytest.raises(DataError) as e:
            list(r.iter_images())
        _one_line_error(e, str(path_rec), "key 3", "bad magic", "expected 0xced7230a")
        lenient = r.iter_images_lenient()
        got = list(lenient)
        assert [g.key for g in got] == [1, 2, 4, 5, 6, 8, 9, 10]
        assert [s.key for s in lenient.skipped] == [3, 7]
        assert all("bad magic" in s.reason and str(path_rec) in s.reason for s in lenient.skipped)
        table, skipped = r.image_index()
        assert table["source"].tolist() == [1, 2, 4, 5, 6, 8, 9, 10] and [s.key for s in skipped] == [3, 7]
        assert table["label"].tolist() == [0, 0, 5, 5, 2, 7, 7, 7]


def test_truncated_file(tmp_path):
    items = [(i, _jpeg(i)) for i in range(3)]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items, insightface_header=False)
    size = (tmp_path / "t.rec").stat().st_size
    with open(tmp_path / "t.rec", "r+b") as fh:
        fh.truncate(size - 10)
    with RecordReader(tmp_path / "t.rec") as r:
        with pytest.raises(DataError) as e:
            r.read_image(2)
        _one_line_error(e, "t.rec key 2", "truncated", "runs past the end of the file")
        with pytest.raises(DataError, match="key 2: truncated"):
            r.read_label(2)
        lenient = r.iter_images_lenient()
        assert [g.key for g in lenient] == [0, 1] and [s.key for s in lenient.skipped] == [2]
    with pytest.raises(DataError, match=r"t\.rec at offset \d+: truncated"):
        list(scan_rec(tmp_path / "t.rec"))


def test_truncated_header_record_fails_on_open(rec):
    path_rec, path_idx, _ = rec
    with open(path_rec, "r+b") as fh:  # key 0 is last in the file
        fh.truncate(path_rec.stat().st_size - 4)
    with pytest.raises(DataError) as e:
        RecordReader(path_rec, path_idx)
    _one_line_error(e, "key 0", "truncated")


def test_index_pointing_past_the_end(rec):
    path_rec, path_idx, _ = rec
    size = path_rec.stat().st_size
    lines = path_idx.read_text().splitlines()
    lines[4] = f"5\t{size + 100}"
    path_idx.write_text("\n".join(lines) + "\n")
    with RecordReader(path_rec, path_idx) as r:
        with pytest.raises(DataError) as e:
            r.read_image(5)
        _one_line_error(e, "key 5", f"index offset {size + 100} is past the end of the file ({size} bytes)")
        table, skipped = r.image_index()
        assert 5 not in table["source"].tolist() and [s.key for s in skipped] == [5]


def test_index_pointing_into_a_record(rec):
    path_rec, path_idx, _ = rec
    idx = read_idx(path_idx)
    lines = [f"{k}\t{off + 4 if k == 2 else off}" for k, off in idx.items()]
    path_idx.write_text("\n".join(lines) + "\n")
    with RecordReader(path_rec, path_idx) as r, pytest.raises(DataError) as e:
        r.read(2)
    _one_line_error(e, "key 2", "bad magic", f"at offset {idx[2] + 4}")


def test_key_missing_from_index(rec):
    path_rec, path_idx, _ = rec
    lines = [line for line in path_idx.read_text().splitlines() if not line.startswith("4\t")]
    path_idx.write_text("\n".join(lines) + "\n")
    with RecordReader(path_rec, path_idx) as r:
        with pytest.raises(DataError) as e:
            r.image_keys()
        _one_line_error(e, "train.idx", "1 image keys", "missing from the index, first 4")
        with pytest.raises(DataError, match=r"train\.idx: key 4 is not in the index"):
            r.read_raw(4)
        lenient = r.iter_images_lenient()
        assert len(list(lenient)) == 9 and [s.key for s in lenient.skipped] == [4]
        assert "key 4 is not in the index" in lenient.skipped[0].reason
        table, skipped = r.image_index()
        assert len(table) == 9 and [s.key for s in skipped] == [4]


def test_bad_idx_line(rec):
    path_rec, path_idx, _ = rec
    path_idx.write_text(path_idx.read_text() + "12 345\n")
    with pytest.raises(DataError) as e:
        RecordReader(path_rec, path_idx)
    _one_line_error(e, "train.idx", "line 16", "'12 345' is not 'key<TAB>offset'")


def test_bad_length_word(tmp_path):
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", [(0, b"abcdefgh"), (1, b"ijkl")], insightface_header=False)
    data = bytearray((tmp_path / "t.rec").read_bytes())
    second = read_idx(tmp_path / "t.idx")[1]
    data[second + 4 : second + 8] = struct.pack("<I", 5 << 29 | 4)  # cflag 5 does not exist
    (tmp_path / "t.rec").write_bytes(bytes(data))
    with RecordReader(tmp_path / "t.rec") as r, pytest.raises(DataError) as e:
        r.read(1)
    _one_line_error(e, "key 1", f"continuation flag 5 at offset {second}, expected one of (0, 1)")
    # key 0 decides whether there is an InsightFace header, so a broken key 0 stops the reader at once
    data[4:8] = struct.pack("<I", 2 << 29 | 32)
    (tmp_path / "t.rec").write_bytes(bytes(data))
    with pytest.raises(DataError, match="key 0: continuation flag 2 at offset 0"):
        RecordReader(tmp_path / "t.rec")


def test_identity_record_read_as_image_is_an_error(rec):
    path_rec, path_idx, items = rec
    with RecordReader(path_rec, path_idx) as r, pytest.raises(DataError, match="has no image bytes"):
        r.read_image(len(items) + 1)


# Written by mxnet 1.9.1 itself (MXIndexedRecordIO + recordio.pack, dataset_merge.py's order) for the items below:
# record 2 holds the magic at an aligned offset (split into cflag 1 + 3), record 3 is the magic alone (1 + 3, both
# parts empty). Kept as bytes so the test needs no mxnet; the check that they were mxnet's output was made once.
_MXNET_REC = bytes.fromhex(
    "0a23d7ce1b000000000000000000000001000000000000000000000000000000616263000a23d7ce1c0000200000000000000000020000"
    "00000000000000000000000000646566670a23d7ce01000060680000000a23d7ce18000020000000000000803f03000000000000000000"
    "0000000000000a23d7ce000000600a23d7ce20000000020000000000000004000000000000000000000000000000000080"
    "3f000040400a23d7ce2000000002000000000000000500000000000000000000000000000000004040000080400a23d7ce20000000020000000000"
    "000000000000000000000000000000000000000080400000c040"
)
_MXNET_IDX = "1\t0\n2\t36\n3\t84\n4\t124\n5\t164\n0\t204\n"


def test_writer_is_byte_identical_to_mxnet(tmp_path):
    items = [(0, b"abc"), (0, b"defg" + M + b"h"), (1, M)]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items)
    assert (tmp_path / "t.rec").read_bytes() == _MXNET_REC
    assert (tmp_path / "t.idx").read_text() == _MXNET_IDX
    with RecordReader(tmp_path / "t.rec") as r:
        assert [(g.label, g.image) for g in r.iter_images()] == items


def test_undecodable_image_is_named_by_file_and_key(tmp_path):
    items = [(0, _jpeg(0)), (0, b"\xff\xd8\xff\xe0 not really a jpeg"), (1, _jpeg(1, "PNG"))]
    write_recordio(tmp_path / "t.rec", tmp_path / "t.idx", items)
    decoded, failed = [], []
    with RecordReader(tmp_path / "t.rec") as r:
        for rec in r.iter_images():  # the record itself is sound: only decoding finds the bad image
            try:
                decoded.append(decode_image(rec.image, where=r.where(rec.key)).shape)
            except DataError as err:
                failed.append(str(err))
    assert decoded == [(12, 10, 3), (12, 10, 3)]
    assert len(failed) == 1 and failed[0].startswith(f"{tmp_path / 't.rec'} key 2: not a decodable image")
