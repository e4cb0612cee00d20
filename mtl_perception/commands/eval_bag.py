"""mtl-perception eval-bag: replay a bag through the runtime offline; write results as a bag."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, required=True, help="input rosbag2 (sqlite3 or mcap)")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output bag folder to create")
    parser.add_argument("--topic", help="image topic (default: every image topic)")
    parser.add_argument("--labels", type=Path, help="BDD100K-layout root whose labels to score against")
    parser.add_argument("--split", default="val")
    parser.add_argument("--overlays", action="store_true", help="also write overlay images")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--score-threshold", type=float, default=0.3,
                        help="for the output bag; metrics use the peers' 0.001 when --labels is given")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from mtl_perception.data.bdd100k import DatasetError
    from mtl_perception.evaluation.bag_eval import LabelJoin, evaluate_bag
    from mtl_perception.evaluation.bags import BagError
    from mtl_perception.evaluation.evaluator import (
        PEER_MAX_DETECTIONS,
        PEER_NMS_IOU,
        PEER_SCORE_THRESHOLD,
        format_summary,
    )
    from mtl_perception.runtime.backends import BackendOptions, ModelLoadError
    from mtl_perception.runtime.contract import ModelContractError
    from mtl_perception.runtime.perception import Perception, PerceptionConfig

    try:
        labels = LabelJoin.load(args.bag, args.labels, args.split) if args.labels else None
        score, iou, max_det = (PEER_SCORE_THRESHOLD, PEER_NMS_IOU, PEER_MAX_DETECTIONS) if labels else \
            (args.score_threshold, 0.45, 100)
        perception = Perception(PerceptionConfig(args.model, BackendOptions(args.backend, threads=args.threads),
                                                 score, iou, max_det))
        summary = evaluate_bag(args.bag, perception, args.out, args.topic, labels, args.overlays, args.storage,
                               progress=not args.json)
    except (BagError, DatasetError, ModelLoadError, ModelContractError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        if args.out.exists():
            print(f"partial output kept in {args.out}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    lat = summary["latency_ms"]
    print(f"{summary['frames']} frames -> {args.out}; latency p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, "
          f"p99 {lat['p99']:.1f} ms")
    if "metrics" in summary:
        print(format_summary(summary["metrics"]))
    return 0
