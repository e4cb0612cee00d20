"""Checkpoints: written atomically, read with errors that say what is wrong."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from mtl_perception.atomic_io import atomic_write
from mtl_perception.errors import UserFacingError
from mtl_perception.training.model import ModelConfig, MultiTaskNet, build_model

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError, UserFacingError):
    """A checkpoint that cannot be used: the message says why and what to do."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save, atomically: a crash never leaves half a checkpoint."""
    atomic_write(path, lambda tmp: torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp))


def model_config_to_dict(config: ModelConfig) -> dict[str, Any]:
    return {"backbone": config.backbone, "class_names": list(config.class_names),
            "neck_channels": config.neck_channels, "neck_repeats": config.neck_repeats,
            "seg_channels": config.seg_channels, "seg_head": config.seg_head,
            "anchors": [[list(a) for a in lvl] for lvl in config.anchors],
            "normalization": config.normalization, "frozen_backbone_bn": config.frozen_backbone_bn}


def model_config_from_dict(values: dict[str, Any]) -> ModelConfig:
    anchors = tuple(tuple((float(w), float(h)) for w, h in level) for level in values["anchors"])
    return ModelConfig(values["backbone"], tuple(values["class_names"]), int(values["neck_channels"]),
                       int(values["neck_repeats"]), int(values["seg_channels"]),
                       # checkpoints from before these keys: the stride-2 heads, ImageNet mean/std, trainable BN
                       seg_head=str(values.get("seg_head", "stride2")), anchors=anchors,
                       normalization=str(values.get("normalization", "imagenet")),
                       frozen_backbone_bn=bool(values.get("frozen_backbone_bn", False)))


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {err}); "
                              "use another checkpoint, e.g. last.pt instead of best.pt") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model_config" not in state:
        raise CheckpointError(f"{path} is not an mtl_perception checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def model_from_checkpoint(path: Path, *, expect_backbone: str | None = None,
                          expect_classes: int | None = None, use_ema: bool = True) -> MultiTaskNet:
    """The network stored in a checkpoint, EMA weights by default."""
    state = load_checkpoint(path)
    config = model_config_from_dict(state["model_config"])
    check_compatible(config, path, expect_backbone, expect_classes)
    model = build_model(config, backbone_weights=None)
    model.load_state_dict(state["ema"] if use_ema and state.get("ema") else state["model"])
    return model


def check_compatible(config: ModelConfig, path: Path, expect_backbone: str | None,
                     expect_classes: int | None) -> None:
    if expect_backbone is not None and config.backbone != expect_backbone:
        raise CheckpointError(f"{path} holds a {config.backbone} model, but backbone {expect_backbone} was asked "
                              f"for; pass --backbone {config.backbone} or another checkpoint")
    if expect_classes is not None and config.num_classes != expect_classes:
        raise CheckpointError(f"{path} was trained for {config.num_classes} classes, but the data has "
                              f"{expect_classes}; check --classes (bdd10 or vehicle)")
