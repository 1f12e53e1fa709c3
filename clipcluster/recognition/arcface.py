"""ArcFace: additive angular margin softmax (Deng et al., CVPR 2019), as in InsightFace's reference code."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def arcface_logits(cos: torch.Tensor, target: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """``scale * cos(theta + margin)`` at each row's target class, ``scale * cos(theta)`` elsewhere.

    ``cos`` (B x C) are cosines between normalised embeddings and normalised class weights. Where ``theta + margin``
    would pass pi (``cos(theta) <= cos(pi - margin)``) the target logit is ``cos(theta) - margin * sin(margin)``
    instead, which keeps it decreasing in theta (InsightFace's ``easy_margin=False`` branch).
    """
    cos = cos.clamp(-1.0, 1.0)
    tgt = cos.gather(1, target[:, None])
    sin = torch.sqrt((1.0 - tgt * tgt).clamp_min(0.0))
    phi = tgt * math.cos(margin) - sin * math.sin(margin)
    phi = torch.where(tgt > math.cos(math.pi - margin), phi, tgt - math.sin(math.pi - margin) * margin)
    return scale * cos.scatter(1, target[:, None], phi)


class ArcFaceHead(nn.Module):
    """Class weights (C x D) and the ArcFace loss of L2-normalised embeddings against them."""

    def __init__(self, dim: int, classes: int, scale: float = 64.0, margin: float = 0.5) -> None:
        super().__init__()
        if classes < 2:
            raise ValueError(f"ArcFace needs at least 2 classes, got {classes}")
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.normal_(self.weight, std=0.01)
        self.scale, self.margin = float(scale), float(margin)

    def forward(self, emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight))
        return F.cross_entropy(arcface_logits(cos, target, self.scale, self.margin), target)
