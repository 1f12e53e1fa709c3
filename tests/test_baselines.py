"""Tests of the classic baselines (K-Means, DBSCAN, HAC, ARO, CDP) on small clustered data built here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.cluster.hierarchy as sch
from sklearn.cluster import DBSCAN

from clipcluster.errors import DataError
from clipcluster.graph import baselines
from clipcluster.graph.baselines import aro, aro_distances, cdp, dbscan, hac, kmeans, normalize_labels

N_IDS = 20
DIM = 32


def _blobs(seed: int = 0, within: float = 0.8, n_outliers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """20 identities of 5-30 samples on the unit sphere in 32-d; same-identity cosine ~ ``within``, across ~0.

    Centres are orthonormal, so identities are well separated (cross-identity cosine ~ 0 +- 0.1). Outliers
    (label -1) are random directions in the 12-d complement of the centres, each its own identity.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0].T
    centres, complement = basis[:N_IDS], basis[N_IDS:]
    sizes = rng.integers(5, 31, size=N_IDS)
    labels = np.repeat(np.arange(N_IDS), sizes)
    noise = rng.standard_normal((len(labels), DIM)) / np.sqrt(DIM)
    feats = np.sqrt(within) * centres[labels] + np.sqrt(1 - within) * noise
    if n_outliers:
        feats = np.concatenate([feats, rng.standard_normal((n_outliers, len(complement))) @ complement])
        labels = np.concatenate([labels, -np.ones(n_outliers, dtype=np.int64)])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    perm = rng.permutation(len(labels))
    return feats[perm].astype(np.float32), labels[perm]


def _knn(feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN by brute force: self excluded, decreasing similarity (the clipcluster.graph.knn contract)."""
    sims = feats @ feats.T
    np.fill_diagonal(sims, -np.inf)
    nbrs = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return nbrs.astype(np.int64), np.take_along_axis(sims, nbrs, axis=1).astype(np.float32)


def _pairwise(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall, counting ordered pairs of distinct samples."""
    truth = normalize_labels(truth)
    same_pred = pred[:, None] == pred[None, :]
    same_true = truth[:, None] == truth[None, :]
    np.fill_diagonal(same_pred, False)
    np.fill_diagonal(same_true, False)
    both = (same_pred & same_true).sum()
    return both / max(same_pred.sum(), 1), both / max(same_true.sum(), 1)


def _check_labels(labels: np.ndarray, n: int) -> None:
    assert labels.shape == (n,)
    assert labels.dtype == np.int64
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))  # 0..C-1, none skipped, none -1


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming the clusters."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return len(pairs[0]) == len(np.unique(a)) == len(np.unique(b))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    feats, labels = _blobs()
    nbrs, sims = _knn(feats, 20)
    return feats, labels, nbrs, sims


def test_normalize_labels_makes_noise_singletons() -> None:
    out = normalize_labels(np.array([-1, 5, 5, -1, 2]))
    _check_labels(out, 5)
    assert out[1] == out[2] and out[0] != out[3]
    assert len(np.unique(out)) == 4


def test_kmeans_recovers_separated_identities(data) -> None:
    feats, labels, _, _ = data
    pred = kmeans(feats, N_IDS, seed=0, n_init=3)
    _check_labels(pred, len(labels))
    precision, recall = _pairwise(labels, pred)
    assert precision > 0.9 and recall > 0.9


@pytest.mark.parametrize("large", ["faiss", "minibatch"])
def test_kmeans_is_deterministic_given_seed(data, large) -> None:
    feats = data[0]
    assert np.array_equal(kmeans(feats, N_IDS, seed=3), kmeans(feats, N_IDS, seed=3))
    big = dict(minibatch_above=10, batch_size=64, large=large)
    assert np.array_equal(kmeans(feats, N_IDS, seed=3, **big), kmeans(feats, N_IDS, seed=3, **big))


