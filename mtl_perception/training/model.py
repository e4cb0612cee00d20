"""The multi-task network: backbone -> BiFPN neck -> detection head + drivable and lane heads."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from mtl_perception.data.bdd100k import DETECTION_CLASSES
from mtl_perception.training.anchors import DEFAULT_ANCHORS, STRIDES
from mtl_perception.training.backbone import backbone_spec, build_backbone
from mtl_perception.training.head_options import SEG_HEADS
from mtl_perception.training.heads import DetectionHead, SegmentationHead, decode_detections
from mtl_perception.training.neck import BiFPN

Anchors = tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the network's shape; stored in every checkpoint."""

    backbone: str = "mobilenetv2"
    class_names: tuple[str, ...] = ()
    neck_channels: int = 64
    neck_repeats: int = 2
    seg_channels: int = 32
    # where the segmentation heads stop decoding (heads.SEG_HEADS): "stride2" or "stride4" (the bundled model's)
    seg_head: str = "stride2"
    anchors: Anchors = field(default=DEFAULT_ANCHORS)
    # how the uint8 BGR contract input becomes the network's input (NORMALIZATIONS); set by the backbone's
    # starting weights, so it travels with the checkpoint and is baked into the exported graph
    normalization: str = "imagenet"
    # backbone BatchNorm as FrozenBatchNorm2d (torchvision's detection models do it for ImageNet starts):
    # statistics and affine fixed; weights whose BN folds only hold in eval mode need it
    frozen_backbone_bn: bool = False

    def __post_init__(self) -> None:
        if self.seg_head not in SEG_HEADS:
            raise ValueError(f"unknown seg_head {self.seg_head!r}; use one of {', '.join(SEG_HEADS)}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; use one of {', '.join(NORMALIZATIONS)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class MultiTaskNet(nn.Module):
    """Detection, drivable area and lane segmentation from one shared backbone and neck.

    forward(images Tensor[B, 3, H, W], normalised RGB) returns a dict:
        "det": list per stride (8, 16, 32) of raw Tensor[B, 3, H/s, W/s, 5 + C],
        "drivable", "lane": logits Tensor[B, 2, H, W].
    """

    anchors: Tensor  # [3 levels, 3 anchors, (w, h)] input pixels, a buffer

    def __init__(self, config: ModelConfig, backbone: nn.Module, neck: nn.Module | None = None,
                 det_head: nn.Module | None = None, drivable_head: nn.Module | None = None,
                 lane_head: nn.Module | None = None) -> None:
        super().__init__()
        if config.num_classes < 1:
            raise ValueError("ModelConfig.class_names is empty: the detector needs at least one class")
        channels: tuple[int, ...] = backbone.out_channels  # type: ignore[assignment]
        self.config = config
        self.backbone = backbone
        self.neck = neck or BiFPN(list(channels[1:]), config.neck_channels, config.neck_repeats)
        self.det_head = det_head or DetectionHead(config.neck_channels, config.num_classes, strides=STRIDES)
        stride = 4 if config.seg_head == "stride4" else 2
        self.drivable_head = drivable_head or SegmentationHead(config.neck_channels, channels[0], config.seg_channels,
                                                               final_stride=stride)
        self.lane_head = lane_head or SegmentationHead(config.neck_channels, channels[0], config.seg_channels,
                                                       final_stride=stride)
        self.register_buffer("anchors", torch.tensor(config.anchors, dtype=torch.float32), persistent=False)

    def forward(self, images: Tensor) -> dict[str, Tensor | list[Tensor]]:
        size = (images.shape[-2], images.shape[-1])
        features = self.backbone(images)
        levels, top_down = self.neck([features["c3"], features["c4"], features["c5"]])
        return {
            "det": self.det_head(levels),
            "drivable": self.drivable_head(top_down, features["c2"], size),
            "lane": self.lane_head(top_down, features["c2"], size),
        }

    def forward_margins(self, images: Tensor) -> dict[str, Tensor | list[Tensor]]:
        """forward, with each segmentation head's one margin channel (SegmentationHead.margin), Tensor[B, 1, H,
        W], in place of its two logits: what the exported graph computes."""
        size = (images.shape[-2], images.shape[-1])
        features = self.backbone(images)
        levels, top_down = self.neck([features["c3"], features["c4"], features["c5"]])
        heads = {"drivable": self.drivable_head, "lane": self.lane_head}
        margins: list[Tensor] = []
        for task, head in heads.items():
            if not isinstance(head, SegmentationHead):
                raise TypeError(f"forward_margins needs SegmentationHead as the {task} head, got {type(head).__name__}")
            margins.append(head.margin(top_down, features["c2"]))
        # Both heads' margins stacked and upsampled by one resize: ONNX Runtime's CPU layout (NCHWc) pads a
        # one-channel tensor to a block of 8 or 16 channels, so a resize per head did 16 channels' work at
        # full resolution (9 % of the model's time at 384x640); the stack of two unaligned channels runs in
        # plain NCHW, and its resize on two channels. Per channel the same bilinear resize.
        stacked = F.interpolate(torch.cat(margins, 1), size=size, mode="bilinear", align_corners=False)
        return {"det": self.det_head(levels), "drivable": stacked[:, 0:1], "lane": stacked[:, 1:2]}

    def decode(self, outputs: dict) -> tuple[Tensor, Tensor]:
        """boxes Tensor[B, N, 4] (x1, y1, x2, y2, input pixels) and scores Tensor[B, N, C]."""
        return decode_detections(outputs["det"], self.anchors, STRIDES)

    def segmentation_modules(self) -> list[nn.Module]:
        return [self.drivable_head, self.lane_head]


def default_config(backbone: str, class_names: tuple[str, ...], anchors: Anchors = DEFAULT_ANCHORS,
                   normalization: str = "imagenet", frozen_backbone_bn: bool = False,
                   seg_head: str = "stride2") -> ModelConfig:
    """The model for a backbone with that backbone's neck (training/backbone.py's BACKBONES)."""
    spec = backbone_spec(backbone)
    return ModelConfig(backbone, tuple(class_names), spec.neck_channels, spec.neck_repeats, seg_head=seg_head,
                       anchors=anchors, normalization=normalization, frozen_backbone_bn=frozen_backbone_bn)


def build_untrained(backbone: str, class_names: tuple[str, ...] = DETECTION_CLASSES,
                    seg_head: str = "stride2") -> MultiTaskNet:
    """A randomly initialised network in eval mode, for size, speed and contract checks, where weights do not
    matter."""
    return build_model(default_config(backbone, class_names, seg_head=seg_head)).eval()


def parameter_count(model: nn.Module) -> int:
    """The network's parameters, one count whatever form it takes: its learnable tensors, with each
    BatchNorm's affine weight and bias counted as parameters also where the BatchNorm is frozen (torchvision's
    FrozenBatchNorm2d holds them as buffers), and no running statistics. An exported file holds the same
    network with BatchNorm folded into the convolutions, so its initializers count fewer: export records this
    count in the file's metadata (PARAMETERS_KEY)."""
    frozen = sum(m.weight.numel() + m.bias.numel() for m in model.modules() if isinstance(m, FrozenBatchNorm2d))
    return sum(p.numel() for p in model.parameters()) + frozen


PARAMETERS_KEY = "parameters"  # ONNX metadata: parameter_count of the network the file was exported from


def build_model(config: ModelConfig, *, backbone_weights: str | None = "none") -> MultiTaskNet:
    """The network for a config; backbone_weights is 'imagenet', 'none', a state_dict path,
    or None when a checkpoint's weights are loaded next."""
    return MultiTaskNet(config, build_backbone(config.backbone, backbone_weights,
                                               frozen_bn=config.frozen_backbone_bn))


# RGB mean and std in 0-255 pixels, by name: "imagenet" is torchvision's weights' convention; "unit" is
# x / 127.5 - 1, the TF/slim convention of weights converted from TFLite (../shared/weights/README.md)
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    "unit": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
}


class InputNormalizer(nn.Module):
    """uint8 BGR NHWC (the ONNX contract's input, and the training batches) -> normalised RGB NCHW float."""

    mean: Tensor
    std: Tensor

    def __init__(self, normalization: str = "imagenet") -> None:
        super().__init__()
        mean, std = NORMALIZATIONS[normalization]
        # kept in the BGR channel order of the input; the flip to RGB follows
        self.register_buffer("mean", torch.tensor(mean[::-1]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std[::-1]).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        # cast first: TensorRT takes a UINT8 network input only into a Cast (8.5, 8.6 and 10)
        x = images.float().permute(0, 3, 1, 2)
        x = (x - self.mean) / self.std
        return x.flip(1)  # BGR -> RGB, as torchvision's ImageNet weights expect
