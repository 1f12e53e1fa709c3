"""kNN graph: exact search against NumPy brute force, IVF and IVF-PQ recall, missing entries, save/load validation."""

from __future__ import annotations

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.graph.knn import (
    KnnGraph,
    build_knn,
    default_nlist,
    default_pq_m,
    default_pq_nlist,
    exact_neighbours,
    gpu_count,
    load_knn,
    measure_recall,
    recall_against,
    save_knn,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def blobs(n: int, d: int, c: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``c`` Gaussian clusters on the unit sphere; returns features and the cluster of each row."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((c, d)))
    labels = rng.integers(0, c, n)
    return unit(centres[labels] + spread / np.sqrt(d) * rng.standard_normal((n, d))), labels


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def test_exact_matches_numpy_brute_force() -> None:
    x = unit(np.random.default_rng(0).standard_normal((600, 24)))
    g = build_knn(x, 12, index="exact", progress=False, batch_size=128)  # several batches
    ids, sims = brute_force(x, 12)
    assert g.nbrs.shape == (600, 12) and g.nbrs.dtype == np.int64 and g.sims.dtype == np.float32
    assert g.info["index"] == "exact" and g.info["k"] == 12 and g.info["n"] == 600 and g.info["dim"] == 24
    np.testing.assert_allclose(g.sims, sims, atol=1e-5)
    assert not (g.nbrs == np.arange(600)[:, None]).any()
    # Random data has no near-ties, so ids agree exactly wherever neighbouring sims are distinguishable.
    gaps = np.diff(sims, axis=1, prepend=np.inf, append=-np.inf)
    clear = (np.abs(gaps[:, :-1]) > 1e-5) & (np.abs(gaps[:, 1:]) > 1e-5)
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(g.nbrs[clear], ids[clear])
    # Whatever the order among ties, each listed neighbour carries its true similarity.
    recomputed = np.einsum("id,ikd->ik", x, x[g.nbrs])
    np.testing.assert_allclose(g.sims, recomputed, atol=1e-5)
    assert (np.diff(g.sims, axis=1) <= 1e-7).all()


def test_exact_ties_exclude_self() -> None:
    rng = np.random.default_rng(1)
    base = unit(rng.standard_normal((40, 16)))
    # Rows 0..5 are six identical copies: with k=3 the k+1 results may all be copies other than self.
    x = np.concatenate([np.repeat(base[:1], 6, axis=0), np.repeat(base[1:], 2, axis=0)])
    g = build_knn(x, 3, index="exact", progress=False)
    n = x.shape[0]
    assert not (g.nbrs == np.arange(n)[:, None]).any()
    assert set(g.nbrs[:6].ravel()) <= set(range(6))
    np.testing.assert_allclose(g.sims[:6], 1.0, atol=1e-5)
    # Pairs (6,7), (8,9), ...: each row's first neighbour is its twin.
    twins = np.arange(6, n) ^ 1
    np.testing.assert_array_equal(g.nbrs[6:, 0], twins)
    assert np.unique(g.nbrs, axis=1).shape[1] == 3  # no duplicate columns in general
    assert all(len(set(row)) == 3 for row in g.nbrs)


def test_ivf_high_recall_on_clustered_data_and_deterministic() -> None:
    x, _ = blobs(6000, 64, 120, spread=1.0, seed=2)
    g = build_knn(x, 20, index="ivf", seed=3, progress=False)
    assert g.info["index"] == "ivf" and g.info["nlist"] == default_nlist(6000) and g.info["nprobe"] == 32
    exact = build_knn(x, 20, index="exact", progress=False)
    truth_hits = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(g.nbrs, exact.nbrs, strict=True)])
    assert truth_hits >= 0.95
    assert abs(measure_recall(x, g, n_queries=6000) - truth_hits) < 1e-9  # all rows sampled: same number
    assert not (g.nbrs == np.arange(6000)[:, None]).any()
    again = build_knn(x, 20, index="ivf", seed=3, progress=False)
    np.testing.assert_array_equal(g.nbrs, again.nbrs)
    np.testing.assert_array_equal(g.sims, again.sims)


def test_ivfpq_finds_the_neighbours_with_exact_similarities_and_is_deterministic() -> None:
    # Many probes of small cells: with every cell probed only the 4-bit codes' ranking can lose a neighbour, and
    # the exact re-rank of the best 6 k leaves none lost here; the similarities returned are exact either way.
    x, _ = blobs(6000, 64, 120, spread=1.0, seed=2)
    g = build_knn(x, 20, index="ivfpq", seed=3, progress=False)
    assert g.info["index"] == "ivfpq" and g.info["device"] == "cpu"
    assert g.info["nlist"] == default_pq_nlist(6000) == 83 and g.info["pq_m"] == default_pq_m(64) == 32
    assert g.info["nprobe"] == 83 and g.info["k_factor"] == 6  # 256 capped at the cell count
    exact = build_knn(x, 20, index="exact", progress=False)
    hits = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(g.nbrs, exact.nbrs, strict=True)])
    assert hits >= 0.99
    np.testing.assert_allclose(g.sims, np.einsum("id,ikd->ik", x, x[g.nbrs]), atol=1e-5)
    assert (g.sims[:, 1:] <= g.sims[:, :-1]).all() and not (g.nbrs == np.arange(6000)[:, None]).any()
    again = build_knn(x, 20, index="ivfpq", seed=3, progress=False)
    np.testing.assert_array_equal(g.nbrs, again.nbrs)
    np.testing.assert_array_equal(g.sims, again.sims)
    # Few probes and no margin for the codes' errors lose neighbours: the recall check must see it.
    rough = build_knn(x, 20, index="ivfpq", nprobe=1, k_factor=1, seed=3, progress=False)
    assert measure_recall(x, rough, n_queries=2000) < hits - 0.05


