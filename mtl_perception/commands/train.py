"""mtl-perception train: train the multi-task network (single process, or DDP under torchrun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_perception.commands.common import parse_hw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="BDD100K-layout dataset root")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, plots")
    parser.add_argument("--backbone", choices=["mobilenetv2", "resnet50"], default="mobilenetv2")
    parser.add_argument("--backbone-weights", default="imagenet",
                        help="imagenet (torchvision, needs network), none, or a state_dict PATH")
    parser.add_argument("--img-size", default="384x640", help="training size HxW, multiples of 32")
    parser.add_argument("--batch", type=int, default=8, help="images per process and step")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seg-epochs", type=int, default=60,
                        help="epochs with all tasks; after them segmentation is frozen (default 60)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--classes", choices=["bdd10", "vehicle"], default="bdd10",
                        help="all 10 BDD100K classes, or one merged vehicle class (the peers' evaluation)")
    parser.add_argument("--drivable", choices=["direct", "direct+alternative"], default="direct")
    parser.add_argument("--lane-widen", type=int, default=0, metavar="PX",
                        help="dilate lane masks by PX at the original resolution (0: as labelled)")
    parser.add_argument("--neck-repeats", type=int, help="BiFPN layers (default: 2 for mobilenetv2, 3 for resnet50)")
    parser.add_argument("--anchors", choices=["default", "kmeans"], default="default",
                        help="BDD100K's anchors, or k-means on this data's boxes")
    parser.add_argument("--alpha", type=float, default=1.0, help="weight of the detection loss")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the segmentation loss")
    parser.add_argument("--workers", type=int, default=2, help="data loading processes")
    parser.add_argument("--limit", type=int, help="use only the first N frames of each split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    parser.add_argument("--config", type=Path, help="YAML with 'loss:' and 'augment:' sections")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from mtl_perception.data.bdd100k import DatasetError
    from mtl_perception.training.checkpoint import CheckpointError
    from mtl_perception.training.config import TrainConfig, load_yaml_overrides
    from mtl_perception.training.dataset import DataConfig
    from mtl_perception.training.loss import LossConfig
    from mtl_perception.training.trainer import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        height, width = parse_hw(args.img_size)
        overrides = load_yaml_overrides(args.config) if args.config else {}
        loss = overrides.pop("loss", LossConfig())
        loss = dataclasses.replace(loss, alpha=args.alpha, beta=args.beta)
        data = DataConfig(args.data, args.classes, args.drivable == "direct+alternative", args.lane_widen,
                          height, width, args.limit)
        config = TrainConfig(data=data, out=args.out, backbone=args.backbone, backbone_weights=args.backbone_weights,
                             anchors=args.anchors, neck_repeats=args.neck_repeats, batch=args.batch,
                             epochs=args.epochs, seg_epochs=args.seg_epochs, lr=args.lr, workers=args.workers,
                             seed=args.seed, val_every=args.val_every, resume=args.resume, loss=loss, **overrides)
        metrics = train(config, progress=not args.no_progress)
    except (ValueError, DatasetError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if metrics:
        print(f"final val: det map50={metrics['det']['map50']:.3f}  drivable miou={metrics['drivable']['miou']:.3f}"
              f"  lane iou={metrics['lane']['iou']:.3f}  (checkpoints in {args.out})")
    return 0
