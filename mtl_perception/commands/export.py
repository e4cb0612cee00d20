"""mtl-perception export: the ONNX file the runtime and the node run, with a parity check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mtl_perception.commands.common import parse_hw
from mtl_perception.data.bdd100k import ClassSet
from mtl_perception.training.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from mtl_perception.training.export import check_parity, export_onnx
from mtl_perception.training.model import build_untrained
from mtl_perception.training.release import write_release


def run(args: argparse.Namespace) -> int:
    for given, option in ((args.out, "--out"), (args.keep_checkpoint, "--keep-checkpoint")):
        if given is not None and given.exists() and not args.overwrite:
            print(f"error: {given} exists: pass --overwrite to replace it, or choose another {option}",
                  file=sys.stderr)
            return 2
    for given, option in ((args.keep_checkpoint, "--keep-checkpoint"), (args.trained_on, "--trained-on")):
        if given is not None and not args.checkpoint:
            print(f"error: {option} describes the weights of --checkpoint: give one", file=sys.stderr)
            return 2
    try:
        if args.checkpoint:
            state = load_checkpoint(args.checkpoint)
            height, width = parse_hw(args.img_size) if args.img_size else _trained_size(state)
            model = model_from_checkpoint(args.checkpoint)
            recorded = str(state.get("trained_on", "unknown"))
            if Path(recorded).is_absolute():  # older checkpoints stored the data folder's path: keep its name
                recorded = Path(recorded).name
            # a released checkpoint says what its model's metadata said, so that exporting it again
            # reproduces the released file
            trained_on = args.trained_on or str(state.get("exported_as") or f"{recorded} ({args.checkpoint.name})")
        else:
            height, width = parse_hw(args.img_size or DEFAULT_EXPORT_SIZE)
            model = build_untrained(args.backbone, ClassSet.named(args.classes).names)
            trained_on = "random weights (not trained): for tests and benchmarks only"
        info = export_onnx(model.eval(), args.out, height, width, trained_on)
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    parity = check_parity(model, args.out, image)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {info.backbone}, {height}x{width}, "
          f"{len(info.class_names)} classes, opset 17")
    if args.keep_checkpoint is not None:
        write_release(state, args.keep_checkpoint, trained_on)
        print(f"wrote {args.keep_checkpoint} ({args.keep_checkpoint.stat().st_size / 1e6:.1f} MB): the exported "
              "weights and their recipe")
    print(f"parity vs PyTorch: boxes max |diff| {parity.boxes_max_abs:.2e}, scores {parity.scores_max_abs:.2e}, "
          f"drivable {100 * parity.drivable_equal:.3f}% equal, lane {100 * parity.lane_equal:.3f}% equal "
          f"-> {'OK' if parity.ok else 'MISMATCH'}")
    return 0 if parity.ok else 1


DEFAULT_EXPORT_SIZE = "384x640"  # random-weight exports: the bundled model's size


def _trained_size(state: dict) -> tuple[int, int]:
    """The input size a checkpoint's run trained at (its train_config), else the bundled model's size."""
    data = (state.get("train_config") or {}).get("data") or {}
    if "height" in data and "width" in data:
        return int(data["height"]), int(data["width"])
    return parse_hw(DEFAULT_EXPORT_SIZE)
