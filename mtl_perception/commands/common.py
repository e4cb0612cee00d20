"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mtl_perception.defaults import NodeDefault
from mtl_perception.runtime.backends.base import MAX_THREADS
from mtl_perception.runtime.contract import check_input_size

T = TypeVar("T")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help shows every option's default: argparse's ArgumentDefaultsHelpFormatter, less the defaults that
    say nothing (None, False, an empty list) and those a help text already states."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        says_nothing = action.default is None or action.default is False or action.default == [] or \
            action.default == argparse.SUPPRESS  # (0 is a default worth showing: not `in (None, False)`)
        if "default" in text or says_nothing or not (action.option_strings or action.nargs in ("?", "*")):
            return text
        return f"{text} (default: %(default)s)".lstrip()


def add_backend_arguments(parser: argparse.ArgumentParser, threads: int = 0, help_threads: str = "") -> None:
    """--backend and --threads for the commands that run a model (one definition of each)."""
    from mtl_perception.runtime.backends import BACKENDS

    parser.add_argument("--backend", default=NodeDefault("backend"), choices=BACKENDS,
                        help="auto: TensorRT where it is installed (a Jetson), else ONNX Runtime")
    parser.add_argument("--threads", type=thread_count, default=threads,
                        help=help_threads or f"ONNX Runtime CPU threads (0: its default, 1-{MAX_THREADS})")


def add_split_argument(parser: argparse.ArgumentParser, default: str = "val") -> None:
    parser.add_argument("--split", default=default, help="the split of the BDD100K layout: train or val")


def add_drivable_argument(parser: argparse.ArgumentParser) -> None:
    """--drivable for every command that trains or scores the drivable head (one definition's default)."""
    from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, DRIVABLE_DEFINITIONS

    parser.add_argument("--drivable", choices=DRIVABLE_DEFINITIONS, default=DRIVABLE_DEFINITION,
                        help="what counts as drivable: BDD100K's direct and alternative areas merged (the default: "
                             "the peers' definition, the teachers' and the bundled model's), or the direct area "
                             "(ego lane) alone")


# argparse types: a nonsensical number is refused by argparse, in one line naming the option, before any work
def thread_count(text: str) -> int:
    """ONNX Runtime threads: 0 (its default) to MAX_THREADS, as the node bounds them."""
    value = _integer(text)
    if not 0 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value}: threads must lie in 0..{MAX_THREADS} (0: ONNX Runtime's default)")
    return value


def at_least_one(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return value


def positive_seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value}: must be more than 0 seconds")
    return value


def picture_file(text: str) -> Path:
    """A picture to write: a file name, in a folder that exists (checked before any work, so a long run does
    not fail at its end)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name, e.g. {path / 'picture.png'}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {path.parent} does not exist")
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise argparse.ArgumentTypeError(f"{text}: give a .png or .jpg file name")
    return path


def probability(text: str) -> float:
    """A score or IoU threshold: a finite number in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value}: must lie in [0, 1]")
    return value


def rate_hz(text: str) -> float:
    """A frame rate: finite, from one frame in 1000 s to 1000 frames a second."""
    value = _number(text)
    if not 1e-3 <= value <= 1e3:
        raise argparse.ArgumentTypeError(f"{value}: a rate must lie in [0.001, 1000] Hz")
    return value


def model_size(text: str) -> tuple[int, int]:
    """A model's input size HxW, as the contract takes it (multiples of 32)."""
    try:
        return parse_hw(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def camera_size(text: str) -> tuple[int, int]:
    """A camera's frame size HxW (any positive size: the model's input rules do not apply)."""
    try:
        return parse_hw(text, model_input=False)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def comma_separated(item: Callable[[str], T]) -> Callable[[str], list[T]]:
    """An argparse type for a comma-separated list, each entry read by `item` (whose error names the entry)."""
    def parse(text: str) -> list[T]:
        return [item(entry.strip()) for entry in text.split(",")]

    return parse


def camera_pose_values(text: str) -> tuple[float, ...]:
    """--camera-pose X,Y,Z,ROLL,PITCH,YAW: the camera in the vehicle frame (m, rad, REP 103; the node's
    camera_pose)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"takes 6 numbers x,y,z,roll,pitch,yaw (m, rad), got {text!r}")
    return values


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: not a finite number")
    return value


def parse_hw(text: str, model_input: bool = True) -> tuple[int, int]:
    """'384x640' -> (384, 640). A model input size must follow the contract (multiples of 32); any other
    size (a camera's) just has to be positive."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not HxW, e.g. 384x640") from None
    if model_input:
        check_input_size(height, width)
    elif height <= 0 or width <= 0:
        raise ValueError(f"size {text!r}: height and width must be positive")
    return height, width


def report(summary: Mapping[str, Any], table: str, json_target: str | None) -> None:
    """A command's result: JSON on stdout for `--json` alone (`-`), else the table, and with `--json FILE`
    the JSON written to FILE too (atomically)."""
    import json

    from mtl_perception.atomic_io import atomic_write_text

    if json_target == "-":
        print(json.dumps(summary, indent=2))
        return
    print(table)
    if json_target:
        atomic_write_text(Path(json_target), json.dumps(summary, indent=2))
