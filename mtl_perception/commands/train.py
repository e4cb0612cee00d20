"""mtl-perception train: train the multi-task network (single process, or DDP under torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from mtl_perception.commands.arguments.train import TRAIN_OPTIONS
from mtl_perception.commands.common import parse_hw
from mtl_perception.compat import zip_strict
from mtl_perception.data.bdd100k import DatasetError
from mtl_perception.runtime.presets import includes_alternative
from mtl_perception.training.checkpoint import CheckpointError, load_checkpoint
from mtl_perception.training.config import TrainConfig, load_yaml_overrides
from mtl_perception.training.dataset import DataConfig, DataSource
from mtl_perception.training.loss import LossConfig
from mtl_perception.training.trainer import measure_throughput, train


def config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig these options and the --config file describe: options given on the command line
    win, then the file's sections, then TrainConfig's defaults."""
    height, width = parse_hw(args.img_size)
    overrides = load_yaml_overrides(args.config) if args.config else {}
    loss = overrides.pop("loss", LossConfig())
    weights = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta)) if v is not None}
    roots: list[Path] = args.data
    data_weights = _data_weights(args.data_weights, len(roots))
    data = DataConfig(roots[0], args.classes, includes_alternative(args.drivable), args.lane_widen,
                      height, width, args.limit, args.cache)
    mix = tuple(DataSource(root, w) for root, w in zip_strict(roots[1:], data_weights[1:]))
    options = {name: getattr(args, name) for name in TRAIN_OPTIONS if getattr(args, name) is not None}
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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_files = [name for name in ("last.pt", "best.pt", "history.csv") if (args.out / name).exists()]
    if run_files and not (args.resume or args.overwrite):
        print(f"error: {args.out} holds a run ({', '.join(run_files)}): pass --resume to continue it, --overwrite to "
              "start again over it, or another --out", file=sys.stderr)
        return 2
    if args.measure_steps:
        return _measure(args)
    try:
        metrics = train(config_from_args(args), progress=not args.no_progress)
    except (ValueError, DatasetError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = _progress_kept(args.out)
        if not kept:
            raise  # nothing of this run was kept: the CLI says so
        # a checkpoint is written whole after each epoch and every --save-every-min inside one: what was done
        # is a run that resumes exactly
        print(f"interrupted: mtl-perception train stopped; {args.out}/last.pt holds {kept}: the same command with "
              "--resume continues", file=sys.stderr)
        return 130
    if metrics:
        print(f"final val: det map50={metrics['det']['map50']:.3f}  drivable miou={metrics['drivable']['miou']:.3f}"
              f"  lane iou={metrics['lane']['iou']:.3f}  (checkpoints in {args.out})")
    return 0


def _measure(args: argparse.Namespace) -> int:
    try:
        figures = measure_throughput(config_from_args(args), args.measure_steps)
    except (ValueError, DatasetError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"training throughput: {figures['frames_per_s']:.2f} frames/s over {args.measure_steps} steps of "
          f"{int(figures['batch'])} ({100 * figures['data_wait_share']:.0f} % waiting for data; "
          f"{int(figures['threads'])} torch threads, {int(figures['workers'])} loading processes, channels_last "
          f"{'on' if figures['channels_last'] else 'off'}, cache {args.cache or 'off'})")
    return 0


def _progress_kept(out: Path) -> str:
    """What a run folder's last.pt holds: "N epoch(s)", and the steps of the next one where it was saved inside
    it ("" where there is none, or it cannot be read)."""
    if not (out / "last.pt").is_file():
        return ""
    try:
        state = load_checkpoint(out / "last.pt")
    except CheckpointError:
        return ""
    done = int(state["epoch"]) + 1
    partial = state.get("partial")
    if partial:
        return f"{done} epoch(s) and {partial['steps']} step(s) of epoch {done + 1}"
    return f"{done} epoch(s)" if done else ""
