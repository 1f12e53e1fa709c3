"""The CLIP-Cluster stages as the workflow runs them: read a part, pretrain B, train the model, infer a subset.

Rule scripts call these; every hyperparameter arrives in a plain dict from the config (``methods.clipcluster``):
``transfer`` (B's pretraining), ``model`` (:data:`~clipcluster.clip_cluster.model.DEFAULT_CONFIG` keys),
``sampler`` (:class:`~clipcluster.clip_cluster.sampling.SubgraphSampler` keywords) and ``train`` (the trainer's).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clipcluster.clip_cluster.losses import transfer_pretrain_loss
from clipcluster.clip_cluster.model import CLIPClusterModel, model_config
from clipcluster.clip_cluster.modules import SpaceTransfer
from clipcluster.clip_cluster.sampling import Subgraph, SubgraphSampler
from clipcluster.clip_cluster.score import naive_prune, prune_and_refine, score_edges
from clipcluster.clip_cluster.targets import hallucination_targets
from clipcluster.errors import DataError
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import build_knn
from clipcluster.io import load_parts, read_bin, read_meta
from clipcluster.prompt_file import read_prompts  # noqa: F401 - the rule scripts read prompts from here
from clipcluster.training.edge_prior import positive_rate
from clipcluster.training.loop import train
from clipcluster.training.pair_baseline import local_density

log = logging.getLogger(__name__)

CLIP_DIM = 512


def checkpoint_dir(base: str | Path, **settings: Any) -> Path:
    """A checkpoint folder per distinct training setting, so a resumed job never continues another setting's run."""
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(base) / digest


def input_stamps(paths: Any) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each input: regenerated inputs (a new twin, a retrained B) get fresh checkpoints."""
    import os

    return [(str(x), os.stat(x).st_size, os.stat(x).st_mtime_ns) for x in paths]


@dataclass
class PartData:
    """What the model reads of one part or subset: face features, CLIP image embeddings, labels, targets."""

    f: np.ndarray  # N x 256, L2-normalised
    i: np.ndarray  # N x 512, L2-normalised
    labels: np.ndarray  # N
    src: np.ndarray  # N x M prompt rows
    tgt: np.ndarray  # N x M prompt rows


def write_targets(attributes: str | Path, table: pd.DataFrame, path: str | Path) -> int:
    """Rule targets: a part's N x M source/target prompt rows (``src``, ``tgt``) as npz; returns N."""
    from clipcluster.atomic import atomic_path

    src, tgt = hallucination_targets(pd.read_parquet(attributes), table)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, src=src, tgt=tgt)
    return int(src.shape[0])


def load_data(
    bins: list[str],
    metas: list[str],
    clip_bins: list[str],
    targets: list[str],
    *,
    dim: int = 256,
) -> PartData:
    """Concatenate parts (a subset) of face features, CLIP embeddings, labels and hallucination targets."""
    f, labels = load_parts(bins, metas, dim)
    f = l2_normalize(f, where=", ".join(bins))
    clips, srcs, tgts = [], [], []
    for path, meta, tpath in zip(clip_bins, metas, targets, strict=True):
        n = read_meta(meta).size
        clips.append(read_bin(path, CLIP_DIM, n))
        with np.load(tpath) as z:
            if z["src"].shape[0] != n:
                raise DataError(tpath, f"{z['src'].shape[0]} target rows but {meta} has {n} labels")
            srcs.append(z["src"])
            tgts.append(z["tgt"])
    # One output filled part by part (np.concatenate would hold the parts and the result: twice N x 512 floats).
    i = np.empty((sum(c.shape[0] for c in clips), CLIP_DIM), dtype=np.float32)
    start = 0
    while clips:
        c = clips.pop(0)
        i[start : start + c.shape[0]] = c
        start += c.shape[0]
        del c
    i = l2_normalize(i, where=", ".join(clip_bins))
    return PartData(f, i, labels, np.concatenate(srcs), np.concatenate(tgts))


def load_run_parts(results: str | Path, parts: list[str], *, dim: int) -> PartData:
    """:func:`load_data` on a finished run's own files (``results/<dataset>/``: faces, parts, clip, targets)."""
    res = Path(results)
    return load_data(
        [str(res / "faces" / f"{p}.bin") for p in parts], [str(res / "parts" / f"{p}.meta") for p in parts],
        [str(res / "clip" / f"{p}.bin") for p in parts], [str(res / "targets" / f"{p}.npz") for p in parts], dim=dim,
    )  # fmt: skip


