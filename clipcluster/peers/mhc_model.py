"""MHC's learned part: the transformer similarity model of Chen et al., ECCV 2022 (Sec. 4.1, Sec. 5.1).

Seed: ``mhc-on-mitigating-hard-clusters-eccv2022.md``. For an anchor i with K nearest neighbours the token
sequence ``[x_i, x_i1, ..., x_iK]`` goes through a feature encoder F (one pre-LN transformer encoder layer: input
256, feed-forward 2048, 8 heads, dropout 0.2; Sec. 5.1), giving ``t_i, t_i1, ..., t_iK``; an MLP
(512 -> 256 -> 128 -> 1, ReLU, Sigmoid) on ``[t_i, t_ij]`` gives ``p_ij``, the probability that i and its j-th
neighbour share an identity, trained with binary cross entropy (Eq. 1). Those predicted similarities replace
cosine in the transition matrix; the rest of MHC (NDDe, TPDi, DPC) is
:func:`clipcluster.peers.mhc_cluster.mhc_cluster`.

Decisions where the paper is silent (config keys marked "ours" in :data:`DEFAULT_CONFIG`):

- Eq. 1 sums the BCE over all pairs; we average over the valid (anchor, neighbour) pairs of a batch (a constant
  rescaling of the learning rate for full K lists);
- a final LayerNorm closes the pre-LN encoder (Xiong et al., whom the paper cites for pre-LN, end the pre-LN
  stack with one; without it the pre-LN output is an un-normalised residual sum);
- attention head width ``256 / 8 = 32`` (the standard split of the model width over the heads);
- missing neighbours (``-1``) are masked out of the keys and their predictions set to 0;
- learning rate, batch size and epochs are not given (Adam is, Sec. 5.1): ours below.

Three departures that make the model learn a similarity that holds on unseen identities (``docs/edge_quality.md``
has the measurements; each is a config key, the paper's reading one switch away):

- ``scale_input``: the tokens enter the encoder multiplied by ``sqrt(feat_dim)``. Face features are unit vectors
  (coordinates ~ 1/16 at 256-d), while a pre-LN layer adds sub-layer outputs of unit scale per coordinate to its
  residual stream, so unscaled the token's own feature is a small part of ``t`` and the MLP compares the
  neighbourhood context, the same for every token of an anchor. Transformers scale their input embeddings so
  (Vaswani et al. 2017, Sec. 3.4). Measured: part1 edge AUC 0.918 -> 0.951 at K = 80.
- ``pair_features="product"``: the MLP reads ``[t_i * t_ij, |t_i - t_ij|]`` (the same 512 inputs) instead of
  ``[t_i, t_ij]``. On a concatenation the first layer is additive in the two ends, ``W_a t_i + W_b t_ij``, so a
  similarity has to be pieced together from regions of the training identities; it does not carry over to new ones.
- ``pair_cosine``: the pair's input cosine ``x_i . x_ij`` enters the first layer too.
- The output unit starts at the training edges' class prior (:mod:`clipcluster.training.edge_prior`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clipcluster.errors import DataError
from clipcluster.peers.facet_model import PAIR_FEATURES, EncoderLayer
from clipcluster.training.edge_prior import init_prior
from clipcluster.training.pair_baseline import PairBaseline
from clipcluster.training.pair_cosine import PairCosine

__all__ = ["DEFAULT_CONFIG", "MhcSimilarityModel", "mhc_config", "mhc_loss"]

DEFAULT_CONFIG: dict[str, Any] = {
    "feat_dim": 256,  # paper Sec. 5.1: input feature dimension 256
    "ffn_dim": 2048,  # paper: feed-forward dimension 2048
    "heads": 8,  # paper: 8 heads
    "layers": 1,  # paper: one transformer encoder layer
    "dropout": 0.2,  # paper: dropout 0.2
    "mlp": [512, 256, 128],  # paper: MLP 512 -> 256 -> 128 -> 1 (first entry is 2 * feat_dim, the input)
    "k": 80,  # paper: K = 80 neighbours on MS1M
    # ours: what the MLP reads of an (anchor, neighbour) pair: "product" = [t_i * t_ij, |t_i - t_ij|] (a learned
    # similarity that carries over to unseen identities), "concat" = [t_i, t_ij], the paper's (see the note)
    "pair_features": "product",
    "pair_cosine": True,  # ours: the pair's input cosine x_i . x_ij is one more input of the MLP's first layer
    "pair_cosine_standardise": False,  # ours: that cosine z-scored on the training edges (training.pair_cosine)
    # ours: the logit = a logistic baseline on the pair's cosine and local densities (fit on the training edges,
    # frozen) + the MLP's learned correction (clipcluster.training.pair_baseline)
    "pair_baseline": True,
    "baseline_local_k": 10,
    "scale_input": True,  # ours: tokens enter at sqrt(feat_dim) x their unit norm (see the module note)
    "prior_init": True,  # ours: the output starts at the training edges' class prior (clipcluster.training.edge_prior)
    # clustering (clipcluster.peers.mhc_cluster)
    "tau": 0.7,  # paper: DPC connecting threshold
    "eps": 0.05,  # paper: NDDe convergence threshold
    # training (clipcluster.peers.pipeline.train_mhc)
    "optimizer": "adamw",  # paper: Adam; AdamW with weight_decay 0 is Adam
    "weight_decay": 0.0,  # ours: none given
    "lr": 1e-4,  # ours: not given
    "epochs": 10,  # ours: not given
    "batch_size": 32,  # ours: anchors per step, not given
    "warmup_steps": 0,  # ours: not given (0: none); cosine decay after it (ours)
    "nodes_per_epoch": None,  # ours: anchors drawn per epoch (None: every training node once)
    "knn_index": "auto",  # ours: clipcluster.graph.knn back end for the training part's graph
    "infer_batch": 256,  # ours: anchors per inference batch (memory only)
    "seed": 0,  # parameter initialisation
}


def mhc_config(config: dict[str, Any] | None = None, *, where: str = "mhc config") -> dict[str, Any]:
    """:data:`DEFAULT_CONFIG` updated with ``config``; unknown keys or bad values raise a one-line DataError."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise DataError(where, f"unknown key(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    out = {**DEFAULT_CONFIG, **config}
    out["mlp"] = [int(x) for x in out["mlp"]]
    for key in (
        "feat_dim",
        "ffn_dim",
        "heads",
        "layers",
        "k",
        "epochs",
        "batch_size",
        "infer_batch",
        "baseline_local_k",
    ):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
            raise DataError(where, f"{key} must be an integer >= 1, got {out[key]!r}")
    if out["feat_dim"] % out["heads"]:
        raise DataError(where, f"feat_dim {out['feat_dim']} is not divisible by heads {out['heads']}")
    if not out["mlp"] or out["mlp"][0] != 2 * out["feat_dim"] or min(out["mlp"]) < 1:
        raise DataError(where, f"mlp must start at 2 * feat_dim = {2 * out['feat_dim']}, got {out['mlp']}")
    if not isinstance(out["pair_baseline"], bool):
        raise DataError(where, f"pair_baseline must be true or false, got {out['pair_baseline']!r}")
    if out["pair_features"] not in PAIR_FEATURES:
        raise DataError(where, f"pair_features must be one of {PAIR_FEATURES}, got {out['pair_features']!r}")
    if not 0.0 <= float(out["dropout"]) < 1.0:
        raise DataError(where, f"dropout must be in [0, 1), got {out['dropout']!r}")
    if not (math.isfinite(float(out["lr"])) and float(out["lr"]) > 0):
        raise DataError(where, f"lr must be a positive number, got {out['lr']!r}")
    if out["nodes_per_epoch"] is not None and int(out["nodes_per_epoch"]) < 1:
        raise DataError(where, f"nodes_per_epoch must be >= 1 or None, got {out['nodes_per_epoch']!r}")
    return out


class MhcSimilarityModel(nn.Module):
    """F (pre-LN transformer encoder) + MLP over ``[t_i, t_ij]`` (MHC Sec. 4.1); see the module docstring.

    ``forward(anchor, nbr_feats, mask)``: ``anchor`` B x d, ``nbr_feats`` B x K x d, ``mask`` B x K (True = real
    neighbour); returns B x K logits (``sigmoid`` gives ``p_ij``).
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = mhc_config(config)
        self.config = cfg
        d, h = cfg["feat_dim"], cfg["heads"]
        self.input_scale = math.sqrt(d) if cfg["scale_input"] else 1.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg["seed"]))
            self.layers = nn.ModuleList(
                EncoderLayer(d, h, d // h, cfg["ffn_dim"], cfg["dropout"], norm_first=True)
                for _ in range(cfg["layers"])
            )
            self.norm = nn.LayerNorm(d)
            dims = [*cfg["mlp"], 1]
            mlp: list[nn.Module] = []
            for a, b in zip(dims[:-1], dims[1:], strict=True):
                mlp += [nn.Linear(a, b), nn.ReLU()]
            self.mlp = nn.Sequential(*mlp[:-1])  # no ReLU after the last layer: the Sigmoid is in the loss
            self.pair_cos = PairCosine(dims[1], cfg["pair_cosine_standardise"]) if cfg["pair_cosine"] else None
        self.baseline = PairBaseline(int(cfg["baseline_local_k"])) if cfg["pair_baseline"] else None

    def forward(self, anchor: torch.Tensor, nbr_feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([anchor[:, None, :], nbr_feats], dim=1)  # x~_i = [x_i, x_i1, ..., x_iK]
        x = x * self.input_scale
        full = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for layer in self.layers:
            x = layer(x, full)
        t = self.norm(x)
        t_i, t_nbr = t[:, :1, :].expand(-1, t.shape[1] - 1, -1), t[:, 1:, :]
        if self.config["pair_features"] == "concat":
            pair = torch.cat([t_i, t_nbr], dim=-1)  # the paper's [t_i, t_ij]
        else:
            pair = torch.cat([t_i * t_nbr, (t_i - t_nbr).abs()], dim=-1)  # ours, same width (see the module note)
        h = self.mlp[0](pair)
        if self.pair_cos is not None:
            h = h + self.pair_cos((anchor[:, None, :] * nbr_feats).sum(-1))
        return self.mlp[1:](h)[..., 0]  # p_ij = MLP(pair) before the Sigmoid

    def set_prior(self, positive_rate: float) -> None:
        """Start the MLP at the training edges' class prior (:mod:`clipcluster.training.edge_prior`); with the pair
        baseline, which carries the prior, at even odds on top of it."""
        init_prior(self.mlp[-1], 0.5 if self.baseline is not None else positive_rate)

    def score(
        self, feats: torch.Tensor, nbrs: torch.Tensor, anchors: torch.Tensor, density: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B x K) and mask for ``anchors`` of a graph: ``feats`` N x d, ``nbrs`` N x k' (k' >= K);
        ``density`` (N): the nodes' local densities, needed with ``pair_baseline``."""
        idx = nbrs[anchors, : self.config["k"]]
        mask = idx >= 0
        logits = self(feats[anchors], feats[idx.clamp_min(0)], mask)
        if self.baseline is not None:
            logits = self.baseline.add_to(logits, feats, anchors, idx, density)
        return logits, mask


def mhc_loss(logits: torch.Tensor, mask: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Eq. 1's binary cross entropy of ``sigmoid(logits)`` against ``same``, mean over the valid pairs."""
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[mask], same[mask].to(logits.dtype))
