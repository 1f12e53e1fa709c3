"""CLIPClusterModel: hallucination -> proxy fusion -> GCN edge prediction, trained end to end (paper 3.5).

Built from a plain config dict (:data:`clipcluster.model_defaults.DEFAULT_CONFIG` lists every key and its
default); the pretrained space transfer B is passed in and frozen. ``hallucinate=False`` is the "no
hallucination" ablation: the same GCN edge predictor on the plain face features f.

A training batch is a subgraph (dict of tensors, local node ids 0..n-1):

``f`` (n x 256 float), ``i`` (n x 512 float), ``text_emb`` (P x 512, the prompt table's CLIP text embeddings),
``src``/``tgt`` (n x M int64 prompt rows, :func:`clipcluster.clip_cluster.targets.hallucination_targets`),
``edge_index`` (2 x E int64 kNN edges node -> neighbour, self excluded), optional ``edge_weight`` (E, used when
``edge_weighted``; the edges' cosines with ``pair_cosine`` / ``pair_baseline``), ``density`` (n, each node's local
density, :func:`clipcluster.training.pair_baseline.local_density`; with ``pair_baseline``), optional ``labels``
(n int64 identities; without them ``loss_cross`` and ``loss`` are omitted).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from clipcluster.clip_cluster import losses
from clipcluster.clip_cluster.modules import (
    GCNEdgePredictor,
    Hallucinator,
    ProxyGenerator,
    SpaceTransfer,
    adjacency,
)
from clipcluster.errors import DataError
from clipcluster.model_defaults import DEFAULT_CONFIG, model_config

__all__ = ["DEFAULT_CONFIG", "CLIPClusterModel", "model_config"]


class CLIPClusterModel(nn.Module):
    """The full CLIP-Cluster network; see the module docstring for the batch layout."""

    def __init__(self, config: dict[str, Any] | None, transfer: SpaceTransfer | None = None) -> None:
        super().__init__()
        cfg = model_config(config)
        self.config = cfg
        self.hallucinate_enabled = bool(cfg["hallucinate"])
        if self.hallucinate_enabled:
            if transfer is None:
                raise DataError("clip_cluster model", "hallucinate=True needs the pretrained space transfer B")
            if (transfer.clip_dim, transfer.face_dim) != (cfg["clip_dim"], cfg["face_dim"]):
                raise DataError(
                    "clip_cluster model",
                    f"B maps {transfer.clip_dim}->{transfer.face_dim}, config {cfg['clip_dim']}->{cfg['face_dim']}",
                )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg["seed"]))
            if self.hallucinate_enabled:
                self.hallucinator = Hallucinator(cfg["clip_dim"], cfg["hallucinator_hidden"], cfg["dropout"])
                self.proxy = ProxyGenerator(
                    cfg["face_dim"],
                    cfg["fusion"],
                    cfg["query_layers"],
                    cfg["decoder_depth"],
                    cfg["heads"],
                    cfg["mlp_hidden"],
                    cfg["dropout"],
                    bool(cfg["query_residual"]),
                )
            self.edge = GCNEdgePredictor(
                cfg["face_dim"],
                cfg["edge_hidden"],
                cfg["edge_layers"],
                cfg["edge_mlp_hidden"],
                pair=cfg["pair_features"],
                pair_dim=cfg["pair_dim"],
                pair_cosine=cfg["pair_cosine"],
                pair_cosine_standardise=bool(cfg["pair_cosine_standardise"]),
                pair_baseline=bool(cfg["pair_baseline"]),
                baseline_local_k=int(cfg["baseline_local_k"]),
                pair_attributes=bool(cfg["pair_attributes"]) and self.hallucinate_enabled,
                clip_dim=cfg["clip_dim"],
                pair_attr_dim=int(cfg["pair_attr_dim"]),
                learned=bool(cfg["learned_correction"]),
                centre=bool(cfg["centre_correction"]),
            )
        self.transfer = transfer
        if transfer is not None:
            transfer.requires_grad_(False)
            transfer.eval()

    def train(self, mode: bool = True) -> CLIPClusterModel:
        """As nn.Module.train, but B stays in eval mode (it is frozen)."""
        super().train(mode)
        if self.transfer is not None:
            self.transfer.eval()
        return self

    # building blocks, shared with score.py

    def hallucinate(
        self, f: torch.Tensor, i: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor, text_emb: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``dt``, ``t_tgt``, ``di`` (n x M x 512) and ``fhat`` (n x M x 256) of a batch of faces."""
        t_tgt = text_emb[tgt]
        dt = t_tgt - text_emb[src]
        di = self.hallucinator(dt, i[:, None, :])
        assert self.transfer is not None
        fhat = f[:, None, :] + self.transfer(di, f[:, None, :])
        return {"dt": dt, "t_tgt": t_tgt, "di": di, "fhat": fhat}

    def adjacencies(
        self, edge_index: torch.Tensor, n: int, edge_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(A_bar, D^-1(A+I))``: the zero-diagonal one only where the cross fusion needs it."""
        w = edge_weight if self.config["edge_weighted"] else None
        if self.config["edge_weighted"] and edge_weight is None:
            raise DataError("batch", "edge_weighted=True needs 'edge_weight'")
        need_bar = self.hallucinate_enabled and self.config["fusion"] == "cross"
        adj_bar = adjacency(edge_index, n, w, self_loops=False) if need_bar else None
        return adj_bar, adjacency(edge_index, n, w, self_loops=True)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms and edge logits of a subgraph.

        Returns ``loss_clip``, ``loss_id`` (zero tensors when ``hallucinate=False``), ``logits`` (E' x 2, class 1 =
        same identity), ``edge_index`` (2 x E', the scored edges: the input's minus self loops) and, when the batch
        has ``labels``, ``loss_cross`` and the total ``loss``.
        """
        f, edge_index = _get(batch, "f", 2), _get(batch, "edge_index", 2)
        n = f.shape[0]
        if f.shape[1] != self.config["face_dim"]:
            raise DataError("batch", f"f is {tuple(f.shape)}, expected n x {self.config['face_dim']}")
        adj_bar, adj_loop = self.adjacencies(edge_index, n, batch.get("edge_weight"))
        zero = f.new_zeros(())
        out: dict[str, torch.Tensor] = {"loss_clip": zero, "loss_id": zero}
        if self.hallucinate_enabled:
            i, src, tgt, text = _get(batch, "i", 2), _get(batch, "src", 2), _get(batch, "tgt", 2), batch["text_emb"]
            m = self.config["n_hallucinations"]
            if i.shape != (n, self.config["clip_dim"]) or src.shape != (n, m) or tgt.shape != (n, m):
                raise DataError(
                    "batch",
                    f"need i {n}x{self.config['clip_dim']}, src/tgt {n}x{m}; got {tuple(i.shape)}, "
                    f"{tuple(src.shape)}, {tuple(tgt.shape)}",
                )
            h = self.hallucinate(f, i, src, tgt, text)
            out["loss_clip"] = losses.clip_loss(h["dt"], h["di"], h["t_tgt"], i[:, None, :])
            out["loss_id"] = losses.id_loss(h["fhat"], f)
            query = self.proxy.query(f, adj_bar) if adj_bar is not None else None
            v = self.proxy(f, h["fhat"], query)
        else:
            v = f
        u, w = edge_index[0], edge_index[1]
        cos = batch.get("edge_weight")
        if (self.config["pair_cosine"] or self.config["pair_baseline"]) and cos is None:
            raise DataError("batch", "pair_cosine / pair_baseline need 'edge_weight' (the edges' cosines)")
        density = batch.get("density")
        if self.config["pair_baseline"] and density is None:
            raise DataError("batch", "pair_baseline=True needs 'density' (each node's local density)")
        keep = u != w
        if not bool(keep.all()):
            u, w = u[keep], w[keep]
            cos = None if cos is None else cos[keep]
        attr = None
        if self.edge.pair_attr is not None:
            attr = self.edge.pair_attr.node_terms(batch["text_emb"], _get(batch, "src", 2))
        out["logits"] = self.edge(v, adj_loop, u, w, cos, density, attr)
        out["edge_index"] = torch.stack([u, w])
        labels = batch.get("labels")
        if labels is not None:
            out["loss_cross"] = losses.cross_loss(out["logits"], losses.edge_targets(labels, u, w))
            out["loss"] = losses.total_loss(
                out["loss_clip"], out["loss_id"], out["loss_cross"], self.config["lambda_id"], self.config["mu_cross"]
            )
        return out


def _get(batch: dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    if key not in batch:
        raise DataError("batch", f"missing key {key!r}")
    x = batch[key]
    if x.ndim != ndim:
        raise DataError("batch", f"{key} has {x.ndim} dims, expected {ndim}")
    return x
