"""The options of mtl-perception bench: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/bench.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import (
    at_least_one,
    comma_separated,
    model_size,
    positive_seconds,
    thread_count,
)
from mtl_perception.runtime.backends import BACKENDS
from mtl_perception.training.head_options import SEG_HEADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbones", help="comma-separated (default: every backbone the network has)")
    parser.add_argument("--model", type=Path, metavar="FILE",
                        help="a checkpoint (.pt: its network, exported at each of --sizes) or an exported .onnx "
                             "(timed at its own input size) instead of the built-in backbones")
    parser.add_argument("--seg-head", choices=SEG_HEADS, default="stride2",
                        help="the built-in networks' segmentation heads: stride2 (a stage at stride 2) or stride4 "
                             "(decoded at stride 4, one final resize: the bundled model's)")
    parser.add_argument("--sizes", type=comma_separated(model_size), default="256x384,256x512,384x640,768x1280",
                        help="input sizes HxW, comma-separated (Table III's)")

    parser.add_argument("--peer", metavar="NAME",
                        help="also time a peer's network at each size, in turn with ours in the same rounds, and "
                             "print how many times faster ours is (yolop: YOLOP's published layers, random "
                             "weights, exported as YOLOP exports itself; ONNX Runtime only)")
    parser.add_argument("--backend", default="onnxruntime", choices=[b for b in BACKENDS if b != "auto"],
                        help="the backend timed")
    parser.add_argument("--threads", type=thread_count, default=2, help="ONNX Runtime threads (default 2)")
    parser.add_argument("--runs", type=at_least_one, default=20, help="timed runs per model, after 3 warm-up runs")
    parser.add_argument("--max-seconds", type=positive_seconds, default=60.0, help="time budget per model")
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="folder for JSON, table and plot")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
