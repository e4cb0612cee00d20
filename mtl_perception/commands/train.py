"""mtl-perception train: train the multi-task network (single process, or DDP under torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from mtl_perception.commands.common import add_drivable_argument, at_least_one, parse_hw
from mtl_perception.compat import zip_strict
from mtl_perception.runtime.presets import includes_alternative


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, action="append",
                        help="BDD100K-layout dataset root; repeat it to train on a mix (the first one's val split "
                             "is validated on)")
    parser.add_argument("--data-weights", metavar="W1,W2,...",
                        help="each --data's share of an epoch's samples (default: equal weights, 1 each)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, plots")
    # Options left out take TrainConfig's (or the --config file's) values: each default is written once,
    # in training/config.py, and a value from the YAML file is never overwritten by an unset option.
    parser.add_argument("--backbone", help="mobilenetv2 (fast, the default) or resnet50 (accurate)")
    parser.add_argument("--backbone-weights", help="imagenet (torchvision, needs network), none, or a state_dict PATH")
    parser.add_argument("--init-from", metavar="CHECKPOINT",
                        help="fine-tune: start from a run's best.pt or last.pt (its architecture, anchors, "
                             "normalisation and EMA weights), with a new schedule and history, e.g. the bundled "
                             "model's run on your fleet's pseudo-labels")
    parser.add_argument("--normalization", choices=["imagenet", "unit"],
                        help="input normalisation the starting weights expect: imagenet (torchvision's mean/std, "
                             "the default) or unit (x/127.5-1, weights converted from TF, e.g. ../shared/weights); "
                             "stored in the checkpoint and baked into the exported graph")
    parser.add_argument("--frozen-backbone-bn", action="store_true", default=None,
                        help="freeze the backbone's BatchNorm (FrozenBatchNorm2d), as torchvision's detectors do "
                             "for ImageNet starts; needed by weights whose BatchNorm holds in eval mode only")
    parser.add_argument("--img-size", default="384x640", help="training size HxW, multiples of 32")
    parser.add_argument("--batch", type=at_least_one, help="images per process and step")
    parser.add_argument("--epochs", type=at_least_one, help="epochs in all (the paper: 200)")
    parser.add_argument("--seg-epochs", type=int,
                        help="epochs with all tasks; after them segmentation is frozen (default: min(60, --epochs); "
                             "the paper: 60 of 200)")
    parser.add_argument("--lr", type=float, help="peak learning rate (AdamW, cosine schedule)")
    parser.add_argument("--classes", choices=["bdd10", "vehicle"], default="bdd10",
                        help="all 10 BDD100K classes, or one merged vehicle class (the peers' evaluation)")
    add_drivable_argument(parser)
    parser.add_argument("--lane-widen", type=int, default=0, metavar="PX",
                        help="dilate lane masks by PX at the original resolution (0: as labelled)")
    parser.add_argument("--neck-repeats", type=int, help="BiFPN layers (default: the backbone's)")
    parser.add_argument("--anchors", choices=["default", "kmeans"],
                        help="BDD100K's anchors (default), or k-means on this data's boxes")
    parser.add_argument("--alpha", type=float, help="weight of the detection loss (over the --config file's)")
    parser.add_argument("--beta", type=float, help="weight of the segmentation loss (over the --config file's)")
    parser.add_argument("--workers", type=int, help="data loading processes")
    parser.add_argument("--limit", type=at_least_one, help="use only the first N frames of each split")
    parser.add_argument("--seed", type=int, help="seeds sampling, augmentation and initialisation")
    parser.add_argument("--val-every", type=at_least_one, help="validate every N epochs")
    parser.add_argument("--config", type=Path, help="YAML with 'loss:' and 'augment:' sections")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in an OUT that holds one (its checkpoints and history are replaced)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    _show_config_defaults(parser)


def _show_config_defaults(parser: argparse.ArgumentParser) -> None:
    """--help names TrainConfig's default for each option left unset here (their argparse default is None, so
    that a --config file's value is not overwritten): read from the dataclass, the one place they live, when
    the help is printed (building the parser must not import torch, which training/config.py does)."""
    for action in parser._actions:
        if action.dest in _TRAIN_OPTIONS and action.default is None and "default" not in (action.help or "") \
                and action.dest != "init_from":
            action.config_default = _ConfigDefault(action.dest)  # type: ignore[attr-defined]  # argparse %-formats vars(action)
            action.help = f"{action.help or ''} (default: %(config_default)s)".lstrip()


class _ConfigDefault:
    """TrainConfig's default for one field, looked up when printed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        import dataclasses

        from mtl_perception.training.config import TrainConfig

        field = next(f for f in dataclasses.fields(TrainConfig) if f.name == self.name)
        return str(field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default)


