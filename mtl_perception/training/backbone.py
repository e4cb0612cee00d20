"""torchvision backbones that return features at strides 4, 8, 16 and 32."""

from __future__ import annotations

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


class BackboneWeightsError(ValueError):
    """Starting weights that were asked for and cannot be had: training from random weights instead would
    run for hours towards a far worse model while looking like the run that was asked for."""


@dataclass(frozen=True)
class WeightsConvention:
    """What a starting-weights file expects: its input normalisation (training/model.py's NORMALIZATIONS) and
    whether its BatchNorm must stay frozen (weights whose BN folds hold in eval mode only)."""

    normalization: str
    frozen_bn: bool
    source: str  # where the convention is documented


# Plain state_dicts whose convention is documented beside them, by sha256: they carry no word of it themselves
KNOWN_WEIGHTS: dict[str, WeightsConvention] = {
    "cba9af610335bac5ea487c8e9d43d74102f83b4a01cb6b434e1f413a7972298c": WeightsConvention(
        "unit", True, "../shared/weights/README.md (mobilenet_v2_imagenet_from_coral_tflite.pth)"),
    "b10bac977a16ba1f4b360ab9a222b684bfd3db1cd5a49acdbe26d38639d085c2": WeightsConvention(
        "unit", False, "../shared/weights/README.md (mobilenet_v2_imagenet_from_coral_tflite_bn_calibrated.pth)"),
}
# A weights file may carry its convention: {"state_dict": {...}, "normalization": "unit", "frozen_bn": true}
CARRIED_KEYS = ("state_dict", "normalization", "frozen_bn")


def weights_convention(path: Path) -> WeightsConvention | None:
    """The convention a weights file carries, or the one documented for it (KNOWN_WEIGHTS), or None."""
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest in KNOWN_WEIGHTS:
        return KNOWN_WEIGHTS[digest]
    state = _read_weights(path)
    if isinstance(state, dict) and "normalization" in state and "state_dict" in state:
        return WeightsConvention(str(state["normalization"]), bool(state.get("frozen_bn", False)), str(path))
    return None


def convention_mismatches(convention: WeightsConvention, normalization: str, frozen_bn: bool) -> list[str]:
    """What a run's settings get wrong about its starting weights' convention, one line each (empty: none)."""
    problems = []
    if convention.normalization != normalization:
        problems.append(f"the starting weights expect --normalization {convention.normalization}, the run uses "
                        f"{normalization} (see {convention.source})")
    if convention.frozen_bn and not frozen_bn:
        problems.append("the starting weights' BatchNorm holds in eval mode only: pass --frozen-backbone-bn "
                        f"(see {convention.source})")
    return problems


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

    When 'imagenet' was asked for and cannot be had (offline, a broken download), BackboneWeightsError says
    so and what to pass instead: a run from random weights is a different run, and only when asked for
    ('none'). None means the caller loads trained weights next (a checkpoint). The result's `weights_used`
    says in words what the trunk started from.
    """
    spec = backbone_spec(name)
    trunk: nn.Module
    if weights == "imagenet":
        try:
            trunk, used = spec.trunk(True), "imagenet (torchvision's weights)"
        except (OSError, RuntimeError) as err:  # no network, or a broken download
            raise BackboneWeightsError(
                f"ImageNet weights for {name} could not be fetched ({err}): pass --backbone-weights PATH (a "
                "torchvision state_dict, e.g. ../shared/weights/mobilenet_v2_imagenet_from_coral_tflite.pth with "
                "--normalization unit --frozen-backbone-bn), or --backbone-weights none to train from random "
                "weights") from None
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


def _read_weights(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights {path} not found; use --backbone-weights imagenet|none|PATH")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load's unpickling errors share no type
        raise ValueError(f"--backbone-weights {path} cannot be read as a torch state_dict ({type(err).__name__}); "
                         "pass a file written by torch.save(model.state_dict()), imagenet or none") from None


def _load_trunk_weights(trunk: nn.Module, path: Path, name: str, prefix: str) -> None:
    state = _read_weights(path)
    if isinstance(state, dict) and set(state) <= set(CARRIED_KEYS) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a file that carries its convention beside the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--backbone-weights {path} holds a {type(state).__name__}, not a state_dict (names to "
                         "tensors): pass a file written by torch.save(model.state_dict())")
    if prefix:  # a full torchvision state_dict, or the trunk's own
        state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)} or state
    missing, _ = trunk.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path} is not a torchvision {name} state_dict: {len(missing)} weights missing, "
                         f"e.g. {missing[0]}")
