"""Infomap on kNN graphs: edge construction, planted-cluster recovery, singletons, determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.graph.infomap_cluster import DEFAULT_SIM_FLOOR, cluster_knn_infomap, infomap_cluster, knn_to_edges
from clipcluster.graph.knn import build_knn


def sphere_blobs(sizes: list[int], d: int = 32, spread: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs on the unit sphere, rows ordered by blob."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.standard_normal((d, len(sizes))))[0].T  # orthonormal: cosine 0 between blobs
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] + spread / np.sqrt(d) * rng.standard_normal((truth.size, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_knn_to_edges_dedup_floor_self_and_missing() -> None:
    nbrs = np.array([[1, 2, 0], [0, 2, -1], [0, 3, 1], [2, 1, 0]])
    sims = np.array([[0.9, 0.7, 1.0], [0.8, 0.6, -np.inf], [0.75, 0.3, 0.65], [0.2, 0.1, 0.05]], dtype=np.float32)
    src, dst, w = knn_to_edges(nbrs, sims, sim_floor=0.5)
    # 0-1 seen as 0.9 and 0.8 -> 0.9; 0-2 as 0.7 and 0.75 -> 0.75; 1-2 as 0.6 and 0.65 -> 0.65; the self loop
    # (0,0), the missing -1 and everything under 0.5 (2-3, 3-*) are gone.
    assert src.dtype == np.int64 and dst.dtype == np.int64 and w.dtype == np.float32
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_allclose(w, [0.9, 0.75, 0.65])
    src, dst, w = knn_to_edges(nbrs, sims, sim_floor=0.5, directed=True)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    np.testing.assert_allclose(w, [0.9, 0.7, 0.8, 0.6, 0.75, 0.65])
    src, dst, w = knn_to_edges(nbrs, sims, sim_floor=0.99)
    assert src.size == dst.size == w.size == 0  # only the self loop reached 0.99
    with pytest.raises(DataError, match="out of range"):
        knn_to_edges(np.array([[5]]), np.array([[0.9]]), sim_floor=0.5)


def test_recovers_planted_clusters_exactly() -> None:
    x, truth = sphere_blobs([40, 60, 25, 80, 35])
    g = build_knn(x, 15, index="exact", progress=False)
    stats: dict = {}
    labels = cluster_knn_infomap(g.nbrs, g.sims, sim_floor=DEFAULT_SIM_FLOOR, seed=0, stats=stats)
    assert labels.dtype == np.int64 and labels.shape == truth.shape
    assert stats["clusters"] == stats["modules"] == 5 and stats["linked_nodes"] == truth.size
    assert stats["links"] > 0 and stats["codelength"] > 0 and stats["edge_seconds"] >= 0
    # Rows are ordered by blob and labels are numbered by first appearance, so equality is exact recovery.
    np.testing.assert_array_equal(labels, truth)


def test_isolated_nodes_become_singletons_and_labels_are_dense() -> None:
    # Two triangles among nodes 0..5; nodes 6..9 have no links at all; node 3 is linked only with weight 0.
    src = np.array([0, 1, 0, 4, 5, 4, 2, 3])
    dst = np.array([1, 2, 2, 5, 6, 6, 4, 7])
    w = np.array([1, 1, 1, 1, 1, 1, 0.05, 0.0])
    labels = infomap_cluster(10, src, dst, w, seed=1)
    assert labels[0] == labels[1] == labels[2]
    assert labels[4] == labels[5] == labels[6] != labels[0]
    alone = [3, 7, 8, 9]
    assert len({int(labels[i]) for i in alone}) == 4
    assert not set(labels[alone].tolist()) & set(labels[[0, 4]].tolist())
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))
    np.testing.assert_array_equal(infomap_cluster(3, [], [], [], seed=0), [0, 1, 2])
    assert infomap_cluster(0, [], [], []).shape == (0,)


def test_same_seed_same_labels() -> None:
    x, _ = sphere_blobs([30] * 8, spread=1.2, seed=3)  # noisier: Infomap has choices to make
    g = build_knn(x, 10, index="exact", progress=False)
    a = cluster_knn_infomap(g.nbrs, g.sims, sim_floor=0.2, seed=7, num_trials=2)
    b = cluster_knn_infomap(g.nbrs, g.sims, sim_floor=0.2, seed=7, num_trials=2)
    np.testing.assert_array_equal(a, b)
    d = cluster_knn_infomap(g.nbrs, g.sims, sim_floor=0.2, seed=7, directed=True)
    assert d.shape == a.shape and d.min() == 0


def test_bad_edges() -> None:
    with pytest.raises(DataError, match="lengths differ"):
        infomap_cluster(3, [0, 1], [1], [1.0])
    with pytest.raises(DataError, match="node ids"):
        infomap_cluster(3, [0], [3], [1.0])
    with pytest.raises(DataError, match="weights"):
        infomap_cluster(3, [0], [1], [-1.0])


def test_safe_when_faiss_is_imported_after_infomap() -> None:
    # infomap then faiss (both SWIG) makes infomap's Python-side result iterators segfault; the module must not
    # use them. A fresh interpreter, because import order is per process.
    code = (
        "import infomap, faiss\n"
        "from clipcluster.graph.infomap_cluster import infomap_cluster\n"
        "print(infomap_cluster(5, [0, 1, 3], [1, 2, 4], [1.0, 1.0, 1.0]).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[0, 0, 0, 1, 1]"


def test_chunked_links_and_handed_over_edges(monkeypatch) -> None:
    """Links added in blocks give the labels of one block; a handed-over edge list is emptied (freed early)."""
    import clipcluster.graph.infomap_cluster as ic

    x, _ = sphere_blobs([30, 25, 40, 5])
    graph = build_knn(x, 8, index="exact", progress=False)
    src, dst, w = knn_to_edges(graph.nbrs, graph.sims, sim_floor=0.2)
    one = infomap_cluster(x.shape[0], src, dst, w, seed=3)
    monkeypatch.setattr(ic, "_LINK_CHUNK", 7)
    assert np.array_equal(infomap_cluster(x.shape[0], src, dst, w, seed=3), one)
    edges = [src, dst, w.astype(np.float64)]
    labels = ic._infomap_cluster(
        x.shape[0], edges, seed=3, num_trials=1, two_level=True, directed=False, silent=True, stats=None
    )
    assert edges == [] and np.array_equal(labels, one)
    assert np.array_equal(infomap_cluster(x.shape[0], src.astype(np.int32), dst.astype(np.int32), w, seed=3), one)
