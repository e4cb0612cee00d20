"""mtl-perception eval-ground: the drivable grid and the lane markings on the road, against a synthetic
split's ground truth in metres. Runs once with the split's own masks (the geometry alone) and, with
--model, once with the model's. On a split of drives (synth --drive-frames) the scene over time too: tracks, the
road users' distances and the ego lane, from the labelled boxes and masks and from the model
(evaluation/scene_eval.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_bytes
from mtl_perception.commands.common import report
from mtl_perception.data.bdd100k import BDD100KSplit, DatasetError
from mtl_perception.data.ground_truth import load_ground_truth
from mtl_perception.evaluation.ground_eval import (
    DISTANCES_M,
    IOU_RANGE_M,
    SURROUND_GRID,
    GroundScores,
    SurroundScores,
)
from mtl_perception.evaluation.scene_eval import DISTANCE_BANDS_M, SceneEvaluator, band_name
from mtl_perception.evaluation.tracking_eval import load_track_labels
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import GridSpec, GroundGrid, fuse_occupancy
from mtl_perception.runtime.lane_markings import MarkingExtractor
from mtl_perception.runtime.overlay import draw_birdseye, draw_overlay
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.pipeline import FramePipeline
from mtl_perception.runtime.presets import deployed, deployed_backend, deployed_tracking, includes_alternative

if TYPE_CHECKING:  # for annotations only
    from mtl_perception.data.bdd100k import Sample
    from mtl_perception.data.ground_truth import FrameGround
    from mtl_perception.data.rig import RigScene
    from mtl_perception.runtime.perception import PerceptionResult


def run(args: argparse.Namespace) -> int:
    if args.rig:
        return _run_rig(args)
    try:
        split = BDD100KSplit(args.data, args.split, include_alternative=includes_alternative(args.drivable), limit=args.limit,
                             require=("detection", "drivable", "lane"))
        truth = load_ground_truth(split.paths)
        perception = None
        if args.model:
            perception = Perception(PerceptionConfig.with_settings(
                args.model, deployed_backend(backend=args.backend, threads=args.threads), deployed()))
        alternative = includes_alternative(args.drivable)
        runs = {"ground_truth_masks": GroundScores(alternative)}
        if perception is not None:
            runs["model"] = GroundScores(alternative)
        drives = None
        if split.paths.box_track.is_dir():
            grid = GridSpec.from_node_defaults()
            pipeline = FramePipeline(perception, grid, deployed_tracking()) if perception is not None else None
            drives = SceneEvaluator(load_track_labels(split.paths.box_track), pipeline, grid)
        for index, sample in enumerate(tqdm(split, desc=f"eval-ground {args.split}", unit="frame",
                                            disable=args.json == "-")):
            ground = truth.get(sample.labels.name)
            if ground is None:
                raise DatasetError(f"{sample.labels.name} has no entry in the split's ground truth")
            assert sample.drivable is not None and sample.lane is not None  # required above
            boxes = sample.labels.boxes
            runs["ground_truth_masks"].add(ground, sample.drivable, sample.lane, boxes)
            if drives is not None and drives.covers(sample.labels.name):
                through = drives.add(sample.labels.name, sample.image, sample.lane, ground)
                result = through.outputs if through is not None else None
            else:
                result = perception.process(sample.image) if perception is not None else None
            if result is not None:
                runs["model"].add(ground, result.drivable, result.lane, boxes)
            if index == 0 and args.picture:
                _picture(args.picture, sample, ground, result)
    except (DatasetError, ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary: dict = {name: scores.summary() for name, scores in runs.items()}
    if drives is not None:
        summary["scene"] = drives.summary()
    summary["data"] = f"{args.data} [{args.split}]"
    summary["drivable"] = args.drivable
    if args.model:
        summary["model_path"] = str(args.model)
    table = _table(runs) + ("\n\n" + _scene_table(summary["scene"]) if drives is not None else "")
    report(summary, "" if args.json == "-" else table, args.json)
    return 0


def _scene_table(scene: dict) -> str:
    """The scene over time, a row per run: tracking, distance errors by band, the ego lane."""
    def cell(value: float | None, percent: bool = False) -> str:
        return "-" if value is None else f"{100 * value:.1f} %" if percent else f"{value:.3f}"

    bands = [band_name(b) for b in DISTANCE_BANDS_M]
    lines = ["| run | mMOTA | mIDF1 | IDF1 | IDSw/100 fr | " + " | ".join(f"distance error {b} (median)" for b in bands)
             + " | ego lane found | boundary error 10 m / 20 m | offset error |",
             "|---" * (8 + len(bands)) + "|"]
    for name, run in scene.items():
        track, lane = run.get("tracking", {}), run["ego_lane"]
        errors = run["distance_relative_error"]
        lines.append(f"| {name} | {track.get('mMOTA', 0):.1f} | {track.get('mIDF1', 0):.1f} | {track.get('IDF1', 0):.1f} | "
                     f"{track.get('IDSw_per_100_frames', 0):.1f} | "
                     + " | ".join(f"{cell(errors[b]['median'], True)} ({errors[b]['objects']})" for b in bands)
                     + f" | {cell(lane['found'], True)} | {cell(lane['boundary_error_10m_median'])} / "
                       f"{cell(lane['boundary_error_20m_median'])} m | {cell(lane['offset_error_median'])} m |")
    return "\n".join(lines)


def _table(runs: dict) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"{'masks':<20}{'IoU 5-30 m':>24}" + "".join(f"{f'lateral error {d} m':>28}" for d in DISTANCES_M),
             f"{'':<20}{'median / p10':>24}" + "".join(f"{'median / p90 / recall':>28}" for _ in DISTANCES_M)]
    for name, scores in runs.items():
        s = scores.summary()
        row = f"{name:<20}{cell(s['iou_median']) + ' / ' + cell(s['iou_p10']):>24}"
        for d in DISTANCES_M:
            text = " / ".join(cell(s[k]) for k in (f"lateral_error_{d}m_median", f"lateral_error_{d}m_p90",
                                                    f"marking_recall_{d}m"))
            row += f"{text:>28}"
        lines.append(row)
    return "\n".join(lines)


def _picture(path: Path, sample: Sample, ground: FrameGround, result: PerceptionResult | None) -> None:
    """Camera view with masks beside the grid and markings from above, from the model where there is one."""
    drivable, lane = (result.drivable, result.lane) if result is not None else (sample.drivable, sample.lane)
    assert drivable is not None and lane is not None  # eval-ground requires both label kinds
    spec = GridSpec.from_node_defaults()
    occupancy = GroundGrid(ground.intrinsics, ground.pose, spec).occupancy(drivable)
    markings = MarkingExtractor(ground.intrinsics, ground.pose, spec).markings(lane)
    view = draw_overlay(sample.image, np.zeros((0, 4)), [], drivable, lane)
    top = draw_birdseye(occupancy, spec, markings, height=view.shape[0])
    ok, png = cv2.imencode(".png", np.hstack([view, top]))
    if not ok:
        raise OSError(f"could not encode {path}")
    atomic_write_bytes(path, png.tobytes())


def _run_rig(args: argparse.Namespace) -> int:
    """--rig: each scene's three views through the model as one batch (as perception_node runs its cameras),
    each camera's grid and the fused one against the road's truth; the rig's own masks give the geometry's
    share of the error."""
    from mtl_perception.data.rig import DEFAULT_RIG, render_rig

    alternative = includes_alternative(args.drivable)
    runs = {"ground_truth_masks": SurroundScores(alternative)}
    try:
        perception = None
        if args.model:
            perception = Perception(PerceptionConfig.with_settings(
                args.model, deployed_backend(backend=args.backend, threads=args.threads, max_batch=len(DEFAULT_RIG)),
                deployed()))
            runs["model"] = SurroundScores(alternative)
        for index in tqdm(range(args.rig), desc="eval-ground rig", unit="scene", disable=args.json == "-"):
            scene = render_rig(np.random.default_rng(args.seed + index))
            views = scene.views
            grids = {name: GroundGrid(view.truth.intrinsics, view.truth.pose, SURROUND_GRID) for name, view in
                     views.items()}
            masks = {name: (view.drivable, view.lane) for name, view in views.items()}
            occupancy = {name: grids[name].occupancy(drivable) for name, (drivable, _) in masks.items()}
            runs["ground_truth_masks"].add(scene.road, occupancy)
            if perception is not None:
                raws = perception.infer_batch([view.image for view in views.values()])
                masks = {name: perception.masks(raw) for name, raw in zip(views, raws)}
                occupancy = {name: grids[name].occupancy(drivable) for name, (drivable, _) in masks.items()}
                runs["model"].add(scene.road, occupancy)
            if index == 0 and args.picture:  # the model's masks where there is one, else the rig's
                _rig_picture(args.picture, scene, masks, occupancy)
    except (ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary: dict = {name: scores.summary() for name, scores in runs.items()}
    summary["data"] = f"synthetic rig ({', '.join(c.name for c in DEFAULT_RIG)}), {args.rig} scenes from seed {args.seed}"
    summary["drivable"] = args.drivable
    summary["how"] = (f"grid {SURROUND_GRID.resolution} m cells, x {IOU_RANGE_M[0]:g}-{IOU_RANGE_M[1]:g} m, "
                      f"|y| <= {SURROUND_GRID.y_half:g} m; IoU over the cells a grid knows, coverage: the share "
                      "it knows; fused: unknown until a camera sees a cell, not drivable where they disagree")
    if args.model:
        summary["model_path"] = str(args.model)
    report(summary, "" if args.json == "-" else _rig_table(runs), args.json)
    return 0


def _rig_table(runs: dict[str, SurroundScores]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    names = list(next(iter(runs.values())).coverage)
    lines = [f"{'masks':<20}" + "".join(f"{name + ' IoU / coverage':>30}" for name in names)]
    for run_name, scores in runs.items():
        s = scores.summary()
        lines.append(f"{run_name:<20}" + "".join(
            f"{cell(s[n]['iou_mean']) + ' / ' + cell(s[n]['coverage_mean']):>30}" for n in names))
    return "\n".join(lines)


def _rig_picture(path: Path, scene: RigScene, masks: dict[str, tuple[np.ndarray, np.ndarray]],
                 occupancy: dict[str, np.ndarray]) -> None:
    """The rig's views with their (drivable, lane) masks beside the fused grid of their occupancy, from above."""
    strip = np.hstack([draw_overlay(view.image, np.zeros((0, 4)), [], *masks[name])
                       for name, view in scene.views.items()])
    top = draw_birdseye(fuse_occupancy(list(occupancy.values())), SURROUND_GRID, [], height=strip.shape[0])
    ok, png = cv2.imencode(".png", np.hstack([strip, top]))
    if not ok:
        raise OSError(f"could not encode {path}")
    atomic_write_bytes(path, png.tobytes())
