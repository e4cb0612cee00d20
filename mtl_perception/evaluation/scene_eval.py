"""The scene over time against a synthetic drive's truth in metres: the tracks, the road users' distances and the
ego lane (eval-ground on a split of drives, `synth --drive-frames`).

Two runs share what is here: the labelled boxes fed to the tracker and the geometry as detections (what tracking
and placement make of perfect boxes, the figures they answer for alone), and a model's frames through the frame
pipeline.
- tracking: BDD100K's box_track figures (evaluation/tracking_eval.py) of the boxes confirmed tracks hold;
- distances: each placed road user is matched to a labelled one (by its own id with the labelled boxes; by IoU
  >= 0.5 with a model's boxes), and the distance of its contact point from the car is compared with the truth's:
  relative error by the truth's distance band (5-15, 15-30, 30-40 m); riders are left out (UNSCORED_PLACES);
- the ego lane: per frame whether it was found, each boundary's lateral error at 10 and 20 m where both lanes
  exist, the error of the car's offset from the centre, and the departure flag against the one the same
  thresholds give on the true lane.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_perception.data.ground_truth import FrameGround, lateral
from mtl_perception.evaluation.tracking_eval import (
    TRACK_CLASSES,
    box_track_frame,
    frame_positions,
    score_tracks,
)
from mtl_perception.runtime.ego_lane import EgoLane, EgoLaneSettings, EgoLaneTracker
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.ground_objects import GroundObjects, place_on_ground
from mtl_perception.runtime.lane_markings import RoadProjection
from mtl_perception.runtime.pipeline import CameraGeometry, FramePipeline, FrameResult
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.presets import deployed_tracking
from mtl_perception.runtime.tracking import ByteTracker, iou_matrix

DISTANCE_BANDS_M = ((5.0, 15.0), (15.0, 30.0), (30.0, 40.0))
LANE_DISTANCES_M = (10, 20)
MATCH_IOU = 0.5
# a rider's box ends at the saddle, not on the road: it is placed from the two-wheeler's box under it where that
# is seen (runtime/ground_objects.py), and its own box otherwise, so its distance says little of the placement
UNSCORED_PLACES = ("rider",)


def band_name(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}m"


def true_departure(truth: FrameGround, settings: EgoLaneSettings) -> str:
    """The departure flag the distance threshold gives on the true lane (the truth has no lateral speed: the
    drives keep the car's place in its lane)."""
    half = 0.5 * settings.vehicle_width_m
    if truth.ego_left[0] - half < settings.departure_distance_m:
        return "left"
    if -truth.ego_right[0] - half < settings.departure_distance_m:
        return "right"
    return ""


def labelled_boxes(frame: dict) -> tuple[np.ndarray, list[str], list[str]]:
    """A box_track frame's boxed labels: float32[N, 4] x1, y1, x2, y2, their categories and their ids."""
    labels = [label for label in frame.get("labels") or [] if "box2d" in label]
    boxes = np.array([[label["box2d"][k] for k in ("x1", "y1", "x2", "y2")] for label in labels],
                     np.float32).reshape(-1, 4)
    return boxes, [label["category"] for label in labels], [str(label["id"]) for label in labels]


def match_by_box(predicted: np.ndarray, labelled: np.ndarray) -> list[int | None]:
    """For each predicted box (float[N, 4]), the index of the labelled box it matches one to one at IoU >=
    MATCH_IOU, or None."""
    from scipy.optimize import linear_sum_assignment

    out: list[int | None] = [None] * len(predicted)
    iou = iou_matrix(predicted, labelled)
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if iou[r, c] >= MATCH_IOU:
                out[r] = c
    return out


@dataclass
class SceneScores:
    """Accumulates a run's frames; summary() gives the figures."""

    settings: EgoLaneSettings = field(default_factory=EgoLaneSettings)
    distance_errors: dict[str, list[float]] = field(default_factory=lambda: {band_name(b): [] for b in DISTANCE_BANDS_M})
    lane_frames: int = 0
    lane_found: int = 0
    boundary_errors: dict[int, list[float]] = field(default_factory=lambda: {d: [] for d in LANE_DISTANCES_M})
    offset_errors: list[float] = field(default_factory=list)
    departures: dict[str, int] = field(default_factory=lambda: {"agree": 0, "missed": 0, "false": 0})
    truth_tracks: list[dict] = field(default_factory=list)
    predicted_tracks: list[dict] = field(default_factory=list)

    def add_objects(self, truth: FrameGround, objects: GroundObjects, truth_ids: Sequence[str | None]) -> None:
        """objects: the frame's placed road users; truth_ids: per detection of the frame (what objects.indices
        index), the id of the labelled object it is, or None."""
        self.add_placed(truth, [(truth_ids[index], (float(objects.contacts[row, 0]), float(objects.contacts[row, 1])))
                                for row, index in enumerate(objects.indices.tolist())])

    def add_placed(self, truth: FrameGround, placed: Sequence[tuple[str | None, tuple[float, float]]]) -> None:
        """placed: (the labelled object's id or None, the contact point placed for it) per road user."""
        places = {o.track_id: o for o in truth.objects}
        for found, contact in placed:
            if found is None or found not in places or places[found].category in UNSCORED_PLACES:
                continue
            true_distance = math.hypot(*places[found].contact)
            distance = math.hypot(*contact)
            for band in DISTANCE_BANDS_M:
                if band[0] <= true_distance < band[1]:
                    self.distance_errors[band_name(band)].append(abs(distance - true_distance) / true_distance)

    def add_lane(self, truth: FrameGround, lane: EgoLane | None) -> None:
        self.lane_frames += 1
        predicted_departure = lane.departure if lane is not None and lane.valid else ""
        actual = true_departure(truth, self.settings)
        if predicted_departure == actual:
            self.departures["agree"] += 1
        elif predicted_departure:
            self.departures["false"] += 1
        else:
            self.departures["missed"] += 1
        if lane is None or not lane.valid or lane.left is None or lane.right is None:
            return
        self.lane_found += 1
        for x in LANE_DISTANCES_M:
            self.boundary_errors[x] += [abs(float(lane.left.lateral_at(x)) - float(lateral(truth.ego_left, x))),
                                        abs(float(lane.right.lateral_at(x)) - float(lateral(truth.ego_right, x)))]
        self.offset_errors.append(abs(lane.offset_m + 0.5 * (truth.ego_left[0] + truth.ego_right[0])))

    def add_tracks(self, truth_frame: dict, predicted_frame: dict) -> None:
        self.truth_tracks.append(truth_frame)
        self.predicted_tracks.append(predicted_frame)

    def summary(self) -> dict:
        out: dict = {}
        if self.truth_tracks:
            out["tracking"] = score_tracks(self.truth_tracks, self.predicted_tracks).summary()
        out["distance_relative_error"] = {
            band: {"median": _stat(errors, np.median), "p90": _stat(errors, lambda a: np.percentile(a, 90)),
                   "objects": len(errors)}
            for band, errors in self.distance_errors.items()}
        every = [e for errors in self.distance_errors.values() for e in errors]
        out["distance_relative_error_5_40m_median"] = _stat(every, np.median)
        out["ego_lane"] = {
            "frames": self.lane_frames,
            "found": self.lane_found / self.lane_frames if self.lane_frames else None,
            **{f"boundary_error_{x}m_median": _stat(self.boundary_errors[x], np.median) for x in LANE_DISTANCES_M},
            **{f"boundary_error_{x}m_p90": _stat(self.boundary_errors[x], lambda a: np.percentile(a, 90))
               for x in LANE_DISTANCES_M},
            "offset_error_median": _stat(self.offset_errors, np.median),
            "departure_flags": dict(self.departures),
        }
        return out


def _stat(values: Sequence[float], how: object) -> float | None:
    return round(float(how(np.asarray(values))), 4) if len(values) else None  # type: ignore[operator]


class SceneEvaluator:
    """The two runs over a split of drives: the labelled boxes and lane masks ("labels") and, with a pipeline, a
    model's frames ("model"). Frames come in their videos' order; each video has its own tracker and ego lane,
    timed by the labels' timestamps."""

    def __init__(self, track_frames: list[dict], pipeline: FramePipeline | None, grid: GridSpec) -> None:
        self.frames = {Path(f["name"]).name: f for f in track_frames}
        self.positions = frame_positions(track_frames)
        self.pipeline, self.grid = pipeline, grid
        self.runs = {"labels": SceneScores()} if pipeline is None else {"labels": SceneScores(), "model": SceneScores()}
        self._trackers: dict[str, ByteTracker] = {}
        self._lanes: dict[str, EgoLaneTracker] = {}
        self._roads: dict[tuple, RoadProjection] = {}

    def covers(self, name: str) -> bool:
        return name in self.positions

    def add(self, name: str, image: np.ndarray, lane_mask: np.ndarray, truth: FrameGround) -> FrameResult | None:
        """One frame of a drive; returns the model's result (for the masks' own scores), None without a model."""
        where, labelled = self.positions[name], self.frames[name]
        boxes, categories, ids = labelled_boxes(labelled)
        detections = Detections(boxes, np.ones(len(ids), np.float32),
                                np.array([TRACK_CLASSES.index(c) for c in categories], np.int64))
        tracker = self._trackers.setdefault(where.video, ByteTracker(deployed_tracking()))
        tracked = tracker.update(detections, where.stamp_ns)
        run = self.runs["labels"]
        run.add_tracks(labelled, box_track_frame(name, where.video, where.index, boxes, detections.scores, categories,
                                                 tracked.track_ids))
        run.add_objects(truth, place_on_ground(boxes, categories, truth.intrinsics, truth.pose, self.grid.max_range),
                        ids)
        key = (truth.intrinsics, truth.pose)
        road = self._roads.get(key) or self._roads.setdefault(key, RoadProjection(truth.intrinsics, truth.pose, self.grid))
        markings = road.project(np.zeros_like(lane_mask, np.uint8), lane_mask.astype(np.uint8)).markings
        run.add_lane(truth, self._lanes.setdefault(where.video, EgoLaneTracker()).update(markings, where.stamp_ns))
        if self.pipeline is None:
            return None
        result = self.pipeline.process(image, where.stamp_ns, CameraGeometry(truth.intrinsics, truth.pose),
                                       camera=where.video)
        if result.tracks is None or result.detections is None:
            return result
        names = self.pipeline.class_names
        model = self.runs["model"]
        found = result.tracks.detections
        model.add_tracks(labelled, box_track_frame(name, where.video, where.index, found.boxes, found.scores,
                                                   [names[int(c)] for c in found.class_ids], result.tracks.track_ids))
        if result.objects is not None:
            matches = match_by_box(result.detections.boxes, boxes)
            model.add_objects(truth, result.objects, [ids[m] if m is not None else None for m in matches])
        model.add_lane(truth, result.ego_lane)
        return result

    def summary(self) -> dict:
        return {name: run.summary() for name, run in self.runs.items()}
