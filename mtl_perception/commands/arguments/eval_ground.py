"""The options of mtl-perception eval-ground: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/eval_ground.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import (
    add_backend_arguments,
    add_drivable_argument,
    add_split_argument,
    at_least_one,
    non_negative,
    picture_file,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="synthetic dataset root (mtl-perception synth)")
    source.add_argument("--rig", type=at_least_one, metavar="SCENES",
                        help="score the surround grid instead: SCENES roads seen by a synthetic rig (front, "
                             "front_left and front_right at +-45 deg), each camera's grid and the fused one")
    parser.add_argument("--seed", type=non_negative, default=0, help="with --rig: the first scene's seed (then +1 each)")
    add_split_argument(parser)
    parser.add_argument("--model", type=Path, help="ONNX model; without it only the geometry run is made")
    add_backend_arguments(parser)
    parser.add_argument("--limit", type=at_least_one, help="evaluate the first N frames only")
    add_drivable_argument(parser)
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the results as JSON instead of the table, or write them to FILE")
    parser.add_argument("--picture", type=picture_file, metavar="PNG",
                        help="also draw the first frame's camera view beside its grid and markings from above")
