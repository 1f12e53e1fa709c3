"""k-nearest-neighbour graphs over L2-normalised features (cosine similarity = inner product).

One entry point, :func:`build_knn`, returns a :class:`KnnGraph`: per row the ``k`` most similar *other*
samples, sorted by similarity, descending. Three back ends:

``exact``
    Brute force in query blocks: on the CPU a torch matrix product and ``torch.topk`` per block, on GPUs faiss's
    ``IndexFlatIP``. On the CPU this ran 2.4x the queries per second of ``faiss.knn`` (the former back end) at
    k = 80 on one core (40K x 256, 2026-12-06; ``benchmarks/bench_knn.py`` prints both); the default run's
    122K-row graph took 230 s with faiss.knn. The balance depends on the CPU: on an AMD EPYC (2026-12-07)
    faiss.knn ran 1.35x this back end's queries per second. O(N^2 d): hours beyond a million rows.
``ivf``
    ``IndexIVFFlat`` with inner product: spherical k-means coarse quantiser (``nlist`` cells, default
    ``4 sqrt(N)``) trained on a seeded sample, ``nprobe`` cells scanned per query. The GPU's approximate back
    end (it runs unchanged on faiss-gpu, HNSW and fast-scan PQ do not), and the CPU's until ``ivfpq`` beat it:
    on clustered 256-d data on 2 cores HNSW (M=32) took longer to build alone than IVF to build and search, and
    reached recall 0.95 at k=80 only with efSearch >= 128 (``benchmarks/bench_knn.py``).

``ivfpq``
    Many small IVF cells (about 72 points each, at most 16,384 cells) scanned with 4-bit product-quantised codes (faiss
    ``IndexIVFPQFastScan``, residual codes of two dimensions per byte-half), whose top ``k_factor * k`` are
    re-ranked exactly (``IndexRefineFlat``): the similarities it returns are exact, only the candidate set is
    approximate. On the MS1M twin's part1 (595,570 x 256, k = 80, 2 cores; ``benchmarks/bench_knn_twin.py``,
    docs/benchmarks.md) it measured recall 0.992 in 189 s, where ``ivf`` gave 0.955 in 247 s in the same run:
    the fast scan reads 64 bytes a candidate instead of 1 KB, so it can afford the 256 probes of small cells
    that the twin's crowded list tails need. CPU only (faiss-gpu has no fast-scan PQ): with a GPU it still runs
    on the CPU.

``auto`` picks ``exact`` up to ``exact_max_n`` rows and, above, ``ivfpq`` on the CPU or ``ivf`` on GPUs. With
faiss-gpu installed and a GPU visible (``faiss.get_num_gpus() > 0``), the exact search uses an ``IndexFlatIP``
cloned to all GPUs and the IVF index is moved there after training on the CPU; on a GPU exact search is
affordable far beyond 200K rows, so raise ``exact_max_n`` there.

Deterministic: the IVF training sample (which also trains ivfpq's codebooks) and k-means seed come from ``seed``;
results are bitwise repeatable for a given faiss build and thread count (BLAS blocking may change the last float
bits across thread counts).

Missing neighbours (an IVF probe set holding fewer than ``k`` other points): ``nbrs = -1`` and
``sims = -inf``; ``-inf`` keeps every row sorted descending and fails every similarity threshold, so consumers
that threshold need no special case; consumers doing arithmetic on ``sims`` must mask with ``nbrs >= 0``
(:attr:`KnnGraph.valid`).
"""

from __future__ import annotations

import json
import logging
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from tqdm import tqdm

from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError

log = logging.getLogger(__name__)

