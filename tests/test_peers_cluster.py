"""The peers' training-free clustering stages: MHC (transition matrix, NDDe, TPDi, DPC) and FaceT (union-find)."""

from __future__ import annotations

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.peers import (
    MHC_EPS,
    MHC_K,
    MHC_TAU,
    density_peak_clustering,
    facet_cluster,
    mhc_cluster,
    ndde,
    tpdi,
    transition_matrix,
)


def _random_knn(n: int, k: int, seed: int, missing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct random neighbours (never self), random similarities in [-0.2, 1), a fraction set missing (-1)."""
    rng = np.random.default_rng(seed)
    nbrs = np.argsort(rng.random((n, n)) + np.eye(n), axis=1)[:, :k].astype(np.int64)  # self sorts last
    sims = rng.uniform(-0.2, 1.0, (n, k)).astype(np.float32)
    if missing:
        gone = rng.random((n, k)) < missing
        nbrs[gone], sims[gone] = -1, -np.inf
    return nbrs, sims


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_paper_defaults():
    assert (MHC_K, MHC_EPS, MHC_TAU) == (80, 0.05, 0.7)


def test_transition_matrix_is_row_stochastic_with_self_entry():
    nbrs, sims = _random_knn(40, 6, seed=1, missing=0.2)
    trans = transition_matrix(nbrs, sims, k=None, self_sim=1.0)
    np.testing.assert_allclose(np.asarray(trans.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    dense = trans.toarray()
    assert (dense >= 0).all()
    i = 3
    present = nbrs[i] >= 0
    volume = 1.0 + np.maximum(sims[i, present].astype(np.float64), 0).sum()
    np.testing.assert_allclose(dense[i, i], 1.0 / volume)
    np.testing.assert_allclose(dense[i, nbrs[i, present]], np.maximum(sims[i, present], 0) / volume, rtol=1e-6)
    # no mass on pairs outside the kNN list
    assert np.count_nonzero(dense[i]) <= 1 + present.sum()


def test_ndde_theorem1_cluster_means_are_one():
    """Theorem 1: with P closed over clusters, every cluster's mean NDDe is 1 whatever its size."""
    rng = np.random.default_rng(0)
    sizes = [2, 5, 9, 30]
    k = 6
    starts = np.cumsum([0, *sizes])
    n = starts[-1]
    nbrs = np.full((n, k), -1, dtype=np.int64)
    for c in range(len(sizes)):
        members = np.arange(starts[c], starts[c + 1])
        for i in members:
            others = rng.permutation(members[members != i])[: rng.integers(1, k + 1)]  # uneven in-degrees
            nbrs[i, : len(others)] = others
    sims = np.where(nbrs >= 0, rng.uniform(0.1, 1.0, (n, k)), -np.inf).astype(np.float32)
    density, iterations, converged = ndde(transition_matrix(nbrs, sims, k=None))
    assert converged and iterations > 1
    labels = np.repeat(np.arange(len(sizes)), sizes)
    means = np.bincount(labels, weights=density) / np.bincount(labels)
    np.testing.assert_allclose(means, 1.0, atol=1e-9)
    assert density[starts[-2] :].std() > 0.05  # the diffusion moved mass (P rho would leave rho = 1)
    # one edge leaking out of the big cluster into the smallest breaks the equality
    nbrs[n - 1, k - 1], sims[n - 1, k - 1] = 0, 5.0
    leaked, _, _ = ndde(transition_matrix(nbrs, sims, k=None))
    assert abs(np.bincount(labels, weights=leaked)[0] / sizes[0] - 1.0) > 0.05


def test_ndde_reports_iterations_and_guard():
    nbrs, sims = _random_knn(60, 5, seed=2)
    trans = transition_matrix(nbrs, sims, k=None)
    _, it_loose, ok_loose = ndde(trans, eps=0.5)
    _, it_tight, ok_tight = ndde(trans, eps=1e-6)
    assert ok_loose and ok_tight and 1 <= it_loose < it_tight
    _, it_cut, ok_cut = ndde(trans, eps=1e-6, max_iter=2)
    assert (it_cut, ok_cut) == (2, False)


def test_tpdi_matches_eq4_by_brute_force_and_is_bounded():
    nbrs, sims = _random_knn(50, 8, seed=3, missing=0.15)
    trans = transition_matrix(nbrs, sims, k=None)
    dense = trans.toarray()
    want = 1.0 - np.sqrt(dense) @ np.sqrt(dense).T  # Eq. 4 over all N x N pairs (fine at N = 50)
    for block in (1, 7, 4096):
        got = tpdi(trans, nbrs, block_rows=block)
        present = nbrs >= 0
        np.testing.assert_allclose(got[present], want[np.nonzero(present)[0], nbrs[present]], atol=1e-6)
        assert (got[~present] == 1.0).all()
    for seed in range(5):
        nbrs, sims = _random_knn(80, 10, seed=10 + seed, missing=0.1)
        d = tpdi(transition_matrix(nbrs, sims, k=None, self_sim=float(seed) / 2), nbrs)
        assert d.min() >= -1e-6 and d.max() <= 1 + 1e-6
        assert d.min() < 0.9  # not trivially all ones


def test_tpdi_equals_jaccard_form_with_uniform_transitions():
    """Remark 1: uniform transition probabilities give d = 1 - 2J / (1 + J), J = Jaccard of the neighbour sets."""
    n, k = 40, 7
    nbrs, _ = _random_knn(n, k, seed=4)
    rng = np.random.default_rng(4)
    # plant overlap so J varies: half of each row copies the first neighbour's list where possible
    for i in range(n):
        j = nbrs[i, 0]
        extra = [c for c in nbrs[j] if c != i and c not in nbrs[i, :1]][:3]
        row = list(dict.fromkeys([j, *extra, *rng.permutation(n)]))
        nbrs[i] = [c for c in row if c != i][:k]
    trans = transition_matrix(nbrs, np.ones((n, k), dtype=np.float32), k=None, self_sim=1.0)
    got = tpdi(trans, nbrs)
    support = [{i, *nbrs[i].tolist()} for i in range(n)]  # each row's K + 1 equal-probability entries
    jac = np.array([[len(support[i] & support[j]) / len(support[i] | support[j]) for j in nbrs[i]] for i in range(n)])
    np.testing.assert_allclose(got, 1 - 2 * jac / (1 + jac), atol=1e-6)
    assert jac.max() > 0.3 and jac.min() < 0.2


def test_density_peak_links_to_nearest_denser_neighbour_under_tau():
    nbrs = np.array([[1, 2], [0, 2], [1, 3], [2, 1]])
    density = np.array([1.0, 2.0, 3.0, 0.5])
    dist = np.array([[0.6, 0.2], [0.1, 0.3], [0.2, 0.1], [0.8, 0.5]], dtype=np.float32)
    labels, parent = density_peak_clustering(nbrs, density, dist, tau=0.7)
    # 0: denser 1 (0.6) and 2 (0.2) -> 2; 1: denser only 2 (0.3); 2: none denser -> root; 3: 2 at 0.8 >= tau, 1 at 0.5
    assert parent.tolist() == [2, 2, -1, 1]
    assert len(np.unique(labels)) == 1
    labels, parent = density_peak_clustering(nbrs, density, dist, tau=0.25)
    assert parent.tolist() == [2, -1, -1, -1]
    assert _same_partition(labels, np.array([0, 1, 0, 2]))


def test_mhc_finds_two_clear_clusters():
    rng = np.random.default_rng(5)
    size, k = 15, 17  # 14 same-cluster neighbours + 3 from the other cluster
    n = 2 * size
    truth = np.repeat([0, 1], size)
    nbrs = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for i in range(n):
        own = np.flatnonzero((truth == truth[i]) & (np.arange(n) != i))
        other = rng.choice(np.flatnonzero(truth != truth[i]), 3, replace=False)
        s_own, s_other = rng.uniform(0.6, 0.9, len(own)), rng.uniform(0.0, 0.3, 3)
        order = np.argsort(-np.concatenate([s_own, s_other]), kind="stable")
        nbrs[i] = np.concatenate([own, other])[order]
        sims[i] = np.concatenate([s_own, s_other])[order]
    res = mhc_cluster(nbrs, sims, k=None)
    assert res.converged and res.iterations >= 1
    assert _same_partition(res.labels, truth) and res.labels.max() == 1
    assert (res.parent == -1).sum() == 2  # one density peak per cluster
    cross = truth[np.where(nbrs >= 0, nbrs, 0)] != truth[:, None]
    assert res.dist[cross].min() > MHC_TAU > res.dist[~cross].max()
    again = mhc_cluster(nbrs, sims, k=None)
    assert np.array_equal(again.labels, res.labels) and np.array_equal(again.density, res.density)
    # the threshold matters: at tau = 0 nothing links
    assert mhc_cluster(nbrs, sims, k=None, tau=0.0).labels.max() == n - 1


def test_facet_links_above_threshold_then_components():
    nbrs = np.array([[1, 2], [0, 2], [1, 3], [4, 2], [3, 5], [4, -1]])
    probs = np.array([[0.9, 0.1], [0.9, 0.2], [0.8, 0.2], [0.95, 0.2], [0.95, 0.5], [0.4, -np.inf]])
    labels = facet_cluster(nbrs, probs, tau=0.5)
    # links: 0-1, 2-1 (listed from 2 only), 3-4; 4-5 at exactly 0.5 is not "larger than tau"
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]
    assert facet_cluster(nbrs, probs, tau=0.45).tolist() == [0, 0, 0, 1, 1, 1]
    assert facet_cluster(nbrs, probs, tau=0.99).tolist() == list(range(6))


