"""PairCosine: the cosine input is standardised with the training edges' statistics, kept in the state dict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipcluster.errors import DataError
from clipcluster.training.pair_cosine import PairCosine, edge_cosines


def test_standardised_on_training_cosines_and_saved() -> None:
    pc = PairCosine(4, standardise=True)
    cos = np.array([0.90, 0.92, 0.94, 0.96, 0.98, -np.inf])  # a missing neighbour's -inf is ignored
    pc.set_stats(cos)
    z = pc.transform(torch.tensor([0.90, 0.94, 0.98]))
    assert torch.allclose(z, torch.tensor([-1.2649, 0.0, 1.2649]), atol=1e-3)  # sample std 0.0316
    other = PairCosine(4, standardise=True)
    other.load_state_dict(pc.state_dict())
    assert float(other.mean) == pytest.approx(0.94) and float(other.std) == pytest.approx(float(pc.std))
    out = pc(torch.tensor([[0.94, 0.98]]))
    assert out.shape == (1, 2, 4) and torch.allclose(out[0, 0], torch.zeros(4), atol=1e-6)
    with pytest.raises(DataError, match="at least 2"):
        pc.set_stats(np.array([0.5, np.nan]))


def test_raw_cosine_is_read_as_it_is() -> None:
    pc = PairCosine(3)  # the default: the cosine as it is, whatever the training statistics
    pc.set_stats(np.array([0.9, 0.95, 0.99]))
    c = torch.tensor([0.2, 0.9])
    assert torch.equal(pc.transform(c), c)
    assert torch.allclose(pc(c), c[:, None] * pc.weight[:, 0])


def test_edge_cosines_skip_missing_neighbours() -> None:
    rng = np.random.default_rng(0)
    f = rng.standard_normal((5, 3)).astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    nbrs = np.array([[1, 2], [0, -1], [3, 4], [2, -1], [0, 1]])
    got = edge_cosines(f, nbrs, rows=2)
    want = [float(f[i] @ f[j]) for i in range(5) for j in nbrs[i] if j >= 0]
    assert np.allclose(got, want, atol=1e-6)
