"""Infomap clustering of a weighted kNN graph: the paper's "Infomap alone" row and the refinement step.

CLIP-Cluster (Table 2) reports Infomap run directly on the kNN graph as a baseline, and runs Infomap again as
the final step on the graph pruned by its edge predictor. Both go through :func:`infomap_cluster`.

The reference "Infomap alone" face-clustering implementation (face-cluster-by-infomap, 93.98 pairwise F on
MS1M part1) uses k = 50, edge weight = cosine similarity, and drops edges below a similarity floor of
``0.58``; that floor is :data:`DEFAULT_SIM_FLOOR`. It feeds the kNN lists to Infomap as *directed* links;
we follow the design and build a weighted *undirected* network (i->j and j->i merged, max weight), with
``directed=True`` available to mimic the reference.

Uses the PyPI ``infomap`` 2.x API: links go in through ``Infomap.add_links`` with one float64 E x 3 NumPy
array (a single C++ call; measured ~3x faster than a Python ``add_link`` loop and 2-4x faster than the
SciPy-matrix, edge-index and file readers, fastest when the rows are sorted), ``run()`` optimises, and
``get_modules()`` gives the node -> top-module map (see the note in :func:`infomap_cluster` on why not
``Result.modules()``).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import infomap
import numpy as np

from clipcluster.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_SIM_FLOOR = 0.58  # face-cluster-by-infomap's MS1M setting (k=50)


def knn_to_edges(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    sim_floor: float = DEFAULT_SIM_FLOOR,
    directed: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn kNN lists into an edge list.

    Drops missing neighbours (``-1``), self loops, non-finite similarities and edges with ``sim < sim_floor``.
    Undirected (default): each pair once as ``src < dst``, with the larger of the two directions' weights,
    sorted by ``(src, dst)``. Directed: every surviving ``i -> nbrs[i, j]`` link, sorted the same way.

    Returns:
        ``(src int64, dst int64, weight float32)``.
    """
    nbrs = np.asarray(nbrs)
    sims = np.asarray(sims)
    if nbrs.ndim != 2 or sims.shape != nbrs.shape:
        raise DataError("knn graph", f"nbrs {nbrs.shape} and sims {sims.shape} must be the same N x k shape")
    n, k = nbrs.shape
    # int32 ids while filtering and sorting: half the memory of int64 at N x k = 400M entries (5M x 80).
    idt = np.int32 if n < np.iinfo(np.int32).max else np.int64
    dst = nbrs.ravel()
    w = sims.astype(np.float32, copy=False).ravel()
    keep = w >= sim_floor  # False for NaN and -inf (missing) too
    keep &= dst >= 0
    rows = np.flatnonzero(keep)
    src = (rows // k).astype(idt)
    dst = dst[rows].astype(idt)
    w = w[rows]
    del rows, keep
    if dst.size and int(dst.max()) >= n:
        raise DataError("knn graph", f"neighbour id {int(dst.max())} out of range for {n} rows")
    ok = (dst != src) & np.isfinite(w)  # self loops; +inf similarity is corrupt input, not an edge
    if not ok.all():
        src, dst, w = src[ok], dst[ok], w[ok]
    if src.size == 0:
        return src.astype(np.int64), dst.astype(np.int64), w
    if directed:
        # Rows come grouped by src; sort dst inside each row for a canonical order (infomap adds sorted links
        # fastest). Duplicate (i, j) cannot occur within one kNN row.
        order = np.lexsort((dst, src))
        return src[order].astype(np.int64), dst[order].astype(np.int64), w[order]
    # Undirected: one int64 key per unordered pair; sort, then max weight per run of equal keys. Ids are decoded
    # from the unique keys so no other per-edge array has to outlive the sort (peak ~24 bytes per edge).
    key = np.minimum(src, dst).astype(np.int64) * n  # < n^2 <= 2.5e13 for 5M nodes: fits int64
    key += np.maximum(src, dst)
    del src, dst
    order = np.argsort(key)  # stability not needed: duplicates are reduced with max
    key = key[order]
    w = w[order]
    del order
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    weight = np.maximum.reduceat(w, start)
    key = key[start]
    return key // n, key % n, weight.astype(np.float32, copy=False)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0..C-1 in order of first appearance (deterministic, independent of Infomap's module ids)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int64)
    return rank[inverse.ravel()]


def infomap_cluster(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    *,
    seed: int = 0,
    num_trials: int = 1,
    two_level: bool = True,
    directed: bool = False,
    silent: bool = True,
    stats: dict[str, Any] | None = None,
) -> np.ndarray:
    """Cluster ``n`` nodes with Infomap on the weighted links ``src -> dst``.

    Args:
        n: number of nodes; ids are 0..n-1.
        src, dst, weight: the links (e.g. from :func:`knn_to_edges`); weights must be >= 0 (zeros dropped).
        seed: random seed, >= 0 (Infomap gets ``seed + 1``; same seed and input -> same labels).
        num_trials: independent Infomap trials, best codelength kept.
        two_level: a flat partition (the face-clustering convention) rather than a hierarchy; with a hierarchy
            the top-level modules are returned.
        directed: directed flow model (reference implementation) instead of undirected.
        silent: when False, route Infomap's engine log to the ``infomap`` logger (stdout handler).
        stats: if given, filled with ``links``, ``linked_nodes``, ``build_seconds`` (network construction),
            ``run_seconds`` (optimisation and reading the modules), ``codelength``, ``modules`` (Infomap's,
            before singletons) and ``clusters`` (final count).

    Returns:
        int64 labels 0..C-1, numbered by first appearance; nodes without links are singletons.
    """
    return _infomap_cluster(
        n, [src, dst, weight], seed=seed, num_trials=num_trials, two_level=two_level, directed=directed,
        silent=silent, stats=stats,
    )  # fmt: skip


def _release_heap() -> None:
    """Free the Infomap object now and hand its heap back to the OS.

    The SWIG wrapper sits in a reference cycle, so its network (millions of small allocations, GBs at part1-9
    scale) would wait for a garbage collection; and glibc keeps freed small blocks in its arenas unless trimmed.
    Measured at 300K nodes: 0.67 GB still resident after returning, 0 after collect + trim.
    """
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


_LINK_CHUNK = 1 << 22  # links per add_links call: a 4M x 3 float64 block (96 MB) instead of one E x 3 array


def _infomap_cluster(
    n: int,
    edges: list[np.ndarray],
    *,
    seed: int,
    num_trials: int,
    two_level: bool,
    directed: bool,
    silent: bool,
    stats: dict[str, Any] | None,
) -> np.ndarray:
    """:func:`infomap_cluster` on ``edges = [src, dst, weight]``, which it empties once the links are in Infomap.

    A caller that hands over its only references (``_infomap_cluster(n, [*knn_to_edges(...)], ...)``) thus frees
    the edge arrays before the optimisation, whose own network is the peak. Links go in as float64 blocks of
    :data:`_LINK_CHUNK` rows, the same add-link sequence as one E x 3 array without its 24 bytes per edge.
    """
    links = _checked_links(n, edges, seed=seed, num_trials=num_trials)
    labels = np.full(n, -1, dtype=np.int64)
    info: dict[str, Any] = {"links": 0, "linked_nodes": 0, "build_seconds": 0.0, "run_seconds": 0.0}
    if links[0].size:
        info.update(_run_infomap(links, labels, seed=seed, num_trials=num_trials, two_level=two_level,
                                 directed=directed, silent=silent))  # fmt: skip
    labels = _label_unlinked(labels)
    info["clusters"] = int(labels.max()) + 1 if n else 0
    if stats is not None:
        stats.update(info)
    return labels


def _checked_links(n: int, edges: list[np.ndarray], *, seed: int, num_trials: int) -> list[np.ndarray]:
    """``[src, dst, weight]`` checked, ids in an integer dtype, zero-weight links dropped; ``edges`` is emptied."""
    src, dst, weight = (np.asarray(x).ravel() for x in edges)
    edges.clear()
    if not (src.size == dst.size == weight.size):
        raise DataError("edges", f"src, dst, weight lengths differ: {src.size}, {dst.size}, {weight.size}")
    if n < 0 or seed < 0 or num_trials < 1:
        raise ValueError(f"need n >= 0, seed >= 0, num_trials >= 1; got {n}, {seed}, {num_trials}")
    # Ids stay in their integer dtype (knn_to_edges gives int64; int32 halves the memory); others become int64.
    src, dst = (x if x.dtype.kind in "iu" else x.astype(np.int64) for x in (src, dst))
    if src.size:
        lo, hi = min(src.min(), dst.min()), max(src.max(), dst.max())
        if lo < 0 or hi >= n:
            raise DataError("edges", f"node ids must lie in [0, {n - 1}], got [{int(lo)}, {int(hi)}]")
        if not (np.isfinite(weight).all() and (weight >= 0).all()):
            raise DataError("edges", "link weights must be finite and >= 0")
        nonzero = weight > 0  # a zero-weight link carries no flow; dropping it keeps its nodes unlinked
        if not nonzero.all():
            src, dst, weight = src[nonzero], dst[nonzero], weight[nonzero]
        del nonzero
    return [src, dst, weight]


def _run_infomap(
    links: list[np.ndarray],
    labels: np.ndarray,
    *,
    seed: int,
    num_trials: int,
    two_level: bool,
    directed: bool,
    silent: bool,
) -> dict[str, Any]:
    """Add ``links`` (emptied once they are in Infomap), optimise, write each linked node's module into ``labels``;
    return the run's statistics."""
    src, dst, weight = links
    links.clear()
    t0 = time.perf_counter()
    # Infomap wants seed >= 1; ours starts at 0 like every other seed in the pipeline.
    im = infomap.Infomap(two_level=two_level, directed=directed, seed=int(seed) + 1, num_trials=int(num_trials))
    block = np.empty((min(_LINK_CHUNK, src.size), 3), dtype=np.float64)  # ids up to 2^53 are exact in float64
    for s in range(0, src.size, _LINK_CHUNK):
        e = min(src.size, s + _LINK_CHUNK)
        rows = block[: e - s]
        rows[:, 0], rows[:, 1], rows[:, 2] = src[s:e], dst[s:e], weight[s:e]
        im.add_links(rows)
    del block, rows, src, dst, weight
    t1 = time.perf_counter()
    info: dict[str, Any] = {
        "links": int(im.num_links), "linked_nodes": int(im.num_nodes), "build_seconds": round(t1 - t0, 3)
    }  # fmt: skip
    log.info("infomap: %d nodes linked, %d links added in %.1fs", im.num_nodes, im.num_links, t1 - t0)
    if not silent:
        infomap.enable_log()
    try:
        result = im.run()
    finally:
        if not silent:
            infomap.disable_log()
    # Not result.modules(): it walks SWIG std::vector proxies with a Python iterator, and when faiss (also
    # SWIG) is imported after infomap, faiss's SwigPyIterator class takes over that type and the walk
    # segfaults (infomap 2.16 + faiss 1.15). get_modules() converts the C++ map to a dict in C. It is
    # deprecated for 3.0, hence the local warning filter.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        modules = im.get_modules()
    nodes = np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
    mods = np.fromiter(modules.values(), dtype=np.int64, count=len(modules))
    labels[nodes] = mods
    info.update(
        run_seconds=round(time.perf_counter() - t1, 3),
        codelength=float(result.codelength),
        modules=int(result.num_top_modules),
    )
    del im, result, modules, nodes, mods
    _release_heap()
    log.info("infomap: %d modules, codelength %.4f, %.1fs", info["modules"], info["codelength"], info["run_seconds"])
    return info


def _label_unlinked(labels: np.ndarray) -> np.ndarray:
    """Unlinked nodes (label -1) get unique labels above every module id; then labels are made canonical."""
    n = labels.size
    alone = labels < 0
    base = int(labels.max()) + 1 if n and not alone.all() else 0
    labels[alone] = base + np.arange(int(alone.sum()), dtype=np.int64)
    return _canonical(labels) if n else labels


def cluster_knn_infomap(
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    sim_floor: float = DEFAULT_SIM_FLOOR,
    seed: int = 0,
    num_trials: int = 1,
    two_level: bool = True,
    directed: bool = False,
    stats: dict[str, Any] | None = None,
) -> np.ndarray:
    """ "Infomap alone": kNN lists -> thresholded weighted edges -> Infomap labels (0..C-1, int64).

    ``stats`` (optional) gets :func:`infomap_cluster`'s entries plus ``edge_seconds`` (kNN -> edge list).
    """
    t0 = time.perf_counter()
    edges = [*knn_to_edges(nbrs, sims, sim_floor=sim_floor, directed=directed)]
    edge_seconds = time.perf_counter() - t0
    log.info(
        "infomap: %d edges at sim >= %.3f from %s kNN in %.1fs", edges[0].size, sim_floor, nbrs.shape, edge_seconds
    )
    labels = _infomap_cluster(
        nbrs.shape[0],
        edges,  # handed over: freed before Infomap optimises
        seed=seed,
        num_trials=num_trials,
        two_level=two_level,
        directed=directed,
        silent=True,
        stats=stats,
    )
    if stats is not None:
        stats["edge_seconds"] = round(edge_seconds, 3)
    return labels