def test_kmeans_switches_backend_above_threshold(data, monkeypatch) -> None:
    feats, labels, _, _ = data
    used = []

    class SpyMiniBatch(baselines.MiniBatchKMeans):
        def fit_predict(self, *args, **kwargs):
            used.append(("minibatch", self.batch_size))
            return super().fit_predict(*args, **kwargs)

    class SpyFaiss(baselines.faiss.Kmeans):
        def train(self, *args, **kwargs):
            used.append(("faiss", self.cp.niter))
            return super().train(*args, **kwargs)

    monkeypatch.setattr(baselines, "MiniBatchKMeans", SpyMiniBatch)
    monkeypatch.setattr(baselines.faiss, "Kmeans", SpyFaiss)
    kmeans(feats, N_IDS, minibatch_above=len(labels))  # at the threshold: scikit-learn KMeans
    assert used == []
    above = len(labels) - 1
    for large in ("minibatch", "faiss"):
        pred = kmeans(feats, N_IDS, minibatch_above=above, batch_size=128, large=large, n_init=3)
        _check_labels(pred, len(labels))
        assert _pairwise(labels, pred)[0] > 0.8
    assert used == [("minibatch", 128), ("faiss", baselines.KMEANS_FAISS_ITER)]


def test_kmeans_rejects_bad_k(data) -> None:
    with pytest.raises(DataError, match="n_clusters"):
        kmeans(data[0], len(data[0]) + 1)


def test_dbscan_recovers_separated_identities(data) -> None:
    _, labels, nbrs, sims = data
    pred = dbscan(nbrs, sims, eps=0.5, min_samples=3)
    _check_labels(pred, len(labels))
    precision, recall = _pairwise(labels, pred)
    assert precision == 1.0 and recall > 0.95


def test_dbscan_noise_becomes_singletons() -> None:
    feats, labels = _blobs(seed=1, n_outliers=7)
    nbrs, sims = _knn(feats, 15)
    pred = dbscan(nbrs, sims, eps=0.5, min_samples=4)
    _check_labels(pred, len(labels))
    outliers = np.flatnonzero(labels < 0)
    sizes = np.bincount(pred)
    assert (sizes[pred[outliers]] == 1).all()  # every outlier alone
    assert pred.max() + 1 == N_IDS + len(outliers)


def test_dbscan_with_full_lists_equals_exact_dbscan() -> None:
    feats, labels = _blobs(seed=2, within=0.6, n_outliers=5)
    nbrs, sims = _knn(feats, len(labels) - 1)
    for eps, min_samples in [(0.35, 1), (0.4, 5)]:
        exact = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine").fit_predict(feats.astype(np.float64))
        assert _same_partition(dbscan(nbrs, sims, eps=eps, min_samples=min_samples), normalize_labels(exact))


def test_dbscan_defaults_are_learn_to_cluster_run() -> None:
    assert (baselines.DBSCAN_EPS, baselines.DBSCAN_MIN_SAMPLES) == (0.25, 1)


def test_hac_single_threshold_recovers_identities(data) -> None:
    _, labels, nbrs, sims = data
    pred = hac(None, nbrs, sims)  # default: single linkage, cosine distance 0.2592 (Euclidean 0.72)
    _check_labels(pred, len(labels))
    precision, recall = _pairwise(labels, pred)
    assert precision == 1.0 and recall > 0.9


def test_hac_single_with_full_lists_equals_exact_single_linkage() -> None:
    feats, _ = _blobs(seed=3, within=0.6)
    nbrs, sims = _knn(feats, len(feats) - 1)
    tree = sch.linkage(feats.astype(np.float64), method="single", metric="cosine")
    for t in (0.3, 0.45):
        exact = sch.fcluster(tree, t=t, criterion="distance")
        assert _same_partition(hac(None, nbrs, sims, distance_threshold=t), exact)
    exact = sch.fcluster(tree, t=N_IDS, criterion="maxclust")
    pred = hac(None, nbrs, sims, n_clusters=N_IDS)
    assert pred.max() + 1 == N_IDS and _same_partition(pred, exact)


def test_hac_n_clusters_on_knn_graph(data) -> None:
    feats, labels, nbrs, sims = data
    for linkage in ("single", "average", "ward"):
        pred = hac(feats, nbrs, sims, n_clusters=N_IDS, linkage=linkage)
        _check_labels(pred, len(labels))
        assert pred.max() + 1 == N_IDS
        assert _same_partition(pred, labels), linkage


