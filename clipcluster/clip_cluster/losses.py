"""Loss terms of CLIP-Cluster (paper eqs. 2, 4, 8 and B's pretraining loss), each a scalar mean.

D is the cosine distance ``1 - cos(a, b)`` along the last dimension; means run over every face and hallucination
(and over edges for L_cross), so the terms keep their scale whatever the batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipcluster.clip_cluster.modules import SpaceTransfer

__all__ = [
    "clip_loss",
    "cosine_distance",
    "cross_loss",
    "edge_targets",
    "id_loss",
    "total_loss",
    "transfer_pretrain_loss",
]

_EPS = 1e-8


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` over the last dim, broadcasting the leading ones."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1, eps=_EPS)


def clip_loss(dt: torch.Tensor, di: torch.Tensor, t_tgt: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """L_CLIP = D(dt, di) + D(t~, i + di), eq. 2 with dt = t~ - t (docs/design.md section 5); ``i`` broadcasts
    over M."""
    return cosine_distance(dt, di).mean() + cosine_distance(t_tgt, i + di).mean()


def id_loss(fhat: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """L_ID = 1 - cos(fhat, f), eq. 4; ``fhat`` (n x M x D), ``f`` (n x D)."""
    return cosine_distance(fhat, f[:, None, :] if fhat.ndim == f.ndim + 1 else f).mean()


def transfer_pretrain_loss(
    transfer: SpaceTransfer, i: torch.Tensor, f: torch.Tensor, i_ref: torch.Tensor, f_ref: torch.Tensor
) -> torch.Tensor:
    """B's pretraining loss ``1 - cos(f_r + B(i - i_r, f_r), f)`` for same-identity pairs (paper 3.2)."""
    return cosine_distance(f_ref + transfer(i - i_ref, f_ref), f).mean()


def edge_targets(labels: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """1 where both ends of the edge have the same identity, else 0 (int64, for cross-entropy)."""
    return (labels[u] == labels[v]).long()


def cross_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_cross: mean cross-entropy of the 2-way edge logits against same-identity targets."""
    return F.cross_entropy(logits, targets)


def total_loss(
    l_clip: torch.Tensor, l_id: torch.Tensor, l_cross: torch.Tensor, lambda_id: float = 1.0, mu_cross: float = 1.0
) -> torch.Tensor:
    """Eq. 8: L = L_CLIP + lambda L_ID + mu L_cross."""
    return l_clip + lambda_id * l_id + mu_cross * l_cross
