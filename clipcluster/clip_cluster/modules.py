"""The networks of CLIP-Cluster (paper 3.2-3.4), in plain torch.

* :class:`SpaceTransfer` B: CLIP offset + reference face feature -> face-space offset (pretrained, then frozen).
* :class:`Hallucinator` M_theta: text offset ``dt`` + CLIP image embedding ``i`` -> image offset ``di``.
* :class:`ProxyGenerator`: fuses ``[f, fhat_1..fhat_M]`` into one proxy per face (``average`` / ``self`` /
  ``cross``, Table 1); ``cross`` queries with a neighbour GCN over the kNN graph.
* :class:`GCNEdgePredictor`: ``V_{l+1} = ReLU([V_l, D^-1(A+I) V_l] W_l)`` then an MLP on node pairs.

Graphs are sparse CSR tensors from :func:`adjacency` (no dense N x N anywhere), so the same modules run on a
training subgraph and on a whole 584K-node test graph.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from clipcluster.errors import DataError
from clipcluster.model_defaults import FUSIONS, PAIR_FEATURES
from clipcluster.training.edge_prior import init_prior
from clipcluster.training.pair_baseline import PairBaseline, add_same_logit
from clipcluster.training.pair_cosine import PairCosine

__all__ = [
    "FUSIONS",
    "GCNEdgePredictor",
    "Hallucinator",
    "NeighbourGCN",
    "PAIR_FEATURES",
    "ProxyGenerator",
    "SingleQueryAttention",
    "SpaceTransfer",
    "adjacency",
    "csr",
    "mlp2",
]


def mlp2(n_in: int, hidden: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear-ReLU-(Dropout)-Linear; the inference fast path in ``score.py`` relies on exactly this layout."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))


def adjacency(
    edge_index: torch.Tensor,
    n: int,
    weight: torch.Tensor | None = None,
    *,
    self_loops: bool,
) -> torch.Tensor:
    """Row-normalised sparse CSR adjacency ``D^-1 A`` (``self_loops``: ``D^-1 (A + I)``) of a directed edge list.

    ``edge_index`` is 2 x E (row 0 = the node that aggregates, row 1 = its neighbour). Self loops in the input are
    dropped first, so the plain version has a zero diagonal (paper eq. 5) and the other adds exactly one unit loop
    (eq. 7). ``weight`` (E, default ones) is clamped at 0; rows without weight stay zero. Built on
    ``edge_index``'s device.
    """
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise DataError("edge_index", f"expected a 2 x E tensor, got {tuple(edge_index.shape)}")
    row, col = edge_index[0].long(), edge_index[1].long()
    dev = row.device
    if row.numel() and (int(row.min()) < 0 or int(col.min()) < 0 or int(row.max()) >= n or int(col.max()) >= n):
        raise DataError("edge_index", f"node ids must lie in [0, {n - 1}]")
    ones = torch.ones(row.shape[0], dtype=torch.float32, device=dev)
    w = ones if weight is None else weight.to(dev, torch.float32).clamp_min(0.0)
    if w.shape != row.shape:
        raise DataError("edge_weight", f"expected {row.shape[0]} weights, got {tuple(w.shape)}")
    keep = row != col
    if not bool(keep.all()):
        row, col, w = row[keep], col[keep], w[keep]
    if self_loops:
        loop = torch.arange(n, dtype=torch.long, device=dev)
        row, col = torch.cat([row, loop]), torch.cat([col, loop])
        w = torch.cat([w, torch.ones(n, dtype=torch.float32, device=dev)])
    deg = torch.zeros(n, dtype=torch.float32, device=dev).index_add_(0, row, w)
    w = w / deg.clamp_min(1e-12)[row]
    if row.numel() > 1 and not bool((row[1:] >= row[:-1]).all()):
        order = torch.argsort(row * n + col)
        row, col, w = row[order], col[order], w[order]
    crow = torch.zeros(n + 1, dtype=torch.long, device=dev)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
    return csr(crow, col, w, n)


def csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, n: int) -> torch.Tensor:
    """An n x n CSR tensor, without torch's "CSR support is in beta" warning (CSR @ dense and its grad are used)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, (n, n), check_invariants=False)


