"""mtl-perception eval: score a model on a BDD100K-layout split, with the toolkit's and the peers' metrics,
on whichever of detection, drivable and lane labels the split has."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.commands.common import report
from mtl_perception.data.bdd100k import BDD100KSplit, DatasetError
from mtl_perception.evaluation.evaluator import Evaluator, format_summary
from mtl_perception.evaluation.tracking_eval import (
    TrackedFrame,
    box_track_frame,
    frame_positions,
    load_track_labels,
    score_tracks,
)
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.pipeline import FramePipeline, FrameResult
from mtl_perception.runtime.presets import (
    PEER_EVALUATION,
    deployed_backend,
    deployed_tracking,
    includes_alternative,
)


def run(args: argparse.Namespace) -> int:
    try:
        split = BDD100KSplit(args.data, args.split, include_alternative=includes_alternative(args.drivable), limit=args.limit,
                             require=())
        perception = Perception(PerceptionConfig.with_settings(
            args.model, deployed_backend(backend=args.backend, threads=args.threads), PEER_EVALUATION))
        evaluator = Evaluator(perception.info.class_names, args.operating_threshold, split.tasks, split.missing)
        track_truth = load_track_labels(split.paths.box_track) if split.paths.box_track.is_dir() else []
        positions = frame_positions(track_truth)
        # the frames of a video go through the frame pipeline, whose tracker (one per video) gives the IDs
        pipeline = FramePipeline(perception, GridSpec.from_node_defaults(), deployed_tracking())
        tracks: list[dict] = []
        for sample in tqdm(split, desc=f"eval {args.split}", unit="frame", disable=args.json == "-"):
            where = positions.get(sample.labels.name)
            if where is None:
                evaluator.add(perception.process(sample.image), sample.labels, sample.drivable, sample.lane)
                continue
            result = pipeline.process(sample.image, where.stamp_ns, camera=where.video)
            evaluator.add(result.outputs, sample.labels, sample.drivable, sample.lane)
            tracks.append(_tracked(result, sample.labels.name, where, perception.info.class_names))
        track_scores = score_tracks([f for f in track_truth if Path(f["name"]).name in
                                     {Path(t["name"]).name for t in tracks}], tracks) if tracks else None
    except (DatasetError, ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.save_tracks and tracks:
        atomic_write_text(args.save_tracks, json.dumps(tracks))
        print(f"{len(tracks)} frames of tracks (BDD100K box_track) -> {args.save_tracks}", file=sys.stderr)
    elif args.save_tracks:
        print(f"no tracks to save: {split.paths.box_track} holds no box_track labels of this split's frames",
              file=sys.stderr)
    if args.save_predictions:
        atomic_write_text(args.save_predictions, json.dumps([p.to_scalabel() for p in evaluator.predictions]))
        classes = ", ".join(perception.info.class_names)
        note = "" if evaluator.scores_bdd100k_classes else \
            f" (in the model's classes, {classes}: the BDD100K toolkit and score-det score det_20's classes only)"
        print(f"{len(evaluator.predictions)} frames of predictions -> {args.save_predictions}{note}", file=sys.stderr)
    summary = evaluator.summary()
    if track_scores is not None:
        summary["tracking"] = track_scores.summary()
    summary["model"] = str(args.model)
    summary["data"] = f"{args.data} [{args.split}]"
    report(summary, "" if args.json == "-" else format_summary(summary), args.json)
    return 0


def _tracked(result: FrameResult, name: str, where: TrackedFrame, class_names: Sequence[str]) -> dict:
    tracked = result.tracks
    if tracked is None:  # the frame failed in the pipeline: no boxes
        return box_track_frame(name, where.video, where.index, np.zeros((0, 4)), np.zeros(0), [], np.zeros(0, np.int64))
    detections = tracked.detections
    return box_track_frame(name, where.video, where.index, detections.boxes, detections.scores,
                           [class_names[int(c)] for c in detections.class_ids], tracked.track_ids,
                           where.stamp_ns // 1_000_000)
