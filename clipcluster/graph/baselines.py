"""Classic clustering baselines of CLIP-Cluster's Tables 3 and 5: K-Means, DBSCAN, HAC, ARO and CDP.

Every function returns an int64 label array of length N with labels 0..C-1 and every sample labelled:
points a method leaves as noise become singletons, as learn-to-cluster's ``write_meta`` does when it saves
baseline predictions. All five scale to MS1M part1 (584K) on a laptop-class machine by the variants the field
itself uses for its published numbers (learn-to-cluster's ``baseline/`` folder and ``scripts/baseline/*.sh``,
whose outputs GCN-V+E, STAR-FC, FaceT, MHC and CLIP-Cluster quote):

- K-Means: scikit-learn ``KMeans`` (k-means++, Lloyd) up to ``minibatch_above`` samples; above it
  ``faiss.Kmeans`` (Lloyd, exact BLAS assignment, 10 iterations), measured faster and better than scikit-learn's
  ``MiniBatchKMeans`` (the field's large-scale variant, still available as ``large="minibatch"``); k = true
  identity count.
- DBSCAN: learn-to-cluster's ``knn_dbscan``: the radius graph is the kNN graph restricted to cosine
  distance <= eps, passed to ``sklearn.cluster.DBSCAN(metric="precomputed")`` as a sparse matrix.
- HAC: single linkage (CLIP-Cluster cites SLINK for HAC; learn-to-cluster's ``fast_hierarchy`` with
  ``hmethod=single, dist=0.72``) on the kNN graph: connected components of the edges below the threshold, or
  the minimum spanning tree cut into ``n_clusters`` trees. ``average``/``complete``/``ward`` go through
  ``sklearn.cluster.AgglomerativeClustering`` with the kNN graph as connectivity (learn-to-cluster's
  ``hierarchy``); that path is a Python heap loop: measured ward 31 s at 30K and 910 s at 120K, average
  11 s at 30K and killed for memory (> 20 GB) at 120K, so it is for small sets only.
- ARO: Otto, Wang and Jain's approximate rank-order distance on the top-k lists, as learn-to-cluster's
  ``knn_aro`` computes it (lists include the query itself at rank 0, non-mutual pairs are never linked,
  link when D <= threshold), then connected components. Its ``scripts/baseline/aro.sh`` (the published
  13.4 F_P, precision 99.8, recall 7.2) ran ``method=aro`` instead: the same distance on pyflann's randomized
  kd-tree lists (4 trees, default checks), a far rougher kNN than the exact or IVF lists used here
  (docs/twin.md).
- CDP, single model (Zhan et al., ECCV 2018; the "CDP (single model, th=0.7)" row that learn-to-cluster's
  benchmark table and CLIP-Cluster quote): kNN pairs with cosine similarity above ``threshold`` become edges,
  then CDP's graph propagation: connected components, each larger than ``max_size`` split again with the
  threshold raised by ``step`` towards 1, up to ``max_iter`` rounds (XiaohangZhan/cdp ``source/graph.py``). k,
  max_size and step default to CDP's own single-model MS1M configs (k 15, max_sz 600, step 0.05), which the
  quoted row does not state.

kNN inputs follow ``clipcluster.graph.knn``'s contract: ``nbrs`` N x k int64 neighbour indices excluding the query,
sorted by decreasing cosine similarity, -1 for missing entries; ``sims`` the matching N x k float32 similarities.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import faiss
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans

from clipcluster.errors import DataError
from clipcluster.graph.propagation import propagate

__all__ = [
    "ARO_THRESHOLD",
    "CDP_MAX_SIZE",
    "CDP_STEP",
    "CDP_THRESHOLD",
    "DBSCAN_EPS",
    "DBSCAN_MIN_SAMPLES",
    "HAC_DISTANCE",
    "KMEANS_BATCH_SIZE",
    "aro",
    "aro_distances",
    "cdp",
    "dbscan",
    "hac",
    "kmeans",
    "normalize_labels",
]

# Field defaults (learn-to-cluster scripts/baseline/*.sh, the runs behind the published MS1M numbers).
KMEANS_BATCH_SIZE = 1000  # mini_kmeans.sh: bs=1000
KMEANS_MAX_ITER = 100  # scikit-learn's MiniBatchKMeans default (epochs; early stopping usually ends sooner)
KMEANS_FAISS_ITER = 10  # faiss Lloyd iterations: F_P at 10 equals F_P at 20 on MS1M-like data, half the time
DBSCAN_EPS = 0.25  # dbscan.sh: knn_dbscan eps=0.25 (cosine distance, i.e. similarity >= 0.75)
DBSCAN_MIN_SAMPLES = 1  # dbscan.sh: min=1 (every point is core: components of the radius graph)
HAC_DISTANCE = 0.72**2 / 2  # fast_hac.sh: single linkage, Euclidean 0.72 on unit vectors = cosine 0.2592
ARO_THRESHOLD = 1.0  # aro.sh: th_sim=0.0 -> link when D <= 1 - th_sim = 1
# CDP (XiaohangZhan/cdp): the quoted row's threshold; max_sz and step from its experiments/emore_*_single configs
# (whose k, 15, is methods.cdp.k in the schema: cdp() clusters whatever list columns it is given)
CDP_THRESHOLD = 0.7
CDP_MAX_SIZE = 600
CDP_STEP = 0.05
CDP_MAX_ITER = 100  # graph_propagation stops raising the threshold after 100 rounds
_ARO_BLOCK_ROWS = 32  # ARO rows per numpy block: measured flat from 8 to 64 at 584K


def _n_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def normalize_labels(labels: np.ndarray) -> np.ndarray:
    """Map any labelling with -1 for noise to int64 labels 0..C-1, each noise point its own singleton cluster."""
    labels = np.asarray(labels).astype(np.int64, copy=True)
    noise = labels < 0
    if noise.any():
        # fresh ids above every real label, one per noise point, in sample order
        labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return np.unique(labels, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _check_feats(feats: np.ndarray, where: str) -> np.ndarray:
    feats = np.asarray(feats)
    if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
        raise DataError(where, f"features must be a non-empty N x D array, got shape {feats.shape}")
    if not np.issubdtype(feats.dtype, np.floating):
        raise DataError(where, f"features must be floating point, got {feats.dtype}")
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if not np.isfinite(feats).all():
        raise DataError(where, f"row {int(np.argmin(np.isfinite(feats).all(axis=1)))} has a NaN or infinite value")
    return feats


def _check_nbrs(nbrs: np.ndarray, where: str) -> np.ndarray:
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[0] == 0 or nbrs.shape[1] == 0:
        raise DataError(where, f"nbrs must be a non-empty N x k array, got shape {nbrs.shape}")
    if not np.issubdtype(nbrs.dtype, np.integer):
        raise DataError(where, f"nbrs must be integer indices, got {nbrs.dtype}")
    n = nbrs.shape[0]
    lo, hi = int(nbrs.min()), int(nbrs.max())
    if lo < -1 or hi >= n:
        raise DataError(where, f"nbrs values must lie in [-1, {n - 1}] (-1 = missing), got [{lo}, {hi}]")
    return nbrs.astype(np.int64, copy=False)


def _check_knn(nbrs: np.ndarray, sims: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    sims = np.asarray(sims)
    if sims.shape != np.shape(nbrs):
        raise DataError(where, f"sims shape {sims.shape} does not match nbrs shape {np.shape(nbrs)}")
    nbrs = _check_nbrs(nbrs, where)
    sims = sims.astype(np.float32, copy=False)
    if not np.isfinite(sims[nbrs >= 0]).all():
        raise DataError(where, "sims has a NaN or infinite value at a present neighbour")
    return nbrs, sims


def _undirected_edges(nbrs: np.ndarray, sims: np.ndarray, min_sim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique undirected kNN edges (i < j) with similarity >= ``min_sim``; a pair listed both ways keeps its max sim."""
    n, k = nbrs.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = nbrs.ravel()
    vals = sims.ravel()
    keep = (cols >= 0) & (cols != rows) & (vals >= min_sim)
    lo = np.minimum(rows[keep], cols[keep])
    key = lo * n + np.maximum(rows[keep], cols[keep])
    vals = vals[keep]
    # one int64 sort groups each pair's (up to two) entries; a pair listed from both ends keeps its larger sim
    # (an approximate index can report it slightly differently from each end)
    order = np.argsort(key, kind="stable")
    key, vals = key[order], vals[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    lo, hi = np.divmod(key[starts], n)
    return lo, hi, np.maximum.reduceat(vals, starts) if len(starts) else vals[:0]


def kmeans(
    feats: np.ndarray,
    n_clusters: int,
    *,
    seed: int = 0,
    minibatch_above: int = 50_000,
    batch_size: int = KMEANS_BATCH_SIZE,
    max_iter: int | None = None,
    n_init: int = 1,
    large: Literal["faiss", "minibatch"] = "faiss",
    verbose: bool = False,
) -> np.ndarray:
    """K-Means with k = ``n_clusters`` (the true identity count, as every face-clustering paper passes it).

    The field: learn-to-cluster's ``kmeans`` (scikit-learn KMeans, seed 0: the 11.5 h part1 row) and
    ``mini_batch_kmeans`` (batch 1000) for the large subsets (FaceT: "for N >= 1.74M we use mini-batch K-means").
    Up to ``minibatch_above`` samples: scikit-learn ``KMeans`` (k-means++, Lloyd, ``max_iter`` default 300).
    Above it, by default (``large="faiss"``) ``faiss.Kmeans``: Lloyd from random samples with exact BLAS
    assignment over all points, ``max_iter`` default 10 iterations. Measured on MS1M-like synthetic data
    (2 cores; 120K samples, k = 1,800): faiss 10 iterations F_P 81.8 in 21 s (20 iterations: same F_P);
    scikit-learn ``MiniBatchKMeans`` (batch 1000, k-means++, early stopping) F_P 60.4 in 99 s, 53 s of it the
    k-means++ seeding, which alone runs > 6 min at k = 8,544 (584K); with random init and 10 epochs F_P 66.8
    in 115 s. ``large="minibatch"`` keeps the field's mini-batch run (``batch_size``, ``max_iter`` default 100
    epochs with scikit-learn's early stopping) for comparison. ``n_init`` runs (faiss: ``nredo``) keep the best.
    ``verbose`` prints per-iteration progress (the rule sends it to its log).
    Euclidean K-Means on unit vectors; deterministic for a given seed and thread count.
    """
    feats = _check_feats(feats, "kmeans")
    n, dim = feats.shape
    if not 1 <= int(n_clusters) <= n:
        raise DataError("kmeans", f"n_clusters must be in [1, {n}], got {n_clusters}")
    if n_init < 1 or batch_size < 1 or (max_iter is not None and max_iter < 1):
        raise DataError("kmeans", "n_init, batch_size and max_iter must be positive")
    if large not in ("faiss", "minibatch"):
        raise DataError("kmeans", f"large must be 'faiss' or 'minibatch', got {large!r}")
    k = int(n_clusters)
    if n <= minibatch_above:
        iters = 300 if max_iter is None else int(max_iter)
        model = KMeans(k, max_iter=iters, n_init=int(n_init), random_state=seed, verbose=int(verbose))
        return normalize_labels(model.fit_predict(feats))
    if large == "minibatch":
        model = MiniBatchKMeans(
            k,
            batch_size=int(batch_size),
            max_iter=KMEANS_MAX_ITER if max_iter is None else int(max_iter),
            n_init=int(n_init),
            random_state=seed,
            verbose=verbose,
        )
        return normalize_labels(model.fit_predict(feats))
    km = faiss.Kmeans(
        dim,
        k,
        niter=KMEANS_FAISS_ITER if max_iter is None else int(max_iter),
        nredo=int(n_init),
        seed=int(seed),
        max_points_per_centroid=n,  # train on every point (faiss would otherwise subsample above 256 per centroid)
        min_points_per_centroid=1,  # MS1M has ~68 faces per identity; skip faiss's "too few points" warning
        verbose=verbose,
    )
    km.train(feats)
    return normalize_labels(km.index.search(feats, 1)[1].ravel())


def dbscan(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    eps: float = DBSCAN_EPS,
    min_samples: int = DBSCAN_MIN_SAMPLES,
) -> np.ndarray:
    """DBSCAN on the kNN radius graph (cosine distance 1 - sim <= ``eps``); noise points become singletons.

    The field: learn-to-cluster's ``knn_dbscan`` (faiss kNN, k = 80, sparse cosine-distance matrix into
    ``sklearn.cluster.DBSCAN(metric="precomputed")``), run with eps = 0.25 and min_samples = 1, our defaults.
    ``min_samples`` counts the point itself, as in scikit-learn. The radius graph is symmetrised (a pair found
    from either end is a neighbour of both), which is what exact DBSCAN would see for the pairs the kNN lists hold.
    """
    nbrs, sims = _check_knn(nbrs, sims, "dbscan")
    if not eps >= 0 or min_samples < 1:
        raise DataError("dbscan", f"need eps >= 0 and min_samples >= 1, got eps={eps}, min_samples={min_samples}")
    n = nbrs.shape[0]
    lo, hi, vals = _undirected_edges(nbrs, sims, 1.0 - eps)
    dist = np.clip(1.0 - vals.astype(np.float64), 0.0, None)
    diag = np.arange(n, dtype=np.int64)
    # explicit zero diagonal so scikit-learn's setdiag is a no-op (and zero-distance duplicates stay stored)
    graph = sp.csr_matrix(
        (np.concatenate([dist, dist, np.zeros(n)]), (np.concatenate([lo, hi, diag]), np.concatenate([hi, lo, diag]))),
        shape=(n, n),
    )
    labels = DBSCAN(eps=eps, min_samples=int(min_samples), metric="precomputed").fit_predict(graph)
    return normalize_labels(labels)


def hac(
    feats: np.ndarray | None,
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    n_clusters: int | None = None,
    distance_threshold: float | None = None,
    linkage: Literal["single", "average", "complete", "ward"] = "single",
) -> np.ndarray:
    """Agglomerative clustering restricted to the kNN graph; single linkage by default.

    The field: CLIP-Cluster, FaceT and MHC cite SLINK (single linkage) for HAC, and their MS1M rows come from
    learn-to-cluster's ``fast_hierarchy`` (single linkage, Euclidean distance 0.72 on L2-normalised features);
    its collapse with scale (F_P 54.4 -> 0.37 from 1.74M to 5.21M) is single linkage's chaining. Our default is
    that run: ``distance_threshold`` is a cosine distance (1 - sim), default ``HAC_DISTANCE`` = 0.72^2 / 2.

    ``linkage="single"`` needs no features: with a threshold, clusters are the connected components of the kNN
    edges with distance <= threshold (exact single linkage whenever the merging pairs are in the lists); with
    ``n_clusters``, the minimum spanning forest of the kNN graph is cut at its largest edges. Other linkages use
    ``sklearn.cluster.AgglomerativeClustering`` with the symmetrised kNN graph as connectivity (cosine metric;
    Euclidean for ward), learn-to-cluster's ``hierarchy``: exact on the graph, but a Python heap loop (ward
    910 s at 120K; average > 20 GB at 120K), so small sets only. Give at most one of ``n_clusters`` and
    ``distance_threshold``. Single linkage cannot merge across kNN-graph components, so if the graph has more
    components than ``n_clusters`` the result has one cluster per component (scikit-learn would instead add
    edges between components, at O(components^2) cost).
    """
    nbrs, sims = _check_knn(nbrs, sims, "hac")
    n = nbrs.shape[0]
    if n_clusters is not None and distance_threshold is not None:
        raise DataError("hac", "give n_clusters or distance_threshold, not both")
    if n_clusters is not None and not 1 <= int(n_clusters) <= n:
        raise DataError("hac", f"n_clusters must be in [1, {n}], got {n_clusters}")
    if n_clusters is None and distance_threshold is None:
        distance_threshold = HAC_DISTANCE
    if distance_threshold is not None and not distance_threshold >= 0:
        raise DataError("hac", f"distance_threshold must be >= 0, got {distance_threshold}")

    if linkage == "single":
        if distance_threshold is not None:
            lo, hi, _ = _undirected_edges(nbrs, sims, 1.0 - distance_threshold)
            graph = sp.csr_matrix((np.ones(len(lo), dtype=np.int8), (lo, hi)), shape=(n, n))
            return normalize_labels(connected_components(graph, directed=False)[1])
        lo, hi, vals = _undirected_edges(nbrs, sims, -np.inf)
        # weights 2 - sim > 0: csgraph treats a stored 0 as "no edge", so shift rather than use 1 - sim
        graph = sp.csr_matrix((2.0 - vals.astype(np.float64), (lo, hi)), shape=(n, n))
        forest = minimum_spanning_tree(graph).tocoo()
        n_trees = n - forest.nnz
        n_cut = max(int(n_clusters) - n_trees, 0)  # already n_trees components; cut the largest edges for the rest
        keep = np.argsort(forest.data, kind="stable")[: forest.nnz - n_cut]
        pruned = sp.csr_matrix((np.ones(len(keep), dtype=np.int8), (forest.row[keep], forest.col[keep])), shape=(n, n))
        return normalize_labels(connected_components(pruned, directed=False)[1])

    if linkage not in ("average", "complete", "ward"):
        raise DataError("hac", f"linkage must be single, average, complete or ward, got {linkage!r}")
    if feats is None:
        raise DataError("hac", f"linkage={linkage!r} needs the features")
    feats = _check_feats(feats, "hac")
    if feats.shape[0] != n:
        raise DataError("hac", f"features have {feats.shape[0]} rows but nbrs has {n}")
    lo, hi, _ = _undirected_edges(nbrs, sims, -np.inf)
    conn = sp.csr_matrix((np.ones(len(lo)), (lo, hi)), shape=(n, n))
    conn = conn + conn.T
    model = AgglomerativeClustering(
        n_clusters=None if n_clusters is None else int(n_clusters),
        distance_threshold=distance_threshold,
        connectivity=conn,
        linkage=linkage,
        metric="euclidean" if linkage == "ward" else "cosine",
        compute_full_tree=n_clusters is None,
    )
    return normalize_labels(model.fit_predict(feats))


def aro_distances(nbrs: np.ndarray, *, k: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Otto et al.'s normalised approximate rank-order distance D(a, b) for every mutual kNN pair.

    With a's list f_a = [a, nbrs[a, 0], ..., nbrs[a, k-1]] (the face itself at rank 0) and O_a(b) the rank of b
    in it, d(a, b) = sum_{i=0}^{O_a(b)} I(f_a(i) not in f_b) counts a's faces up to b that are absent from b's
    list and D(a, b) = (d(a, b) + d(b, a)) / min(O_a(b), O_b(a)). Pairs where a is not in f_b are left out
    (learn-to-cluster's ``knn_aro`` gives them distance 9999). Missing entries (-1) are faces in no list.
    Returns (a, b, D) with one entry per ordered pair, so each mutual pair appears twice with the same D.
    """
    nbrs = _check_nbrs(nbrs, "aro")
    n, kk = nbrs.shape
    k = kk if k is None else int(k)
    if not 1 <= k <= kk:
        raise DataError("aro", f"k must be in [1, {kk}], got {k}")
    nb = nbrs[:, :k]
    valid = nb >= 0
    srt = np.sort(np.where(valid, nb, -1 - np.arange(k)), axis=1)  # missing entries made distinct
    if (srt[:, 1:] == srt[:, :-1]).any() or (nb == np.arange(n)[:, None]).any():
        raise DataError("aro", "a nbrs row lists the same neighbour twice or lists the query itself")
    del srt

    # f_a as rows of a table; a dummy face n (listed nowhere, with an empty list) stands in for missing entries
    lists = np.concatenate([np.arange(n)[:, None], np.where(valid, nb, n)], axis=1).astype(np.int32)
    lists = np.concatenate([lists, np.full((1, k + 1), n, dtype=np.int32)])
    # For b the j-th neighbour of a, O_a(b) = j + 1 and d(a, b) = O_a(b) - |{x in f_b : O_a(x) < O_a(b)}|.
    # Per block of rows a scratch table holds O_a(x) for x in f_a (ABSENT elsewhere); reading it at all of f_b
    # for every b in f_a counts each intersection below b's rank in a few numpy passes (N k (k + 1) reads, the
    # method's inherent cost; learn-to-cluster does the same with Python sets). Reset after each block.
    rank_dtype = np.uint8 if k + 1 < 255 else np.uint32
    absent = np.iinfo(rank_dtype).max
    rank0 = np.arange(k + 1, dtype=rank_dtype)
    o_ab = np.arange(1, k + 1, dtype=rank_dtype)
    d_ab = np.empty((n, k), dtype=np.int32)
    o_ba = np.empty((n, k), dtype=np.int32)  # O_b(a), 0 when a is not in f_b

    def fill(lo: int, hi: int) -> None:
        m = _ARO_BLOCK_ROWS
        scratch = np.full(m * (n + 1), absent, dtype=rank_dtype)
        for s in range(lo, hi, m):
            la = lists[s : min(s + m, hi)]
            base = (np.arange(len(la), dtype=np.int64) * (n + 1))[:, None]
            marks = base + la
            scratch[marks] = rank0
            scratch[base + n] = absent  # the dummy face is never a member
            fb = lists[la[:, 1:]]  # (m, k, k + 1): every neighbour's own list
            pos = scratch[base[:, :, None] + fb]
            d_ab[s : s + len(la)] = o_ab - np.count_nonzero(pos < o_ab[None, :, None], axis=2)
            o_ba[s : s + len(la)] = np.argmax(fb == la[:, :1, None], axis=2)  # 0 (b's own slot) when a is absent
            scratch[marks] = absent

    # numpy's gathers release the GIL: threads over disjoint row ranges (1.75x on 2 cores), same result
    workers = max(1, min(_n_cpus(), 8, n // (16 * _ARO_BLOCK_ROWS)))
    bounds = np.linspace(0, n, workers + 1).astype(np.int64)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fill, bounds[:-1], bounds[1:]))

    # d(b, a) sits in the same table at row b, column O_b(a) - 1
    a_all, j_all = np.nonzero(valid & (o_ba > 0))
    b_all = nb[a_all, j_all]
    o_back = o_ba[a_all, j_all]
    dist = (d_ab[a_all, j_all] + d_ab[b_all, o_back - 1]) / np.minimum(j_all + 1, o_back)
    return a_all.astype(np.int64), b_all, dist


def aro(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    threshold: float = ARO_THRESHOLD,
    k: int | None = None,
) -> np.ndarray:
    """Approximate Rank-Order clustering (Otto, Wang, Jain, TPAMI 2018): link mutual pairs with D <= threshold.

    D is :func:`aro_distances`; clusters are the connected components of the linked pairs. The field:
    learn-to-cluster's ``knn_aro`` links pairs with D <= 1 - th_sim; its ``aro.sh`` ran k = 80 lists including
    the face and th_sim = 0, i.e. threshold 1, our default, on pyflann kd-tree lists (the module docstring).
    ``k`` truncates the lists (default: all columns). ``sims`` is only validated: ARO uses ranks alone.
    """
    nbrs, _ = _check_knn(nbrs, sims, "aro")
    if not threshold >= 0:
        raise DataError("aro", f"threshold must be >= 0, got {threshold}")
    n = nbrs.shape[0]
    rows, cols, dist = aro_distances(nbrs, k=k)
    link = dist <= threshold
    graph = sp.csr_array((np.ones(int(link.sum()), dtype=np.int8), (rows[link], cols[link])), shape=(n, n))
    return normalize_labels(connected_components(graph, directed=False)[1])


def cdp(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    threshold: float = CDP_THRESHOLD,
    max_size: int = CDP_MAX_SIZE,
    step: float = CDP_STEP,
    max_iter: int = CDP_MAX_ITER,
) -> np.ndarray:
    """CDP with a single model: threshold the kNN pairs, then split oversized components (Zhan et al. 2018).

    Edges are the undirected kNN pairs with similarity strictly above ``threshold`` (CDP's ``sample`` with no
    committee). Propagation, as CDP's ``graph_propagation``: the connected components of all edges; every
    component of at most ``max_size`` samples is final, the samples of larger ones remain. Each later round
    raises the threshold t (starting from the smallest edge similarity) to t + (1 - t) ``step`` and takes the
    components of the remaining samples over their edges with similarity >= t, again keeping those of at most
    ``max_size``. After ``max_iter`` rounds whatever remains becomes one cluster (CDP's forced stop). Samples
    with no edge, which CDP labels -1, become singletons. The columns of ``nbrs`` are the lists CDP searched
    (its k: pass the first 15 columns for its configs).
    """
    nbrs, sims = _check_knn(nbrs, sims, "cdp")
    if not -1.0 <= threshold < 1.0:
        raise DataError("cdp", f"threshold must be in [-1, 1), got {threshold}")
    if max_size < 1 or not 0.0 < step <= 1.0 or max_iter < 0:
        raise DataError("cdp", f"need max_size >= 1, 0 < step <= 1, max_iter >= 0; got {max_size}, {step}, {max_iter}")
    lo, hi, vals = _undirected_edges(nbrs, sims, threshold)
    keep = vals > threshold  # CDP's sample() keeps simi > th
    lo, hi, vals = lo[keep], hi[keep], vals[keep].astype(np.float64)
    start = float(vals.min()) if len(vals) else threshold  # CDP starts raising from the weakest kept edge
    labels = propagate(
        nbrs.shape[0], lo, hi, vals, start=start, max_size=int(max_size), step=float(step), max_iter=int(max_iter),
        keep_at="at_least", leftovers="together",
    )  # fmt: skip
    return normalize_labels(labels)