class SpaceTransfer(nn.Module):
    """B: ``df = B(di, f_ref)``, an MLP on ``[di, f_ref]`` (512 + 256 -> hidden -> 256), paper eq. 3.

    ``gates`` (ours, 0 = the paper's B): adds ``sum_k (a_k . di) W_k f_ref``, ``gates`` linear maps of the reference
    face, each weighted by a learned reading of the CLIP offset. Where an attribute moves each person's face along
    a direction of their own (a turned head: the twin's ``face_pose_id``), ``df`` is a product of "how much the
    attribute changed" and a map of ``f_ref``, which a ReLU MLP on the concatenation pieces together poorly: on the
    pose-costly twin's part1 (``config/twin-pose.yaml``) the paper's B moves a frontal photo from cosine 0.26 to its
    profile to 0.36, the gated B (4 gates) to 0.50 (``benchmarks/diagnose_transfer.py``), though CLIP-Cluster then
    clusters the same (docs/twin.md). The ``W_k`` start at zero, so the gated B starts as the paper's.
    """

    def __init__(self, clip_dim: int = 512, face_dim: int = 256, hidden: int = 512, gates: int = 0) -> None:
        super().__init__()
        self.clip_dim, self.face_dim, self.hidden, self.gates = clip_dim, face_dim, hidden, int(gates)
        self.net = nn.Sequential(nn.Linear(clip_dim + face_dim, hidden), nn.ReLU(), nn.Linear(hidden, face_dim))
        if self.gates:
            self.gate = nn.Linear(clip_dim, self.gates, bias=False)
            self.maps = nn.Parameter(torch.zeros(self.gates, face_dim, face_dim))

    def forward(self, di: torch.Tensor, f_ref: torch.Tensor) -> torch.Tensor:
        """``di`` (..., clip_dim) and ``f_ref`` (..., face_dim), broadcast over leading dims -> (..., face_dim)."""
        shape = torch.broadcast_shapes(di.shape[:-1], f_ref.shape[:-1])
        di, f_ref = di.expand(*shape, di.shape[-1]), f_ref.expand(*shape, f_ref.shape[-1])
        out = self.net(torch.cat([di, f_ref], dim=-1))
        if self.gates:  # each map applied to f_ref by one matmul: (..., gates, face_dim), then weighted by the gates
            maps = (f_ref @ self.maps.permute(2, 0, 1).reshape(self.face_dim, -1)).unflatten(-1, (self.gates, -1))
            out = out + (self.gate(di).unsqueeze(-1) * maps).sum(-2)
        return out


