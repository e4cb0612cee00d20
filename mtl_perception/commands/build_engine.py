"""mtl-perception build-engine: build and cache the TensorRT engine ahead of time (on the Jetson)."""

from __future__ import annotations

import argparse
import logging
import sys

from mtl_perception.runtime.backends import ModelLoadError, build_tensorrt_engine
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.presets import deployed_backend


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = deployed_backend(backend="tensorrt", precision=args.precision, engine_cache_dir=args.cache_dir,
                             calibration_dir=args.calibration_dir,
                             calibration_algorithm=args.calibration_algorithm, workspace_mb=args.workspace_mb)
    try:
        engine = build_tensorrt_engine(args.model, options)
    except (ModelLoadError, ModelContractError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"engine ready: {engine}")
    return 0
