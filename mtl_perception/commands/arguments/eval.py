"""The options of mtl-perception eval: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/eval.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import (
    add_backend_arguments,
    add_drivable_argument,
    add_split_argument,
    at_least_one,
    probability,
)
from mtl_perception.defaults import NodeDefault


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="BDD100K-layout dataset root")
    add_split_argument(parser)
    parser.add_argument("--model", type=Path, required=True, help="ONNX model")
    add_backend_arguments(parser)
    parser.add_argument("--limit", type=at_least_one, help="evaluate the first N frames only")
    add_drivable_argument(parser)
    parser.add_argument("--operating-threshold", type=probability, default=NodeDefault("score_threshold"),
                        help="score threshold for the deployed precision/recall (the node's score_threshold)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the results as JSON instead of the table, or write them to FILE")
    parser.add_argument("--save-tracks", type=Path, metavar="FILE",
                        help="where the split has box_track labels (labels/box_track_20/SPLIT, e.g. synth "
                             "--drive-frames): write the tracks in BDD100K's box_track format, as "
                             "`python -m bdd100k.eval.run -t box_track` reads results")
    parser.add_argument("--save-predictions", type=Path, metavar="FILE",
                        help="write the model's detections in BDD100K/scalabel format (for score-det or the "
                             "official evaluation)")