@pytest.mark.parametrize(
    "call",
    [
        lambda: transition_matrix(np.array([[1], [0]]), np.array([[0.5, 0.5], [0.5, 0.5]]), k=None),
        lambda: transition_matrix(np.array([[1], [5]]), np.ones((2, 1)), k=None),
        lambda: transition_matrix(np.array([[1], [0]]), np.array([[np.nan], [1.0]]), k=None),
        lambda: transition_matrix(np.array([[1, 1], [0, -1]]), np.ones((2, 2)), k=None),
        lambda: transition_matrix(np.array([[1], [0]]), np.ones((2, 1))),  # K = 80 > width 1
        lambda: transition_matrix(np.array([[1], [0]]), np.ones((2, 1)), k=None, self_sim=-1.0),
        lambda: ndde(transition_matrix(np.array([[1], [0]]), np.ones((2, 1)), k=None) * 2.0),
        lambda: ndde(transition_matrix(np.array([[1], [0]]), np.ones((2, 1)), k=None), eps=0.0),
        lambda: ndde(np.eye(2)),
        lambda: tpdi(transition_matrix(np.array([[1], [0]]), np.ones((2, 1)), k=None), np.array([[1]])),
        lambda: density_peak_clustering(np.array([[1], [0]]), np.ones(3), np.zeros((2, 1))),
        lambda: density_peak_clustering(np.array([[1], [0]]), np.ones(2), np.zeros((2, 2))),
        lambda: density_peak_clustering(np.array([[1], [0]]), np.ones(2), np.zeros((2, 1)), tau=float("nan")),
        lambda: facet_cluster(np.array([[1], [0]]), np.ones((2, 2))),
        lambda: facet_cluster(np.array([[1.0], [0.0]]), np.ones((2, 1))),
        lambda: facet_cluster(np.array([[1], [0]]), np.ones((2, 1)), tau=float("inf")),
    ],
)
def test_bad_input_raises_one_line_data_error(call):
    with pytest.raises(DataError) as err:
        call()
    assert "\n" not in str(err.value) and str(err.value)
