"""The training-free clustering methods behind one interface, so one rule script runs them all.

Each method declares what it reads (the kNN graph, the features, the number of identities) and
gets it loaded; only the clustering call itself is timed, as the papers time inference without
the kNN build. A method can decline a subset that is too large for it (``max_n``): that is
recorded as skipped with the reason, and the tables show it, never silently dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipcluster.features import l2_normalize
from clipcluster.graph import baselines
from clipcluster.graph.infomap_cluster import cluster_knn_infomap
from clipcluster.graph.knn import KnnGraph, load_knn
from clipcluster.io import file_rows, load_parts, read_meta

log = logging.getLogger(__name__)


@dataclass
class MethodInputs:
    """Paths a method may read; each method uses the ones it needs."""

    knn_path: str | Path | None = None
    bins: list[str] = field(default_factory=list)
    metas: list[str] = field(default_factory=list)
    dim: int | None = None


@dataclass
class MethodResult:
    """Labels (or a skip reason) and the measured wall time of the clustering step."""

    method: str
    labels: np.ndarray
    seconds: float | None
    params: dict[str, Any]
    skipped: str | None = None
    knn_info: dict[str, Any] | None = None

    def summary(self) -> str:
        if self.skipped:
            return f"skipped ({self.skipped})"
        return f"{len(np.unique(self.labels))} clusters over {self.labels.size} samples in {self.seconds:.2f} s"

    def info(self, **extra: Any) -> dict[str, Any]:
        """What the rule writes beside the labels (read by evaluate and the tables)."""
        out: dict[str, Any] = {
            "method": self.method,
            "seconds": self.seconds,
            "params": self.params,
            "skipped": self.skipped,
            **extra,
        }
        if self.knn_info:
            out["knn_seconds"] = self.knn_info.get("seconds")
            out["knn_index"] = self.knn_info.get("index")
            if "recall" in self.knn_info:
                out["knn_recall"] = self.knn_info["recall"]
        return out


@dataclass
class _Loaded:
    knn: KnnGraph | None
    feats: np.ndarray | None
    n_ids: int | None
    n: int


def _top(d: _Loaded, o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The first ``o["k"]`` neighbours of the cached graph (lists are sorted by decreasing similarity)."""
    k = int(o["k"])
    if k > d.knn.nbrs.shape[1]:
        raise ValueError(f"k = {k} but the kNN graph has only {d.knn.nbrs.shape[1]} neighbours per sample")
    return np.ascontiguousarray(d.knn.nbrs[:, :k]), np.ascontiguousarray(d.knn.sims[:, :k])


