"""mtl-perception trt-check: would the TensorRT of each JetPack take this ONNX file? (no GPU needed)"""

from __future__ import annotations

import argparse
import sys
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


def run(args: argparse.Namespace) -> int:
    from mtl_perception.runtime.trt_readiness import build_needs, check_file, summary

    if not args.model.is_file():
        print(f"error: model file {args.model} not found", file=sys.stderr)
        return 2
    try:
        results = check_file(args.model, args.trt)
        needs = build_needs(args.model, args.workspace_mb, args.trt)
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - onnx raises several types for a file that is not a model
        print(f"error: {args.model} is not a readable ONNX model ({type(err).__name__}: {err})", file=sys.stderr)
        return 2
    print(f"{args.model}:")
    print(summary(results))
    for version, need in needs.items():
        print(f"  TensorRT {version}: {need}")
    return 1 if any(results.values()) else 0
