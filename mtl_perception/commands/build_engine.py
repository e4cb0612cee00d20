"""mtl-perception build-engine: build and cache the TensorRT engine ahead of time (on the Jetson)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="ONNX model")
    from mtl_perception.defaults import NodeDefault
    from mtl_perception.runtime.backends.base import CALIBRATION_ALGORITHMS, PRECISIONS, BackendOptions

    parser.add_argument("--precision", default=NodeDefault("precision"), choices=PRECISIONS,
                        help="fp16, int8 (with --calibration-dir) or fp32")
    parser.add_argument("--calibration-dir", type=Path, help="camera images for int8 calibration")
    parser.add_argument("--calibration-algorithm", default=NodeDefault("calibration_algorithm"),
                        choices=CALIBRATION_ALGORITHMS,
                        help="int8: entropy2 (TensorRT's default) or minmax")
    parser.add_argument("--cache-dir", type=Path, help="engine folder (default ~/.cache/mtl_perception/engines)")
    parser.add_argument("--workspace-mb", type=int, default=BackendOptions.workspace_mb,
                        help="TensorRT builder workspace")


def run(args: argparse.Namespace) -> int:
    import logging

    from mtl_perception.runtime.backends import BackendOptions, ModelLoadError, load_backend
    from mtl_perception.runtime.contract import ModelContractError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = BackendOptions("tensorrt", args.precision, engine_cache_dir=args.cache_dir,
                             calibration_dir=args.calibration_dir,
                             calibration_algorithm=args.calibration_algorithm, workspace_mb=args.workspace_mb)
    try:
        backend = load_backend(args.model, options)
    except (ModelLoadError, ModelContractError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"engine ready: {getattr(backend, 'engine_path', '?')} ({backend.name})")
    return 0
