"""mtl-perception score-det: score BDD100K/scalabel-format predictions against labels, as the toolkit does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", type=Path, required=True, help="ground truth: det_20 JSON (or scalabel frames)")
    parser.add_argument("--predictions", type=Path, required=True,
                        help="detections in the same format, each label with a score (eval --save-predictions)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="print the results as JSON instead of the table, or write them to FILE")


def run(args: argparse.Namespace) -> int:
    import json

    from mtl_perception.atomic_io import atomic_write_text
    from mtl_perception.data.bdd100k import DatasetError, load_frames
    from mtl_perception.evaluation.toolkit_det import format_scores, load_predictions, score_detections

    try:
        result = score_detections(load_frames(args.labels, "labels"), load_predictions(args.predictions))
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json == "-":
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(format_scores(result))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result.as_dict(), indent=2))
    return 0
