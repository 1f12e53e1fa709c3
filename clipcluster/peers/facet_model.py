"""FaceT's learned part: Relation Encoder + Linkage Predictor (Ye et al., "Learning to Cluster Faces via Transformer").

Seed: ``facet-learning-to-cluster-faces-via-transformer.md``. For every query face q the model outputs the
probability that q and each of its ``hop1`` nearest neighbours share an identity (Sec. 3.1); clustering those
probabilities is :func:`clipcluster.peers.facet_cluster.facet_cluster` (threshold + union-find).

* Multi-head attention (Sec. 3.2, Eqs. 1-3): ``h`` heads of width ``head_dim`` projected from and back to the
  feature width ``d`` by ``W^O`` (Eq. 2), scaled softmax. Missing neighbours (``-1`` in the kNN lists) are masked
  out of the keys; a query with no valid key gets a zero attention output.
* Relation Encoder, RE (Sec. 3.3, Eqs. 4-6): ``depth`` (d_e) self-attention layers over the node's ``hop2``
  neighbours (Eq. 4, each followed by dropout, residual and LayerNorm, and a feed-forward sub-layer: "a residual
  connection around each of the two sub-layers"), then one plain attention layer with the node's own raw feature
  as the query (Eq. 5) and add & norm, ``g_q = LN(f~_q + f_q)`` (Eq. 6).
* Linkage Predictor, LP (Sec. 3.4, Eqs. 7-9): ``depth`` self-attention layers over the RE-enhanced features of
  the query's ``hop1`` candidates (Eq. 7), edge embedding ``cat(g_q, g_{q,k})`` (Eq. 8), a 2-layer MLP with PReLU
  and a softmax over {different, same} (Eq. 9); ``p_{q,k}`` is the "same" probability.
* Loss: the two-class cross entropy of every (query, candidate) pair against "same identity", averaged over
  the valid pairs (the paper names no loss; Eq. 9's softmax over a positive/negative edge makes it CE).

The RE output of a node does not depend on which query it is a candidate of, so the whole graph is enhanced
once (N x d) and LP runs in query batches: memory O(N d + batch * hop1 * d), no loop over nodes.

Decisions where the paper is silent or ambiguous (the config keys marked "ours" in :data:`DEFAULT_CONFIG`):

- the node itself is a token of its own context (RE) and of its candidate set (LP), ``include_self`` (ours,
  default on): FaceT uses the kNN lists released with GCN-D/GCN-V+E (Sec. 4.1), whose rank 0 is the sample itself,
  so "the hop2 / hop1 nearest neighbours of f_q from F" contain f_q. Our kNN lists exclude self
  (:mod:`clipcluster.graph.knn`), so the node is prepended: ``hop2`` / ``hop1`` others plus the node. Without it LP's
  candidates never attend to the query and only the pair MLP compares the two; the self pair is never a
  prediction;
- Eq. 8 writes ``cat(g_k, g^{e_d}_{q,k})``; the text says "concatenate g_q and g^l_{q,k}", so the query's RE
  feature ``g_q`` is concatenated with the candidate's LP output;
- with ``include_self`` off, LP's self-attention runs over the hop1 candidates only, Eq. 7's "K, V denotes
  all hop1 neighbours' key vectors and value vectors" read with lists that exclude the query;
- self-attention layers are post-LN transformer encoder layers (Eq. 4's ``N_L(d(M(.)) + f)``) with a
  feed-forward sub-layer of width ``ffn_dim`` (ReLU; width not given: 4 d as in Vaswani et al.);
- the MLP's hidden width is not given: ``mlp_hidden = 256`` (ours);
- Eq. 6 applies no dropout; none is applied there.

Departures that make LP learn a linkage that holds on unseen identities (``docs/edge_quality.md``):

- ``pair_features="product"`` (default): the MLP reads ``[g_q * g_c, |g_q - g_c|]`` (the same 2 d inputs) instead
  of Eq. 8's ``cat(g_q, g_c)``. On a concatenation the MLP's first layer is additive in the two ends, so a
  similarity has to be pieced together from regions of the training identities: on the twin's 200 training
  identities it ranked part1's kNN edges below the raw cosine (ROC AUC 0.80 vs 0.93), with products 0.97.
  ``"concat"`` is the paper's reading.
- the MLP's output starts at the training edges' class prior (:mod:`clipcluster.training.edge_prior`).
- ``pair_cosine`` (off by default; on in ``config/faces-demo.yaml``, standardised): the pair's input cosine
  ``f_q . f_c`` is one more input of the MLP's first layer (:mod:`clipcluster.training.pair_cosine`). LP's inputs are
  LayerNormed, which hides how close two faces are when every kNN edge sits in a narrow cosine range (dlib's
  descriptors: 0.88-0.99); there it ranked edges at ROC AUC 0.93 against the cosine's 1.00 without it. On the
  twin it lowered FaceT's part1 AUC (0.928 standardised against 0.950 without).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clipcluster.errors import DataError
from clipcluster.training.edge_prior import init_prior
from clipcluster.training.pair_baseline import PairBaseline
from clipcluster.training.pair_cosine import PairCosine

__all__ = [
    "DEFAULT_CONFIG",
    "EncoderLayer",
    "FaceTModel",
    "LinkagePredictor",
    "MultiHeadAttention",
    "RelationEncoder",
    "facet_config",
    "facet_loss",
]

# Model keys (used by the modules) and training keys (used by clipcluster.peers.pipeline), one flat dict.
DEFAULT_CONFIG: dict[str, Any] = {
    "feat_dim": 256,  # paper Sec. 4.1: feature dimension 256 (ArcFace MS1M)
    "depth": 2,  # paper: d_e = 2 for both RE and LP
    "heads": 4,  # paper: 4 attention heads
    "head_dim": 64,  # paper: attention head dimension 64
    "dropout": 0.4,  # paper: dropout 0.4
    "ffn_dim": 1024,  # ours: feed-forward width of the self-attention layers (4 d, Vaswani et al.)
    "mlp_hidden": 256,  # ours: hidden width of LP's 2-layer MLP (Eq. 9)
    "hop1": 150,  # paper (MS1M): linkage candidates per query
    "hop2": 5,  # paper (MS1M): context neighbours per node for RE
    "include_self": True,  # ours: the node is a token of its RE context and LP candidate set (see the module note)
    # ours: what LP's MLP reads of a (query, candidate) pair: "product" = [g_q * g_c, |g_q - g_c|] (a learned
    # similarity that carries over to unseen identities), "concat" = cat(g_q, g_c), the paper's Eq. 8 (see the note)
    "pair_features": "product",
    "prior_init": True,  # ours: the output starts at the training edges' class prior (clipcluster.training.edge_prior)
    # ours: the pair's input cosine f_q . f_c is one more input of LP's MLP, as CLIP-Cluster's and MHC's
    # classifiers read it (clipcluster.training.pair_cosine); off by default: on the twin it did not help FaceT
    "pair_cosine": False,
    "pair_cosine_standardise": False,  # ours: that cosine z-scored on the training edges
    # ours: LP's "link" logit = a logistic baseline on the pair's cosine and local densities (fit on the training
    # edges, frozen) + LP's learned correction (clipcluster.training.pair_baseline)
    "pair_baseline": True,
    "baseline_local_k": 10,
    # training (clipcluster.peers.pipeline.train_facet)
    "epochs": 60,  # paper (MS1M)
    "lr": 0.002,  # paper (MS1M): base learning rate
    "batch_size": 32,  # paper: batch size (query nodes per step)
    "weight_decay": 5e-4,  # paper
    "warmup_steps": 500,  # paper: linear warm-up for 500 steps, then cosine decay
    "optimizer": "adamw",  # ours: the paper names no optimiser
    "nodes_per_epoch": None,  # ours: queries drawn per epoch (None: every training node once, as an epoch is)
    "knn_index": "auto",  # ours: clipcluster.graph.knn back end for the training part's graph
    # inference
    "tau": 0.5,  # ours: FaceT's link threshold (not given; the two-class decision boundary, see facet_cluster)
    "infer_batch": 256,  # ours: queries per inference batch (memory only; results do not depend on it)
    "seed": 0,  # parameter initialisation
}

PAIR_FEATURES = ("product", "concat")
_POSITIVE_INT = ("feat_dim", "depth", "heads", "head_dim", "ffn_dim", "mlp_hidden", "hop1", "hop2", "epochs")
_POSITIVE_INT += ("batch_size", "infer_batch", "baseline_local_k")


def facet_config(config: dict[str, Any] | None = None, *, where: str = "facet config") -> dict[str, Any]:
    """:data:`DEFAULT_CONFIG` updated with ``config``; unknown keys or bad values raise a one-line DataError."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise DataError(where, f"unknown key(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    out = {**DEFAULT_CONFIG, **config}
    for key in _POSITIVE_INT:
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
            raise DataError(where, f"{key} must be an integer >= 1, got {out[key]!r}")
    if not 0.0 <= float(out["dropout"]) < 1.0:
        raise DataError(where, f"dropout must be in [0, 1), got {out['dropout']!r}")
    if out["pair_features"] not in PAIR_FEATURES:
        raise DataError(where, f"pair_features must be one of {PAIR_FEATURES}, got {out['pair_features']!r}")
    if not isinstance(out["prior_init"], bool):
        raise DataError(where, f"prior_init must be true or false, got {out['prior_init']!r}")
    for key in ("pair_cosine", "pair_cosine_standardise", "pair_baseline"):
        if not isinstance(out[key], bool):
            raise DataError(where, f"{key} must be true or false, got {out[key]!r}")
    if not isinstance(out["include_self"], bool):
        raise DataError(where, f"include_self must be true or false, got {out['include_self']!r}")
    if out["nodes_per_epoch"] is not None and int(out["nodes_per_epoch"]) < 1:
        raise DataError(where, f"nodes_per_epoch must be >= 1 or None, got {out['nodes_per_epoch']!r}")
    if not (math.isfinite(float(out["lr"])) and float(out["lr"]) > 0):
        raise DataError(where, f"lr must be a positive number, got {out['lr']!r}")
    if int(out["warmup_steps"]) < 0:
        raise DataError(where, f"warmup_steps must be >= 0, got {out['warmup_steps']!r}")
    return out


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with a key mask (FaceT Sec. 3.2, Eqs. 1-3).

    Why our own and not ``nn.MultiheadAttention``: a query whose keys are all missing must give a defined (zero)
    output rather than NaN, and the width of the heads (``heads * head_dim``) need not equal the model width.

    ``forward(q, kv, mask)``: ``q`` B x Lq x d, ``kv`` B x Lk x d, ``mask`` B x Lk bool (True = a real key) or
    None; returns B x Lq x d.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.head_dim = int(heads), int(head_dim)
        inner = self.heads * self.head_dim
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.out = nn.Linear(inner, dim)  # W^O (Eq. 2)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, lq, _ = q.shape
        lk = kv.shape[1]
        h, hd = self.heads, self.head_dim
        qh = self.q(q).view(b, lq, h, hd).transpose(1, 2)  # B h Lq hd
        kh = self.k(kv).view(b, lk, h, hd).transpose(1, 2)
        vh = self.v(kv).view(b, lk, h, hd).transpose(1, 2)
        logits = qh @ kh.transpose(-1, -2) / math.sqrt(hd)  # B h Lq Lk
        if mask is not None:
            any_key = mask.any(dim=-1)  # B
            safe = mask | ~any_key[:, None]  # a row without any valid key: softmax over all, then zeroed
            logits = logits.masked_fill(~safe[:, None, None, :], float("-inf"))
            weights = torch.softmax(logits, dim=-1) * any_key[:, None, None, None].to(logits.dtype)
        else:
            weights = torch.softmax(logits, dim=-1)
        out = self.attn_drop(weights) @ vh  # B h Lq hd
        return self.out(out.transpose(1, 2).reshape(b, lq, h * hd))


class EncoderLayer(nn.Module):
    """A transformer encoder layer: self-attention and feed-forward sub-layers, each with dropout and residual.

    ``norm_first=False`` (post-LN, FaceT Eq. 4: ``N_L(d(M(x)) + x)``); ``norm_first=True`` (pre-LN, MHC Sec. 5.1:
    "LayerNorm is applied before Multi-head Attention module and Feed Forward module", Xiong et al.).
    ``forward(x, mask)``: B x L x d, mask B x L (True = real token) or None; masked tokens' outputs are computed
    but never attended to.
    """

    def __init__(
        self, dim: int, heads: int, head_dim: int, ffn_dim: int, dropout: float, *, norm_first: bool = False
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(dim, heads, head_dim, dropout)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            y = self.norm1(x)
            x = x + self.drop1(self.attn(y, y, mask))
            return x + self.drop2(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop1(self.attn(x, x, mask)))
        return self.norm2(x + self.drop2(self.ffn(x)))


class RelationEncoder(nn.Module):
    """FaceT's Relation Encoder (Sec. 3.3, Eqs. 4-6): a node's feature enhanced by its hop2 neighbours' context.

    ``forward(f, ctx, mask)``: ``f`` B x d (the nodes), ``ctx`` B x L x d (their context's raw features: the hop2
    neighbours, after the node itself with ``include_self``), ``mask`` B x L (True = real token); returns B x d.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        d = cfg["feat_dim"]
        self.layers = nn.ModuleList(
            EncoderLayer(d, cfg["heads"], cfg["head_dim"], cfg["ffn_dim"], cfg["dropout"]) for _ in range(cfg["depth"])
        )
        self.attn = MultiHeadAttention(d, cfg["heads"], cfg["head_dim"], cfg["dropout"])  # Eq. 5
        self.norm = nn.LayerNorm(d)  # Eq. 6

    def forward(self, f: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:  # Eq. 4
            ctx = layer(ctx, mask)
        f_tilde = self.attn(f[:, None, :], ctx, mask)[:, 0]  # Eq. 5
        return self.norm(f_tilde + f)  # Eq. 6


class LinkagePredictor(nn.Module):
    """FaceT's Linkage Predictor (Sec. 3.4, Eqs. 7-9): link logits between a query and its hop1 candidates.

    ``forward(g_q, g_c, mask, query_token)``: ``g_q`` B x d (queries' RE features), ``g_c`` B x hop1 x d
    (candidates' RE features), ``mask`` B x hop1; ``query_token``: the query is a token of the self-attention
    (``include_self``); returns B x hop1 x 2 logits over {different, same} (softmax: Eq. 9's omega).
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        d = cfg["feat_dim"]
        self.layers = nn.ModuleList(
            EncoderLayer(d, cfg["heads"], cfg["head_dim"], cfg["ffn_dim"], cfg["dropout"]) for _ in range(cfg["depth"])
        )
        self.pair = cfg["pair_features"]
        self.mlp = nn.Sequential(nn.Linear(2 * d, cfg["mlp_hidden"]), nn.PReLU(), nn.Linear(cfg["mlp_hidden"], 2))
        self.pair_cos = PairCosine(cfg["mlp_hidden"], cfg["pair_cosine_standardise"]) if cfg["pair_cosine"] else None

    def forward(
        self,
        g_q: torch.Tensor,
        g_c: torch.Tensor,
        mask: torch.Tensor,
        query_token: bool = False,
        cos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x, m = g_c, mask
        if query_token:
            x = torch.cat([g_q[:, None, :], g_c], dim=1)
            m = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for layer in self.layers:  # Eq. 7
            x = layer(x, m)
        g_c = x[:, 1:] if query_token else x
        g_q = g_q[:, None, :].expand_as(g_c)
        if self.pair == "concat":
            edge = torch.cat([g_q, g_c], dim=-1)  # Eq. 8
        else:
            edge = torch.cat([g_q * g_c, (g_q - g_c).abs()], dim=-1)  # ours, same width (see the module note)
        h = self.mlp[0](edge)
        if self.pair_cos is not None:
            if cos is None:
                raise DataError("FaceT linkage predictor", "pair_cosine=True needs the pairs' input cosines")
            h = h + self.pair_cos(cos)
        return self.mlp[2](self.mlp[1](h))  # Eq. 9 before the softmax

    def set_prior(self, positive_rate: float) -> None:
        """Start the MLP at the training edges' class prior (:mod:`clipcluster.training.edge_prior`)."""
        init_prior(self.mlp[-1], positive_rate)


class FaceTModel(nn.Module):
    """FaceT: RE on every node involved, LP on the queries; built from a :func:`facet_config` dict."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = facet_config(config)
        self.config = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg["seed"]))
            self.encoder = RelationEncoder(cfg)
            self.predictor = LinkagePredictor(cfg)
        self.baseline = PairBaseline(int(cfg["baseline_local_k"])) if cfg["pair_baseline"] else None

    def set_prior(self, positive_rate: float) -> None:
        """Start LP at the training edges' class prior (:mod:`clipcluster.training.edge_prior`); with the pair
        baseline, which carries the prior, at even odds on top of it."""
        self.predictor.set_prior(0.5 if self.baseline is not None else positive_rate)

    def encode(self, feats: torch.Tensor, nbrs: torch.Tensor, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """RE features of ``nodes`` (all rows when None): ``feats`` N x d, ``nbrs`` N x k (k >= hop2, -1 missing)."""
        hop2 = self.config["hop2"]
        idx = nbrs[:, :hop2] if nodes is None else nbrs[nodes, :hop2]
        own = feats if nodes is None else feats[nodes]
        mask = idx >= 0
        ctx = feats[idx.clamp_min(0)]
        if self.config["include_self"]:  # the node is its own nearest neighbour (see the module note)
            ctx = torch.cat([own[:, None, :], ctx], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        return self.encoder(own, ctx, mask)

    def link_logits(
        self,
        g: torch.Tensor,
        nbrs: torch.Tensor,
        queries: torch.Tensor,
        pos: torch.Tensor | None = None,
        feats: torch.Tensor | None = None,
        density: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LP logits (B x hop1 x 2) and mask (B x hop1) for ``queries`` given RE features ``g``.

        ``g`` holds RE features of the graph's nodes, row ``pos[i]`` for node i (``pos=None``: row i); ``feats``
        (N x d, the raw features) gives the pairs' input cosines, needed with ``pair_cosine`` and ``pair_baseline``;
        ``density`` (N) the nodes' local densities, needed with ``pair_baseline``.
        """
        cand = nbrs[queries, : self.config["hop1"]]
        mask = cand >= 0
        cand = cand.clamp_min(0)
        cos = None
        if self.config["pair_cosine"]:
            if feats is None:
                raise DataError("FaceT", "pair_cosine=True needs the raw features for the pairs' cosines")
            cos = (feats[queries][:, None, :] * feats[cand]).sum(-1)
        if self.baseline is not None and feats is None:
            raise DataError("FaceT", "pair_baseline=True needs the raw features for the pairs' cosines")
        raw_cand = cand
        if pos is not None:
            cand, q_rows = pos[cand], pos[queries]
        else:
            q_rows = queries
        logits = self.predictor(g[q_rows], g[cand], mask, self.config["include_self"], cos)
        if self.baseline is not None:
            assert feats is not None
            logits = self.baseline.add_to(logits, feats, queries, raw_cand, density)
        return logits, mask

    def forward(
        self, feats: torch.Tensor, nbrs: torch.Tensor, queries: torch.Tensor, density: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: logits B x hop1 x 2 and mask for ``queries`` of a graph (RE only on the nodes needed)."""
        hop1 = self.config["hop1"]
        cand = nbrs[queries, :hop1]
        needed = torch.unique(torch.cat([queries, cand[cand >= 0]]))
        pos = torch.full((feats.shape[0],), -1, dtype=torch.long, device=feats.device)
        pos[needed] = torch.arange(needed.shape[0], device=feats.device)
        g = self.encode(feats, nbrs, needed)
        return self.link_logits(g, nbrs, queries, pos, feats, density)


def facet_loss(logits: torch.Tensor, mask: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Two-class cross entropy of the link logits against "same identity", mean over the valid pairs.

    ``logits`` B x hop1 x 2, ``mask`` B x hop1 bool (real candidates), ``same`` B x hop1 bool.
    """
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask], same[mask].long())
