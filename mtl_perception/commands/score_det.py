"""mtl-perception score-det: score BDD100K/scalabel-format predictions against labels, as the toolkit does."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.data.bdd100k import DETECTION_CLASSES, DatasetError, load_frames
from mtl_perception.evaluation.toolkit_det import format_scores, load_predictions, score_detections


def run(args: argparse.Namespace) -> int:
    try:
        predictions = load_predictions(args.predictions)
        labels = load_frames(args.labels, "labels")
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # the toolkit scores det_20's classes; anything else (a merged "vehicle" model's boxes) would score zero
    categories = Counter(c for frame in predictions for c in frame.categories)
    foreign = {c: n for c, n in categories.items() if c not in DETECTION_CLASSES}
    if foreign:
        listed = ", ".join(f"{c!r} x{n}" for c, n in sorted(foreign.items()))
        if len(foreign) == len(categories):
            print(f"error: {args.predictions}: no prediction is of a BDD100K det_20 class ({listed}); the toolkit "
                  "scores those classes only. Score a merged-vehicle model with `mtl-perception eval` (the peers' "
                  "vehicle mAP@0.5)", file=sys.stderr)
            return 2
        print(f"warning: {args.predictions}: categories that are not BDD100K det_20 classes are not scored: {listed}",
              file=sys.stderr)
    result = score_detections(labels, predictions)
    if args.json == "-":
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(format_scores(result))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result.as_dict(), indent=2))
    return 0
