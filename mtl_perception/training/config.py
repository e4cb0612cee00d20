"""Training configuration: dataclasses built once, from the CLI and optionally a YAML file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtl_perception.runtime.contract import check_input_size
from mtl_perception.training.dataset import DataConfig, DataSource
from mtl_perception.training.loss import LossConfig
from mtl_perception.training.transforms import AugmentConfig

DEFAULT_SEG_EPOCHS = 60  # the paper's: all tasks for 60 of 200 epochs


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig  # the first dataset: its val split is the one validated on
    out: Path
    # more training sets mixed in, each with its weight (data's own: data_weight); same size and classes
    mix: tuple[DataSource, ...] = ()
    data_weight: float = 1.0
    backbone: str = "mobilenetv2"
    backbone_weights: str = "imagenet"
    # fine-tuning: the whole network (architecture, anchors, normalisation, weights: the EMA's) from this
    # checkpoint, with a new optimiser, schedule and history; backbone_weights and anchors are then unused
    init_from: str | None = None
    # the input normalisation the starting weights expect (training/model.py's NORMALIZATIONS): torchvision's
    # own ImageNet weights want "imagenet", weights converted from TF/TFLite "unit" (x / 127.5 - 1)
    normalization: str = "imagenet"
    frozen_backbone_bn: bool = False  # FrozenBatchNorm2d in the backbone, as torchvision's detectors use
    anchors: str = "default"  # or "kmeans": fit to the training boxes
    neck_repeats: int | None = None  # None: the backbone's default (backbone.BACKBONES)
    seg_head: str = "stride2"  # where the segmentation heads stop decoding (training/head_options.py)
    batch: int = 8
    epochs: int = 200
    # all tasks until here, then segmentation frozen (the paper: 60 of 200); None: min(60, epochs)
    seg_epochs: int | None = None
    lr: float = 2e-3
    lr_floor: float = 0.01  # the cosine schedule ends at lr x lr_floor
    weight_decay: float = 5e-4
    grad_clip_norm: float = 10.0  # gradients are clipped to this total norm (after AMP's unscaling)
    warmup_epochs: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: float = 200.0  # optimiser steps over which the EMA decay ramps up
    workers: int = 2
    # torch's threads for the network's arithmetic in this process (None: torch's own, every core). On a CPU
    # the loading processes take cores from it: docs/training.md measures --workers 0 with --cache fastest here
    threads: int | None = None
    # NHWC activations and weights (None: with a GPU, where its convolutions and AMP gain; on this CPU it
    # measured no faster, docs/training.md)
    channels_last: bool | None = None
    seed: int = 0
    val_every: int = 1
    resume: bool = False
    # last.pt is also written inside an epoch this often (0: at epoch ends only), so that a run stopped at any
    # point loses at most these minutes: an epoch on a CPU takes many
    save_every_min: float = 10.0
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @property
    def segmentation_epochs(self) -> int:
        """seg_epochs, resolved (never None after construction)."""
        return self.epochs if self.seg_epochs is None else self.seg_epochs

    def __post_init__(self) -> None:
        check_input_size(self.data.height, self.data.width)
        if self.seg_epochs is None:
            object.__setattr__(self, "seg_epochs", min(DEFAULT_SEG_EPOCHS, self.epochs))  # frozen dataclass
        if self.val_every < 1:
            raise ValueError(f"--val-every must be >= 1, got {self.val_every}")
        if self.data.limit is not None and self.data.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.data.limit}")
        if self.epochs < 1 or not 0 <= self.segmentation_epochs <= self.epochs:
            raise ValueError(f"need epochs >= 1 and 0 <= seg-epochs <= epochs, got {self.epochs} and "
                             f"{self.segmentation_epochs}")
        if self.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {self.batch}")
        if (self.threads is not None and self.threads < 1) or self.workers < 0:
            raise ValueError(f"--threads must be >= 1 and --workers >= 0, got {self.threads} and {self.workers}")
        if self.data_weight < 0 or any(m.weight < 0 for m in self.mix):
            raise ValueError("dataset weights must be >= 0")
        if not 0 <= self.lr_floor <= 1 or self.grad_clip_norm <= 0:
            raise ValueError(f"need 0 <= lr_floor <= 1 and grad_clip_norm > 0, got {self.lr_floor} and "
                             f"{self.grad_clip_norm}")
        if self.anchors not in ("default", "kmeans"):
            raise ValueError(f"--anchors must be 'default' or 'kmeans', got {self.anchors!r}")


def _build(cls: type, values: Any, where: str) -> Any:
    """cls(**values), refusing keys it does not have: a typo is an error, not a silent default."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def load_yaml_overrides(path: Path) -> dict[str, Any]:
    """Sections `loss:` and `augment:` of a YAML file, checked against their dataclasses."""
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ValueError(f"--config {path} is not valid YAML{at}: {getattr(err, 'problem', None) or err}; "
                         "config/train_example.yaml shows the layout") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    out: dict[str, Any] = {}
    for key, cls in (("loss", LossConfig), ("augment", AugmentConfig)):
        if key in values:
            out[key] = _build(cls, values.pop(key), f"{path}:{key}")
    if values:
        raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(values))}; use 'loss' and 'augment' "
                         "(everything else is a command-line option)")
    return out


def to_dict(config: Any) -> Any:
    """A JSON/YAML-safe dict of a (nested) config dataclass."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Path):
        return str(config)
    if isinstance(config, tuple):
        return [to_dict(v) for v in config]
    return config


# what a resumed run may change: where and how it reports, how it loads data, the starting weights (the
# checkpoint's replace them) and more epochs (the cosine schedule then stretches from where it is)
RESUME_MAY_CHANGE = frozenset({"out", "resume", "workers", "val_every", "backbone_weights", "epochs",
                               "save_every_min"})


def recipe_changes(saved: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(field, saved, current) for every leaf of two to_dict() configs that differs; dotted field names. A field
    the saved config lacks is newer than its run, which trained with its default: only a change from the
    default counts."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            if key not in saved and not prefix and current[key] == _DEFAULTS.get(key, object()):
                continue
            out += recipe_changes(saved.get(key), current.get(key), f"{prefix}{key}.")
        return out
    return [] if saved == current else [(prefix.rstrip("."), saved, current)]


# TrainConfig's top-level defaults, for fields newer than a checkpoint's saved config (recipe_changes)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
