"""The pair baseline under the learned edge scores: local densities and the logistic fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from clipcluster.errors import DataError
from clipcluster.training.pair_baseline import PairBaseline, local_density


def test_local_density_skips_self_and_missing_and_stops_at_k():
    nbrs = np.array([[0, 2, 1, 3], [1, -1, 0, 2], [-1, -1, -1, -1]])
    sims = np.array([[1.0, 0.9, 0.5, 0.1], [1.0, -np.inf, 0.6, 0.2], [-np.inf] * 4], dtype=np.float32)
    r = local_density(nbrs, sims, 2)
    np.testing.assert_allclose(r, [0.7, 0.4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(local_density(nbrs, sims, 10), [0.5, 0.4, 0.0], rtol=1e-6)
    assert r.dtype == np.float32
    with pytest.raises(DataError, match="N x k"):
        local_density(nbrs, sims[:, :2], 2)
    with pytest.raises(DataError, match="k_local"):
        local_density(nbrs, sims, 0)


def _two_density_edges(rng: np.random.Generator, n: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges from tight and loose identities: "same" depends on the cosine relative to the ends' densities."""
    dens = rng.choice([0.9, 1.5], size=n)  # sum of the two ends' densities
    same = rng.random(n) < 0.7
    cos = np.where(same, dens / 2, dens / 2 - 0.2) + 0.05 * rng.normal(size=n)
    return cos, dens, same


def test_fit_beats_the_cosine_where_densities_differ_and_forward_agrees():
    rng = np.random.default_rng(0)
    cos, dens, same = _two_density_edges(rng)
    base = PairBaseline(10)
    fit = base.fit(cos, dens, same)
    assert fit["edges"] == cos.size and fit["density_weight"] < 0 < fit["cos_weight"]
    cos2, dens2, same2 = _two_density_edges(np.random.default_rng(1))
    z = base.logits_np(cos2, dens2, np.zeros_like(dens2))
    assert roc_auc_score(same2, z) > 0.97 > roc_auc_score(same2, cos2) + 0.1
    half = torch.from_numpy(dens2 / 2)
    zt = base(torch.from_numpy(cos2), half, half)
    np.testing.assert_allclose(zt.numpy(), z, rtol=1e-4, atol=1e-4)
    # kept with the model's weights
    other = PairBaseline(10)
    other.load_state_dict(base.state_dict())
    assert torch.equal(other.coef, base.coef)


def test_fit_rejects_one_class_and_non_finite_edges():
    base = PairBaseline()
    with pytest.raises(DataError, match="one class"):
        base.fit(np.ones(5), np.ones(5), np.ones(5, dtype=bool))
    with pytest.raises(DataError, match="finite"):
        base.fit(np.array([0.1, np.nan]), np.ones(2), np.array([True, False]))
    with pytest.raises(DataError, match="k_local"):
        PairBaseline(0)
    assert base.logits_np(np.array([-np.inf]), np.zeros(1), np.zeros(1))[0] == 0.0  # missing entry, unfit
