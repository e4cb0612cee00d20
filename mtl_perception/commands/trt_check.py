"""mtl-perception trt-check: would the TensorRT of each JetPack take this ONNX file? (no GPU needed)"""

from __future__ import annotations

import argparse
import sys

from mtl_perception.runtime.trt_readiness import build_needs, check_file, summary


def run(args: argparse.Namespace) -> int:
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