def test_ivfpq_rejects_a_pq_size_that_does_not_divide_the_dimension() -> None:
    x, _ = blobs(800, 64, 10, spread=1.0, seed=9)
    with pytest.raises(ValueError, match="pq_m must divide"):
        build_knn(x, 5, index="ivfpq", pq_m=24, progress=False)
    assert default_pq_m(256) == 128 and default_pq_m(33) == 33
    assert default_pq_nlist(595_570) == 8272 and default_pq_nlist(5_210_000) == 16_384 and default_pq_nlist(10) == 1


def test_measure_recall_is_one_for_exact_and_low_for_garbage() -> None:
    x, _ = blobs(1500, 32, 30, spread=1.0, seed=4)
    g = build_knn(x, 10, index="exact", progress=False)
    assert measure_recall(x, g, n_queries=500) == 1.0
    shuffled = KnnGraph(np.random.default_rng(0).permutation(g.nbrs.ravel()).reshape(g.nbrs.shape), g.sims, {})
    assert measure_recall(x, shuffled, n_queries=500) < 0.2


def test_auto_switches_on_size() -> None:
    x, _ = blobs(1200, 16, 10, spread=1.0, seed=5)
    assert build_knn(x, 5, progress=False, exact_max_n=1200).info["index"] == "exact"
    above = "ivf" if gpu_count() > 0 else "ivfpq"  # faiss-gpu has no fast-scan PQ
    assert build_knn(x, 5, progress=False, exact_max_n=1199).info["index"] == above


@pytest.mark.parametrize("index", ["ivf", "ivfpq"])
def test_missing_neighbours_are_minus_one_and_minus_inf(index: str) -> None:
    x, _ = blobs(400, 16, 20, spread=0.5, seed=6)
    g = build_knn(x, 60, index=index, nlist=20, nprobe=1, progress=False)  # ~20 points a cell < 61 needed
    missing = g.nbrs < 0
    assert missing.any() and g.info["missing"] == int(missing.sum())
    assert np.isneginf(g.sims[missing]).all() and np.isfinite(g.sims[~missing]).all()
    assert (g.sims[:, 1:] <= g.sims[:, :-1]).all()  # still sorted descending, -inf last
    assert not (g.nbrs == np.arange(400)[:, None]).any()
    np.testing.assert_array_equal(g.valid, ~missing)
    assert 0 < measure_recall(x, g) < 1


def test_bad_features() -> None:
    x = unit(np.random.default_rng(7).standard_normal((50, 8)))
    with pytest.raises(DataError, match="L2-normalised"):
        build_knn(x * 2, 5, progress=False)
    with pytest.raises(DataError, match="at least k"):
        build_knn(x[:5], 5, progress=False)
    with pytest.raises(ValueError, match="index"):
        build_knn(x, 5, index="hnsw", progress=False)


def test_save_load_round_trip(tmp_path) -> None:
    x, _ = blobs(300, 16, 10, spread=1.0, seed=8)
    g = build_knn(x, 7, index="exact", progress=False)
    path = tmp_path / "knn" / "part1_k7.npz"
    save_knn(path, g)
    back = load_knn(path)
    assert back.nbrs.dtype == np.int64 and back.sims.dtype == np.float32  # int32 on disk, int64 in memory
    np.testing.assert_array_equal(back.nbrs, g.nbrs)
    np.testing.assert_array_equal(back.sims, g.sims)
    assert back.info == g.info
    assert [p.name for p in path.parent.iterdir()] == ["part1_k7.npz"]  # no temp file left behind


def test_load_rejects_corrupt_and_inconsistent_files(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_knn(bad)
    with pytest.raises(DataError, match="not found"):
        load_knn(tmp_path / "absent.npz")
    nbrs = np.zeros((4, 2), dtype=np.int64)
    sims = np.zeros((4, 2), dtype=np.float32)
    np.savez(tmp_path / "nosims.npz", nbrs=nbrs, info=np.array("{}"))
    with pytest.raises(DataError, match="missing arrays"):
        load_knn(tmp_path / "nosims.npz")
    np.savez(tmp_path / "shape.npz", nbrs=nbrs, sims=sims[:3], info=np.array("{}"))
    with pytest.raises(DataError, match="same N x k"):
        load_knn(tmp_path / "shape.npz")
    np.savez(tmp_path / "range.npz", nbrs=nbrs + 4, sims=sims, info=np.array("{}"))
    with pytest.raises(DataError, match="neighbour ids"):
        load_knn(tmp_path / "range.npz")
    np.savez(tmp_path / "info.npz", nbrs=nbrs, sims=sims, info=np.array("{oops"))
    with pytest.raises(DataError, match="JSON"):
        load_knn(tmp_path / "info.npz")


def test_recall_against_counts_shared_ids_per_row() -> None:
    truth = np.array([[1, 2, 3, 4], [0, 2, 3, 4]])
    found = np.array([[4, 3, 9, 8], [0, 2, 3, 4]])
    assert recall_against(found, truth) == pytest.approx((2 + 4) / 8)
    assert recall_against(np.array([[-1, -1, 2, 1]]), np.array([[1, 2, 3, -1]])) == pytest.approx(2 / 3)


def test_exact_neighbours_drops_the_query_itself() -> None:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((300, 16)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    rows = np.array([0, 7, 299])
    ids, sims = exact_neighbours(feats, rows, 5)
    ref = feats[rows] @ feats.T
    ref[np.arange(3), rows] = -np.inf
    assert (ids == np.argsort(-ref, axis=1)[:, :5]).all()
    assert np.allclose(sims, np.take_along_axis(ref, ids, axis=1), atol=1e-6)
