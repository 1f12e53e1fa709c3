"""Whole-graph inference (paper 3.5): edge scores on the test kNN graph, then pruning and refinement.

:func:`score_edges` runs the trained model on the *whole* graph as the paper does, but without ever holding an
N x M x d tensor: hallucination and proxy fusion run in node batches, the GCNs run on the full sparse graph with
float32 N x d activations, and the edge MLP runs in node batches over the kNN lists, so peak memory is
O(N k + N d) plus one batch.

Inference fast path: M_theta's last layer and B's first layer (on ``di``) are both linear with nothing in between
(``di`` itself is not needed at test time), so they are folded into one H x H_B matrix; M_theta's first layer on
``dt = t[tgt] - t[src]`` is applied to the P prompt embeddings once and gathered. The result equals the training
path's ``fhat`` up to float round-off (tested against it).

Then :func:`prune_and_refine` (the paper's method: drop edges with score < tau, Infomap on the rest weighted by
score) or :func:`naive_prune` (Table 2's "naive pruning").
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from clipcluster.clip_cluster.model import CLIPClusterModel
from clipcluster.clip_cluster.modules import csr
from clipcluster.errors import DataError
from clipcluster.infomap_cluster import infomap_cluster, knn_to_edges

__all__ = ["knn_adjacency", "naive_prune", "prune_and_refine", "score_edges"]

log = logging.getLogger(__name__)

_EDGE_CHUNK = 1 << 23  # floats per edge-MLP chunk (32 MB): rows per chunk = _EDGE_CHUNK // (k * hidden)


def knn_adjacency(nbrs: np.ndarray, weights: np.ndarray | None = None, *, self_loops: bool) -> torch.Tensor:
    """Row-normalised CSR adjacency straight from kNN lists (N x k, -1 = missing, self ignored).

    Same matrix as :func:`clipcluster.clip_cluster.modules.adjacency` on the equivalent edge list, built without a
    sort: rows of ``nbrs`` already are the CSR rows (the self loop, when asked for, goes first in its row).
    """
    n, k = nbrs.shape
    nb = torch.from_numpy(np.ascontiguousarray(nbrs, dtype=np.int64))
    valid = (nb >= 0) & (nb != torch.arange(n)[:, None])
    w = torch.ones(n, k) if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32)).clamp_min(0)
    w = torch.where(valid, w, torch.zeros((), dtype=torch.float32))
    if self_loops:
        nb = torch.cat([torch.arange(n)[:, None], nb], dim=1)
        valid = torch.cat([torch.ones(n, 1, dtype=torch.bool), valid], dim=1)
        w = torch.cat([torch.ones(n, 1), w], dim=1)
    w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
    counts = valid.sum(dim=1)
    crow = torch.zeros(n + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(counts, 0)
    cols, vals = nb[valid], w[valid]
    return csr(crow, cols, vals, n)


def _fused_fhat_fn(model: CLIPClusterModel, text_emb: torch.Tensor) -> Any:
    """Return ``fn(f, i, src, tgt) -> fhat`` equal to ``model.hallucinate(...)["fhat"]`` at inference."""
    hal, tr = model.hallucinator.net, model.transfer.net  # type: ignore[union-attr]
    w1, b1, w2, b2 = hal[0].weight, hal[0].bias, hal[3].weight, hal[3].bias
    u1, c1, u2, c2 = tr[0].weight, tr[0].bias, tr[2].weight, tr[2].bias
    d = model.config["clip_dim"]
    p_txt = text_emb @ w1[:, :d].T  # P x H: first layer on each prompt
    n_p = p_txt.shape[0]
    pair = (p_txt[:, None, :] - p_txt[None, :, :]).reshape(n_p * n_p, -1)  # row tgt * P + src: W (t~ - t)
    w_i = w1[:, d:]  # H x 512, applied to i per face
    fused = u1[:, :d] @ w2  # H_B x H: B's di-columns after M_theta's last layer
    c_node = u1[:, :d] @ b2 + c1  # H_B constant
    u_f = u1[:, d:]  # H_B x 256, applied to f per face

    def fn(f: torch.Tensor, i: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        h = torch.relu_(pair[tgt * n_p + src] + (i @ w_i.T + b1)[:, None, :])
        z = torch.relu_(torch.matmul(h, fused.T).add_((f @ u_f.T + c_node)[:, None, :]))
        return f[:, None, :] + z @ u2.T + c2

    return fn


def _check(name: str, x: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = x.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, x.shape, strict=True))
    if not ok:
        raise DataError(name, f"expected shape {tuple('*' if s is None else s for s in shape)}, got {x.shape}")


def score_edges(
    model: CLIPClusterModel,
    f: np.ndarray,
    i: np.ndarray | None,
    src: np.ndarray | None,
    tgt: np.ndarray | None,
    text_emb: np.ndarray | None,
    nbrs: np.ndarray,
    *,
    sims: np.ndarray | None = None,
    batch_size: int = 1024,
    threads: int | None = None,
    stats: dict[str, Any] | None = None,
) -> np.ndarray:
    """Probability (N x k float32) that each kNN edge ``n -> nbrs[n, j]`` links one identity; 0 where missing.

    Runs on the model's device (inputs are NumPy and are moved there; the whole-graph N x d activations and the
    CSR adjacency live there too); the result is a NumPy array. Only the CPU path is tested.

    Args:
        model: a trained :class:`CLIPClusterModel` (put in eval mode here).
        f, i: face (N x 256) and CLIP (N x 512) features; ``i``, ``src``, ``tgt``, ``text_emb`` may be None when
            the model has ``hallucinate=False``.
        src, tgt: N x M prompt rows (:func:`~clipcluster.clip_cluster.targets.hallucination_targets`).
        text_emb: P x 512 prompt embeddings.
        nbrs: N x k neighbour ids (-1 = missing, self excluded); ``sims`` (N x k) is needed only when the model
            was configured with ``edge_weighted=True``.
        batch_size: faces per hallucination batch; 1024 keeps each M x H batch tensor under glibc's 32 MB mmap
            threshold, so batches reuse heap memory instead of page-faulting fresh mappings.
        threads: torch intra-op threads for the call (restored afterwards); None leaves torch's setting.
        stats: if given, filled with per-stage seconds.
    """
    cfg = model.config
    f = np.asarray(f)
    nbrs = np.asarray(nbrs)
    _check("f", f, (None, cfg["face_dim"]))
    n = f.shape[0]
    _check("nbrs", nbrs, (n, None))
    if cfg["edge_weighted"]:
        if sims is None:
            raise DataError("score_edges", "model has edge_weighted=True: pass sims")
        _check("sims", np.asarray(sims), nbrs.shape)
    weights = np.asarray(sims) if cfg["edge_weighted"] else None
    if model.hallucinate_enabled:
        if i is None or src is None or tgt is None or text_emb is None:
            raise DataError("score_edges", "hallucinating model needs i, src, tgt and text_emb")
        _check("i", np.asarray(i), (n, cfg["clip_dim"]))
        _check("src", np.asarray(src), (n, cfg["n_hallucinations"]))
        _check("tgt", np.asarray(tgt), (n, cfg["n_hallucinations"]))
        _check("text_emb", np.asarray(text_emb), (None, cfg["clip_dim"]))
        p = np.asarray(text_emb).shape[0]
        for name, idx in (("src", src), ("tgt", tgt)):
            if n and (int(np.min(idx)) < 0 or int(np.max(idx)) >= p):
                raise DataError(name, f"prompt rows must lie in [0, {p - 1}]")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    times: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            probs = _score(model, f, i, src, tgt, text_emb, nbrs, weights, batch_size, times)
    finally:
        model.train(was_training)
        torch.set_num_threads(old_threads)
    if stats is not None:
        stats.update({k: round(v, 3) for k, v in times.items()})
    return probs


def _score(
    model: CLIPClusterModel,
    f_np: np.ndarray,
    i_np: np.ndarray | None,
    src_np: np.ndarray | None,
    tgt_np: np.ndarray | None,
    text_np: np.ndarray | None,
    nbrs: np.ndarray,
    weights: np.ndarray | None,
    batch_size: int,
    times: dict[str, float],
) -> np.ndarray:
    n, k = nbrs.shape
    dev = next(model.parameters()).device
    t0 = time.perf_counter()
    f = torch.from_numpy(np.ascontiguousarray(f_np, dtype=np.float32)).to(dev)
    adj_loop = knn_adjacency(nbrs, weights, self_loops=True).to(dev)
    times["adjacency_seconds"] = time.perf_counter() - t0
    if model.hallucinate_enabled:
        assert i_np is not None and src_np is not None and tgt_np is not None and text_np is not None
        t0 = time.perf_counter()
        query = None
        if model.config["fusion"] == "cross":
            query = model.proxy.query(f, knn_adjacency(nbrs, weights, self_loops=False).to(dev))
        times["query_gcn_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = torch.from_numpy(np.ascontiguousarray(text_np, dtype=np.float32)).to(dev)
        fhat_fn = _fused_fhat_fn(model, text)
        v = torch.empty_like(f)
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            fb = f[s:e]
            ib = torch.from_numpy(np.ascontiguousarray(i_np[s:e], dtype=np.float32)).to(dev)
            sb = torch.from_numpy(np.ascontiguousarray(src_np[s:e], dtype=np.int64)).to(dev)
            tb = torch.from_numpy(np.ascontiguousarray(tgt_np[s:e], dtype=np.int64)).to(dev)
            v[s:e] = model.proxy(fb, fhat_fn(fb, ib, sb, tb), None if query is None else query[s:e])
        del query
        times["hallucinate_fuse_seconds"] = time.perf_counter() - t0
    else:
        v = f
    t0 = time.perf_counter()
    emb = model.edge.embed(v, adj_loop)
    del v, adj_loop
    a, b = model.edge.node_terms(emb)
    del emb
    times["edge_gcn_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = np.zeros((n, k), dtype=np.float32)
    hidden = a.shape[1]
    rows = max(1, _EDGE_CHUNK // max(1, k * hidden))
    # Reused buffers: fresh multi-MB tensors per chunk would be mmap-ed and page-faulted every time (measured
    # ~10x slower than this loop on 2 cores).
    buf = torch.empty(rows * k, hidden, device=dev)
    logits = torch.empty(rows * k, 2, device=dev)
    w_out, b_out = model.edge.out.weight.T, model.edge.out.bias
    nbrs_t = torch.from_numpy(np.ascontiguousarray(nbrs, dtype=np.int64)).to(dev)
    for s in range(0, n, rows):
        e = min(n, s + rows)
        nb = nbrs_t[s:e]
        ok = (nb >= 0) & (nb != torch.arange(s, e, device=dev)[:, None])
        x = buf[: (e - s) * k]
        torch.index_select(b, 0, nb.clamp_min(0).reshape(-1), out=x)
        x.view(e - s, k, hidden).add_(a[s:e, None, :]).relu_()  # = ReLU(W_a v_u + b + W_b v_v)
        lg = torch.addmm(b_out, x, w_out, out=logits[: (e - s) * k]).view(e - s, k, 2)
        pr = torch.sigmoid(lg[..., 1] - lg[..., 0])  # softmax(logits)[1]
        probs[s:e] = torch.where(ok, pr, torch.zeros((), dtype=pr.dtype, device=dev)).cpu().numpy()
    times["edge_mlp_seconds"] = time.perf_counter() - t0
    return probs


def prune_and_refine(
    nbrs: np.ndarray,
    probs: np.ndarray,
    sims: np.ndarray | None = None,
    *,
    tau: float = 0.5,
    weight: str = "prob",
    seed: int = 0,
    num_trials: int = 1,
    stats: dict[str, Any] | None = None,
) -> np.ndarray:
    """The paper's inference tail: keep kNN edges with score >= tau, run Infomap on them, return labels 0..C-1.

    Edges are made undirected (max of the two directions' scores, :func:`knn_to_edges`); ``weight="prob"``
    (default) weights them by the score, ``weight="sim"`` by the kNN similarity ``sims`` (clamped at 0) instead.
    """
    nbrs, probs = np.asarray(nbrs), np.asarray(probs, dtype=np.float32)
    if probs.shape != nbrs.shape or nbrs.ndim != 2:
        raise DataError("prune_and_refine", f"nbrs {nbrs.shape} and probs {probs.shape} must be the same N x k")
    if weight not in ("prob", "sim"):
        raise ValueError(f"weight must be 'prob' or 'sim', got {weight!r}")
    t0 = time.perf_counter()
    if weight == "prob":
        src, dst, w = knn_to_edges(nbrs, probs, sim_floor=tau)
    else:
        if sims is None or np.shape(sims) != nbrs.shape:
            raise DataError("prune_and_refine", "weight='sim' needs sims of the same N x k shape as nbrs")
        # Prune on the score, weight by similarity: masked entries become -inf and fail the floor.
        masked = np.where(probs >= tau, np.maximum(np.asarray(sims, dtype=np.float32), 0.0), -np.inf)
        src, dst, w = knn_to_edges(nbrs, masked.astype(np.float32), sim_floor=0.0)
    edge_seconds = time.perf_counter() - t0
    labels = infomap_cluster(nbrs.shape[0], src, dst, w, seed=seed, num_trials=num_trials, stats=stats)
    if stats is not None:
        stats.update(edge_seconds=round(edge_seconds, 3), kept_edges=int(src.size))
    return labels


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


def naive_prune(
    nbrs: np.ndarray,
    probs: np.ndarray,
    *,
    tau: float = 0.5,
    max_size: int = 900,
    step: float = 0.05,
    max_iter: int = 100,
) -> np.ndarray:
    """Table 2's "naive pruning": connected components with CDP's dynamic threshold (no Infomap).

    What is implemented (CDP/LTC ``graph_propagation``, vectorised with SciPy): keep the undirected kNN edges with
    score >= ``tau`` (max of both directions); take connected components; components of at most ``max_size``
    nodes are final. The others are split again with only their edges of score > th, where th starts at ``tau``
    and rises as ``th += (1 - th) * step`` per round; repeat until none is too large. After ``max_iter`` rounds
    the still-oversized components are kept as they are (CDP instead lumps all leftovers into one cluster).
    Defaults max_size = 900, step = 0.05 follow LTC's settings for GCN edge scores. Returns labels 0..C-1 by
    first appearance.
    """
    nbrs, probs = np.asarray(nbrs), np.asarray(probs, dtype=np.float32)
    if probs.shape != nbrs.shape or nbrs.ndim != 2:
        raise DataError("naive_prune", f"nbrs {nbrs.shape} and probs {probs.shape} must be the same N x k")
    if max_size < 1 or not 0 < step < 1:
        raise ValueError(f"need max_size >= 1 and 0 < step < 1, got {max_size}, {step}")
    n = nbrs.shape[0]
    src, dst, w = knn_to_edges(nbrs, probs, sim_floor=tau)
    out = np.full(n, -1, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    next_label, th, rounds = 0, float(tau), 0
    while True:
        comp = _components(n, src, dst)
        sizes = np.bincount(comp, minlength=n)
        done = active & ((sizes[comp] <= max_size) | (rounds >= max_iter))
        uniq, inv = np.unique(comp[done], return_inverse=True)
        out[done] = next_label + inv
        next_label += uniq.size
        active &= ~done
        if not active.any():
            break
        th += (1.0 - th) * step
        rounds += 1
        keep = active[src] & (w > th)
        src, dst, w = src[keep], dst[keep], w[keep]
    _, first, inverse = np.unique(out, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int64)
    return rank[inverse.ravel()]
