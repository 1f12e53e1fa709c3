"""Whole-graph inference (paper 3.5): edge scores on the test kNN graph, then pruning and refinement.

:func:`score_edges` runs the trained model on the *whole* graph as the paper does, but without ever holding an
N x M x d tensor or an N x k adjacency: hallucination and proxy fusion run in node batches (the neighbour query's
last GCN layer with them), every whole-graph GCN layer runs one row block at a time (the block's rows of the
row-normalised adjacency are built from the kNN lists on the fly) into float32 N x d buffers that are reused
layer after layer, and the edge MLP runs in node batches over the kNN lists. Besides the inputs and the N x k
output, two N x d float32 buffers are live at a time (three when the caller's ``f`` may not be overwritten); at
part1-9's 5.21M faces each is 5.3 GB. Results are bit-identical to computing each layer on the whole graph at
once: CSR row blocks give the same rows, and all blocks have one size (the last one overlaps its predecessor), so
BLAS takes the same path for every row.

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
import warnings
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from clipcluster.clip_cluster.model import CLIPClusterModel
from clipcluster.clip_cluster.modules import csr
from clipcluster.errors import DataError
from clipcluster.graph.infomap_cluster import _infomap_cluster, knn_to_edges
from clipcluster.graph.propagation import propagate
from clipcluster.training.pair_baseline import PairBaseline, local_density

__all__ = ["baseline_probs", "knn_adjacency", "naive_prune", "prune_and_refine", "score_edges"]

log = logging.getLogger(__name__)

_EDGE_CHUNK = 1 << 23  # floats per edge-MLP chunk (32 MB): rows per chunk = _EDGE_CHUNK // (k * hidden)
_GCN_ROWS = 4096  # rows per whole-graph GCN block (4096 x 512 floats = 8 MB concatenated input)


def knn_adjacency(nbrs: np.ndarray, weights: np.ndarray | None = None, *, self_loops: bool) -> torch.Tensor:
    """Row-normalised CSR adjacency straight from kNN lists (N x k, -1 = missing, self ignored).

    Same matrix as :func:`clipcluster.clip_cluster.modules.adjacency` on the equivalent edge list, built without a
    sort: rows of ``nbrs`` already are the CSR rows (the self loop, when asked for, goes first in its row).
    """
    return _adjacency_rows(nbrs, weights, 0, nbrs.shape[0], nbrs.shape[0], self_loops=self_loops)


def _adjacency_rows(
    nbrs: np.ndarray,
    weights: np.ndarray | None,
    start: int,
    stop: int,
    n: int,
    *,
    self_loops: bool,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Rows ``start:stop`` of :func:`knn_adjacency` as a (stop - start) x n CSR tensor (same values, row by row).

    Whole-graph inference multiplies by one row block at a time, so no N x k adjacency is ever held.
    """
    m = stop - start
    k = nbrs.shape[1]
    nb = torch.from_numpy(np.ascontiguousarray(nbrs[start:stop], dtype=np.int64))
    valid = (nb >= 0) & (nb != torch.arange(start, stop)[:, None])
    if weights is None:
        w = torch.ones(m, k)
    else:
        w = torch.from_numpy(np.asarray(weights[start:stop], dtype=np.float32)).clamp_min(0)
    w = torch.where(valid, w, torch.zeros((), dtype=torch.float32))
    if self_loops:
        nb = torch.cat([torch.arange(start, stop)[:, None], nb], dim=1)
        valid = torch.cat([torch.ones(m, 1, dtype=torch.bool), valid], dim=1)
        w = torch.cat([torch.ones(m, 1), w], dim=1)
    w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
    counts = valid.sum(dim=1)
    crow = torch.zeros(m + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(counts, 0)
    cols, vals = nb[valid], w[valid]
    if m == n:
        return csr(crow, cols, vals, n).to(device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        out = torch.sparse_csr_tensor(crow, cols, vals, (m, n), check_invariants=False)
    return out.to(device)


def _blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """Row blocks covering 0..n-1, all of ``rows`` rows: the last one is moved back to end at n (it overlaps its
    predecessor, whose rows it recomputes identically). Equal block sizes keep BLAS on one code path, so a row's
    result does not depend on where the blocks fall (tiny matrices take other kernels, which round differently).
    """
    rows = max(1, min(rows, n))
    return [(min(s, n - rows), min(s, n - rows) + rows) for s in range(0, n, rows)]


class _Scratch:
    """Free whole-graph N x d float32 buffers, handed out again instead of allocating fresh ones."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.free = device, []

    def take(self, n: int, d: int) -> torch.Tensor:
        for j, t in enumerate(self.free):
            if t.shape == (n, d):
                return self.free.pop(j)
        return torch.empty(n, d, device=self.device)

    def give(self, t: torch.Tensor) -> None:
        self.free.append(t)


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


def _check(name: str, x: Any, shape: tuple[int | None, ...]) -> None:
    """Shape check; ``x`` only needs a ``shape`` (a lazy row reader is not read here)."""
    got = tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)
    ok = len(got) == len(shape) and all(s is None or s == t for s, t in zip(shape, got, strict=False))
    if not ok:
        raise DataError(name, f"expected shape {tuple('*' if s is None else s for s in shape)}, got {got}")


def score_edges(
    model: CLIPClusterModel,
    f: np.ndarray,
    i: Any,
    src: np.ndarray | None,
    tgt: np.ndarray | None,
    text_emb: np.ndarray | None,
    nbrs: np.ndarray,
    *,
    sims: np.ndarray | None = None,
    batch_size: int = 1024,
    threads: int | None = None,
    stats: dict[str, Any] | None = None,
    consume_f: bool = False,
) -> np.ndarray:
    """Probability (N x k float32) that each kNN edge ``n -> nbrs[n, j]`` links one identity; 0 where missing.

    Runs on the model's device (inputs are NumPy and are moved there a batch at a time, except ``f``; the
    whole-graph N x d activations live there too); the result is a NumPy array. Only the CPU path is tested.

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
        consume_f: allow ``f``'s memory (when it is float32 and C-contiguous, else a copy is made anyway) to be
            overwritten as scratch once hallucination is done: saves one N x 256 float32 buffer. ``f``'s contents
            are garbage afterwards; :func:`clipcluster.clip_cluster.pipeline.infer` uses it.

    ``i`` may be any object with ``shape`` whose contiguous row slices ``i[s:e]`` give arrays, such as
    :class:`clipcluster.clip_cluster.pipeline.BinRows` (CLIP rows read from disk per batch).
    """
    cfg = model.config
    f = np.asarray(f)
    nbrs = np.asarray(nbrs)
    _check("f", f, (None, cfg["face_dim"]))
    n = f.shape[0]
    _check("nbrs", nbrs, (n, None))
    if cfg["edge_weighted"] or cfg["pair_cosine"] or cfg["pair_baseline"]:
        if sims is None:
            raise DataError("score_edges", "model has edge_weighted, pair_cosine or pair_baseline: pass sims")
        _check("sims", np.asarray(sims), nbrs.shape)
    weights = np.asarray(sims) if cfg["edge_weighted"] else None
    edge_cos = np.asarray(sims) if cfg["pair_cosine"] or cfg["pair_baseline"] else None
    if model.hallucinate_enabled:
        if i is None or src is None or tgt is None or text_emb is None:
            raise DataError("score_edges", "hallucinating model needs i, src, tgt and text_emb")
        _check("i", i, (n, cfg["clip_dim"]))
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
            probs = _score(model, f, i, src, tgt, text_emb, nbrs, weights, edge_cos, batch_size, consume_f, times)
    finally:
        model.train(was_training)
        torch.set_num_threads(old_threads)
    if stats is not None:
        stats.update({k: round(v, 3) for k, v in times.items()})
    return probs


def _score(
    model: CLIPClusterModel,
    f_np: np.ndarray,
    i_np: Any,
    src_np: np.ndarray | None,
    tgt_np: np.ndarray | None,
    text_np: np.ndarray | None,
    nbrs: np.ndarray,
    weights: np.ndarray | None,
    edge_cos: np.ndarray | None,
    batch_size: int,
    consume_f: bool,
    times: dict[str, float],
) -> np.ndarray:
    """The three stages of inference, each over the whole graph in row blocks: proxies, edge GCN, edge MLP."""
    dev = next(model.parameters()).device
    if not model.edge.learned:  # the pair baseline alone: no proxies, no GCN
        t0 = time.perf_counter()
        assert model.edge.baseline is not None and edge_cos is not None  # checked by model_config / score_edges
        probs = baseline_probs(model.edge.baseline, nbrs, edge_cos)
        times["edge_mlp_seconds"] = time.perf_counter() - t0
        return probs
    graph = _Graph(nbrs, weights, dev)
    pool = _Scratch(dev)
    f_c = np.ascontiguousarray(f_np, dtype=np.float32)
    f = torch.from_numpy(f_c).to(dev)
    # f's memory may serve as scratch once hallucination is done: when the caller allows it, or when it is a copy.
    f_owned = consume_f or dev.type != "cpu" or not np.may_share_memory(f_c, f_np)
    del f_c
    if model.hallucinate_enabled:
        assert i_np is not None and src_np is not None and tgt_np is not None and text_np is not None
        v = _proxies(model, f, i_np, src_np, tgt_np, text_np, graph, pool, batch_size, times)
    else:
        v = f
    t0 = time.perf_counter()
    if v is not f and f_owned:
        pool.give(f)
    x, b = _edge_gcn(model.edge, v, f, f_owned, graph, pool)
    del v
    times["edge_gcn_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    attr = None
    if model.edge.pair_attr is not None:
        assert src_np is not None and text_np is not None  # pair_attr exists only on hallucinating models
        attr = _attribute_terms(model.edge.pair_attr, src_np, text_np, dev, batch_size)
    probs = _edge_mlp(model.edge, x, b, nbrs, edge_cos, dev, attr)
    times["edge_mlp_seconds"] = time.perf_counter() - t0
    return probs


def baseline_probs(
    base: PairBaseline, nbrs: np.ndarray, edge_cos: np.ndarray, correction: np.ndarray | None = None
) -> np.ndarray:
    """``sigmoid`` of the pair baseline's logit on every kNN edge ``n -> nbrs[n, j]`` with cosine ``edge_cos[n, j]``
    (N x k float32; 0 where missing or self), densities from the same lists, in row blocks.

    ``correction`` (N x k float32): a learned logit added to the baseline's on every edge; the probabilities are
    written over it (it is the caller's scratch, so no second N x k array is held)."""
    n = nbrs.shape[0]
    density = local_density(nbrs, edge_cos, base.k_local)
    probs = np.zeros(nbrs.shape, dtype=np.float32) if correction is None else correction
    for s, e in _blocks(n, 65536):
        nb = nbrs[s:e]
        ok = (nb >= 0) & (nb != np.arange(s, e)[:, None])
        z = base.logits_np(edge_cos[s:e], density[s:e, None], density[np.maximum(nb, 0)])
        if correction is not None:
            z = correction[s:e] + z
        probs[s:e] = np.where(ok, expit(z), 0.0)
    return probs


def _attribute_terms(
    pair_attr: Any, src_np: np.ndarray, text_np: np.ndarray, dev: torch.device, batch_size: int
) -> torch.Tensor:
    """Every face's :meth:`~clipcluster.clip_cluster.modules.PairAttributes.node_terms` (N x dim), in row blocks:
    the prompts are projected once, so a block only gathers and averages dim-wide rows."""
    proj = pair_attr.proj(torch.from_numpy(np.asarray(text_np, dtype=np.float32)).to(dev))  # P x dim
    n = src_np.shape[0]
    out = torch.empty(n, proj.shape[1], device=dev)
    for s, e in _blocks(n, max(batch_size, 65536)):
        idx = torch.from_numpy(np.ascontiguousarray(src_np[s:e], dtype=np.int64)).to(dev)
        out[s:e] = proj[idx].mean(dim=1)
    return out


class _Graph:
    """The kNN graph's row blocks of ``D^-1 A`` (eq. 5) and ``D^-1 (A + I)`` (eq. 7), built on demand."""

    def __init__(self, nbrs: np.ndarray, weights: np.ndarray | None, dev: torch.device) -> None:
        self.nbrs, self.weights, self.dev = nbrs, weights, dev
        self.n, self.k = nbrs.shape

    def rows(self, self_loops: bool) -> Any:
        return lambda s, e: _adjacency_rows(
            self.nbrs, self.weights, s, e, self.n, self_loops=self_loops, device=self.dev
        )


def _proxies(
    model: CLIPClusterModel,
    f: torch.Tensor,
    i_np: Any,
    src_np: np.ndarray,
    tgt_np: np.ndarray,
    text_np: np.ndarray,
    graph: _Graph,
    pool: _Scratch,
    batch_size: int,
    times: dict[str, float],
) -> torch.Tensor:
    """Hallucinate each face's attribute tokens and fuse them into its proxy ``v`` (3.2-3.3), batch by batch."""
    n, dev = graph.n, graph.dev
    t0 = time.perf_counter()
    # The neighbour query (eq. 5): all layers but the last on the whole graph; the last one per batch below.
    last_q = None
    q_in = f
    q_layers = list(model.proxy.query_gcn.layers) if model.config["fusion"] == "cross" else []  # type: ignore[union-attr]
    for lin in q_layers[:-1]:
        out = pool.take(n, lin.out_features)
        for s, e in _blocks(n, _GCN_ROWS):
            out[s:e] = lin(graph.rows(False)(s, e) @ q_in).relu_()
        if q_in is not f:
            pool.give(q_in)
        q_in = out
    if q_layers:
        last_q = q_layers[-1]
    times["query_gcn_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    text = torch.from_numpy(np.ascontiguousarray(text_np, dtype=np.float32)).to(dev)
    fhat_fn = _fused_fhat_fn(model, text)
    v = pool.take(n, f.shape[1])
    adj_bar = graph.rows(False)
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        fb = f[s:e]
        ib = torch.from_numpy(np.ascontiguousarray(i_np[s:e], dtype=np.float32)).to(dev)
        sb = torch.from_numpy(np.ascontiguousarray(src_np[s:e], dtype=np.int64)).to(dev)
        tb = torch.from_numpy(np.ascontiguousarray(tgt_np[s:e], dtype=np.int64)).to(dev)
        qb = None
        if last_q is not None:  # at least 256 rows per product (see _blocks); the extra ones are dropped
            qs = max(0, min(s, e - 256))
            qb = last_q(adj_bar(qs, e) @ q_in).relu_()[s - qs :]
        v[s:e] = model.proxy(fb, fhat_fn(fb, ib, sb, tb), qb)
    if q_in is not f:
        pool.give(q_in)
    times["hallucinate_fuse_seconds"] = time.perf_counter() - t0
    return v


def _edge_gcn(
    edge: Any, v: torch.Tensor, f: torch.Tensor, f_owned: bool, graph: _Graph, pool: _Scratch
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge GCN (eq. 7) one row block at a time into whole-graph buffers, then the MLP's per-node terms.

    A layer's input goes back to the pool as soon as the next layer is done (``f`` itself only when ``f_owned``).
    Returns ``(x, b)``: the node features the pair terms need and the per-node projection, ``W_b v`` (concat; ``W_a
    v + b`` is computed per chunk) or ``h = P v`` (product, where ``x`` is ``b``).
    """
    n = graph.n
    x = v
    adj_loop = graph.rows(True)
    for lin in edge.layers:
        out = pool.take(n, lin.out_features)
        for s, e in _blocks(n, _GCN_ROWS):
            out[s:e] = lin(torch.cat([x[s:e], adj_loop(s, e) @ x], dim=1)).relu_()
        if x is not f or f_owned:
            pool.give(x)
        x = out
    concat = edge.pair == "concat"
    node_lin = edge.pair_b if concat else edge.pair_proj
    b = pool.take(n, node_lin.out_features)
    for s, e in _blocks(n, _GCN_ROWS):
        b[s:e] = node_lin(x[s:e])
    if not concat:
        if x is not f or f_owned:
            pool.give(x)
        x = b
    return x, b


def _edge_mlp(
    edge: Any,
    x: torch.Tensor,
    b: torch.Tensor,
    nbrs: np.ndarray,
    edge_cos: np.ndarray | None,
    dev: torch.device,
    attr: torch.Tensor | None = None,
) -> np.ndarray:
    """The pair MLP over every kNN edge in row chunks: ``probs[u, j]`` for the edge ``u -> nbrs[u, j]``
    (``attr``: every face's attribute terms, with ``edge.pair_attr``)."""
    n, k = nbrs.shape
    concat = edge.pair == "concat"
    probs = np.zeros((n, k), dtype=np.float32)
    width = b.shape[1]
    hidden = edge.out.in_features
    rows = max(1, _EDGE_CHUNK // max(1, k * max(hidden, 2 * width)))
    # Reused buffers: fresh multi-MB tensors per chunk would be mmap-ed and page-faulted every time (measured
    # ~10x slower than this loop on 2 cores).
    buf = torch.empty(rows * k, width, device=dev)
    pairs = None if concat else torch.empty(rows * k, 2 * width, device=dev)
    act = None if concat else torch.empty(rows * k, hidden, device=dev)
    logits = torch.empty(rows * k, 2, device=dev)
    w_out, b_out = edge.out.weight.T, edge.out.bias
    w_cos = None if edge.pair_cos is None else edge.pair_cos.weight[:, 0]  # hidden
    total, count = 0.0, 0
    for s, e in _blocks(n, rows):
        nb = torch.from_numpy(np.ascontiguousarray(nbrs[s:e], dtype=np.int64)).to(dev)
        ok = (nb >= 0) & (nb != torch.arange(s, e, device=dev)[:, None])
        m = (e - s) * k
        xb = buf[:m]
        torch.index_select(b, 0, nb.clamp_min(0).reshape(-1), out=xb)
        if concat:
            xb.view(e - s, k, width).add_(edge.pair_a(x[s:e])[:, None, :])  # W_a v_u + b + W_b v_v
        else:
            hu = x[s:e][:, None, :]
            pb = pairs[:m].view(e - s, k, 2 * width)  # type: ignore[index]
            torch.mul(xb.view(e - s, k, width), hu, out=pb[..., :width])
            torch.sub(xb.view(e - s, k, width), hu, out=pb[..., width:]).abs_()
            xb = torch.addmm(edge.pair_in.bias, pairs[:m], edge.pair_in.weight.T, out=act[:m])  # type: ignore[index]
        if w_cos is not None:
            cb = torch.from_numpy(np.ascontiguousarray(edge_cos[s:e], dtype=np.float32)).to(dev)  # type: ignore[index]
            cb = edge.pair_cos.transform(cb)  # type: ignore[union-attr]
            xb.view(e - s, k, -1).add_(torch.where(ok, cb, 0.0)[..., None] * w_cos)
        if attr is not None:
            pv = attr[nb.clamp_min(0)]  # rows x k x dim
            xb.view(e - s, k, -1).add_(edge.pair_attr(attr[s:e][:, None, :], pv))
        xb.relu_()
        lg = torch.addmm(b_out, xb, w_out, out=logits[:m]).view(e - s, k, 2)
        z = lg[..., 1] - lg[..., 0]
        # the learned correction's logit for now; -inf where there is no edge, so that its sigmoid is 0
        probs[s:e] = torch.where(ok, z, torch.full((), -torch.inf, dtype=z.dtype, device=dev)).cpu().numpy()
        total += float(torch.where(ok, z, torch.zeros((), dtype=z.dtype, device=dev)).sum(dtype=torch.float64))
        count += int(ok.sum())
    if edge.centre:  # the centred correction: mean zero over the graph's edges
        probs -= np.float32(total / max(count, 1))
    if edge.baseline is None:
        return expit(probs, out=probs)  # softmax(logits)[1]
    return baseline_probs(edge.baseline, nbrs, edge_cos, correction=probs)  # type: ignore[arg-type]


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
        edges = [*knn_to_edges(nbrs, probs, sim_floor=tau)]
    else:
        if sims is None or np.shape(sims) != nbrs.shape:
            raise DataError("prune_and_refine", "weight='sim' needs sims of the same N x k shape as nbrs")
        # Prune on the score, weight by similarity: masked entries become -inf and fail the floor.
        masked = np.where(probs >= tau, np.maximum(np.asarray(sims, dtype=np.float32), 0.0), -np.inf)
        edges = [*knn_to_edges(nbrs, masked.astype(np.float32), sim_floor=0.0)]
        del masked
    edge_seconds = time.perf_counter() - t0
    kept = int(edges[0].size)
    # The edge list is handed over (no other reference): freed once Infomap holds the links, before it optimises.
    labels = _infomap_cluster(
        nbrs.shape[0], edges, seed=seed, num_trials=num_trials, two_level=True, directed=False, silent=True,
        stats=stats,
    )  # fmt: skip
    if stats is not None:
        stats.update(edge_seconds=round(edge_seconds, 3), kept_edges=kept)
    return labels


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

    What is implemented (CDP/LTC ``graph_propagation``, ``clipcluster.graph.propagation.propagate``): keep the
    undirected kNN edges with score >= ``tau`` (max of both directions); take connected components; components of at
    most ``max_size`` nodes are final. The others are split again with only their edges of score > th, where th
    starts at ``tau`` and rises as ``th += (1 - th) * step`` per round; repeat until none is too large. After
    ``max_iter`` rounds the still-oversized components are kept as they are (CDP instead lumps all leftovers into
    one cluster). Defaults max_size = 900, step = 0.05 follow LTC's settings for GCN edge scores. Returns labels
    0..C-1 by first appearance.
    """
    nbrs, probs = np.asarray(nbrs), np.asarray(probs, dtype=np.float32)
    if probs.shape != nbrs.shape or nbrs.ndim != 2:
        raise DataError("naive_prune", f"nbrs {nbrs.shape} and probs {probs.shape} must be the same N x k")
    if max_size < 1 or not 0 < step < 1:
        raise ValueError(f"need max_size >= 1 and 0 < step < 1, got {max_size}, {step}")
    src, dst, w = knn_to_edges(nbrs, probs, sim_floor=tau)
    out = propagate(
        nbrs.shape[0], src, dst, w, start=tau, max_size=max_size, step=step, max_iter=max_iter, keep_at="above",
        leftovers="each",
    )  # fmt: skip
    _, first, inverse = np.unique(out, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int64)
    return rank[inverse.ravel()]
