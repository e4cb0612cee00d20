"""torchvision backbones that return features at strides 4, 8, 16 and 32."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.models._utils import IntermediateLayerGetter

# name: (builder, ImageNet weights enum, {torchvision layer: our level}, channels per level)
_MOBILENET_LEVELS = {"3": "c2", "6": "c3", "13": "c4", "17": "c5"}
_RESNET_LEVELS = {"layer1": "c2", "layer2": "c3", "layer3": "c4", "layer4": "c5"}
BACKBONE_CHANNELS = {
    "mobilenetv2": (24, 32, 96, 320),
    "resnet50": (256, 512, 1024, 2048),
}


class BackboneWeightsWarning(UserWarning):
    """The backbone starts from random weights."""


class FeaturePyramidBackbone(nn.Module):
    """Wraps a torchvision trunk; forward returns {"c2": s4, "c3": s8, "c4": s16, "c5": s32}.

    Attributes:
        out_channels (tuple[int, int, int, int]): channels of c2..c5.
    """

    def __init__(self, body: nn.Module, out_channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return OrderedDict(self.body(x))


def _trunk(name: str, imagenet: bool) -> nn.Module:
    if name == "mobilenetv2":
        weights = models.MobileNet_V2_Weights.IMAGENET1K_V1 if imagenet else None
        return models.mobilenet_v2(weights=weights).features[:18]
    if name == "resnet50":
        weights = models.ResNet50_Weights.IMAGENET1K_V2 if imagenet else None
        return models.resnet50(weights=weights)
    raise ValueError(f"unknown backbone {name!r}; use 'mobilenetv2' or 'resnet50'")


def build_backbone(name: str, weights: str | None = "none") -> FeaturePyramidBackbone:
    """A backbone by name; weights is 'imagenet', 'none' or a path to a torchvision state_dict.

    Without ImageNet weights (offline, or 'none') the backbone is randomly initialised
    and a BackboneWeightsWarning says so: expect much slower convergence. None means
    the caller loads trained weights next (a checkpoint), so nothing is said.
    """
    trunk: nn.Module
    if weights == "imagenet":
        try:
            trunk = _trunk(name, imagenet=True)
        except (OSError, RuntimeError) as err:  # no network, or a broken download
            warnings.warn(f"ImageNet weights for {name} could not be fetched ({err}); training from random "
                          "weights. Pass --backbone-weights PATH with a downloaded torchvision state_dict.",
                          BackboneWeightsWarning, stacklevel=2)
            trunk = _trunk(name, imagenet=False)
    else:
        trunk = _trunk(name, imagenet=False)
        if weights == "none":
            warnings.warn(f"{name} backbone starts from random weights (--backbone-weights none)",
                          BackboneWeightsWarning, stacklevel=2)
        elif weights is not None:
            _load_trunk_weights(trunk, Path(weights), name)
    levels = _MOBILENET_LEVELS if name == "mobilenetv2" else _RESNET_LEVELS
    return FeaturePyramidBackbone(IntermediateLayerGetter(trunk, levels), BACKBONE_CHANNELS[name])


def _load_trunk_weights(trunk: nn.Module, path: Path, name: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights {path} not found; use --backbone-weights imagenet|none|PATH")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if name == "mobilenetv2":  # a full mobilenet_v2 state_dict keys features as "features.N..."
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")} or state
    missing, _ = trunk.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path} is not a torchvision {name} state_dict: {len(missing)} weights missing, "
                         f"e.g. {missing[0]}")