def _infomap(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    nbrs, sims = _top(d, o)
    return cluster_knn_infomap(nbrs, sims, sim_floor=o["sim_floor"], seed=seed, num_trials=o["num_trials"])


def _kmeans(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    return baselines.kmeans(
        d.feats,
        d.n_ids,
        seed=seed,
        minibatch_above=o["minibatch_above"],
        batch_size=o["batch_size"],
        max_iter=o["max_iter"],
        n_init=o["n_init"],
        large=o["large"],
        verbose=True,  # per-iteration progress into the rule's log: this is the slowest baseline
    )


def _dbscan(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    return baselines.dbscan(*_top(d, o), eps=o["eps"], min_samples=o["min_samples"])


def _hac(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    return baselines.hac(d.feats, *_top(d, o), distance_threshold=o["distance_threshold"], linkage=o["linkage"])


def _aro(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    return baselines.aro(*_top(d, o), threshold=o["threshold"])


def _cdp(d: _Loaded, o: dict[str, Any], seed: int) -> np.ndarray:
    return baselines.cdp(*_top(d, o), threshold=o["threshold"], max_size=o["max_size"], step=o["step"])


@dataclass(frozen=True)
class _Method:
    run: Callable[[_Loaded, dict[str, Any], int], np.ndarray]
    needs_knn: bool
    needs_feats: bool | Callable[[dict[str, Any]], bool]
    needs_n_ids: bool = False

    def wants_feats(self, opts: dict[str, Any]) -> bool:
        return self.needs_feats(opts) if callable(self.needs_feats) else self.needs_feats


# k = the true number of identities for K-Means is the papers' protocol, hence needs_n_ids.
REGISTRY: dict[str, _Method] = {
    "infomap": _Method(_infomap, needs_knn=True, needs_feats=False),
    "kmeans": _Method(_kmeans, needs_knn=False, needs_feats=True, needs_n_ids=True),
    "dbscan": _Method(_dbscan, needs_knn=True, needs_feats=False),
    # single linkage works on the kNN similarities alone; the other linkages recompute distances from features
    "hac": _Method(_hac, needs_knn=True, needs_feats=lambda o: o.get("linkage", "single") != "single"),
    "aro": _Method(_aro, needs_knn=True, needs_feats=False),
    "cdp": _Method(_cdp, needs_knn=True, needs_feats=False),
}


def _load(spec: _Method, opts: dict[str, Any], inputs: MethodInputs) -> _Loaded:
    knn = load_knn(inputs.knn_path) if spec.needs_knn else None
    feats = n_ids = None
    if spec.wants_feats(opts):
        feats, labels = load_parts(inputs.bins, inputs.metas, inputs.dim)
        feats = l2_normalize(feats, files=file_rows(inputs.bins, inputs.dim))
        n_ids = int(np.unique(labels).size)
    elif spec.needs_n_ids:
        n_ids = int(np.unique(np.concatenate([read_meta(m) for m in inputs.metas])).size)
    n = knn.nbrs.shape[0] if knn is not None else feats.shape[0]
    return _Loaded(knn, feats, n_ids, n)


def cluster_arrays(
    method: str,
    opts: dict[str, Any],
    *,
    knn: KnnGraph | None = None,
    feats: np.ndarray | None = None,
    n_ids: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Run ``method`` on arrays already in memory (benchmarks); ``feats`` must be L2-normalised."""
    if method not in REGISTRY:
        raise KeyError(f"unknown method {method!r} (known: {', '.join(REGISTRY)})")
    spec = REGISTRY[method]
    if spec.needs_knn and knn is None:
        raise ValueError(f"{method} needs the kNN graph")
    if spec.wants_feats(opts) and feats is None:
        raise ValueError(f"{method} needs the features")
    if spec.needs_n_ids and n_ids is None:
        raise ValueError(f"{method} needs the number of identities")
    n = knn.nbrs.shape[0] if knn is not None else feats.shape[0]
    return np.asarray(spec.run(_Loaded(knn, feats, n_ids, n), opts, seed), dtype=np.int64)


def run_method(
    method: str, opts: dict[str, Any], inputs: MethodInputs, *, seed: int = 0, threads: int = 1
) -> MethodResult:
    """Load what ``method`` needs, run it, and time the clustering call alone."""
    if method not in REGISTRY:
        raise KeyError(f"unknown method {method!r} (known: {', '.join(REGISTRY)})")
    spec = REGISTRY[method]
    _set_threads(threads)
    data = _load(spec, opts, inputs)
    knn_info = data.knn.info if data.knn is not None else None
    max_n = opts.get("max_n")
    if max_n is not None and data.n > max_n:
        reason = f"{data.n:,} samples > max_n = {max_n:,}"
        log.warning("%s skipped: %s", method, reason)
        return MethodResult(method, np.empty(0, np.int64), None, opts, skipped=reason, knn_info=knn_info)
    start = time.perf_counter()
    labels = spec.run(data, opts, seed)
    seconds = time.perf_counter() - start
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.n,):
        raise RuntimeError(f"{method} returned {labels.shape} labels for {data.n} samples")
    return MethodResult(method, labels, seconds, opts, knn_info=knn_info)


def _set_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads at what the rule was given (faiss, sklearn and numpy all honour it)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
