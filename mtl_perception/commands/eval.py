"""mtl-perception eval: score a model on a BDD100K-layout split, with the toolkit's and the peers' metrics,
on whichever of detection, drivable and lane labels the split has."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_perception.commands.common import (
    add_backend_arguments,
    add_drivable_argument,
    add_split_argument,
    at_least_one,
    probability,
)
from mtl_perception.defaults import NodeDefault
from mtl_perception.runtime.presets import PEER_EVALUATION, includes_alternative


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="BDD100K-layout dataset root")
    add_split_argument(parser)
    parser.add_argument("--model", type=Path, required=True, help="ONNX model")
    add_backend_arguments(parser)
    parser.add_argument("--limit", type=at_least_one, help="evaluate the first N frames only")
    add_drivable_argument(parser)
    parser.add_argument("--operating-threshold", type=probability, default=NodeDefault("score_threshold"),
                        help="score threshold for the deployed precision/recall (the node's score_threshold)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the results as JSON instead of the table, or write them to FILE")
    parser.add_argument("--save-predictions", type=Path, metavar="FILE",
                        help="write the model's detections in BDD100K/scalabel format (for score-det or the "
                             "official evaluation)")


def run(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from mtl_perception.atomic_io import atomic_write_text
    from mtl_perception.commands.common import report
    from mtl_perception.data.bdd100k import BDD100KSplit, DatasetError
    from mtl_perception.evaluation.evaluator import Evaluator, format_summary
    from mtl_perception.runtime.backends import BackendOptions, ModelLoadError
    from mtl_perception.runtime.contract import ModelContractError
    from mtl_perception.runtime.perception import Perception, PerceptionConfig

    try:
        split = BDD100KSplit(args.data, args.split, include_alternative=includes_alternative(args.drivable), limit=args.limit,
                             require=())
        perception = Perception(PerceptionConfig.with_settings(
            args.model, BackendOptions(args.backend, threads=args.threads), PEER_EVALUATION))
        evaluator = Evaluator(perception.info.class_names, args.operating_threshold, split.tasks, split.missing)
        for sample in tqdm(split, desc=f"eval {args.split}", unit="frame", disable=args.json == "-"):
            evaluator.add(perception.process(sample.image), sample.labels, sample.drivable, sample.lane)
    except (DatasetError, ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.save_predictions:
        atomic_write_text(args.save_predictions, json.dumps([p.to_scalabel() for p in evaluator.predictions]))
        classes = ", ".join(perception.info.class_names)
        note = "" if evaluator.scores_bdd100k_classes else \
            f" (in the model's classes, {classes}: the BDD100K toolkit and score-det score det_20's classes only)"
        print(f"{len(evaluator.predictions)} frames of predictions -> {args.save_predictions}{note}", file=sys.stderr)
    summary = evaluator.summary()
    summary["model"] = str(args.model)
    summary["data"] = f"{args.data} [{args.split}]"
    report(summary, "" if args.json == "-" else format_summary(summary), args.json)
    return 0