class Hallucinator(nn.Module):
    """M_theta: ``di = M([dt, i])``, an MLP (clip_dim * 2 -> hidden -> clip_dim), paper eq. 1."""

    def __init__(self, clip_dim: int = 512, hidden: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.clip_dim = clip_dim
        self.net = mlp2(2 * clip_dim, hidden, clip_dim, dropout)

    def forward(self, dt: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """``dt`` (..., clip_dim) and ``i`` (..., clip_dim), broadcast -> ``di`` (..., clip_dim)."""
        shape = torch.broadcast_shapes(dt.shape[:-1], i.shape[:-1])
        return self.net(torch.cat([dt.expand(*shape, dt.shape[-1]), i.expand(*shape, i.shape[-1])], dim=-1))


class NeighbourGCN(nn.Module):
    """Eq. 5: ``F_{l+1} = ReLU(A_bar F_l W_l)``, L layers of D x D, A_bar the zero-diagonal kNN adjacency.

    Our choice where the paper is silent: A_bar is row-normalised (mean over neighbours), so the query's scale does
    not change between the training k (80) and the test k (50); each layer has a bias.
    """

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, f: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        x = f
        for lin in self.layers:
            x = torch.relu(lin(adj @ x))
        return x


class SingleQueryAttention(nn.Module):
    """Multi-head attention of ONE query token over T key/value tokens, computed in the cheap order.

    Equal to ``nn.MultiheadAttention`` (tested), but the key and value projections are moved onto the query side:
    ``q_h . (W_k^h m_t) = (W_k^h^T q_h) . m_t`` and ``sum_t a_t W_v^h m_t = W_v^h sum_t a_t m_t``, so a face costs
    O(D^2 + H T D) instead of O(T D^2): about 5x fewer FLOPs for the proxy generator at T = M + 1 = 11. The key
    bias is omitted (a per-head constant added to all T scores leaves the softmax unchanged).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise DataError("attention", f"dim {dim} not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim, bias=b) for b in (True, False, True, True))
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """``q`` (n x D), ``mem`` (n x T x D) -> (n x D)."""
        n, d = q.shape
        h, hd = self.heads, self.head_dim
        qh = self.q(q).view(n, h, hd) * hd**-0.5
        qk = torch.einsum("nhc,hcd->nhd", qh, self.k.weight.view(h, hd, d))  # W_k^T q per head: n x H x D
        attn = self.drop(torch.softmax(torch.bmm(qk, mem.transpose(1, 2)), dim=-1))  # n x H x T
        mix = torch.bmm(attn, mem)  # n x H x D
        out = torch.einsum("nhd,hcd->nhc", mix, self.v.weight.view(h, hd, d))
        out = out + attn.sum(-1, keepdim=True) * self.v.bias.view(h, hd)  # sum is 1 unless dropout is active
        return self.o(out.reshape(n, d))


class _CrossLayer(nn.Module):
    """Pre-LN decoder block with one query token: ``x = MCA(LN(q), LN(mem))``, plus ``q`` when ``query_residual``;
    then ``x += MLP(LN(x))``."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, dropout: float, query_residual: bool = False) -> None:
        super().__init__()
        self.query_residual = bool(query_residual)
        self.ln_q, self.ln_kv, self.ln_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SingleQueryAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, q: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """``q`` (n x D), ``mem`` (n x T x D) -> updated query (n x D)."""
        x = self.attn(self.ln_q(q), self.ln_kv(mem))
        if self.query_residual:
            x = x + q
        return x + self.mlp(self.ln_mlp(x))


class ProxyGenerator(nn.Module):
    """Fuse the M + 1 tokens ``[f, fhat_1..fhat_M]`` of each face into one proxy (paper 3.3, Table 1).

    * ``average``: the mean of the tokens (no parameters).
    * ``self``: R pre-LN transformer encoder layers over the tokens, then their mean and a final LayerNorm.
    * ``cross``: the neighbour-GCN feature of the face is the single query of R pre-LN decoder blocks
      cross-attending to the tokens (key/value); the final output, LayerNormed, is the proxy. Eq. 6 as written,
      ``v' = MCA(LN(fbar_L, v))``, has no residual from the query: the proxy is a mix of the face's own tokens,
      weighted by what its neighbourhood asks for (``query_residual=False``, default). A standard decoder adds the
      query back (``query_residual=True``); the proxy is then mostly the neighbourhood mean, which blurs the two
      ends of every edge and ranks kNN edges below the no-hallucination ablation (docs/edge_quality.md).
    """

    def __init__(
        self,
        dim: int = 256,
        fusion: str = "cross",
        query_layers: int = 1,
        depth: int = 1,
        heads: int = 4,
        mlp_hidden: int = 512,
        dropout: float = 0.0,
        query_residual: bool = False,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise DataError("config", f"fusion {fusion!r} not in {FUSIONS}")
        self.fusion = fusion
        self.query_gcn: NeighbourGCN | None = None
        if fusion == "cross":
            self.query_gcn = NeighbourGCN(dim, query_layers)
            self.blocks = nn.ModuleList(
                _CrossLayer(dim, heads, mlp_hidden, dropout, query_residual) for _ in range(depth)
            )
        elif fusion == "self":
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(
                    dim, heads, mlp_hidden, dropout, activation="gelu", batch_first=True, norm_first=True
                )
                for _ in range(depth)
            )
        else:
            self.blocks = nn.ModuleList()
        self.norm = nn.LayerNorm(dim) if fusion != "average" else nn.Identity()

    def query(self, f: torch.Tensor, adj_bar: torch.Tensor) -> torch.Tensor | None:
        """The neighbour query (N x D) on the whole graph, or None when the fusion needs none."""
        return None if self.query_gcn is None else self.query_gcn(f, adj_bar)

    def forward(self, f: torch.Tensor, fhat: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """``f`` (n x D), ``fhat`` (n x M x D), ``query`` (n x D, ``cross`` only) -> proxies (n x D)."""
        tokens = torch.cat([f[:, None, :], fhat], dim=1)
        if self.fusion == "average":
            return tokens.mean(dim=1)
        if self.fusion == "self":
            x = tokens
            for blk in self.blocks:
                x = blk(x)
            return self.norm(x.mean(dim=1))
        if query is None:
            raise DataError("proxy generator", "fusion 'cross' needs the neighbour query")
        q = query
        for blk in self.blocks:
            q = blk(q, tokens)
        return self.norm(q)


class PairAttributes(nn.Module):
    """The pair's attribute agreement, read through CLIP's text space (ours): one more input of the edge MLP.

    Each face is described by the CLIP text embeddings of its estimated attributes: the mean of its hallucination
    source prompts (``text_emb[src[n]]``: "a photo of a male at the age of 40", "... a happy male", ...), projected
    to ``dim`` (``p = mean_m W t_src``). The MLP's first layer then reads ``[p_u * p_v, |p_u - p_v|]``. Prompts are
    few (26 on the twin), so this path cannot learn who a training face is, only which attribute (dis)agreements
    tell two people apart, and that carries over to new identities. Measured before adding it: a logistic
    regression fit on part0's edges, given "the two ends' estimated genders differ" beside the cosine and the local
    densities, ranks part1's edges at AUC 0.9929 / 0.9857 / 0.9910 on twin seeds 0 / 1 / 2 against 0.9886 /
    0.9775 / 0.9887 without it, and part1-9's at 0.9406 against 0.9286 (seed 0; ``benchmarks/pair_baseline_auc.py
    --attributes``). As a network input it did not carry over as well: off by default (``docs/edge_quality.md``).
    """

    def __init__(self, clip_dim: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(clip_dim, dim, bias=False)
        self.lin = nn.Linear(2 * dim, hidden, bias=False)

    @property
    def dim(self) -> int:
        return self.proj.out_features

    def node_terms(self, text_emb: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """``p`` (n x dim) of faces with source prompt rows ``src`` (n x M) into ``text_emb`` (P x clip_dim)."""
        return self.proj(text_emb)[src].mean(dim=-2)

    def forward(self, pu: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
        """The first-layer contribution (..., hidden) of the pairs ``(pu, pv)`` (broadcast)."""
        pu, pv = torch.broadcast_tensors(pu, pv)
        return self.lin(torch.cat([pu * pv, (pu - pv).abs()], dim=-1))


class GCNEdgePredictor(nn.Module):
    """Eq. 7 GCN plus a 2-way edge MLP on the pair of node embeddings (paper 3.4).

    The paper says only that "paired features corresponding to an edge are fed into the MLP". Two readings:

    * ``pair="product"`` (our default): the embeddings are projected to ``pair_dim`` (``h = P v``) and the MLP
      reads the symmetric pair features ``[h_u * h_v, |h_u - h_v|]``. A similarity is then a linear function of
      its input (``sum(h_u * h_v)`` is a learned inner product), so the classifier starts from what the cosine
      already knows and learns the rest.
    * ``pair="concat"``: the MLP reads ``[v_u; v_v]``. Its first layer is split, ``W [v_u; v_v] = W_a v_u + W_b
      v_v``, so :meth:`node_terms` costs O(N) matmuls and :meth:`pair_logits` only gathers and adds per edge. A
      ReLU MLP on a concatenation has to build every similarity out of many hidden units; at our training budgets
      it ranks kNN edges below the raw cosine (measured: ``docs/edge_quality.md``).

    :meth:`set_prior` puts the class prior into the output bias: without it, the network fits the imbalanced edge
    labels (80-90 % positive) through feature magnitudes, which rank edges backwards
    (:mod:`clipcluster.training.edge_prior`).

    ``pair_baseline``: the "same" logit also gets a frozen logistic baseline on the edge's cosine and its two ends'
    local densities, fit on the training edges (:mod:`clipcluster.training.pair_baseline`); the network's output is
    then a learned correction to it, and :meth:`set_prior` starts that correction at zero. ``centre``: the
    correction's "same" logit has its mean over the scored edges subtracted (the subgraph's in :meth:`forward`, the
    whole graph's in :func:`clipcluster.clip_cluster.score.score_edges`), so it re-ranks edges without moving them all.
    """

    def __init__(
        self,
        in_dim: int = 256,
        hidden: int = 256,
        layers: int = 2,
        mlp_hidden: int = 256,
        *,
        pair: str = "product",
        pair_dim: int = 128,
        pair_cosine: bool = True,
        pair_cosine_standardise: bool = False,
        pair_baseline: bool = False,
        baseline_local_k: int = 10,
        pair_attributes: bool = False,
        clip_dim: int = 512,
        pair_attr_dim: int = 16,
        learned: bool = True,
        centre: bool = False,
    ) -> None:
        super().__init__()
        self.centre = bool(centre)
        if pair not in PAIR_FEATURES:
            raise DataError("config", f"pair_features {pair!r} not in {PAIR_FEATURES}")
        self.pair, self.pair_cosine = pair, bool(pair_cosine)
        dims = [in_dim] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(2 * a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        if pair == "concat":
            self.pair_a = nn.Linear(dims[-1], mlp_hidden)  # carries the first layer's bias
            self.pair_b = nn.Linear(dims[-1], mlp_hidden, bias=False)
        else:
            self.pair_proj = nn.Linear(dims[-1], pair_dim, bias=False)
            self.pair_in = nn.Linear(2 * pair_dim, mlp_hidden)
        # the edge's input cosine (its kNN similarity), as it is or standardised on the training edges, as one more
        # pair feature weighted into the first layer (clipcluster.training.pair_cosine)
        self.pair_cos = PairCosine(mlp_hidden, pair_cosine_standardise) if self.pair_cosine else None
        # the pair's estimated attributes through CLIP's text embeddings, one more first-layer input (ours)
        self.pair_attr = PairAttributes(clip_dim, pair_attr_dim, mlp_hidden) if pair_attributes else None
        self.out = nn.Linear(mlp_hidden, 2)
        self.baseline = PairBaseline(baseline_local_k) if pair_baseline else None
        # learned=False: the logit is the baseline's alone (the layers above exist but are never used or trained)
        self.learned = bool(learned)
        if not self.learned and self.baseline is None:
            raise DataError("edge predictor", "learned=False needs the pair baseline")

    def set_prior(self, positive_rate: float) -> None:
        """Start the classifier at the training edges' class prior (:mod:`clipcluster.training.edge_prior`); with
        the pair baseline, which carries the prior, at even odds on top of it."""
        init_prior(self.out, 0.5 if self.baseline is not None else positive_rate)

    def embed(self, v: torch.Tensor, adj_loop: torch.Tensor) -> torch.Tensor:
        """Node embeddings after the L GCN layers; ``adj_loop`` = D^-1 (A + I) (sparse)."""
        for lin in self.layers:
            v = torch.relu(lin(torch.cat([v, adj_loop @ v], dim=1)))
        return v

    def node_terms(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What is computed once per node: ``(W_a v + b, W_b v)`` (concat) or ``(P v, P v)`` (product)."""
        if self.pair == "concat":
            return self.pair_a(emb), self.pair_b(emb)
        h = self.pair_proj(emb)
        return h, h

    def pair_logits(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        cos: torch.Tensor | None = None,
        attr: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits (..., 2) from the gathered node terms of the edges' two ends (broadcast) and, with
        ``pair_cosine``, the edges' input cosines ``cos`` (...); with ``pair_attributes``, ``attr`` = the two ends'
        :meth:`PairAttributes.node_terms` (gathered, broadcast)."""
        if self.pair == "concat":
            x = a + b
        else:
            a, b = torch.broadcast_tensors(a, b)
            x = self.pair_in(torch.cat([a * b, (a - b).abs()], dim=-1))
        if self.pair_cos is not None:
            if cos is None:
                raise DataError("edge predictor", "pair_cosine=True needs the edges' cosines")
            x = x + self.pair_cos(cos).to(x.dtype)
        if self.pair_attr is not None:
            if attr is None:
                raise DataError("edge predictor", "pair_attributes=True needs the ends' attribute terms")
            x = x + self.pair_attr(*attr).to(x.dtype)
        return self.out(torch.relu(x))

    def forward(
        self,
        v: torch.Tensor,
        adj_loop: torch.Tensor,
        u: torch.Tensor,
        w: torch.Tensor,
        cos: torch.Tensor | None = None,
        density: torch.Tensor | None = None,
        attr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Edge logits (E x 2) for pairs ``(u[e], w[e])`` (``cos``: their input cosines, E; ``density``: every
        node's local density, n, needed with the pair baseline; ``attr``: every node's
        :meth:`PairAttributes.node_terms`, n x dim, needed with pair_attributes)."""
        if self.learned:
            a, b = self.node_terms(self.embed(v, adj_loop))
            logits = self.pair_logits(a[u], b[w], cos, None if attr is None else (attr[u], attr[w]))
            if self.centre and logits.shape[0]:
                m = (logits[:, 1] - logits[:, 0]).mean()
                logits = logits - torch.stack([torch.zeros_like(m), m])
        else:
            logits = v.new_zeros(u.shape[0], 2)
        if self.baseline is None:
            return logits
        if cos is None or density is None:
            raise DataError("edge predictor", "pair_baseline=True needs the edges' cosines and the nodes' densities")
        base = self.baseline(cos.to(logits.dtype), density[u].to(logits.dtype), density[w].to(logits.dtype))
        return add_same_logit(logits, base)
