"""Tests of the twin's face-verification protocols (clipcluster.twin.verification); seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clipcluster.errors import DataError
from clipcluster.twin import generate as twin
from clipcluster.twin.verification import PUBLISHED, verification_accuracy, verification_block


def test_accuracy_is_100_when_separable_and_50_when_scores_carry_nothing() -> None:
    rng = np.random.default_rng(0)
    assert verification_accuracy(rng.uniform(0.6, 1.0, 500), rng.uniform(-1.0, 0.4, 500)) == 100.0
    chance = verification_accuracy(rng.normal(size=3000), rng.normal(size=3000))
    assert 47.0 < chance < 53.0


def test_accuracy_matches_the_bayes_rate_of_two_gaussians() -> None:
    # same ~ N(1, 1), different ~ N(-1, 1): the best threshold is 0, accuracy Phi(1) = 84.13 %
    rng = np.random.default_rng(1)
    acc = verification_accuracy(rng.normal(1.0, 1.0, 20000), rng.normal(-1.0, 1.0, 20000))
    assert abs(acc - 84.13) < 0.6


def test_accuracy_rejects_too_few_or_nan_scores() -> None:
    with pytest.raises(DataError, match="pairs"):
        verification_accuracy(np.ones(5), np.zeros(50))
    with pytest.raises(DataError, match="finite"):
        verification_accuracy(np.r_[np.ones(49), np.nan], np.zeros(50))


def _part(face_pose: float, face_age: float = 0.8) -> twin.TwinPart:
    p = twin.twin_params("tiny", seed=7, overrides={"ids_per_part": 150, "mean_size": 30.0, "p_profile": 0.3,
                                                    "face_pose": face_pose, "face_age": face_age})  # fmt: skip
    return twin.generate_part(p, 1)


def test_block_reports_each_benchmark_beside_the_published_accuracy() -> None:
    part = _part(0.65)
    v = verification_block(part.face, part.attributes, part.labels, np.random.default_rng(0), n_pairs=1000)
    for name, published in PUBLISHED.items():
        assert v[name]["published"] == published
        assert v[name]["pairs"] > 0 and 50.0 <= v[name]["twin"] <= 100.0
    assert v["cfp_ff"]["error_vs_ff"]["twin"] == 1.0 and v["cfp_fp"]["error_vs_ff"]["published"] == 34.1


def test_a_stronger_pose_effect_costs_frontal_profile_pairs_only() -> None:
    weak, strong = _part(0.65), _part(3.0)
    rng = np.random.default_rng(0)
    vw = verification_block(weak.face, weak.attributes, weak.labels, rng, n_pairs=1500)
    vs = verification_block(strong.face, strong.attributes, strong.labels, np.random.default_rng(0), n_pairs=1500)
    assert vs["cfp_fp"]["twin"] < vw["cfp_fp"]["twin"] - 3.0
    assert vs["profile_impostor_median_cos"] > vw["profile_impostor_median_cos"] + 0.2  # shared: profiles gather
    assert abs(vs["cfp_ff"]["twin"] - vw["cfp_ff"]["twin"]) < 1.0  # frontal pairs: pose plays no part


def test_a_part_without_profiles_has_no_frontal_profile_accuracy() -> None:
    part = _part(0.65)
    attrs = part.attributes.assign(true_pose="frontal")
    v = verification_block(part.face, pd.DataFrame(attrs), part.labels, np.random.default_rng(0), n_pairs=500)
    assert v["cfp_fp"]["twin"] is None and v["cfp_fp"]["pairs"] == 0 and v["cfp_ff"]["twin"] is not None
