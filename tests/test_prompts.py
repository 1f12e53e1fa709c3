"""Tests of the attribute vocabulary and prompts (clipcluster.prompts)."""

from __future__ import annotations

import numpy as np
import pytest

from clipcluster import prompts


def test_prompt_table_rows_and_order() -> None:
    t = prompts.prompt_table()
    assert list(t.columns) == ["gender", "kind", "value", "text"]
    assert len(t) == 26
    assert t["gender"].tolist() == ["male"] * 13 + ["female"] * 13
    male = t[t["gender"] == "male"]
    assert male["kind"].tolist() == ["age"] * 4 + ["expression"] * 7 + ["pose"] * 2
    assert male["value"].tolist()[:4] == ["5", "20", "40", "75"]
    assert t["text"].is_unique
    assert t.loc[0, "text"] == "A photo of a male at the age of 5"
    assert "A photo of a happy female" in set(t["text"])
    assert "A photo of a female in profile" in set(t["text"])
    assert "A photo of a frontal male" in set(t["text"])


def test_prompt_text_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="unknown age value"):
        prompts.prompt_text("male", "age", 41)
    with pytest.raises(ValueError, match="unknown gender"):
        prompts.prompt_text("robot", "pose", "frontal")


def test_age_group_boundaries() -> None:
    ages = np.array([0.0, 9.99, 10.0, 29.9, 30.0, 49.9, 50.0, 99.0, 120.0])
    assert prompts.age_group(ages).tolist() == [5, 5, 20, 20, 40, 40, 75, 75, 75]
    assert prompts.age_group(ages).dtype == np.int64


def test_pose_of_threshold_is_inclusive_and_symmetric() -> None:
    yaw = np.array([-20.0, 20.0, 20.01, -45.0, 0.0])
    assert prompts.pose_of(yaw).tolist() == ["frontal", "frontal", "profile", "profile", "frontal"]


def test_reversed_targets_change_one_attribute_at_a_time() -> None:
    r = prompts.reversed_targets(40, "happy", "frontal")
    assert len(r) == prompts.N_REVERSED == 10
    assert r[:3] == [("age", "5"), ("age", "20"), ("age", "75")]
    assert r[3] == ("pose", "profile")
    assert [v for k, v in r[4:]] == ["neutral", "sad", "surprise", "fear", "disgust", "angry"]
    assert ("age", "40") not in r and ("expression", "happy") not in r
    with pytest.raises(ValueError):
        prompts.reversed_targets(41, "happy", "frontal")


def test_reversed_targets_array_matches_scalar_version() -> None:
    table = prompts.prompt_table()
    ages = np.array([5, 20, 40, 75, 40])
    exprs = np.array(["neutral", "angry", "happy", "fear", "surprise"])
    poses = np.array(["frontal", "profile", "frontal", "profile", "profile"])
    idx = prompts.reversed_targets_array(ages, exprs, poses)
    assert idx.shape == (5, 10) and idx.dtype == np.int64
    for row, a, e, p in zip(idx, ages, exprs, poses, strict=True):
        got = [(table.loc[j, "kind"], table.loc[j, "value"]) for j in row]
        assert got == prompts.reversed_targets(int(a), str(e), str(p))
    with pytest.raises(ValueError, match="expression"):
        prompts.reversed_targets_array(ages[:1], np.array(["smug"]), poses[:1])
