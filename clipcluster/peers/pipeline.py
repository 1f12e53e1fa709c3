"""The peers' learned stages as the workflow runs them: train on the labelled part, infer a whole test subset.

FaceT (:mod:`clipcluster.peers.facet_model`) and MHC (:mod:`clipcluster.peers.mhc_model`) both learn a score per
kNN edge on the labelled training part (MS1M part0 in both papers: FaceT Sec. 4.1, MHC Sec. 5.1) and then cluster
a test subset with a training-free step (:func:`~clipcluster.peers.facet_cluster.facet_cluster`,
:func:`~clipcluster.peers.mhc_cluster.mhc_cluster`).

Training graph: neither paper samples subgraphs; each trains on its part's own kNN graph, every node a query /
anchor with its neighbours. So the training part's kNN graph is built once (``k = max(hop1, hop2)`` for FaceT,
``K`` for MHC, capped at N - 1) and each step takes ``batch_size`` query nodes; an epoch is every node once, in
an order drawn from ``(seed, epoch)`` only (so the resumable trainer, :func:`clipcluster.training.loop.train`,
replays it exactly), or ``nodes_per_epoch`` of them where a short run needs less. Schedule: linear warm-up for
``warmup_steps`` steps then cosine decay (FaceT Sec. 4.1; converted to the trainer's fractional warm-up epochs and
kept under half the run when the run is shorter than the paper's).

Inference is batched over nodes (no Python loop over nodes or edges), memory O(N k + N d) plus one batch, and
timed without the kNN build (``stats``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipcluster.atomic import atomic_path, write_json
from clipcluster.errors import DataError
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.graph.baselines import _check_knn
from clipcluster.graph.knn import build_knn
from clipcluster.peers.facet_cluster import facet_cluster
from clipcluster.peers.facet_model import FaceTModel, facet_config, facet_loss
from clipcluster.peers.mhc_cluster import mhc_cluster
from clipcluster.peers.mhc_model import MhcSimilarityModel, mhc_config, mhc_loss
from clipcluster.training.edge_prior import positive_rate
from clipcluster.training.loop import train
from clipcluster.training.pair_baseline import density_from_features, neighbour_cosines
from clipcluster.training.pair_cosine import edge_cosines

__all__ = [
    "facet_link_probs",
    "infer_facet",
    "infer_mhc",
    "infer_peer",
    "load_peer_model",
    "mhc_similarities",
    "node_batches",
    "peer_scores",
    "save_peer_model",
    "train_facet",
    "train_mhc",
    "train_peer",
]

log = logging.getLogger(__name__)

_TAG_ORDER = 31  # seed-sequence tag of the query order (distinct from the samplers' tags)


def _check_feats(feats: np.ndarray, where: str) -> np.ndarray:
    if not isinstance(feats, np.ndarray) or feats.ndim != 2 or feats.shape[0] < 2:
        raise DataError(where, f"features must be an N x D array with N >= 2, got {getattr(feats, 'shape', feats)}")
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if not np.isfinite(feats).all():
        raise DataError(where, "features contain NaN or infinite values")
    return feats


def _check_labels(labels: np.ndarray, n: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(where, f"labels must be {n} integers (one per feature row), got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64, copy=False)


def node_batches(n: int, batch_size: int, nodes_per_epoch: int | None, seed: int, epoch: int) -> list[np.ndarray]:
    """An epoch's query batches: a permutation of the ``n`` nodes from ``(seed, epoch)`` only, cut into batches.

    ``nodes_per_epoch`` (None: ``n``) queries are taken, wrapping round fresh permutations when it exceeds ``n``.
    """
    rng = np.random.default_rng([int(seed), int(epoch), _TAG_ORDER])
    want = n if nodes_per_epoch is None else int(nodes_per_epoch)
    order = np.concatenate([rng.permutation(n) for _ in range(-(-want // n))])[:want].astype(np.int64)
    return [order[s : s + batch_size] for s in range(0, want, batch_size)]


def _training_graph(feats: np.ndarray, k: int, index: str, threads: int | None) -> np.ndarray:
    k = min(int(k), feats.shape[0] - 1)
    return build_knn(feats, k, index=index, threads=threads, progress=False).nbrs


def _same_identity(nbrs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    valid = nbrs >= 0
    return valid & (labels[np.where(valid, nbrs, 0)] == labels[:, None])


def _claim_checkpoint_dir(checkpoint_dir: str | Path, settings: dict[str, Any]) -> None:
    """Record the model settings in ``checkpoint_dir``; refuse a folder holding another setting's checkpoints.

    The trainer checks its own settings on resume but not the model's (a different ``hop1`` has the same weight
    shapes), so a resumed run could silently continue another configuration's training without this.
    """
    path = Path(checkpoint_dir) / "peer_config.json"
    shown = json.loads(json.dumps(settings, sort_keys=True, default=str))
    if path.is_file():
        old = json.loads(path.read_text())
        if old != shown:
            diff = sorted(k for k in set(old) | set(shown) if old.get(k) != shown.get(k))
            raise DataError(path, f"holds checkpoints of other settings ({', '.join(diff)}); use a fresh folder")
        return
    write_json(path, shown)


def _warmup_epochs(warmup_steps: int, steps_per_epoch: int, epochs: int) -> float:
    return min(int(warmup_steps) / steps_per_epoch, 0.5 * epochs)


def _train_edges(
    model: torch.nn.Module,
    loss_fn: Any,
    score: Any,
    feats: np.ndarray,
    nbrs: np.ndarray,
    same: np.ndarray,
    cfg: dict[str, Any],
    *,
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    progress: bool,
    density: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Shared loop: batches of query nodes, ``score(model, feats, nbrs, queries, density) -> (logits, mask)``, a
    loss; ``density``: the nodes' local densities, for a model with a pair baseline."""
    _claim_checkpoint_dir(checkpoint_dir, {**cfg, "n_train": int(feats.shape[0])})
    n = feats.shape[0]
    batch, npe = int(cfg["batch_size"]), cfg["nodes_per_epoch"]
    steps = -(-(n if npe is None else int(npe)) // batch)
    host = {"f": torch.from_numpy(feats), "nbrs": torch.from_numpy(nbrs), "same": torch.from_numpy(same)}
    if density is not None:
        host["density"] = torch.from_numpy(density)
    on_dev: dict[str, dict[str, torch.Tensor]] = {}

    def batches(epoch: int) -> list[np.ndarray]:
        return node_batches(n, batch, npe, seed, epoch)

    def step(m: torch.nn.Module, queries: np.ndarray) -> dict[str, torch.Tensor]:
        dev = next(m.parameters()).device
        t = on_dev.setdefault(str(dev), {k: v.to(dev) for k, v in host.items()})
        q = torch.from_numpy(queries).to(dev)
        logits, mask = score(m, t["f"], t["nbrs"], q, t.get("density"))
        same_q = t["same"][q, : mask.shape[1]]
        loss = loss_fn(logits, mask, same_q)
        return {"total": loss, "pos_frac": same_q[mask].float().mean().detach()}

    epochs = int(cfg["epochs"])
    return train(
        model,
        batches,
        step,
        epochs=epochs,
        lr=float(cfg["lr"]),
        optimizer=str(cfg["optimizer"]),
        weight_decay=float(cfg["weight_decay"]),
        schedule="cosine",
        warmup_epochs=_warmup_epochs(int(cfg["warmup_steps"]), steps, epochs),
        steps_per_epoch=steps,
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        device=device,
        log=log,
        progress=progress,
    )


def train_facet(
    feats: np.ndarray,
    labels: np.ndarray,
    cfg: dict[str, Any] | None,
    *,
    checkpoint_dir: str | Path,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> tuple[FaceTModel, list[dict[str, Any]]]:
    """Train FaceT (RE + LP) on the labelled part ``feats`` (N x D, L2-normalised), ``labels`` (N identities).

    Every node is a query with its ``hop1`` candidates of the part's kNN graph; the target of each pair is "same
    identity" (FaceT Sec. 3.4). ``cfg`` holds :data:`clipcluster.peers.facet_model.DEFAULT_CONFIG` keys (the
    paper's MS1M values by default); ``seed`` seeds the initialisation, the query order and dropout. Resumes from
    ``checkpoint_dir``. Returns the model (eval mode, on the CPU) and the trainer's per-epoch history.
    """
    where = "peers.train_facet"
    c = facet_config({**(cfg or {}), "seed": int(seed)}, where=where)
    model = FaceTModel(c)
    history = _train_peer_model(
        model, model.predictor.pair_cos, facet_loss, lambda m, f, nb, q, d: m(f, nb, q, d), feats, labels, c,
        width=max(c["hop1"], c["hop2"]), scored=c["hop1"], name="FaceT", where=where, threads=threads,
        checkpoint_dir=checkpoint_dir, seed=int(seed), device=device, progress=progress,
    )  # fmt: skip
    return model, history


def train_mhc(
    feats: np.ndarray,
    labels: np.ndarray,
    cfg: dict[str, Any] | None,
    *,
    checkpoint_dir: str | Path,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> tuple[MhcSimilarityModel, list[dict[str, Any]]]:
    """Train MHC's similarity model (Sec. 4.1, Eq. 1) on the labelled part; see :func:`train_facet` for the rest.

    Every node is an anchor with its K nearest neighbours of the part's kNN graph; the target of each pair is
    "same identity". ``cfg`` holds :data:`clipcluster.peers.mhc_model.DEFAULT_CONFIG` keys.
    """
    where = "peers.train_mhc"
    c = mhc_config({**(cfg or {}), "seed": int(seed)}, where=where)
    model = MhcSimilarityModel(c)
    history = _train_peer_model(
        model, model.pair_cos, mhc_loss, lambda m, f, nb, q, d: m.score(f, nb, q, d), feats, labels, c,
        width=c["k"], scored=c["k"], name="MHC", where=where, threads=threads,
        checkpoint_dir=checkpoint_dir, seed=int(seed), device=device, progress=progress,
    )  # fmt: skip
    return model, history


def _train_peer_model(
    model: Any,
    pair_cos: Any,
    loss: Any,
    forward: Any,
    feats: np.ndarray,
    labels: np.ndarray,
    c: dict[str, Any],
    *,
    width: int,
    scored: int,
    name: str,
    where: str,
    threads: int | None,
    checkpoint_dir: str | Path,
    seed: int,
    device: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """What both peers' training shares: inputs checked, the part's kNN graph (``width`` neighbours), the output
    prior and the cosine statistics from its first ``scored`` edges, then :func:`_train_edges`. The model ends in
    eval mode on the CPU."""
    if threads:
        torch.set_num_threads(int(threads))
    feats = _check_feats(feats, where)
    labels = _check_labels(labels, feats.shape[0], where)
    if feats.shape[1] != c["feat_dim"]:
        raise DataError(where, f"features have {feats.shape[1]} columns but feat_dim is {c['feat_dim']}")
    t0 = time.perf_counter()
    nbrs = _training_graph(feats, width, c["knn_index"], threads)
    log.info("%s training graph: %d x %d kNN in %.1fs", name, *nbrs.shape, time.perf_counter() - t0)
    same = _same_identity(nbrs, labels)
    if c["prior_init"]:  # a resumed run overwrites it with the checkpoint's weights
        model.set_prior(positive_rate(same[:, :scored], nbrs[:, :scored] >= 0))
    if pair_cos is not None and pair_cos.standardised:  # z-scored on the training edges (training.pair_cosine)
        pair_cos.set_stats(edge_cosines(feats, nbrs[:, :scored]))
    density = None
    if model.baseline is not None:  # fit on the training part's graph (a resumed run reloads it with the weights)
        density = density_from_features(feats, nbrs, model.baseline.k_local)
        cand = nbrs[:, :scored]
        fit = model.baseline.fit_graph(labels, cand, neighbour_cosines(feats, cand), density)
        log.info("%s pair baseline fit on the training part's %d kNN edges: %s", name, fit["edges"], fit)
    history = _train_edges(
        model, loss, forward, feats, nbrs, same, c,
        checkpoint_dir=checkpoint_dir, seed=seed, device=device, progress=progress, density=density,
    )  # fmt: skip
    model.eval().cpu()
    return history


_FACET_INFER_KEYS = ("tau", "infer_batch")
_MHC_INFER_KEYS = ("tau", "eps", "infer_batch")


def _inference_cfg(model_cfg: dict[str, Any], cfg: dict[str, Any] | None, allowed: tuple[str, ...], where: str) -> Any:
    """The model's config with the inference-only keys of ``cfg`` applied (the others are fixed by training)."""
    cfg = dict(cfg or {})
    bad = sorted(set(cfg) - set(allowed))
    if bad:
        raise DataError(where, f"only {list(allowed)} can be set at inference, got {bad}")
    return {**model_cfg, **cfg}


def _check_graph(feats: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, need_k: int, dim: int, where: str) -> Any:
    feats = _check_feats(feats, where)
    nbrs, sims = _check_knn(nbrs, sims, where)
    if nbrs.shape[0] != feats.shape[0]:
        raise DataError(where, f"nbrs has {nbrs.shape[0]} rows but features have {feats.shape[0]}")
    if nbrs.shape[1] < need_k:
        raise DataError(where, f"the model needs {need_k} neighbours per node, the kNN lists have {nbrs.shape[1]}")
    if feats.shape[1] != dim:
        raise DataError(where, f"features have {feats.shape[1]} columns but the model expects {dim}")
    return feats, nbrs, sims


def _masked_scores(
    model: torch.nn.Module,
    feats: np.ndarray,
    nbrs: np.ndarray,
    width: int,
    cols: int,
    batch: int,
    score: Any,
    prepare: Any = None,
) -> np.ndarray:
    """The inference loop both peers share: ``score(f, nb, rows, ctx) -> (p, mask)`` per batch of query rows.

    ``nb`` holds the first ``width`` neighbours; ``ctx`` is ``prepare(f, nb)`` (once per graph) or None. Returns
    N x ``cols`` float32, 0 where ``mask`` is False (a missing neighbour). Runs where the model is.
    """
    n = feats.shape[0]
    model.eval()
    dev = next(model.parameters()).device  # the rule moves the model to CUDA when present
    with torch.inference_mode():
        f = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)).to(dev)
        nb = torch.from_numpy(np.ascontiguousarray(nbrs[:, :width], dtype=np.int64)).to(dev)
        ctx = prepare(f, nb) if prepare is not None else None
        out = np.zeros((n, cols), dtype=np.float32)
        for s in range(0, n, batch):
            p, mask = score(f, nb, torch.arange(s, min(n, s + batch), device=dev), ctx)
            out[s : s + batch] = torch.where(mask, p, torch.zeros((), dtype=p.dtype, device=dev)).cpu().numpy()
    return out


def facet_link_probs(
    model: FaceTModel, feats: np.ndarray, nbrs: np.ndarray, *, batch_size: int | None = None
) -> np.ndarray:
    """FaceT's linkage probability ``p_{q,k}`` (Eq. 9) for every node and its first ``hop1`` neighbours.

    RE runs once per node (its output does not depend on the query), in batches; LP in query batches. Returns
    N x hop1 float32, 0 where the neighbour is missing.
    """
    cfg = model.config
    batch = int(batch_size or cfg["infer_batch"])
    width = max(cfg["hop1"], cfg["hop2"])

    def encode(f: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        n, g = f.shape[0], torch.empty_like(f)
        re_batch = batch * 8  # RE handles hop2 tokens per node, LP hop1: more nodes fit one batch
        for s in range(0, n, re_batch):
            g[s : s + re_batch] = model.encode(f, nb, torch.arange(s, min(n, s + re_batch), device=f.device))
        return g

    density = _density(model, feats, nbrs)

    def link(f: torch.Tensor, nb: torch.Tensor, rows: torch.Tensor, g: torch.Tensor) -> Any:
        logits, mask = model.link_logits(g, nb, rows, feats=f, density=_on(density, f))
        return torch.softmax(logits, dim=-1)[..., 1], mask

    cols = min(cfg["hop1"], nbrs.shape[1])  # hop1 <= width
    return _masked_scores(model, feats, nbrs, width, cols, batch, link, prepare=encode)


def _density(model: Any, feats: np.ndarray, nbrs: np.ndarray) -> torch.Tensor | None:
    """The graph's local densities when the model has a pair baseline (else None)."""
    if model.baseline is None:
        return None
    return torch.from_numpy(density_from_features(np.asarray(feats, np.float32), nbrs, model.baseline.k_local))


def _on(x: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if x is None else x.to(like.device)


def mhc_similarities(
    model: MhcSimilarityModel, feats: np.ndarray, nbrs: np.ndarray, *, batch_size: int | None = None
) -> np.ndarray:
    """MHC's learned similarity ``p_ij`` (Sec. 4.1) of every anchor to its first K neighbours, in anchor batches.

    Returns N x K float32 in [0, 1], 0 where the neighbour is missing.
    """
    cfg = model.config

    density = _density(model, feats, nbrs)

    def similarity(f: torch.Tensor, nb: torch.Tensor, rows: torch.Tensor, _: None) -> Any:
        logits, mask = model.score(f, nb, rows, _on(density, f))
        return torch.sigmoid(logits), mask

    k = min(cfg["k"], nbrs.shape[1])
    return _masked_scores(model, feats, nbrs, cfg["k"], k, int(batch_size or cfg["infer_batch"]), similarity)


def _timed_inference(
    score: Any, cluster: Any, nbrs: np.ndarray, sims: np.ndarray, width: int, tau: float, truth: np.ndarray | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The skeleton both peers' inference shares: ``score() -> probs``, ``cluster(probs) -> (labels, stats)``, both
    timed; with the true labels, the scores' edge ROC AUC next to the cosine's over the first ``width`` edges."""
    t0 = time.perf_counter()
    probs = score()
    t1 = time.perf_counter()
    labels, own = cluster(probs)
    t2 = time.perf_counter()
    stats = {"score_seconds": t1 - t0, "cluster_seconds": t2 - t1, "total_seconds": t2 - t0, **own, "tau": tau}
    if truth is not None:
        stats["edge_auc"] = edge_auc(nbrs[:, :width], probs, sims[:, :width], truth)
    return labels, stats


def infer_facet(
    model: FaceTModel,
    feats: np.ndarray,
    nbrs: np.ndarray,
    sims: np.ndarray,
    cfg: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
    truth: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster a whole test subset with FaceT: link probabilities on its kNN graph, then threshold + union-find.

    ``nbrs``/``sims`` are the subset's kNN graph (:mod:`clipcluster.graph.knn`, at least ``hop1`` neighbours;
    ``sims`` is only checked, FaceT links on the learned probabilities alone). ``cfg`` may set ``tau`` and
    ``infer_batch`` only (default: the model's; the other keys are fixed by training). Returns int64 labels and
    ``stats``: ``score_seconds`` (RE + LP), ``cluster_seconds``, ``total_seconds`` (kNN build excluded),
    ``n_clusters``, ``link_frac`` (share of edges above ``tau``); with the true labels ``truth``, ``edge_auc``: the
    link probabilities' ROC AUC next to the cosine's (:func:`clipcluster.evaluation.edge_quality.edge_auc`; a report
    only).
    """
    where = "peers.infer_facet"
    if threads:
        torch.set_num_threads(int(threads))
    c = facet_config(_inference_cfg(model.config, cfg, _FACET_INFER_KEYS, where), where=where)
    feats, nbrs, sims = _check_graph(feats, nbrs, sims, max(c["hop1"], c["hop2"]), c["feat_dim"], where)
    tau = float(c["tau"])

    def cluster(probs: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        hop1 = probs.shape[1]
        labels = facet_cluster(nbrs[:, :hop1], probs, tau=tau)
        valid = nbrs[:, :hop1] >= 0
        link_frac = float((probs[valid] > tau).mean()) if valid.any() else 0.0
        return labels, {"n_clusters": int(labels.max()) + 1, "link_frac": link_frac}

    width = min(c["hop1"], nbrs.shape[1])
    score = lambda: facet_link_probs(model, feats, nbrs, batch_size=c["infer_batch"])  # noqa: E731
    return _timed_inference(score, cluster, nbrs, sims, width, tau, truth)


def infer_mhc(
    model: MhcSimilarityModel,
    feats: np.ndarray,
    nbrs: np.ndarray,
    sims: np.ndarray,
    cfg: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
    truth: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster a whole test subset with MHC: learned similarities replace cosine, then P, NDDe, TPDi, DPC.

    ``nbrs``/``sims`` are the subset's kNN graph (at least K neighbours; ``sims`` only checked). ``cfg`` may
    set ``tau``, ``eps`` and ``infer_batch`` only. Returns int64 labels and ``stats``: ``score_seconds``,
    ``cluster_seconds`` (with the stages of :func:`mhc_cluster` under ``mhc_seconds``), ``total_seconds`` (kNN
    build excluded), ``n_clusters``, ``ndde_iterations``, ``ndde_converged``; with the true labels ``truth``,
    ``edge_auc``: the learned similarities' ROC AUC next to the cosine's (a report only).
    """
    where = "peers.infer_mhc"
    if threads:
        torch.set_num_threads(int(threads))
    c = mhc_config(_inference_cfg(model.config, cfg, _MHC_INFER_KEYS, where), where=where)
    feats, nbrs, sims = _check_graph(feats, nbrs, sims, c["k"], c["feat_dim"], where)
    tau = float(c["tau"])

    def cluster(pred: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        res = mhc_cluster(nbrs[:, : c["k"]], pred, k=None, tau=tau, eps=float(c["eps"]))
        return res.labels, {
            "mhc_seconds": res.seconds, "n_clusters": int(res.labels.max()) + 1,
            "ndde_iterations": res.iterations, "ndde_converged": res.converged,
        }  # fmt: skip

    score = lambda: mhc_similarities(model, feats, nbrs, batch_size=c["infer_batch"])  # noqa: E731
    return _timed_inference(score, cluster, nbrs, sims, c["k"], tau, truth)


def save_peer_model(
    path: str | Path, model: FaceTModel | MhcSimilarityModel, extra: dict[str, Any] | None = None
) -> None:
    """Config + weights (+ ``extra``, e.g. the history) of a trained peer model, written atomically."""
    kind = "facet" if isinstance(model, FaceTModel) else "mhc" if isinstance(model, MhcSimilarityModel) else None
    if kind is None:
        raise DataError(str(path), f"not a FaceT or MHC model: {type(model).__name__}")
    state = {"kind": kind, "config": model.config, "state_dict": model.state_dict(), "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_peer_model(path: str | Path) -> FaceTModel | MhcSimilarityModel:
    """Rebuild a model written by :func:`save_peer_model` (eval mode, CPU)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("kind") not in ("facet", "mhc"):
        raise DataError(str(path), "not a peer model file written by save_peer_model")
    model: FaceTModel | MhcSimilarityModel
    model = FaceTModel(state["config"]) if state["kind"] == "facet" else MhcSimilarityModel(state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def peer_scores(
    model: FaceTModel | MhcSimilarityModel,
    feats: np.ndarray,
    nbrs: np.ndarray,
    *,
    batch_size: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """The learned edge scores a peer clusters on: FaceT's link probabilities or MHC's similarities (N x k)."""
    if threads:
        torch.set_num_threads(int(threads))
    if isinstance(model, FaceTModel):
        return facet_link_probs(model, feats, nbrs, batch_size=batch_size)
    if isinstance(model, MhcSimilarityModel):
        return mhc_similarities(model, feats, nbrs, batch_size=batch_size)
    raise DataError("peers.peer_scores", f"not a FaceT or MHC model: {type(model).__name__}")


def train_peer(
    peer: str, feats: np.ndarray, labels: np.ndarray, cfg: dict[str, Any] | None, **kwargs: Any
) -> tuple[FaceTModel | MhcSimilarityModel, list[dict[str, Any]]]:
    """:func:`train_facet` (``peer="facet"``) or :func:`train_mhc` (``"mhc"``), with the same keywords."""
    trainers = {"facet": train_facet, "mhc": train_mhc}
    if peer not in trainers:
        raise DataError("peers.train_peer", f"unknown peer {peer!r} (known: {', '.join(trainers)})")
    return trainers[peer](feats, labels, cfg, **kwargs)


def infer_peer(
    model: FaceTModel | MhcSimilarityModel,
    feats: np.ndarray,
    nbrs: np.ndarray,
    sims: np.ndarray,
    cfg: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
    truth: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`infer_facet` or :func:`infer_mhc`, whichever ``model`` is."""
    if isinstance(model, FaceTModel):
        return infer_facet(model, feats, nbrs, sims, cfg, threads=threads, truth=truth)
    if isinstance(model, MhcSimilarityModel):
        return infer_mhc(model, feats, nbrs, sims, cfg, threads=threads, truth=truth)
    raise DataError("peers.infer_peer", f"not a FaceT or MHC model: {type(model).__name__}")
