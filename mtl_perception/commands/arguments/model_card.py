"""The options of mtl-perception model-card: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/model_card.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbones", help="comma-separated (default: every backbone the network has)")
    parser.add_argument("--img-size", default="384x640", help="HxW (default 384x640, as Table II)")
    parser.add_argument("--model", type=Path, metavar="FILE",
                        help="a checkpoint (.pt: its network, counted exactly) or an exported .onnx (parameters, "
                             "size and input; no FLOPs) instead of the built-in backbones")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