def variant_train_config(cc: dict[str, Any], face_dim: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """The training settings of one CLIP-Cluster variant: methods.clipcluster's model keys with ``overrides`` (e.g.
    ``{"fusion": "average"}``), sampler and train, as the workflow's train rule passes them."""
    model = {"face_dim": face_dim, **cc["model"], **overrides}
    return {"model": model, "sampler": cc["sampler"], "train": cc["train"], "baseline_fit_k": cc["k"]}


class BinRows:
    """N x ``dim`` rows of one or more float32 ``.bin`` files (parts, concatenated), read from disk on demand.

    Stands in for an in-memory array where only contiguous row blocks are needed (whole-graph inference reads the
    CLIP embeddings one hallucination batch at a time): ``rows[s:e]`` reads those rows with plain file reads (no
    memory map, so the file's pages never count towards the resident set) and, with ``normalize``, L2-normalises
    them exactly as :func:`~clipcluster.features.l2_normalize` would the whole array (row-wise, so identical
    values). :meth:`validate` scans everything once for the errors loading would raise (non-finite values, zero
    rows). ``np.asarray(rows)`` materialises the whole array.
    """

    def __init__(self, paths: list[str], dim: int, counts: list[int] | None = None, *, normalize: bool = True):
        from clipcluster.io import bin_rows

        self.paths, self.dim, self.normalize = [str(x) for x in paths], int(dim), normalize
        sizes = [bin_rows(x, dim) for x in self.paths]
        if counts is not None:
            for path, got, want in zip(self.paths, sizes, counts, strict=True):
                if got != want:
                    raise DataError(path, f"has {got} rows of dim {dim} but {want} labels (counts must match)")
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shape = (int(self.starts[-1]), self.dim)
        self.ndim, self.dtype = 2, np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: slice) -> np.ndarray:
        if not isinstance(idx, slice) or idx.step not in (None, 1):
            raise TypeError("BinRows supports contiguous row slices only")
        start, stop, _ = idx.indices(self.shape[0])
        return self._read(start, max(start, stop))

    def _read(self, start: int, stop: int) -> np.ndarray:
        from clipcluster.io import FLOAT, check_finite

        out = np.empty((stop - start, self.dim), dtype=np.float32)
        for j, path in enumerate(self.paths):
            a, b = max(start, int(self.starts[j])), min(stop, int(self.starts[j + 1]))
            if a >= b:
                continue
            with open(path, "rb") as fh:
                fh.seek((a - int(self.starts[j])) * self.dim * FLOAT.itemsize)
                block = np.fromfile(fh, dtype=FLOAT, count=(b - a) * self.dim).reshape(b - a, self.dim)
            check_finite(path, block)
            if self.normalize:
                block = l2_normalize(block, where=f"{path} (rows from {a - int(self.starts[j])})")
            out[a - start : b - start] = block
        return out

    def validate(self, block: int = 1 << 16) -> None:
        """Read everything once, block by block: DataError on a non-finite value or (normalising) a zero row."""
        for s in range(0, self.shape[0], block):
            self._read(s, min(self.shape[0], s + block))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)


def _small_ints(x: np.ndarray) -> np.ndarray:
    """Prompt-row indices (< 2^15) as int16: 4x less than int64 at N x M (inference converts per batch)."""
    x = np.asarray(x)
    if x.size and (int(x.min()) < np.iinfo(np.int16).min or int(x.max()) > np.iinfo(np.int16).max):
        return x
    return x.astype(np.int16)


def load_inference_data(
    bins: list[str],
    metas: list[str],
    clip_bins: list[str],
    targets: list[str],
    *,
    dim: int = 256,
) -> PartData:
    """:func:`load_data` for whole-graph inference, in less memory; the same values reach the model.

    The CLIP embeddings stay on disk (a validated :class:`BinRows`, read per hallucination batch: N x 512 floats
    never held, 10.7 GB at part1-9's 5.21M faces) and the hallucination targets are int16.
    """
    f, labels = load_parts(bins, metas, dim)
    f = l2_normalize(f, where=", ".join(bins))
    counts = [read_meta(m).size for m in metas]
    i = BinRows(list(clip_bins), CLIP_DIM, counts)
    i.validate()
    srcs, tgts = [], []
    for tpath, n in zip(targets, counts, strict=True):
        with np.load(tpath) as z:
            if z["src"].shape[0] != n:
                raise DataError(tpath, f"{z['src'].shape[0]} target rows but its part has {n} labels")
            srcs.append(_small_ints(z["src"]))
            tgts.append(_small_ints(z["tgt"]))
    return PartData(f, i, labels, np.concatenate(srcs), np.concatenate(tgts))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# B: the space transfer, pretrained on the training part