def test_hac_argument_errors(data) -> None:
    _, _, nbrs, sims = data
    with pytest.raises(DataError, match="not both"):
        hac(None, nbrs, sims, n_clusters=3, distance_threshold=0.3)
    with pytest.raises(DataError, match="needs the features"):
        hac(None, nbrs, sims, n_clusters=3, linkage="average")


# Hand-made lists (self excluded) for ARO; f_a = [a] + row. Pairs b in f_a with a in f_b (mutual), and
# D = (d(a,b) + d(b,a)) / min(O_a(b), O_b(a)) worked out by hand:
#   (0,1): O=1,3  d(0,1)=0 (0,1 in f_1)        d(1,0)=2 (4,5 not in f_0)         D=2/1
#   (0,2): O=2,1  d=0, 0                                                          D=0
#   (0,3): O=3,3  d(0,3)=2 (1,2 not in f_3)    d(3,0)=2 (5,4 not in f_0)         D=4/3
#   (1,4): O=1,1  D=0      (1,5): O=2,1  d(1,5)=0 (1,4,5 in f_5)  D=0
#   (2,4): O=2,2  d(2,4)=1 (0 not in f_4)      d(4,2)=0                          D=1/2
#   (3,5): O=1,2  d(3,5)=0                     d(5,3)=1 (1 not in f_3)           D=1/1
#   (3,4): O=2,3  d(3,4)=1 (5)                 d(4,3)=2 (1,2 not in f_3)         D=3/2
#   (1,2), (5,4): not mutual, never linked
HAND_NBRS = np.array([[1, 2, 3], [4, 5, 0], [0, 4, 1], [5, 4, 0], [1, 2, 3], [1, 3, 4]])
HAND_D = {(0, 1): 2, (0, 2): 0, (0, 3): 4 / 3, (1, 4): 0, (1, 5): 0, (2, 4): 1 / 2, (3, 5): 1, (3, 4): 3 / 2}


def test_aro_distance_hand_computed() -> None:
    rows, cols, dist = aro_distances(HAND_NBRS)
    got = {(int(a), int(b)): float(d) for a, b, d in zip(rows, cols, dist, strict=True)}
    want = {**HAND_D, **{(b, a): d for (a, b), d in HAND_D.items()}}  # both directions, same D
    assert got.keys() == want.keys()
    for pair, d in want.items():
        assert got[pair] == pytest.approx(d), pair


def test_aro_threshold_and_components() -> None:
    sims = np.ones(HAND_NBRS.shape, dtype=np.float32)
    assert _same_partition(aro(HAND_NBRS, sims, threshold=0), np.array([0, 1, 0, 2, 1, 1]))
    assert _same_partition(aro(HAND_NBRS, sims, threshold=0.5), np.array([0, 0, 0, 1, 0, 0]))
    # D <= 1 is learn-to-cluster's comparison: the D = 1 pair (3, 5) links
    assert aro(HAND_NBRS, sims, threshold=1.0).max() == 0
    # truncating to k = 1 leaves one mutual top-1 pair, (1, 4); 3's top-1 is 5 but 5's is 1
    assert _same_partition(aro(HAND_NBRS, sims, threshold=0, k=1), np.array([0, 1, 2, 3, 1, 4]))


def _aro_literal(nbrs: np.ndarray) -> dict[tuple[int, int], float]:
    """The definition with Python sets, as learn-to-cluster's knn_aro loops (fine for a few hundred faces)."""
    lists = [[a] + [int(x) for x in row if x >= 0] for a, row in enumerate(nbrs)]
    out = {}
    for a, fa in enumerate(lists):
        for o_ab, b in enumerate(fa[1:], start=1):
            fb = lists[b]
            if a not in fb:
                continue
            o_ba = fb.index(a)
            d_ab = len(set(fa[:o_ab]) - set(fb))
            d_ba = len(set(fb[:o_ba]) - set(fa))
            out[(a, b)] = (d_ab + d_ba) / min(o_ab, o_ba)
    return out


