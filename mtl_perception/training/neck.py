"""BiFPN-style neck: top-down then bottom-up paths with fast normalised, learnable fusion weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SeparableConvBNAct(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, batch norm and SiLU (EfficientDet's BiFPN block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(inplace=True),
        )


class WeightedFusion(nn.Module):
    """out = sum_i(w_i * x_i) / (sum_i(w_i) + eps), w = relu(learnable): "fast normalised fusion"."""

    def __init__(self, num_inputs: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.ones(num_inputs))
        self.eps = eps

    def forward(self, inputs: list[Tensor]) -> Tensor:
        w = F.relu(self.weights)
        w = w / (w.sum() + self.eps)
        out = inputs[0] * w[0]
        for i in range(1, len(inputs)):
            out = out + inputs[i] * w[i]
        return out


class BiFPNLayer(nn.Module):
    """One top-down plus bottom-up pass over levels ordered fine to coarse (e.g. P3, P4, P5).

    forward returns (outputs, top_down): outputs of the bottom-up path per level, and the
    finest top-down feature, which the segmentation heads decode.
    """

    def __init__(self, channels: int, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.td_fuse = nn.ModuleList(WeightedFusion(2) for _ in range(num_levels - 1))
        self.td_conv = nn.ModuleList(SeparableConvBNAct(channels, channels) for _ in range(num_levels - 1))
        # middle levels fuse three inputs bottom-up: input, top-down, and the finer output
        self.bu_fuse = nn.ModuleList(
            WeightedFusion(3 if i < num_levels - 1 else 2) for i in range(1, num_levels)
        )
        self.bu_conv = nn.ModuleList(SeparableConvBNAct(channels, channels) for _ in range(num_levels - 1))

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        top_down = [features[-1]]
        for i in range(self.num_levels - 2, -1, -1):
            coarser = F.interpolate(top_down[0], size=features[i].shape[-2:], mode="nearest")
            j = self.num_levels - 2 - i
            top_down.insert(0, self.td_conv[j](self.td_fuse[j]([features[i], coarser])))

        outputs = [top_down[0]]
        for i in range(1, self.num_levels):
            finer = F.max_pool2d(outputs[-1], kernel_size=3, stride=2, padding=1)
            inputs = [features[i], top_down[i], finer] if i < self.num_levels - 1 else [features[i], finer]
            outputs.append(self.bu_conv[i - 1](self.bu_fuse[i - 1](inputs)))
        return outputs, top_down[0]


class BiFPN(nn.Module):
    """Projects backbone features to one width, then repeats BiFPNLayer.

    Args:
        in_channels: channels of the input levels, fine to coarse.
        channels: the neck's width.
        repeats: how many BiFPN layers.
    """

    def __init__(self, in_channels: list[int], channels: int, repeats: int = 2) -> None:
        super().__init__()
        if repeats < 1:
            raise ValueError(f"neck repeats must be >= 1, got {repeats}")
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels)) for c in in_channels
        )
        self.layers = nn.ModuleList(BiFPNLayer(channels, len(in_channels)) for _ in range(repeats))
        self.out_channels = channels

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        levels = [lateral(f) for lateral, f in zip(self.lateral, features, strict=True)]
        top_down = levels[0]
        for layer in self.layers:
            levels, top_down = layer(levels)
        return levels, top_down