INDEXES = ("auto", "exact", "ivf", "ivfpq")
_NORM_TOL = 1e-3  # |norm - 1| allowed on the sampled rows (float32 round-off is ~1e-7)
_NORM_SAMPLE = 4096
_EXACT_BLOCK_ELEMS = 1 << 25  # floats in one block of the exact CPU search (128 MiB of similarities)


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; compare fields explicitly
class KnnGraph:
    """A kNN graph: ``nbrs`` (N x k int64, -1 = missing), ``sims`` (N x k float32, descending, -inf = missing).

    ``info`` records how it was built: ``index`` (``exact`` or ``ivf``), ``k``, ``n``, ``dim``, ``seconds``,
    ``device`` and the index parameters (``nlist``, ``nprobe``, ``seed`` for IVF); ``recall`` when measured.
    """

    nbrs: np.ndarray
    sims: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of rows (samples)."""
        return int(self.nbrs.shape[0])

    @property
    def k(self) -> int:
        """Neighbours per row."""
        return int(self.nbrs.shape[1])

    @property
    def valid(self) -> np.ndarray:
        """Boolean N x k mask of real (not missing) neighbours."""
        return self.nbrs >= 0


def set_threads(threads: int | None) -> None:
    """Set faiss's OpenMP and torch's intra-op thread counts; ``None`` leaves their defaults (all cores)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        faiss.omp_set_num_threads(int(threads))
        torch.set_num_threads(int(threads))


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 with faiss-cpu, which may lack ``get_num_gpus`` altogether)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _check_feats(feats: np.ndarray, k: int) -> np.ndarray:
    """Return ``feats`` as C-contiguous float32 N x D; reject wrong shape, too few rows, non-unit rows."""
    if not isinstance(feats, np.ndarray) or feats.ndim != 2:
        raise DataError("features", f"expected an N x D array, got {getattr(feats, 'shape', type(feats))}")
    n = feats.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k + 1:
        raise DataError("features", f"{n} rows cannot give {k} neighbours per row (need at least k + 1 = {k + 1})")
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    # Inner product equals cosine only for unit rows; check a deterministic sample rather than all N rows.
    rows = np.linspace(0, n - 1, num=min(n, _NORM_SAMPLE)).astype(np.int64)
    norms = np.linalg.norm(feats[rows], axis=1)
    bad = ~(np.abs(norms - 1.0) <= _NORM_TOL)  # also catches NaN
    if bad.any():
        row = int(rows[np.argmax(bad)])
        raise DataError("features", f"row {row} has norm {norms[np.argmax(bad)]:.6g}; features must be L2-normalised")
    return feats


def _drop_self(ids: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop each query's own id (``rows``: the queries' row numbers) from its k+1 results; where it is absent
    (ties, approximation) drop the last."""
    b = ids.shape[0]
    drop = ids == np.asarray(rows, dtype=ids.dtype)[:, None]
    drop[~drop.any(axis=1), -1] = True
    keep = ~drop
    return ids[keep].reshape(b, k), dist[keep].reshape(b, k)


def _search_all(
    search: Any,
    feats: np.ndarray,
    k: int,
    batch_size: int,
    progress: bool,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Query every row against the database with ``search(queries, k + 1)``, in batches, self dropped."""
    n = feats.shape[0]
    nbrs = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    with tqdm(total=n, desc=desc, unit="q", disable=not progress, mininterval=2.0) as bar:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            dist, ids = search(feats[start:stop], k + 1)
            ids, dist = _drop_self(
                np.asarray(ids, dtype=np.int64), np.asarray(dist, dtype=np.float32), np.arange(start, stop), k
            )
            nbrs[start:stop] = ids
            sims[start:stop] = dist
            bar.update(stop - start)
    missing = nbrs < 0
    if missing.any():
        sims[missing] = -np.inf  # faiss reports -FLT_MAX for IP; -inf is unambiguous
    return nbrs, sims


