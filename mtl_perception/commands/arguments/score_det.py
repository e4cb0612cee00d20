"""The options of mtl-perception score-det: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/score_det.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", type=Path, required=True, help="ground truth: det_20 JSON (or scalabel frames)")
    parser.add_argument("--predictions", type=Path, required=True,
                        help="detections in the same format, each label with a score (eval --save-predictions)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the results as JSON instead of the table, or write them to FILE")
