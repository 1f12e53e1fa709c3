from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import diagnose_twin_chaining as diag  # noqa: E402


def test_identity_links_finds_the_one_close_photo_pair() -> None:
    rng = np.random.default_rng(0)
    centres = np.linalg.qr(rng.standard_normal((64, 3)))[0].T  # three orthogonal identities
    face = np.repeat(centres, 4, axis=0) + 0.05 * rng.standard_normal((12, 64))
    face[7] = face[2] + 0.01 * rng.standard_normal(64)  # identity 1's photo 3 is a near copy of identity 0's photo 2
    face = (face / np.linalg.norm(face, axis=1, keepdims=True)).astype(np.float32)
    starts, ends = np.array([0, 4, 8]), np.array([4, 8, 12])
    cand, best = diag.identity_links(face, starts, ends)
    assert cand.shape == best.shape == (3, 2)
    linked = {(int(a), int(cand[a, c])) for a, c in zip(*np.nonzero(best >= 0.9), strict=True)}
    assert linked == {(0, 1), (1, 0)}


def test_main_reports_chaining_and_verification(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", ["x", "--preset", "tiny", "--set", "face_age_id=1.0", "--thresholds", "0.7"])
    diag.main()
    out = capsys.readouterr().out
    assert "'face_age_id': 1.0" in out and "cosine >= 0.7:" in out and "pairwise precision" in out
    assert "agedb_30" in out and "children" in out