# command-line options that are TrainConfig fields of the same name
_TRAIN_OPTIONS = ("backbone", "backbone_weights", "init_from", "normalization", "frozen_backbone_bn", "anchors", "neck_repeats", "batch", "epochs", "seg_epochs", "lr",
                  "workers", "seed", "val_every")


def config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig these options and the --config file describe: options given on the command line
    win, then the file's sections, then TrainConfig's defaults."""
    from mtl_perception.training.config import TrainConfig, load_yaml_overrides
    from mtl_perception.training.dataset import DataConfig, DataSource
    from mtl_perception.training.loss import LossConfig

    height, width = parse_hw(args.img_size)
    overrides = load_yaml_overrides(args.config) if args.config else {}
    loss = overrides.pop("loss", LossConfig())
    weights = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta)) if v is not None}
    roots: list[Path] = args.data
    data_weights = _data_weights(args.data_weights, len(roots))
    data = DataConfig(roots[0], args.classes, includes_alternative(args.drivable), args.lane_widen,
                      height, width, args.limit)
    mix = tuple(DataSource(root, w) for root, w in zip_strict(roots[1:], data_weights[1:]))
    options = {name: getattr(args, name) for name in _TRAIN_OPTIONS if getattr(args, name) is not None}
    return TrainConfig(data=data, out=args.out, mix=mix, data_weight=data_weights[0], resume=args.resume,
                       loss=dataclasses.replace(loss, **weights), **options, **overrides)


def _data_weights(text: str | None, count: int) -> list[float]:
    if text is None:
        return [1.0] * count
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--data-weights {text!r}: expected numbers separated by commas, e.g. 1,2") from None
    if len(values) != count:
        raise ValueError(f"--data-weights has {len(values)} value(s) for {count} --data folder(s)")
    return values


def run(args: argparse.Namespace) -> int:
    import logging

    from mtl_perception.data.bdd100k import DatasetError
    from mtl_perception.training.checkpoint import CheckpointError
    from mtl_perception.training.trainer import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_files = [name for name in ("last.pt", "best.pt", "history.csv") if (args.out / name).exists()]
    if run_files and not (args.resume or args.overwrite):
        print(f"error: {args.out} holds a run ({', '.join(run_files)}): pass --resume to continue it, --overwrite to "
              "start again over it, or another --out", file=sys.stderr)
        return 2
    try:
        metrics = train(config_from_args(args), progress=not args.no_progress)
    except (ValueError, DatasetError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = _epochs_done(args.out)
        if not done:
            raise  # nothing of this run was kept: the CLI says so
        # a checkpoint is written whole after each epoch: what was done is a run that resumes exactly
        print(f"interrupted: mtl-perception train stopped after {done} epoch(s); {args.out}/last.pt holds them: "
              "the same command with --resume continues", file=sys.stderr)
        return 130
    if metrics:
        print(f"final val: det map50={metrics['det']['map50']:.3f}  drivable miou={metrics['drivable']['miou']:.3f}"
              f"  lane iou={metrics['lane']['iou']:.3f}  (checkpoints in {args.out})")
    return 0


def _epochs_done(out: Path) -> int:
    """Epochs a run folder's history records, where it has a last.pt (0 otherwise, or if unreadable)."""
    from mtl_perception.training.history import read_history

    if not (out / "last.pt").is_file():
        return 0
    try:
        return len(read_history(out / "history.csv"))
    except (OSError, ValueError):
        return 0