def _reference_pairs(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every sample a random other sample of its identity (itself for singletons)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    start = np.searchsorted(sorted_labels, labels, side="left")
    size = np.searchsorted(sorted_labels, labels, side="right") - start
    pick = start + (rng.random(labels.size) * size).astype(np.int64)
    ref = order[np.minimum(pick, start + size - 1)]
    # avoid picking oneself where the identity has another photo: shift to the next member
    same = (ref == np.arange(labels.size)) & (size > 1)
    nxt = start + (pick - start + 1) % np.maximum(size, 1)
    ref[same] = order[nxt[same]]
    return ref


def pretrain_transfer(
    data: PartData,
    cfg: dict[str, Any],
    *,
    checkpoint_dir: str | Path,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
) -> tuple[SpaceTransfer, dict[str, Any]]:
    """Train B on same-identity pairs of the training part (paper 3.2); report held-out cosines.

    10% of the identities are held out; the report compares ``cos(f_r + B(i - i_r, f_r), f)`` with the baseline
    ``cos(f_r, f)`` on their pairs, so it shows what B learned beyond "a photo of the same person".
    """
    if threads:
        torch.set_num_threads(int(threads))
    rng = np.random.default_rng(seed)
    ids = np.unique(data.labels)
    held = rng.choice(ids, size=max(1, int(round(0.1 * ids.size))), replace=False)
    is_held = np.isin(data.labels, held)
    train_idx, held_idx = np.flatnonzero(~is_held), np.flatnonzero(is_held)
    f, i = torch.from_numpy(data.f), torch.from_numpy(data.i)
    batch = int(cfg["batch_size"])

    def batches(epoch: int):
        g = np.random.default_rng([seed, 17, epoch])
        ref = train_idx[_reference_pairs(data.labels[train_idx], g)]
        perm = g.permutation(train_idx.size)
        for s in range(0, perm.size, batch):
            sel = perm[s : s + batch]
            yield train_idx[sel], ref[sel]

    def step(model: SpaceTransfer, b: tuple[np.ndarray, np.ndarray]) -> dict[str, torch.Tensor]:
        a, r = (torch.from_numpy(x) for x in b)
        dev = next(model.parameters()).device
        return {"total": transfer_pretrain_loss(model, i[a].to(dev), f[a].to(dev), i[r].to(dev), f[r].to(dev))}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SpaceTransfer(CLIP_DIM, data.f.shape[1], int(cfg["hidden"]), int(cfg.get("gates", 0)))
    steps = -(-train_idx.size // batch)
    history = train(
        model,
        batches,
        step,
        epochs=int(cfg["epochs"]),
        lr=float(cfg["lr"]),
        optimizer="adamw",
        schedule="cosine",
        weight_decay=float(cfg["weight_decay"]),
        steps_per_epoch=steps,
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        device=device,
        log=log,
    )
    model.eval().cpu()
    ref = held_idx[_reference_pairs(data.labels[held_idx], np.random.default_rng([seed, 23]))]
    with torch.no_grad():
        a, r = torch.from_numpy(held_idx), torch.from_numpy(ref)
        pred = f[r] + model(i[a] - i[r], f[r])
        cos_b = torch.nn.functional.cosine_similarity(pred, f[a], dim=1).mean().item()
        cos_0 = torch.nn.functional.cosine_similarity(f[r], f[a], dim=1).mean().item()
    report = {
        "heldout_identities": int(held.size),
        "heldout_pairs": int(held_idx.size),
        "heldout_cos_with_B": round(cos_b, 5),
        "heldout_cos_reference_only": round(cos_0, 5),
        "final_train_loss": history[-1]["losses"]["total"] if history else None,
        "epochs": len(history),
    }
    log.info("B held-out cosine %.4f (reference alone %.4f)", cos_b, cos_0)
    return model, report


# ---------------------------------------------------------------------------------------------------------------
# the end-to-end model


def _subgraph_batch(
    sg: Subgraph, data: PartData, text: torch.Tensor, hallucinate: bool, density: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    nodes = sg.nodes
    rows, cols = np.nonzero(sg.nbrs >= 0)
    edge_index = np.stack([rows, sg.nbrs[rows, cols]]).astype(np.int64)
    batch = {
        "f": torch.from_numpy(data.f[nodes]),
        "edge_index": torch.from_numpy(edge_index),
        "edge_weight": torch.from_numpy(sg.sims[rows, cols].astype(np.float32)),
        "labels": torch.from_numpy(np.asarray(sg.labels, dtype=np.int64)),
    }
    if density is not None:  # the pair baseline's local densities, from the whole training part's graph
        batch["density"] = torch.from_numpy(density[nodes])
    if hallucinate:
        batch |= {
            "i": torch.from_numpy(data.i[nodes]),
            "src": torch.from_numpy(data.src[nodes]),
            "tgt": torch.from_numpy(data.tgt[nodes]),
            "text_emb": text,
        }
    return batch


def training_edges(sampler: SubgraphSampler, subgraphs: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The kNN edges of the first ``subgraphs`` training subgraphs of epoch 0 (seeded): ``(same, cos)``, flat.

    The edge classifier's output bias starts at their prior (:meth:`GCNEdgePredictor.set_prior`) and its cosine
    input is standardised with these cosines (:class:`clipcluster.training.pair_cosine.PairCosine`). The same
    subgraphs are sampled again in training; this only costs their kNN builds.
    """
    same, cos = [], []
    for j in range(min(subgraphs, sampler.subgraphs_per_epoch)):
        sg = sampler.subgraph(0, j)
        if sg is None:
            continue
        same.append(sg.pair_labels[sg.valid])
        cos.append(sg.sims[sg.valid])
    if not same:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32)
    return np.concatenate(same), np.concatenate(cos)


def fit_pair_baseline(
    model: CLIPClusterModel, labels: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, k: int
) -> np.ndarray:
    """Fit the model's pair baseline on the training part's own kNN graph (its first ``k`` columns, the inference
    k) and return every training face's local density, which the subgraph batches then read.

    The whole part's graph, not the subgraphs': a face's density depends on who its neighbours are, and at
    inference they come from the whole test subset.
    """
    base = model.edge.baseline
    assert base is not None
    nbrs, sims = np.asarray(nbrs)[:, :k], np.asarray(sims)[:, :k]
    if nbrs.shape[0] != labels.size:
        raise DataError("training kNN graph", f"{nbrs.shape[0]} rows but the training part has {labels.size} faces")
    density = local_density(nbrs, sims, base.k_local)
    fit = base.fit_graph(labels, nbrs, sims, density)
    log.info("pair baseline fit on the training part's %d kNN edges (k = %d): %s", fit["edges"], k, fit)
    return density


def train_model(
    data: PartData,
    text_emb: np.ndarray,
    transfer: SpaceTransfer | None,
    cfg: dict[str, Any],
    *,
    checkpoint_dir: str | Path,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
    train_graph: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[CLIPClusterModel, list[dict[str, Any]]]:
    """Train the full model (or an ablation given by ``cfg["model"]``) on STAR-FC subgraphs of the training part.

    ``train_graph``: the training part's kNN graph ``(nbrs, sims)``, which the pair baseline is fit on (``cfg``'s
    ``baseline_fit_k`` columns, default 50); without it an exact one is built here.
    """
    if threads:
        torch.set_num_threads(int(threads))
    mcfg = model_config({**cfg["model"], "seed": seed})
    model = CLIPClusterModel(mcfg, transfer if mcfg["hallucinate"] else None)
    density = None
    if model.edge.baseline is not None:  # a resumed run reloads its fit from the checkpoint
        fit_k = int(cfg.get("baseline_fit_k", 50))
        if train_graph is None:
            g = build_knn(data.f, min(fit_k, data.f.shape[0] - 1), index="exact", progress=False, threads=threads)
            train_graph = (g.nbrs, g.sims)
        density = fit_pair_baseline(model, data.labels, *train_graph, fit_k)
    if not model.edge.learned:  # the pair baseline alone: fit above, no sampler, nothing to train
        log.info("learned_correction=False: the model is the pair baseline; no training")
        model.eval().cpu()
        return model, []
    sampler = SubgraphSampler(data.f, data.labels, seed=seed, knn_threads=threads, **cfg["sampler"])
    text = torch.from_numpy(text_emb)
    same, cosines = training_edges(sampler)
    prior = positive_rate(same)
    if mcfg["prior_init"]:
        log.info("positive rate of the training subgraphs' kNN edges: %.4f (the edge classifier starts there)", prior)
        model.edge.set_prior(prior)  # a resumed run overwrites it with the checkpoint's weights
    if model.edge.pair_cos is not None and model.edge.pair_cos.standardised:
        model.edge.pair_cos.set_stats(cosines)

    def step(m: CLIPClusterModel, sg: Subgraph) -> dict[str, torch.Tensor]:
        dev = next(m.parameters()).device
        batch = _subgraph_batch(sg, data, text, mcfg["hallucinate"], density)
        batch = {k: v.to(dev) for k, v in batch.items()}
        out = m(batch)
        return {"total": out["loss"], "clip": out["loss_clip"], "id": out["loss_id"], "cross": out["loss_cross"]}

    tcfg = dict(cfg["train"])
    history = train(
        model,
        sampler.epoch,
        step,
        steps_per_epoch=sampler.subgraphs_per_epoch,
        checkpoint_dir=checkpoint_dir,
        history_path=Path(checkpoint_dir) / "history.jsonl",
        seed=seed,
        device=device,
        log=log,
        **tcfg,
    )
    model.eval().cpu()
    return model, history


def save_model(path: str | Path, model: CLIPClusterModel, extra: dict[str, Any] | None = None) -> None:
    """Weights plus the config needed to rebuild the model (and B, when it has one), written atomically."""
    from clipcluster.atomic import atomic_path

    state = {
        "config": model.config,
        "state_dict": model.state_dict(),
        "transfer_hidden": model.transfer.hidden if model.transfer is not None else None,
        "transfer_gates": model.transfer.gates if model.transfer is not None else 0,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_model(path: str | Path) -> CLIPClusterModel:
    """Rebuild a model written by :func:`save_model`."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    transfer = None
    if state["transfer_hidden"] is not None:
        cfg = state["config"]
        transfer = SpaceTransfer(
            cfg["clip_dim"], cfg["face_dim"], state["transfer_hidden"], state.get("transfer_gates", 0)
        )
    model = CLIPClusterModel(state["config"], transfer)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model


def save_transfer(path: str | Path, model: SpaceTransfer, report: dict[str, Any]) -> None:
    from clipcluster.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(
            {"hidden": model.hidden, "gates": model.gates, "state_dict": model.state_dict(), "report": report}, tmp
        )


def load_transfer(path: str | Path) -> SpaceTransfer:
    state = torch.load(path, map_location="cpu", weights_only=False)
    # the output layer's rows are the face dimension (256 on MS1M's features, 128 for dlib's)
    face_dim = int(state["state_dict"]["net.2.weight"].shape[0])
    model = SpaceTransfer(CLIP_DIM, face_dim, state["hidden"], state.get("gates", 0))
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------------------------
# inference


def part_edge_scores(
    model: CLIPClusterModel,
    data: PartData,
    text_emb: np.ndarray,
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    batch_size: int = 1024,
    threads: int | None = None,
    stats: dict[str, Any] | None = None,
) -> np.ndarray:
    """:func:`score_edges` on a loaded part (the CLIP inputs only where the model hallucinates): N x k scores.

    Consumes ``data.f`` (scratch for the scoring); it is an empty array afterwards.
    """
    hall = model.hallucinate_enabled
    probs = score_edges(
        model,
        data.f,
        data.i if hall else None,
        data.src if hall else None,
        data.tgt if hall else None,
        text_emb if hall else None,
        nbrs,
        sims=sims,
        batch_size=batch_size,
        threads=threads,
        stats=stats,
        consume_f=True,
    )
    # score_edges used f's memory as scratch: drop the stale array so what follows runs without it
    data.f = np.empty((0, data.f.shape[1]), dtype=np.float32)
    return probs


def infer(
    model: CLIPClusterModel,
    data: PartData,
    text_emb: np.ndarray,
    nbrs: np.ndarray,
    sims: np.ndarray,
    *,
    refine: str = "infomap",
    tau: float = 0.5,
    batch_size: int = 1024,
    seed: int = 0,
    threads: int | None = None,
    truth: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Whole-graph edge scores, prune at ``tau``, then Infomap (``refine="infomap"``) or CDP-style naive pruning.

    Returns labels and timings (``score_seconds``, ``refine_seconds``); the kNN build is not included. With the
    true ``truth`` labels, ``stats["edge_auc"]`` also says how the scores rank the kNN edges against the raw cosine
    (:func:`clipcluster.evaluation.edge_quality.edge_auc`, outside the timings; the labels do not depend on it).
    Consumes ``data.f``: its memory is scratch for the scoring (``score_edges(consume_f=True)``) and ``data.f`` is
    an empty array afterwards. ``data`` may come from :func:`load_inference_data` (CLIP rows read from disk).
    """
    stats: dict[str, Any] = {}
    t0 = time.perf_counter()
    probs = part_edge_scores(model, data, text_emb, nbrs, sims, batch_size=batch_size, threads=threads, stats=stats)
    t1 = time.perf_counter()
    if truth is not None:
        stats["edge_auc"] = edge_auc(nbrs, probs, sims, truth, seed=seed)
    t_refine = time.perf_counter()
    if refine == "infomap":
        labels = prune_and_refine(nbrs, probs, sims, tau=tau, seed=seed)
    elif refine == "naive":
        labels = naive_prune(nbrs, probs, tau=tau)
    else:
        raise DataError("clipcluster.refine", f"{refine!r} is not 'infomap' or 'naive'")
    t2 = time.perf_counter()
    stats |= {"score_seconds": t1 - t0, "refine_seconds": t2 - t_refine}
    return np.asarray(labels, dtype=np.int64), stats


def proxy_features(
    model: CLIPClusterModel, data: PartData, text_emb: np.ndarray, nbrs: np.ndarray, *, batch_size: int = 1024
) -> np.ndarray:
    """The fused proxy features v (N x 256) the edge predictor sees: what hallucination does to each face."""
    from clipcluster.clip_cluster.score import _fused_fhat_fn, knn_adjacency

    if not model.hallucinate_enabled:
        return data.f
    model.eval()
    with torch.inference_mode():
        f = torch.from_numpy(data.f)
        query = None
        if model.config["fusion"] == "cross":
            query = model.proxy.query(f, knn_adjacency(nbrs, None, self_loops=False))
        fhat_fn = _fused_fhat_fn(model, torch.from_numpy(text_emb))
        v = torch.empty_like(f)
        for s in range(0, f.shape[0], batch_size):
            e = min(f.shape[0], s + batch_size)
            fhat = fhat_fn(f[s:e], torch.from_numpy(data.i[s:e]), torch.from_numpy(data.src[s:e]),
                           torch.from_numpy(data.tgt[s:e]))  # fmt: skip
            v[s:e] = model.proxy(f[s:e], fhat, None if query is None else query[s:e])
    return v.numpy()


def attribute_pair_similarity(
    feats: dict[str, np.ndarray], labels: np.ndarray, attrs: pd.DataFrame, *, n_pairs: int = 200_000, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Cosines of sampled pairs per feature set: same identity with equal / different true attributes, and others.

    Returns ``{name: {"same_equal", "same_different", "other"}}`` arrays; the same pairs for every feature set.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    a = rng.integers(0, labels.size, n_pairs)
    start = np.searchsorted(labels[order], labels[a], side="left")
    size = np.searchsorted(labels[order], labels[a], side="right") - start
    b = order[start + (rng.random(n_pairs) * size).astype(np.int64)]
    keep = a != b
    a, b = a[keep], b[keep]
    eq = np.ones(a.size, dtype=bool)
    for col in ("true_age_group", "true_pose", "true_expression"):
        v = attrs[col].to_numpy()
        eq &= v[a] == v[b]
    c, d = rng.integers(0, labels.size, n_pairs), rng.integers(0, labels.size, n_pairs)
    other = labels[c] != labels[d]
    out = {}
    for name, x in feats.items():
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        same = np.einsum("ij,ij->i", x[a], x[b])
        out[name] = {
            "same_equal": same[eq],
            "same_different": same[~eq],
            "other": np.einsum("ij,ij->i", x[c[other]], x[d[other]]),
        }
    return out