def test_aro_matches_literal_definition_with_missing_entries(data) -> None:
    _, _, nbrs, _ = data
    nbrs = nbrs[:, :12].copy()
    rng = np.random.default_rng(5)
    nbrs[rng.random(len(nbrs)) < 0.2, 9:] = -1  # an approximate index's missing tail entries
    rows, cols, dist = aro_distances(nbrs)
    got = {(int(a), int(b)): float(d) for a, b, d in zip(rows, cols, dist, strict=True)}
    want = _aro_literal(nbrs)
    assert got.keys() == want.keys()
    assert all(got[p] == pytest.approx(want[p]) for p in want)


def test_aro_matches_literal_definition_on_random_local_lists() -> None:
    # 1,500 faces whose 10 neighbours are random faces within +-15 places: many mutual pairs with random ranks;
    # large enough that the row blocks are shared between threads on a multi-core machine
    rng = np.random.default_rng(6)
    n = 1500
    offsets = np.concatenate([np.arange(-15, 0), np.arange(1, 16)])
    picks = np.argsort(rng.random((n, len(offsets))), axis=1)[:, :10]
    nbrs = (np.arange(n)[:, None] + offsets[picks]) % n
    nbrs[rng.random(n) < 0.1, 7:] = -1
    rows, cols, dist = aro_distances(nbrs)
    got = {(int(a), int(b)): float(d) for a, b, d in zip(rows, cols, dist, strict=True)}
    want = _aro_literal(nbrs)
    assert len(want) > 2 * n and got.keys() == want.keys()
    assert all(got[p] == pytest.approx(want[p]) for p in want)


def test_aro_high_precision_on_identities(data) -> None:
    _, labels, nbrs, sims = data
    pred = aro(nbrs, sims)
    _check_labels(pred, len(labels))
    precision, recall = _pairwise(labels, pred)
    assert precision == 1.0 and recall > 0.3
    assert np.array_equal(pred, aro(nbrs, sims))


def test_aro_rejects_duplicate_neighbours() -> None:
    bad = HAND_NBRS.copy()
    bad[0] = [1, 1, 3]
    with pytest.raises(DataError, match="twice"):
        aro(bad, np.ones(bad.shape, dtype=np.float32))


def test_knn_input_validation() -> None:
    nbrs = np.array([[1], [0]])
    with pytest.raises(DataError, match="does not match"):
        dbscan(nbrs, np.ones((2, 2), dtype=np.float32))
    with pytest.raises(DataError, match="must lie in"):
        aro(np.array([[2], [0]]), np.ones((2, 1), dtype=np.float32))


