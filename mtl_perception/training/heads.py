"""Detection and segmentation heads, and the in-graph decoding of detections."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtl_perception.training.neck import SeparableConvBNAct, WeightedFusion


class DetectionHead(nn.Module):
    """Anchor-based head: per level, per anchor, box (4), objectness (1) and class logits (C).

    forward returns one tensor per level, Tensor[B, A, H, W, 5 + C] of raw logits.
    """

    def __init__(self, channels: int, num_classes: int, num_anchors: int = 3, num_levels: int = 3,
                 strides: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.towers = nn.ModuleList(SeparableConvBNAct(channels, channels) for _ in range(num_levels))
        self.predictors = nn.ModuleList(
            nn.Conv2d(channels, num_anchors * (5 + num_classes), 1) for _ in range(num_levels)
        )
        self._init_biases(strides)

    def _init_biases(self, strides: tuple[int, ...], image_size: int = 640) -> None:
        # Start objectness near the prior of ~8 objects per image and classes near uniform,
        # so early losses do not swamp the segmentation tasks (YOLOv5's initialisation).
        for predictor, stride in zip(self.predictors, strides, strict=True):
            assert isinstance(predictor, nn.Conv2d) and predictor.bias is not None
            bias = predictor.bias.detach().view(self.num_anchors, -1)
            bias[:, 4] += math.log(8 / (image_size / stride) ** 2)
            bias[:, 5:] += math.log(0.6 / max(self.num_classes - 0.99, 0.01))
            predictor.bias = nn.Parameter(bias.view(-1))

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        outputs = []
        for feature, tower, predictor in zip(features, self.towers, self.predictors, strict=True):
            b, _, h, w = feature.shape
            raw = predictor(tower(feature))
            outputs.append(raw.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2))
        return outputs


def decode_detections(raw: list[Tensor], anchors: Tensor, strides: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Raw head outputs to boxes and scores.

    Args:
        raw: per level Tensor[B, A, H, W, 5 + C].
        anchors: Tensor[L, A, 2] anchor (w, h) in input pixels.
    Returns:
        boxes (Tensor[B, N, 4]): x1, y1, x2, y2 in input pixels.
        scores (Tensor[B, N, C]): objectness x class probability.
    """
    all_boxes, all_scores = [], []
    for level, (out, stride) in enumerate(zip(raw, strides, strict=True)):
        b, a, h, w, _ = out.shape
        p = out.sigmoid()
        ys = torch.arange(h, device=out.device, dtype=p.dtype)
        xs = torch.arange(w, device=out.device, dtype=p.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
        xy = (p[..., 0:2] * 2.0 - 0.5 + grid) * stride
        wh = (p[..., 2:4] * 2.0) ** 2 * anchors[level].view(1, a, 1, 1, 2)
        boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)
        all_boxes.append(boxes.reshape(b, -1, 4))
        all_scores.append((p[..., 4:5] * p[..., 5:]).reshape(b, a * h * w, -1))
    return torch.cat(all_boxes, dim=1), torch.cat(all_scores, dim=1)


class SegmentationHead(nn.Module):
    """Decodes the finest top-down feature (stride 8) to the input resolution.

    The stride-4 backbone feature joins in the last fusion at stride 4, as the paper
    describes. final_stride 2 (the default): a light stage at stride 2 sharpens thin
    structures such as lane lines; 4: the classifier reads the fused stride-4 features and one
    resize makes the full resolution (no stage at stride 2, where the head spent most of its time;
    the bundled model's since 2026-12-06).
    forward returns logits Tensor[B, num_classes, H_in, W_in].
    """

    def __init__(self, channels: int, low_channels: int, mid_channels: int = 32, num_classes: int = 2,
                 final_stride: int = 2) -> None:
        super().__init__()
        if final_stride not in (2, 4):
            raise ValueError(f"a segmentation head decodes to stride 2 or 4, not {final_stride}")
        self.final_stride = final_stride
        self.reduce = nn.Sequential(nn.Conv2d(channels, mid_channels, 1, bias=False),
                                    nn.BatchNorm2d(mid_channels), nn.SiLU(inplace=True))
        self.low = nn.Sequential(nn.Conv2d(low_channels, mid_channels, 1, bias=False),
                                 nn.BatchNorm2d(mid_channels), nn.SiLU(inplace=True))
        self.fuse = WeightedFusion(2)
        self.refine = SeparableConvBNAct(mid_channels, mid_channels)
        self.sharpen = SeparableConvBNAct(mid_channels, mid_channels // 2) if final_stride == 2 else nn.Identity()
        self.classifier = nn.Conv2d(mid_channels // 2 if final_stride == 2 else mid_channels, num_classes, 1)

    def forward(self, top_down: Tensor, low: Tensor, size: tuple[int, int]) -> Tensor:
        logits = self.classifier(self._features(top_down, low))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def margin(self, top_down: Tensor, low: Tensor) -> Tensor:
        """Class 1's logit minus class 0's at the head's own resolution (its final stride), Tensor[B, 1, H/s, W/s]; its
        sign after forward's upsampling is forward's argmax. The 1x1 classifier and bilinear upsampling are
        both linear, so one difference channel replaces two logit channels, and the caller upsamples it
        (MultiTaskNet.forward_margins, both heads' margins at once). Two classes only."""
        if self.classifier.out_channels != 2:
            raise ValueError(f"margin needs a two-class head, this one has {self.classifier.out_channels}")
        weight, bias = self.classifier.weight, self.classifier.bias
        assert bias is not None
        return F.conv2d(self._features(top_down, low), weight[1:2] - weight[0:1], bias[1:2] - bias[0:1])

    def _features(self, top_down: Tensor, low: Tensor) -> Tensor:
        x = F.interpolate(self.reduce(top_down), size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine(self.fuse([x, self.low(low)]))
        if self.final_stride == 4:
            return x
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.sharpen(x)