def _exact_searcher(feats: np.ndarray, gpu: bool) -> Any:
    """A ``search(queries, kk) -> (D, I)`` closure doing brute-force inner product against all of ``feats``."""
    if gpu:
        # IndexFlatIP on the GPU(s): the database is copied over once and stays resident across batches.
        index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(feats.shape[1]))
        index.add(feats)
        return index.search

    # On the CPU: a BLAS product per block of queries and torch.topk over its rows (sorted, descending), the
    # block sized so that its similarity matrix stays near _EXACT_BLOCK_ELEMS floats whatever N is. The block's
    # product goes into one buffer reused across blocks and calls: a fresh 128 MiB result per block is a fresh
    # mmap, whose page faults cost 18 % of the search's wall time (60K x 256, one thread; same results).
    db = torch.from_numpy(feats)
    rows = max(1, _EXACT_BLOCK_ELEMS // max(1, db.shape[0]))
    buf: list[torch.Tensor] = []  # allocated at the first search, so building the searcher costs nothing

    def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        qt = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
        dist = np.empty((q.shape[0], kk), dtype=np.float32)
        ids = np.empty((q.shape[0], kk), dtype=np.int64)
        if not buf:
            buf.append(torch.empty((min(rows, q.shape[0]), db.shape[0]), dtype=torch.float32))
        with torch.inference_mode():
            for s in range(0, q.shape[0], rows):
                block = qt[s : s + rows]
                if block.shape[0] > buf[0].shape[0]:
                    buf[0] = torch.empty((block.shape[0], db.shape[0]), dtype=torch.float32)
                prod = torch.mm(block, db.T, out=buf[0][: block.shape[0]])
                val, idx = torch.topk(prod, kk, dim=1, largest=True, sorted=True)
                dist[s : s + rows] = val.numpy()
                ids[s : s + rows] = idx.numpy()
        return dist, ids

    return search


def default_nlist(n: int) -> int:
    """IVF cells: ``4 sqrt(N)`` (faiss's guideline range is 4-16 sqrt(N); the low end measured fastest).

    Capped at ``N / 39`` so k-means gets the 39 points per centroid faiss asks for on small inputs.
    """
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


def default_nprobe(nlist: int) -> int:
    """Cells scanned per query: 32 (recall 0.99+ at k=80 on the synthetic benchmark, 200K-584K rows)."""
    return min(nlist, 32)


PQ_CELL_POINTS = 72  # ivfpq cells' mean size (8,272 cells at the twin's 595K part1)
# Chosen on the twin's part1 (docs/benchmarks.md): the cheapest setting of the sweep to reach recall 0.99.
PQ_NPROBE = 256  # ivfpq cells scanned per query (192: recall 0.988, 128: 0.984)
PQ_K_FACTOR = 6  # candidates re-ranked exactly, as a multiple of k (4: 0.989 at 256 probes)
PQ_TRAIN_PER_LIST = 16  # k-means points per ivfpq cell (132K at 8,272 cells: 38 s of a 208 s build)
PQ_NITER = 10  # k-means iterations for ivfpq's cells (faiss's default is 25; fewer were not tried)


PQ_MAX_NLIST = 16_384  # its k-means and coarse assignment grow with nlist^2 and N * nlist: capped above 1.18M rows


def default_pq_nlist(n: int) -> int:
    """``ivfpq`` cells: ``N / 72`` (small cells, many probes: see the module docstring), at least one, at most
    16,384 (above 1.18M rows the cells grow instead, so each query scans more codes)."""
    return max(1, min(PQ_MAX_NLIST, int(round(n / PQ_CELL_POINTS))))


def default_pq_m(d: int) -> int:
    """PQ sub-quantisers: one per two dimensions (4-bit codes; 128 at 256-d), one per dimension for odd ``d``."""
    return d // 2 if d % 2 == 0 else d


def _seeded_sample(feats: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` rows of ``feats`` drawn with ``seed``, in row order (all of them when ``size >= N``): an index's
    training set, deterministic; faiss would subsample above ``max_points_per_centroid`` anyway."""
    n = feats.shape[0]
    if size >= n:
        return feats
    return feats[np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))]


def _add_in_blocks(index: Any, feats: np.ndarray, name: str, progress: bool) -> None:
    """Add ``feats`` to a trained ``index`` in blocks of 2^18 rows, with a progress bar and the time logged."""
    t0 = time.perf_counter()
    step = 1 << 18
    for start in tqdm(range(0, feats.shape[0], step), desc=f"{name} add", unit="blk", disable=not progress,
                      mininterval=2.0):  # fmt: skip
        index.add(feats[start : start + step])
    log.info("%s: added %d points in %.1fs", name, feats.shape[0], time.perf_counter() - t0)


def _build_ivf(
    feats: np.ndarray, nlist: int, nprobe: int, seed: int, train_per_list: int, gpu: bool, progress: bool
) -> Any:
    d = feats.shape[1]
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = int(seed)
    index.cp.spherical = True  # unit centroids: inner-product assignment then matches cosine cells
    sample = _seeded_sample(feats, nlist * train_per_list, seed)
    t0 = time.perf_counter()
    index.train(sample)
    log.info("ivf: trained %d cells on %d points in %.1fs", nlist, len(sample), time.perf_counter() - t0)
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    _add_in_blocks(index, feats, "ivf", progress)
    if gpu:
        faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", nprobe)
    else:
        index.nprobe = nprobe
    return index


def _build_ivfpq(
    feats: np.ndarray, nlist: int, nprobe: int, pq_m: int, k_factor: int, seed: int, train_per_list: int, progress: bool
) -> Any:
    d = feats.shape[1]
    ivf = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(d), d, nlist, pq_m, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.by_residual = True  # codes of x - centroid: finer than codes of x at the same 4 bits
    ivf.cp.seed = int(seed)
    ivf.cp.spherical = True
    ivf.cp.niter = PQ_NITER
    ivf.cp.min_points_per_centroid = 1  # 16 points a cell is deliberate (faiss would warn below 39)
    index = faiss.IndexRefineFlat(ivf)  # keeps the full vectors: the returned similarities are exact
    # The sample also trains the 4-bit codebooks, which want a few thousand points even when nlist is small.
    sample = _seeded_sample(feats, max(nlist * train_per_list, 16 * 256), seed)
    t0 = time.perf_counter()
    index.train(sample)
    log.info("ivfpq: trained %d cells and %d 4-bit codebooks on %d points in %.1fs", nlist, pq_m, len(sample),
             time.perf_counter() - t0)  # fmt: skip
    _add_in_blocks(index, feats, "ivfpq", progress)
    ivf.nprobe = nprobe
    index.k_factor = float(k_factor)
    return index


def build_knn(
    feats: np.ndarray,
    k: int,
    *,
    index: str = "auto",
    exact_max_n: int = 200_000,
    nlist: int | None = None,
    nprobe: int | None = None,
    train_per_list: int | None = None,
    pq_m: int | None = None,
    k_factor: int | None = None,
    seed: int = 0,
    batch_size: int = 16_384,
    threads: int | None = None,
    progress: bool = True,
) -> KnnGraph:
    """Build the kNN graph of ``feats`` (N x D, L2-normalised float32) under cosine similarity.

    Each row lists the ``k`` most similar other rows (the query itself is excluded: ``k + 1`` are searched and
    self is dropped, or the last one where self is not among them because of ties or approximation).

    Args:
        feats: N x D features, rows of unit norm (checked on a sample; :class:`DataError` otherwise).
        k: neighbours per row, excluding self.
        index: ``"exact"``, ``"ivf"``, ``"ivfpq"`` or ``"auto"`` (exact when ``N <= exact_max_n``, else
            ivfpq on the CPU, ivf on GPUs).
        exact_max_n: the ``auto`` switch-over size.
        nlist: IVF cells (default :func:`default_nlist`, ``4 sqrt(N)``; ivfpq :func:`default_pq_nlist`, N / 72).
        nprobe: IVF cells scanned per query (default :func:`default_nprobe`, 32; ivfpq 256).
        train_per_list: IVF k-means training points per cell (seeded sample; default 64, ivfpq 16).
        pq_m: ivfpq's 4-bit sub-quantisers (default :func:`default_pq_m`, one per two dimensions).
        k_factor: ivfpq's exactly re-ranked candidates per row, as a multiple of ``k`` (default 6).
        seed: seed of the IVF training sample and k-means initialisation.
        batch_size: queries per search call (bounds the k+1 result buffers).
        threads: faiss OpenMP threads (``None``: faiss default).
        progress: show tqdm bars.

    Returns:
        The graph; ``info`` holds the index used, parameters, device and wall seconds.
    """
    if index not in INDEXES:
        raise ValueError(f"index must be one of {INDEXES}, got {index!r}")
    feats = _check_feats(feats, k)
    set_threads(threads)
    n, d = feats.shape
    gpu = gpu_count() > 0
    used = index if index != "auto" else ("exact" if n <= exact_max_n else ("ivf" if gpu else "ivfpq"))
    info: dict[str, Any] = {
        "index": used,
        "k": int(k),
        "n": int(n),
        "dim": int(d),
        "device": "gpu" if gpu and used != "ivfpq" else "cpu",
        "threads": int(faiss.omp_get_max_threads()),
    }
    t0 = time.perf_counter()
    if used == "exact":
        log.info("knn: exact inner-product search, n=%d d=%d k=%d (%s)", n, d, k, info["device"])
        search = _exact_searcher(feats, gpu)
    elif used == "ivf":
        nl = min(nlist or default_nlist(n), n)
        npb = min(nprobe or default_nprobe(nl), nl)
        tpl = train_per_list or 64
        info.update(nlist=int(nl), nprobe=int(npb), seed=int(seed), train_per_list=int(tpl))
        log.info("knn: IVF-flat n=%d d=%d k=%d nlist=%d nprobe=%d (%s)", n, d, k, nl, npb, info["device"])
        ivf = _build_ivf(feats, nl, npb, seed, tpl, gpu, progress)
        search = ivf.search
    else:
        nl = min(nlist or default_pq_nlist(n), n)
        npb = min(nprobe or PQ_NPROBE, nl)
        m = pq_m or default_pq_m(d)
        if d % m:
            raise ValueError(f"pq_m must divide the feature dimension {d}, got {m}")
        kf = k_factor or PQ_K_FACTOR
        tpl = train_per_list or PQ_TRAIN_PER_LIST
        info.update(nlist=int(nl), nprobe=int(npb), pq_m=int(m), k_factor=int(kf), seed=int(seed),
                    train_per_list=int(tpl), niter=PQ_NITER)  # fmt: skip
        log.info("knn: IVF-PQ fast scan + exact re-rank n=%d d=%d k=%d nlist=%d nprobe=%d pq_m=%d k_factor=%d (cpu)",
                 n, d, k, nl, npb, m, kf)  # fmt: skip
        search = _build_ivfpq(feats, nl, npb, m, kf, seed, tpl, progress).search
    nbrs, sims = _search_all(search, feats, k, batch_size, progress, f"knn {used}")
    info["seconds"] = round(time.perf_counter() - t0, 3)
    info["missing"] = int((nbrs < 0).sum())
    log.info("knn: %s done in %.1fs (%d missing entries)", used, info["seconds"], info["missing"])
    return KnnGraph(nbrs=nbrs, sims=sims, info=info)


def exact_neighbours(feats: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the rows ``rows`` of ``feats`` against all of ``feats``, self excluded: (ids, sims),
    each len(rows) x k, sorted by similarity (GPUs when present)."""
    rows = np.asarray(rows, dtype=np.int64)
    dist, ids = _exact_searcher(feats, gpu_count() > 0)(feats[rows], k + 1)
    ids, sims = _drop_self(np.asarray(ids, dtype=np.int64), np.asarray(dist, dtype=np.float32), rows, k)
    return ids, sims


def recall_against(found: np.ndarray, truth: np.ndarray) -> float:
    """The fraction of each row's true ids (``truth``, -1 = none) present anywhere in its ``found`` ids (-1 =
    missing), over all true ids."""
    m = len(truth)
    span = int(max(found.max(initial=-1), truth.max(initial=-1))) + 2
    # Vectorised set intersection: sort each row's found list and binary-search the true ids in it.
    offsets = (np.arange(m, dtype=np.int64) * span)[:, None]
    flat = (np.sort(found, axis=1) + 1 + offsets).ravel()  # +1 keeps -1 (missing) inside its own row's range
    needles = (truth + 1 + offsets).ravel()
    pos = np.searchsorted(flat, needles).clip(max=flat.size - 1)
    hits = (flat[pos] == needles) & (truth.ravel() >= 0)
    return float(hits.sum() / max((truth >= 0).sum(), 1))


def measure_recall(
    feats: np.ndarray,
    graph: KnnGraph,
    n_queries: int = 2000,
    seed: int = 0,
    *,
    threads: int | None = None,
) -> float:
    """Recall of ``graph`` against exact search on a seeded sample of queries.

    The fraction of each sampled query's true top-k (self excluded, like the graph) found anywhere in its
    listed neighbours, averaged over queries. 1.0 for an exact graph (barring exact float ties at the k-th place).
    """
    feats = _check_feats(feats, graph.k)
    if feats.shape[0] != graph.n:
        raise DataError("knn graph", f"has {graph.n} rows but features have {feats.shape[0]}")
    set_threads(threads)
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(graph.n, size=min(graph.n, n_queries), replace=False))
    truth, _ = exact_neighbours(feats, q, graph.k)
    return recall_against(graph.nbrs[q], truth)


_ARRAYS = ("nbrs", "sims", "info")


def save_knn(path: str | Path, graph: KnnGraph) -> None:
    """Write ``graph`` to an ``.npz`` atomically (``info`` as a JSON string inside).

    Neighbour ids are stored as int32 when they fit (half the file: 1.6 GB instead of 3.2 GB at 5M x 80);
    :func:`load_knn` returns int64 either way.
    """
    id_dtype = np.int32 if graph.n < np.iinfo(np.int32).max else np.int64
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            nbrs=np.ascontiguousarray(graph.nbrs, dtype=id_dtype),
            sims=np.ascontiguousarray(graph.sims, dtype=np.float32),
            info=np.array(json.dumps(graph.info, sort_keys=True)),
        )


def load_knn(path: str | Path) -> KnnGraph:
    """Read a graph written by :func:`save_knn`; :class:`DataError` if it is unreadable or inconsistent."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [a for a in _ARRAYS if a not in z.files]
            if missing:
                raise DataError(path, f"missing arrays {missing}; expected {list(_ARRAYS)} (written by save_knn)")
            nbrs, sims, info_s = z["nbrs"], z["sims"], str(z["info"])
    except DataError:
        raise
    except Exception as exc:  # zipfile/pickle/format errors all mean the same thing to the caller
        raise DataError(path, f"not a readable knn .npz ({type(exc).__name__}: {exc})") from exc
    if nbrs.ndim != 2 or sims.shape != nbrs.shape:
        raise DataError(path, f"nbrs {nbrs.shape} and sims {sims.shape} must be the same N x k shape")
    if nbrs.dtype.kind not in "iu" or sims.dtype.kind != "f":
        raise DataError(path, f"nbrs must be integer and sims float, got {nbrs.dtype} and {sims.dtype}")
    n = nbrs.shape[0]
    if nbrs.size and (nbrs.min() < -1 or nbrs.max() >= n):
        raise DataError(path, f"neighbour ids must lie in [-1, {n - 1}], got [{nbrs.min()}, {nbrs.max()}]")
    try:
        info = json.loads(info_s)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"info is not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise DataError(path, "info must be a JSON object")
    return KnnGraph(nbrs=nbrs.astype(np.int64, copy=False), sims=sims.astype(np.float32, copy=False), info=info)


def load_knn_columns(path: str | Path, k: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The first ``k`` columns of a kNN graph written by :func:`save_knn`: (nbrs, sims, info).

    Reads the ``.npz`` members in row blocks, so only N x k (not the stored N x 150) is ever held; neighbour ids
    are int32 (int64 only past 2^31 rows). Values equal ``load_knn(path).nbrs[:, :k]`` / ``.sims[:, :k]``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for name in ("nbrs", "sims", "info"):
                if f"{name}.npy" not in names:
                    raise DataError(path, f"missing array {name!r} (written by save_knn)")
            with zf.open("info.npy") as fh:
                info = json.loads(str(np.lib.format.read_array(fh, allow_pickle=False)))
            for name in ("nbrs", "sims"):
                with zf.open(f"{name}.npy") as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read_header = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
                    shape, fortran, dtype = read_header[major](fh)
                    if len(shape) != 2 or fortran:
                        raise DataError(path, f"{name} must be a C-ordered N x k array, got {shape}")
                    n, kk = shape
                    if k > kk:
                        raise DataError(path, f"has k = {kk} neighbours, {k} asked for")
                    if name == "nbrs":
                        if dtype.kind not in "iu":
                            raise DataError(path, f"nbrs must be integer, got {dtype}")
                        want = np.dtype(np.int32) if n < np.iinfo(np.int32).max else np.dtype(np.int64)
                    else:
                        if dtype.kind != "f":
                            raise DataError(path, f"sims must be float, got {dtype}")
                        want = np.dtype(np.float32)
                    arr = np.empty((n, k), dtype=want)
                    rows = max(1, (1 << 24) // max(1, kk * dtype.itemsize))  # 16 MB per read
                    for s in range(0, n, rows):
                        e = min(n, s + rows)
                        raw = fh.read((e - s) * kk * dtype.itemsize)
                        arr[s:e] = np.frombuffer(raw, dtype=dtype).reshape(e - s, kk)[:, :k]
                    out[name] = arr
    except DataError:
        raise
    except Exception as exc:  # zipfile/format errors all mean the same thing to the caller
        raise DataError(path, f"not a readable knn .npz ({type(exc).__name__}: {exc})") from exc
    nbrs, sims = out["nbrs"], out["sims"]
    if sims.shape != nbrs.shape:
        raise DataError(path, f"nbrs {nbrs.shape} and sims {sims.shape} must be the same N x k shape")
    n = nbrs.shape[0]
    if nbrs.size and (nbrs.min() < -1 or nbrs.max() >= n):
        raise DataError(path, f"neighbour ids must lie in [-1, {n - 1}], got [{nbrs.min()}, {nbrs.max()}]")
    if not isinstance(info, dict):
        raise DataError(path, "info must be a JSON object")
    return nbrs, sims, info
