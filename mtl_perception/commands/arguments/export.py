"""The options of mtl-perception export: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/export.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a training checkpoint (its EMA weights are exported)")
    source.add_argument("--backbone",
                        help="export random weights (for tests and benchmarks); the metadata says so")
    parser.add_argument("--img-size", help="input size HxW, multiples of 32 (default: the size the checkpoint was "
                                           "trained at; 384x640 for --backbone)")
    parser.add_argument("--out", type=Path, required=True, help="FILE.onnx")
    parser.add_argument("--keep-checkpoint", type=Path, metavar="FILE.pt",
                        help="with --checkpoint: also write the checkpoint a released model ships with, the "
                             "exported weights and their recipe (config, data, teachers, seeds), about a third of "
                             "a run's; `export --checkpoint FILE.pt` reproduces --out and `train --init-from "
                             "FILE.pt` fine-tunes it")
    parser.add_argument("--trained-on", metavar="TEXT",
                        help="with --checkpoint: what the model's trained_on metadata says (default: the "
                             "checkpoint's own record, its data folders and weights); kept in --keep-checkpoint, "
                             "so exporting that again reproduces it")
    parser.add_argument("--overwrite", action="store_true", help="replace --out (and --keep-checkpoint) if it exists")
    parser.add_argument("--classes", choices=["bdd10", "vehicle"], default="bdd10",
                        help="class set for --backbone (a checkpoint carries its own)")
