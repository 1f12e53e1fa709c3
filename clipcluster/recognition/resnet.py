"""The photo backbone: ArcFace's improved ResNet (IResNet, insightface ``recognition/arcface_torch/backbones``).

Residual unit BN-Conv3x3-BN-PReLU-Conv3x3(stride)-BN plus a (strided) 1x1 shortcut; a 3x3 stem with BN-PReLU; the
output block BN-Dropout-flatten-FC-BN (ArcFace's "E" output). Depth and width come from config (``layers`` per stage,
``widths``): IResNet-50 is layers [3, 4, 14, 3], widths [64, 128, 256, 512]; the tests use a very small one.
Input: aligned RGB faces, ``input_size`` x ``input_size`` (112 as in ArcFace), normalised (x - 127.5) / 127.5.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_RESNET: dict[str, Any] = {
    "layers": [2, 2, 2, 2],  # IResNet-18
    "widths": [64, 128, 256, 512],
    "embed_dim": 512,
    "input_size": 112,
    "dropout": 0.0,
}


class IBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin, eps=1e-5),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-5),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-5),
        )
        self.short = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.short(x)


class IResNet(nn.Module):
    """Aligned face crops (n x 3 x S x S, normalised) -> ``embed_dim`` features (before L2 normalisation)."""

    def __init__(
        self,
        layers: list[int] | tuple[int, ...] = (2, 2, 2, 2),
        widths: list[int] | tuple[int, ...] = (64, 128, 256, 512),
        embed_dim: int = 512,
        input_size: int = 112,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} must be equally long, non-empty")
        if input_size % (2 ** len(layers)):
            raise ValueError(f"input_size {input_size} is not divisible by 2^{len(layers)} (one halving per stage)")
        self.input_size = int(input_size)
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0], eps=1e-5), nn.PReLU(widths[0])
        )
        blocks: list[nn.Module] = []
        cin = widths[0]
        for n, cout in zip(layers, widths, strict=True):
            for i in range(int(n)):
                blocks.append(IBasicBlock(cin, cout, 2 if i == 0 else 1))  # each stage halves the map first
                cin = cout
        self.stages = nn.Sequential(*blocks)
        side = input_size // 2 ** len(layers)
        self.bn = nn.BatchNorm2d(cin, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin * side * side, embed_dim)
        self.features = nn.BatchNorm1d(embed_dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.stages(self.stem(x)))
        return self.features(self.fc(self.dropout(torch.flatten(x, 1))))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings (eval mode is the caller's job)."""
        return F.normalize(self(x), dim=1)
