"""MHC's clustering stage: transition matrix, NDDe density, TPDi distance and density peak clustering.

Chen et al., "On Mitigating Hard Clusters for Face Clustering", ECCV 2022 (seed:
``mhc-on-mitigating-hard-clusters-eccv2022.md``), sections 3-4 and Algorithm 1. MHC learns the similarity of
every kNN edge (a transformer encoder plus an MLP, Eq. 1); everything after that is training-free and lives here:

1. Transition matrix (Sec. 4.1): ``S_hat`` holds, per row, the sample itself and its K nearest neighbours
   (K + 1 non-zeros); ``d_i = sum_j s_ij`` and ``p_ij = s_ij / d_i``. P is **row-stochastic**
   (``sum_j p_ij = 1``, the conservation property Sec. 4.2 states), stored N x N sparse.
2. NDDe (Sec. 4.2, Eqs. 2-3, Algorithm 1 lines 10-15): start from ``rho = 1`` and let every point hand its
   density to itself and its neighbours in proportion to its transition probabilities,
   ``rho_j <- sum_i p_ij rho_i`` i.e. ``rho <- P^T rho``, until ``||rho_t+1 - rho_t||_2 <= eps``.
3. TPDi (Sec. 4.3, Eq. 4): ``d_ij = 1 - sum_{c in C_ij} sqrt(p_ic p_jc)`` over the common support of rows i and
   j of P, evaluated on the kNN edges only; in [0, 1] by Cauchy-Schwarz; with uniform rows (Remark 1) it is
   ``1 - 2J / (1 + J)`` for the Jaccard similarity J of the two neighbour sets.
4. DPC (Sec. 3): each point links to its TPDi-nearest kNN neighbour of strictly higher density if that
   distance is below ``tau``; the links form trees, one cluster each (connected components).

Decisions where the paper is ambiguous (each also noted where it is coded):

- Direction of the diffusion. Algorithm 1 writes ``rho = P x rho`` and Eq. 2 ``d rho / dt = -(I - P) rho``
  with P row-stochastic; taken literally, ``P 1 = 1`` and the density never moves from 1. The text ("distributing
  the density to its K-nearest neighbors ... following the corresponding transition probabilities") and
  Theorem 1 (cluster means stay 1, which needs mass conservation) both need the transpose, ``rho <- P^T rho``;
  the introduction's "each column is the transition probability vector" says the same. So ``P^T`` it is. (The
  authors' released code diffuses over the transposed matrix too, with a damping term and an L1 stop; its
  released MS1M config runs one diffusion step, ``approximate_NDDe``. Neither is in the paper; not used here.)
- The stop rule is Algorithm 1's, ``||rho_t+1 - rho_t||_2 <= eps`` with ``eps = 0.05`` (Sec. 5.1) on densities
  that start at 1 (so it is absolute: tighter per point as N grows), guarded by ``max_iter``.
- The self entry ``s_ii`` ("itself and its top-K", Sec. 4.1) is not given a value; ``self_sim = 1`` (a sample's
  similarity to itself, and what a cosine kNN list that keeps the query gives). Its self-loop also keeps the
  chain aperiodic, so the iteration converges.
- Negative similarities (raw cosine; the learned ones are sigmoid outputs in [0, 1]) are clipped to 0: a
  transition probability cannot be negative.
- DPC's ``argmin_{rho_j > rho_i} d_ij`` runs over each point's kNN list (the only pairs TPDi is evaluated on, and
  the only pairs with common neighbours in general); ties in distance go to the earlier (more similar) neighbour.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from clipcluster.errors import DataError
from clipcluster.graph.baselines import _check_knn, normalize_labels

log = logging.getLogger(__name__)

__all__ = [
    "MHC_EPS",
    "MHC_K",
    "MHC_MAX_ITER",
    "MHC_TAU",
    "MhcResult",
    "density_peak_clustering",
    "mhc_cluster",
    "ndde",
    "tpdi",
    "transition_matrix",
]

MHC_K = 80  # Sec. 5.1: K = 80 nearest neighbours on MS1M (10 on DeepFashion)
MHC_EPS = 0.05  # Sec. 5.1: NDDe convergence threshold epsilon
MHC_TAU = 0.7  # Sec. 5.1 / Fig. 6(d): DPC connecting threshold tau, fixed for all experiments
MHC_MAX_ITER = 2000  # not in the paper: Algorithm 1's loop guard (needed 1,091 on the 15K twin, 1,229 at 584K)
SELF_SIM = 1.0  # not in the paper: the value of s_ii, a sample's similarity to itself
_BLOCK_ROWS = 4096  # TPDi rows per sparse product (bounds the 2-hop product's memory)


@dataclass(frozen=True, eq=False)
class MhcResult:
    """Output of :func:`mhc_cluster`.

    ``labels`` int64 0..C-1; ``density`` the NDDe per sample; ``dist`` the TPDi per kNN edge (N x k, 1 where a
    neighbour is missing); ``parent`` the DPC link of each sample (-1 for a root); ``iterations`` the NDDe
    iterations run and ``converged`` whether the stop rule was met before ``max_iter``; ``seconds`` per stage.
    """

    labels: np.ndarray
    density: np.ndarray
    dist: np.ndarray
    parent: np.ndarray
    iterations: int
    converged: bool
    seconds: dict[str, float] = field(default_factory=dict)


def _prepare(nbrs: np.ndarray, sims: np.ndarray, k: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    nbrs, sims = _check_knn(nbrs, sims, where)
    if k is not None:
        if int(k) < 1 or int(k) > nbrs.shape[1]:
            raise DataError(where, f"k must be in [1, {nbrs.shape[1]}] (the kNN lists' width), got {k}")
        nbrs, sims = nbrs[:, : int(k)], sims[:, : int(k)]
    return nbrs, sims


def transition_matrix(
    nbrs: np.ndarray, sims: np.ndarray, *, k: int | None = MHC_K, self_sim: float = SELF_SIM
) -> sp.csr_matrix:
    """MHC's transition matrix P (Sec. 4.1): row-normalised similarities of each sample to itself and its kNN.

    Why row-normalised: Sec. 4.1 defines ``d_i = sum_j s_ij`` and ``p_ij = s_ij / d_i``, and Sec. 4.2 relies on
    ``sum_j P_ij = 1`` (a Markov chain: ``p_ij`` is the probability of stepping from i to j). Row i holds
    ``self_sim`` at (i, i) and ``max(sims[i, m], 0)`` at (i, nbrs[i, m]) for the first ``k`` columns
    (``k=None``: all); missing neighbours (-1) and a row's own index among its neighbours are skipped. A row
    whose similarities are all 0 gets a self-loop of 1 (it keeps its density).

    Args:
        nbrs: N x k' int neighbour indices (the kNN contract of :mod:`clipcluster.graph.knn`), k' >= k.
        sims: N x k' per-edge similarities (learned in MHC; any non-negative score works; negatives count as 0).
        k: neighbours per row, MHC's K (default 80, Sec. 5.1).
        self_sim: the self entry s_ii (>= 0; the paper keeps the self entry but gives no value).

    Returns:
        N x N float64 CSR matrix, rows summing to 1, at most k + 1 non-zeros per row.
    """
    where = "mhc.transition_matrix"
    nbrs, sims = _prepare(nbrs, sims, k, where)
    if not (math.isfinite(self_sim) and self_sim >= 0):
        raise DataError(where, f"self_sim must be finite and >= 0, got {self_sim}")
    n, kk = nbrs.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), kk)
    cols = nbrs.ravel()
    keep = (cols >= 0) & (cols != rows)
    vals = np.maximum(sims.ravel()[keep].astype(np.float64), 0.0)
    rows, cols = rows[keep], cols[keep]
    volume = np.bincount(rows, weights=vals, minlength=n) + float(self_sim)
    diag = np.full(n, float(self_sim))
    empty = volume <= 0
    diag[empty], volume[empty] = 1.0, 1.0
    rows = np.concatenate([np.arange(n, dtype=np.int64), rows])
    cols = np.concatenate([np.arange(n, dtype=np.int64), cols])
    vals = np.concatenate([diag, vals]) / volume[rows]
    mat = sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()  # sums duplicate (i, j) entries
    if mat.nnz != len(vals):
        dup_row = int(np.flatnonzero(np.diff(mat.indptr) != np.bincount(rows, minlength=n))[0])
        raise DataError(where, f"row {dup_row} lists the same neighbour twice")
    mat.eliminate_zeros()
    return mat


def _check_square(mat: sp.spmatrix, where: str) -> sp.csr_matrix:
    if not sp.issparse(mat) or mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] == 0:
        raise DataError(where, f"P must be a non-empty square scipy.sparse matrix, got {type(mat).__name__}")
    mat = sp.csr_matrix(mat, dtype=np.float64)
    if mat.nnz and (not np.isfinite(mat.data).all() or mat.data.min() < 0):
        raise DataError(where, "P must have finite, non-negative entries")
    row_sums = np.asarray(mat.sum(axis=1)).ravel()
    if not np.allclose(row_sums, 1.0, atol=1e-6):
        bad = int(np.argmax(np.abs(row_sums - 1.0)))
        raise DataError(where, f"P must be row-stochastic; row {bad} sums to {row_sums[bad]:.6g}")
    return mat


def ndde(trans: sp.spmatrix, *, eps: float = MHC_EPS, max_iter: int = MHC_MAX_ITER) -> tuple[np.ndarray, int, bool]:
    """Neighbourhood-Diffusion-based Density (Sec. 4.2, Eqs. 2-3; Algorithm 1, lines 10-15).

    Why: the standard density (neighbours within a radius) is low for small clusters, so DPC merges them into
    big ones. Diffusing a uniform density along the transition probabilities conserves each closed cluster's
    total mass, so every cluster's mean density stays 1 whatever its size (Theorem 1).

    Iterates ``rho <- P^T rho`` from ``rho = 1`` (the transpose: row i of P spreads i's density over its
    neighbours; ``P rho`` would leave ``rho = 1`` unchanged, see the module docstring) until
    ``||rho_t+1 - rho_t||_2 <= eps`` (Algorithm 1's stop rule, eps = 0.05 in Sec. 5.1) or ``max_iter`` steps.

    Args:
        trans: N x N row-stochastic sparse P (:func:`transition_matrix`).
        eps: convergence threshold on the L2 norm of the change.
        max_iter: iteration guard (not in the paper).

    Returns:
        ``(density, iterations, converged)``: float64 N-vector, matrix-vector products run, and whether the stop
        rule was met (False means ``max_iter`` ran out).
    """
    where = "mhc.ndde"
    mat = _check_square(trans, where)
    if not (math.isfinite(eps) and eps > 0):
        raise DataError(where, f"eps must be finite and > 0, got {eps}")
    if int(max_iter) < 1:
        raise DataError(where, f"max_iter must be >= 1, got {max_iter}")
    mat_t = mat.T.tocsr()
    rho = np.ones(mat.shape[0], dtype=np.float64)
    for it in range(1, int(max_iter) + 1):
        nxt = mat_t @ rho
        change = float(np.linalg.norm(nxt - rho))
        rho = nxt
        if change <= eps:
            return rho, it, True
    log.warning("ndde: no convergence in %d iterations (last change %.3g > eps %.3g)", max_iter, change, eps)
    return rho, int(max_iter), False


def tpdi(trans: sp.spmatrix, nbrs: np.ndarray, *, block_rows: int = _BLOCK_ROWS) -> np.ndarray:
    """Transition-Probability-based Distance on the kNN edges (Sec. 4.3, Eq. 4).

    Why: cosine distance between positives varies with cluster sparsity, so no single DPC threshold fits all
    clusters; TPDi compares two points by how similarly they transit to their common neighbours, which the paper
    shows separates positives from negatives more uniformly (Fig. 5(c)(d)).

    ``d_ij = 1 - sum_{c in C_ij} sqrt(p_ic p_jc)``, C_ij the columns where rows i and j of P are both non-zero
    (each row's support is the sample itself and its K neighbours, Sec. 4.1). Computed as the sparse product
    ``sqrt(P) sqrt(P)^T`` in blocks of ``block_rows`` rows, sampled at the kNN positions only (never N x N).
    In [0, 1] (Cauchy-Schwarz) up to float round-off. Remark 1: with uniform rows over equal-size supports it
    equals ``1 - 2J / (1 + J)``, J the Jaccard similarity of the supports.

    Args:
        trans: N x N row-stochastic sparse P.
        nbrs: N x k neighbour indices at which to evaluate d (usually the lists P was built from).
        block_rows: rows per sparse product (memory ~ block_rows x K^2 entries).

    Returns:
        N x k float32 distances; 1.0 where ``nbrs`` is -1 or the row's own index.
    """
    where = "mhc.tpdi"
    mat = _check_square(trans, where)
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[0] != mat.shape[0] or nbrs.shape[1] == 0:
        raise DataError(where, f"nbrs must be N x k with N = {mat.shape[0]} (P's size), got shape {nbrs.shape}")
    if not np.issubdtype(nbrs.dtype, np.integer):
        raise DataError(where, f"nbrs must be integer indices, got {nbrs.dtype}")
    n, k = nbrs.shape
    if int(nbrs.min()) < -1 or int(nbrs.max()) >= n:
        raise DataError(where, f"nbrs values must lie in [-1, {n - 1}] (-1 = missing)")
    if int(block_rows) < 1:
        raise DataError(where, f"block_rows must be >= 1, got {block_rows}")
    root = mat.sqrt()
    root_t = root.T.tocsr()
    out = np.ones((n, k), dtype=np.float32)
    for start in range(0, n, int(block_rows)):
        stop = min(start + int(block_rows), n)
        b = stop - start
        blk = nbrs[start:stop].astype(np.int64)
        lrow = np.repeat(np.arange(b, dtype=np.int64), k)
        col = blk.ravel()
        ok = (col >= 0) & (col != lrow + start)
        # mask of this block's kNN edges; the product's entries elsewhere (2-hop pairs) are dropped by multiply
        mask = sp.csr_matrix((np.ones(int(ok.sum())), (lrow[ok], col[ok])), shape=(b, n))
        mask.sum_duplicates()
        mask.data[:] = 1.0  # a neighbour listed twice must not count twice
        sim = mask.multiply(root[start:stop] @ root_t).tocsr()
        sim.sum_duplicates()  # canonical: sorted column indices per row
        keys = np.repeat(np.arange(b, dtype=np.int64), np.diff(sim.indptr)) * n + sim.indices
        want = lrow[ok] * n + col[ok]
        pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        found = keys[pos] == want if len(keys) else np.zeros(len(want), dtype=bool)
        vals = np.zeros(len(want), dtype=np.float64)
        vals[found] = sim.data[pos[found]]
        flat = out[start:stop].reshape(-1)
        flat[np.flatnonzero(ok)] = (1.0 - vals).astype(np.float32)
        out[start:stop] = flat.reshape(b, k)
    return out


def density_peak_clustering(
    nbrs: np.ndarray, density: np.ndarray, dist: np.ndarray, *, tau: float = MHC_TAU
) -> tuple[np.ndarray, np.ndarray]:
    """Density Peak Clustering as MHC uses it (Sec. 3, "Density Peak Clustering"; Algorithm 1 line 8).

    Why: DPC attaches every point to a denser point nearby, so each cluster is a tree rooted at a density peak;
    with NDDe and TPDi the single threshold ``tau`` works across cluster sizes and sparsities (Fig. 6(d)).

    For each i: ``j_hat = argmin_{j in kNN(i), rho_j > rho_i} d_ij`` (ties to the earlier, more similar
    neighbour); link i -> j_hat if ``d_ij_hat < tau``. Points without such a link are roots and start clusters;
    labels are the connected components of the links (a forest: density strictly increases along every link).

    Args:
        nbrs: N x k neighbour indices (-1 = missing).
        density: N densities (NDDe).
        dist: N x k distances aligned with ``nbrs`` (TPDi).
        tau: connecting threshold (0.7, Sec. 5.1).

    Returns:
        ``(labels, parent)``: int64 labels 0..C-1 and each point's link target (-1 for a root).
    """
    where = "mhc.density_peak_clustering"
    nbrs = np.asarray(nbrs)
    dist = np.asarray(dist)
    density = np.asarray(density, dtype=np.float64)
    if nbrs.ndim != 2 or nbrs.shape[0] == 0 or nbrs.shape[1] == 0 or not np.issubdtype(nbrs.dtype, np.integer):
        raise DataError(where, f"nbrs must be a non-empty N x k integer array, got shape {nbrs.shape}")
    n, k = nbrs.shape
    if int(nbrs.min()) < -1 or int(nbrs.max()) >= n:
        raise DataError(where, f"nbrs values must lie in [-1, {n - 1}] (-1 = missing)")
    if density.shape != (n,) or not np.isfinite(density).all():
        raise DataError(where, f"density must be {n} finite values, got shape {density.shape}")
    if dist.shape != nbrs.shape:
        raise DataError(where, f"dist shape {dist.shape} does not match nbrs shape {nbrs.shape}")
    if not math.isfinite(tau):
        raise DataError(where, f"tau must be finite, got {tau}")
    rows = np.arange(n, dtype=np.int64)
    valid = (nbrs >= 0) & (nbrs != rows[:, None])
    higher = valid & (density[np.where(valid, nbrs, 0)] > density[:, None])
    cand = np.where(higher, dist.astype(np.float64), np.inf)
    if np.isnan(cand).any():
        raise DataError(where, "dist has a NaN at a candidate edge")
    best = np.argmin(cand, axis=1)  # first minimum: the most similar neighbour among equal distances
    linked = cand[rows, best] < tau
    parent = np.where(linked, nbrs[rows, best], -1).astype(np.int64)
    src = rows[linked]
    graph = sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, parent[linked])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return normalize_labels(comp), parent


def mhc_cluster(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    k: int | None = MHC_K,
    tau: float = MHC_TAU,
    eps: float = MHC_EPS,
    max_iter: int = MHC_MAX_ITER,
    self_sim: float = SELF_SIM,
    block_rows: int = _BLOCK_ROWS,
) -> MhcResult:
    """MHC's whole clustering stage (Algorithm 1 lines 5-8): P, NDDe, TPDi, DPC.

    ``sims`` are MHC's learned per-edge similarities; given raw cosine similarities instead, this is a
    training-free sanity check of the procedure, not MHC's published result. Defaults are the paper's MS1M
    values (K = 80, eps = 0.05, tau = 0.7; Sec. 5.1).
    """
    t0 = time.perf_counter()
    nbrs, sims = _prepare(nbrs, sims, k, "mhc.mhc_cluster")
    trans = transition_matrix(nbrs, sims, k=None, self_sim=self_sim)
    t1 = time.perf_counter()
    density, iterations, converged = ndde(trans, eps=eps, max_iter=max_iter)
    t2 = time.perf_counter()
    dist = tpdi(trans, nbrs, block_rows=block_rows)
    t3 = time.perf_counter()
    labels, parent = density_peak_clustering(nbrs, density, dist, tau=tau)
    t4 = time.perf_counter()
    seconds = {
        "transition": round(t1 - t0, 3),
        "ndde": round(t2 - t1, 3),
        "tpdi": round(t3 - t2, 3),
        "dpc": round(t4 - t3, 3),
        "total": round(t4 - t0, 3),
    }
    log.info(
        "mhc: %d clusters, NDDe %d iterations (converged %s), %s", labels.max() + 1, iterations, converged, seconds
    )
    return MhcResult(labels, density, dist, parent, iterations, converged, seconds)
