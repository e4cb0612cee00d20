"""torchvision backbones that return features at strides 4, 8, 16 and 32."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that differs between backbones: adding one is one entry in BACKBONES.

    trunk(imagenet) builds the torchvision trunk; levels maps its layers to c2..c5 (strides 4..32);
    channels are c2..c5's; neck_channels and neck_repeats are the model's defaults for it;
    state_dict_prefix is what a full torchvision state_dict puts before the trunk's keys.
    """

    trunk: Callable[[bool], nn.Module]
    levels: dict[str, str]
    channels: tuple[int, int, int, int]
    neck_channels: int
    neck_repeats: int
    state_dict_prefix: str = ""


def _mobilenet_v2_trunk(imagenet: bool) -> nn.Module:
    weights = models.MobileNet_V2_Weights.IMAGENET1K_V1 if imagenet else None
    return models.mobilenet_v2(weights=weights).features[:18]


def _resnet50_trunk(imagenet: bool) -> nn.Module:
    return models.resnet50(weights=models.ResNet50_Weights.IMAGENET1K_V2 if imagenet else None)


BACKBONES: dict[str, BackboneSpec] = {
    # the fast model: a light neck
    "mobilenetv2": BackboneSpec(_mobilenet_v2_trunk, {"3": "c2", "6": "c3", "13": "c4", "17": "c5"},
                                (24, 32, 96, 320), neck_channels=64, neck_repeats=2, state_dict_prefix="features."),
    # the accurate model: a wider, deeper neck
    "resnet50": BackboneSpec(_resnet50_trunk, {"layer1": "c2", "layer2": "c3", "layer3": "c4", "layer4": "c5"},
                             (256, 512, 1024, 2048), neck_channels=128, neck_repeats=3),
}


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; use one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


class BackboneWeightsWarning(UserWarning):
    """The backbone starts from random weights."""


class FeaturePyramidBackbone(nn.Module):
    """Wraps a torchvision trunk; forward returns {"c2": s4, "c3": s8, "c4": s16, "c5": s32}.

    Attributes:
        out_channels (tuple[int, int, int, int]): channels of c2..c5.
    """

    def __init__(self, body: nn.Module, out_channels: tuple[int, int, int, int], weights_used: str = "") -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels
        self.weights_used = weights_used  # what the trunk started from, in words (config.json records it)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return OrderedDict(self.body(x))


def build_backbone(name: str, weights: str | None = "none", *, frozen_bn: bool = False) -> FeaturePyramidBackbone:
    """A backbone by name; weights is 'imagenet', 'none' or a path to a torchvision state_dict.

    When 'imagenet' was asked for and cannot be had (offline, a broken download), the backbone is randomly
    initialised and a BackboneWeightsWarning says so: expect much slower convergence. 'none' was a choice,
    so nothing is said; None means the caller loads trained weights next (a checkpoint). The result's
    `weights_used` says in words what the trunk started from.
    """
    spec = backbone_spec(name)
    trunk: nn.Module
    if weights == "imagenet":
        try:
            trunk, used = spec.trunk(True), "imagenet (torchvision's weights)"
        except (OSError, RuntimeError) as err:  # no network, or a broken download
            warnings.warn(f"ImageNet weights for {name} could not be fetched ({err}); training from random "
                          "weights. Pass --backbone-weights PATH with a downloaded torchvision state_dict.",
                          BackboneWeightsWarning, stacklevel=2)
            trunk, used = spec.trunk(False), f"none: imagenet was asked for but could not be fetched ({err})"
    else:
        trunk = spec.trunk(False)
        used = "none (random initialisation)" if weights == "none" else "a checkpoint's"
        if weights not in ("none", None):
            _load_trunk_weights(trunk, Path(weights), name, spec.state_dict_prefix)
            used = f"state_dict {Path(weights).name}"
    if frozen_bn:
        trunk = freeze_batch_norm(trunk)
    return FeaturePyramidBackbone(IntermediateLayerGetter(trunk, spec.levels), spec.channels, used)


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Every BatchNorm2d replaced by a FrozenBatchNorm2d with its statistics and affine (in place; returns
    the module). Called after the weights are loaded, so the frozen copies hold them."""
    for child_name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, child_name, frozen)
        else:
            freeze_batch_norm(child)
    return module


def _load_trunk_weights(trunk: nn.Module, path: Path, name: str, prefix: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights {path} not found; use --backbone-weights imagenet|none|PATH")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load's unpickling errors share no type
        raise ValueError(f"--backbone-weights {path} cannot be read as a torch state_dict ({type(err).__name__}); "
                         "pass a file written by torch.save(model.state_dict()), imagenet or none") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--backbone-weights {path} holds a {type(state).__name__}, not a state_dict (names to "
                         "tensors): pass a file written by torch.save(model.state_dict())")
    if prefix:  # a full torchvision state_dict, or the trunk's own
        state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)} or state
    missing, _ = trunk.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path} is not a torchvision {name} state_dict: {len(missing)} weights missing, "
                         f"e.g. {missing[0]}")