def _edge_knn(n: int, edges: dict[tuple[int, int], float], k: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN lists holding exactly the given undirected edges (both ends), -1 / -inf padding."""
    lists: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for (a, b), s in edges.items():
        lists[a].append((s, b))
        lists[b].append((s, a))
    nbrs = np.full((n, k), -1, dtype=np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    for i, row in enumerate(lists):
        row.sort(reverse=True)
        for j, (s, b) in enumerate(row[:k]):
            nbrs[i, j], sims[i, j] = b, s
    return nbrs, sims


def test_cdp_threshold_is_strict_and_isolated_samples_are_singletons() -> None:
    # 0-1-2 linked above 0.7; 2-3 exactly at 0.7 (CDP keeps simi > th); 4 has no edge at all
    nbrs, sims = _edge_knn(5, {(0, 1): 0.9, (1, 2): 0.8, (2, 3): 0.7}, k=3)
    labels = cdp(nbrs, sims, threshold=0.7)
    assert _same_partition(labels, np.array([0, 0, 0, 1, 2]))


def test_cdp_splits_oversized_components_at_a_raised_threshold() -> None:
    # a 6-chain whose weakest link (0.75, the minimum edge) breaks at the first raised threshold
    # 0.75 + 0.25 * 0.05 = 0.7625; a 2-chain beside it stays whole
    chain = {(0, 1): 0.95, (1, 2): 0.9, (2, 3): 0.75, (3, 4): 0.9, (4, 5): 0.95, (6, 7): 0.8}
    nbrs, sims = _edge_knn(8, chain, k=2)
    assert _same_partition(cdp(nbrs, sims, max_size=6), np.array([0, 0, 0, 0, 0, 0, 1, 1]))
    assert _same_partition(cdp(nbrs, sims, max_size=3), np.array([0, 0, 0, 1, 1, 1, 2, 2]))
    # 0.8 survives 0.7625 but not the next round (0.7744), so with max_size 2 the 3-chains shed their 0.9 ends...
    # ...down to pairs joined by 0.95 and singletons
    assert _same_partition(cdp(nbrs, sims, max_size=2), np.array([0, 0, 1, 2, 3, 3, 4, 4]))
    # with no rounds left the oversized remainder is one cluster (CDP's forced stop)
    assert _same_partition(cdp(nbrs, sims, max_size=3, max_iter=0), np.array([0, 0, 0, 0, 0, 0, 1, 1]))


def _cdp_by_recursion(nbrs, sims, threshold, max_size, step, max_iter):
    """CDP's propagation written the other way round: each oversized component recursively re-split on its own,
    following the same global threshold sequence (the components at one threshold are independent); what is
    still oversized after ``max_iter`` rounds forms one cluster."""
    n = nbrs.shape[0]
    adj: dict[int, dict[int, float]] = {i: {} for i in range(n)}
    for i in range(n):
        for j, s in zip(nbrs[i], sims[i], strict=True):
            if j >= 0 and s > threshold:
                adj[i][int(j)] = max(adj[i].get(int(j), -1.0), float(s))
                adj[int(j)][i] = adj[i][int(j)]
    scores = [s for i in adj for s in adj[i].values()]
    ths = [min(scores)] if scores else [threshold]
    for _ in range(max_iter):
        ths.append(ths[-1] + (1 - ths[-1]) * step)
    out: list[set[int]] = []
    remainder: set[int] = set()  # CDP's forced stop: every component still oversized after the last round, together

    def comps(nodes: set[int], th: float) -> list[set[int]]:
        left, found = set(nodes), []
        while left:
            seed = left.pop()
            group, stack = {seed}, [seed]
            while stack:
                for b, s in adj[stack.pop()].items():
                    if b in left and s >= th:
                        left.discard(b)
                        group.add(b)
                        stack.append(b)
            found.append(group)
        return found

    def split(nodes: set[int], level: int) -> None:
        for group in comps(nodes, ths[level]):
            if len(group) <= max_size:
                out.append(group)
            elif level == max_iter:
                remainder.update(group)
            else:
                split(group, level + 1)

    split({i for i in adj if adj[i]}, 0)
    out.append(remainder)
    labels = -np.ones(n, dtype=np.int64)
    for c, group in enumerate(out):
        labels[list(group)] = c
    return normalize_labels(labels)


@pytest.mark.parametrize(("max_size", "max_iter"), [(10, 100), (4, 100), (25, 3)])
def test_cdp_matches_recursive_definition(data, max_size, max_iter) -> None:
    nbrs, sims = data[2][:, :8], data[3][:, :8]
    got = cdp(nbrs, sims, threshold=0.6, max_size=max_size, step=0.05, max_iter=max_iter)
    want = _cdp_by_recursion(nbrs, sims, 0.6, max_size, 0.05, max_iter)
    assert _same_partition(got, want)
    if max_iter == 100:
        assert np.bincount(got).max() <= max_size
    else:  # the forced stop left one cluster above max_size
        assert np.bincount(got).max() > max_size


def test_cdp_recovers_separated_identities(data) -> None:
    truth = data[1]
    labels = cdp(data[2][:, :15], data[3][:, :15])
    _check_labels(labels, len(truth))
    precision, recall = _pairwise(truth, labels)
    assert precision > 0.99 and recall > 0.95


def test_cdp_argument_errors() -> None:
    nbrs, sims = _edge_knn(3, {(0, 1): 0.9}, k=1)
    for kwargs, match in [({"threshold": 1.0}, "threshold"), ({"max_size": 0}, "max_size"), ({"step": 0.0}, "step")]:
        with pytest.raises(DataError, match=match):
            cdp(nbrs, sims, **kwargs)
