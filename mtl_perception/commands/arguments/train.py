"""The options of mtl-perception train: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/train.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from mtl_perception.commands.common import add_drivable_argument, at_least_one
from mtl_perception.training.head_options import SEG_HEADS

# command-line options that are TrainConfig fields of the same name
TRAIN_OPTIONS = ("backbone", "backbone_weights", "init_from", "normalization", "frozen_backbone_bn", "anchors",
                 "neck_repeats", "seg_head", "batch", "epochs", "seg_epochs", "lr", "workers", "threads", "channels_last",
                 "seed", "val_every", "save_every_min")


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
    parser.add_argument("--seg-head", choices=SEG_HEADS,
                        help="where the segmentation heads stop decoding: stride2 (a stage at stride 2) or stride4 "
                             "(one final resize from stride 4, cheaper)")
    parser.add_argument("--anchors", choices=["default", "kmeans"],
                        help="BDD100K's anchors (default), or k-means on this data's boxes")
    parser.add_argument("--alpha", type=float, help="weight of the detection loss (over the --config file's)")
    parser.add_argument("--beta", type=float, help="weight of the segmentation loss (over the --config file's)")
    parser.add_argument("--workers", type=int, help="data loading processes")
    parser.add_argument("--threads", type=int,
                        help="torch threads for the network in the training process (default: torch's, every core)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="NHWC memory layout for the network (default: with a GPU)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep each frame decoded and letterboxed in DIR between epochs (about 1.2 MB a frame "
                             "at 384x640; keyed by the files and settings, so it is never stale)")
    parser.add_argument("--measure-steps", type=at_least_one, metavar="N",
                        help="time N training steps (after 2 warm-up steps) and print the frames per second, the "
                             "share spent waiting for data and the settings; writes nothing")
    parser.add_argument("--limit", type=at_least_one, help="use only the first N frames of each split")
    parser.add_argument("--seed", type=int, help="seeds sampling, augmentation and initialisation")
    parser.add_argument("--val-every", type=at_least_one, help="validate every N epochs")
    parser.add_argument("--save-every-min", type=float, metavar="MIN",
                        help="also write last.pt inside an epoch this often, so that a run stopped at any point "
                             "resumes there (0: at epoch ends only)")
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
        if action.dest in TRAIN_OPTIONS and action.default is None and "default" not in (action.help or "") \
                and action.dest != "init_from":
            action.config_default = _ConfigDefault(action.dest)  # type: ignore[attr-defined]  # argparse %-formats vars(action)
            action.help = f"{action.help or ''} (default: %(config_default)s)".lstrip()


class _ConfigDefault:
    """TrainConfig's default for one field, looked up when printed."""
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        # here, not at the top: training/config.py imports torch, and only a printed --help needs it
        from mtl_perception.training.config import TrainConfig

        field = next(f for f in dataclasses.fields(TrainConfig) if f.name == self.name)
        return str(field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default)
