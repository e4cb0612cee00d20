"""A peer's network rebuilt layer for layer, to be timed beside ours in one run (`bench --peer yolop`).

Latency does not depend on the weights, so the peer needs no trained file: YOLOP's layer table
(hustvl/YOLOP, MIT: `lib/models/YOLOP.py`, the `YOLOP` block list that `export_onnx.py` exports) is
rebuilt here with random weights and exported the way YOLOP exports itself: float input [1, 3, H, W],
normalised on the host, box decoding and the masks' sigmoids in the graph. Its parameter count is held to
the 7.9 M YOLOP's paper reports (test/training/test_peers.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtl_perception.atomic_io import atomic_write

PEERS = ("yolop",)
PEER_INPUT_NAME = "images"
# YOLOP's anchors (w, h in input pixels) per level, strides 8, 16, 32: its Detect block's arguments
YOLOP_ANCHORS = (((3, 9), (5, 11), (4, 20)), ((7, 18), (6, 39), (12, 31)), ((19, 50), (38, 81), (68, 157)))
YOLOP_STRIDES = (8, 16, 32)
YOLOP_OPSET = 12  # export_onnx.py's


class ExportHardswish(nn.Module):
    """Hardswish as YOLOP writes it for export, x * clip(x + 3, 0, 6) / 6: four ONNX operators in its file
    (Add, Clip, Mul, Div), not one HardSwish, and timed as such."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardtanh(x + 3, 0.0, 6.0) / 6.0


class ConvBNHardswish(nn.Sequential):
    """YOLOv5's `Conv`: convolution, BatchNorm, Hardswish; padding keeps the size at stride 1."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         ExportHardswish())


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNHardswish(channels, channels), ConvBNHardswish(channels, channels, 3))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.shortcut else self.body(x)


class BottleneckCSP(nn.Module):
    """Cross-stage partial block: half the channels through `depth` bottlenecks, half around them."""

    def __init__(self, c_in: int, c_out: int, depth: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c_out // 2
        self.through = nn.Sequential(ConvBNHardswish(c_in, hidden),
                                     *(Bottleneck(hidden, shortcut) for _ in range(depth)),
                                     nn.Conv2d(hidden, hidden, 1, bias=False))
        self.around = nn.Conv2d(c_in, hidden, 1, bias=False)
        self.merge = nn.Sequential(nn.BatchNorm2d(2 * hidden), nn.LeakyReLU(0.1),
                                   ConvBNHardswish(2 * hidden, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat((self.through(x), self.around(x)), 1))


class SPP(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = c_in // 2
        self.reduce = ConvBNHardswish(c_in, hidden)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.expand = ConvBNHardswish(hidden * (len(kernels) + 1), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(torch.cat([x, *(pool(x) for pool in self.pools)], 1))


class Focus(nn.Module):
    """Space to depth (each 2x2 block's four pixels as channels), then a convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = ConvBNHardswish(4 * c_in, c_out, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1))


def _segmentation_head() -> nn.Sequential:
    """One of YOLOP's two identical mask heads, from the stride-8 neck feature to full resolution."""
    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(ConvBNHardswish(256, 128, 3), up, BottleneckCSP(128, 64, 1, False),
                         ConvBNHardswish(64, 32, 3), up, ConvBNHardswish(32, 16, 3),
                         BottleneckCSP(16, 8, 1, False), up, ConvBNHardswish(8, 2, 3), nn.Sigmoid())


class YOLOP(nn.Module):
    """YOLOP at inference: detections [1, N, 6] decoded as its Detect block does, and two [1, 2, H, W] masks."""

    anchors: torch.Tensor

    def __init__(self, classes: int = 1) -> None:
        super().__init__()
        self.outputs = 5 + classes
        self.register_buffer("anchors", torch.tensor(YOLOP_ANCHORS, dtype=torch.float32), persistent=False)
        self.stem = nn.Sequential(Focus(3, 32, 3), ConvBNHardswish(32, 64, 3, 2), BottleneckCSP(64, 64, 1),
                                  ConvBNHardswish(64, 128, 3, 2), BottleneckCSP(128, 128, 3))  # stride 8
        self.stage16 = nn.Sequential(ConvBNHardswish(128, 256, 3, 2), BottleneckCSP(256, 256, 3))
        self.stage32 = nn.Sequential(ConvBNHardswish(256, 512, 3, 2), SPP(512, 512),
                                     BottleneckCSP(512, 512, 1, False), ConvBNHardswish(512, 256))
        self.top_down16 = nn.Sequential(BottleneckCSP(512, 256, 1, False), ConvBNHardswish(256, 128))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.out8 = BottleneckCSP(256, 128, 1, False)
        self.down8 = ConvBNHardswish(128, 128, 3, 2)
        self.out16 = BottleneckCSP(256, 256, 1, False)
        self.down16 = ConvBNHardswish(256, 256, 3, 2)
        self.out32 = BottleneckCSP(512, 512, 1, False)
        self.detect = nn.ModuleList(nn.Conv2d(c, 3 * self.outputs, 1) for c in (128, 256, 512))
        self.drivable = _segmentation_head()
        self.lane = _segmentation_head()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c8 = self.stem(x)
        c16 = self.stage16(c8)
        p32 = self.stage32(c16)
        p16 = self.top_down16(torch.cat((self.up(p32), c16), 1))
        neck8 = torch.cat((self.up(p16), c8), 1)  # the segmentation heads' input too
        n8 = self.out8(neck8)
        n16 = self.out16(torch.cat((self.down8(n8), p16), 1))
        n32 = self.out32(torch.cat((self.down16(n16), p32), 1))
        boxes = [self._decode(conv(feature), level) for level, (conv, feature)
                 in enumerate(zip(self.detect, (n8, n16, n32), strict=True))]
        return torch.cat(boxes, 1), self.drivable(neck8), self.lane(neck8)

    def _decode(self, raw: torch.Tensor, level: int) -> torch.Tensor:
        """YOLOv5's decoding: centre (2 sigmoid - 0.5 + cell) x stride, size (2 sigmoid)^2 x anchor."""
        batch, _, rows, cols = raw.shape
        y = raw.view(batch, 3, self.outputs, rows, cols).permute(0, 1, 3, 4, 2).sigmoid()
        cells_y, cells_x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        cells = torch.stack((cells_x, cells_y), -1).view(1, 1, rows, cols, 2).float()
        anchors = self.anchors[level].view(1, 3, 1, 1, 2)
        centre = (y[..., :2] * 2 - 0.5 + cells) * YOLOP_STRIDES[level]
        size = (y[..., 2:4] * 2) ** 2 * anchors
        return torch.cat((centre, size, y[..., 4:]), -1).view(batch, -1, self.outputs)


def build_peer(name: str) -> nn.Module:
    if name != "yolop":
        raise ValueError(f"unknown peer {name!r}: one of {', '.join(PEERS)}")
    return YOLOP().eval()


def export_peer(model: nn.Module, out: Path, height: int, width: int) -> None:
    """The peer as ONNX at one input size, as its own export_onnx.py writes it (opset 12), atomically."""

    def write(path: str) -> None:
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(1, 3, height, width),), path, input_names=[PEER_INPUT_NAME],
                              output_names=["det_out", "drive_area_seg", "lane_line_seg"],
                              opset_version=YOLOP_OPSET, dynamo=False)

    atomic_write(out, write)
