"""mtl-perception eval: score a model on a BDD100K-layout split, with the toolkit's and the peers' metrics,
on whichever of detection, drivable and lane labels the split has."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.commands.common import report
from mtl_perception.data.bdd100k import BDD100KSplit, DatasetError
from mtl_perception.evaluation.evaluator import Evaluator, format_summary
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.presets import PEER_EVALUATION, deployed_backend, includes_alternative


def run(args: argparse.Namespace) -> int:
    try:
        split = BDD100KSplit(args.data, args.split, include_alternative=includes_alternative(args.drivable), limit=args.limit,
                             require=())
        perception = Perception(PerceptionConfig.with_settings(
            args.model, deployed_backend(backend=args.backend, threads=args.threads), PEER_EVALUATION))
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
