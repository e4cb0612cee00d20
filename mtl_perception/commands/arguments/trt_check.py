"""The options of mtl-perception trt-check: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/trt_check.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.runtime.backends.base import BackendOptions
from mtl_perception.runtime.trt_readiness import TRT_VERSIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="an ONNX file")
    parser.add_argument("--trt", nargs="+", choices=TRT_VERSIONS, default=list(TRT_VERSIONS),
                        help="TensorRT versions to check against (default: all that JetPack ships)")
    parser.add_argument("--workspace-mb", type=int, default=BackendOptions.workspace_mb,
                        help="the builder workspace the build will be given (build-engine --workspace-mb; "
                             "default: %(default)s)")
