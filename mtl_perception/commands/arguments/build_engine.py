"""The options of mtl-perception build-engine: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/build_engine.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.defaults import NodeDefault
from mtl_perception.runtime.backends.base import CALIBRATION_ALGORITHMS, PRECISIONS, BackendOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="ONNX model")

    parser.add_argument("--precision", default=NodeDefault("precision"), choices=PRECISIONS,
                        help="fp16, int8 (with --calibration-dir) or fp32")
    parser.add_argument("--calibration-dir", type=Path, help="camera images for int8 calibration")
    parser.add_argument("--calibration-algorithm", default=NodeDefault("calibration_algorithm"),
                        choices=CALIBRATION_ALGORITHMS,
                        help="int8: entropy2 (TensorRT's default) or minmax")
    parser.add_argument("--cache-dir", type=Path, help="engine folder (default ~/.cache/mtl_perception/engines)")
    parser.add_argument("--workspace-mb", type=int, default=BackendOptions.workspace_mb,
                        help="TensorRT builder workspace")
