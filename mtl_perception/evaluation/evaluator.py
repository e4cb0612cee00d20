"""Scoring runtime results against BDD100K labels, one frame at a time.

Peer-comparable detection figures use one merged `vehicle` class (car, truck, bus,
train), as YOLOP and HybridNets evaluate; the 10-class figures and the operating
point come from the same detections, in bounded memory. The BDD100K toolkit's figures
need every frame's detections at once (COCOeval), as the toolkit itself keeps them.
docs/metrics.md defines every number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from mtl_perception.data.bdd100k import DETECTION_CLASSES, TASKS, VEHICLE_CLASSES, FrameLabels
from mtl_perception.evaluation.metrics import (
    BOUNDARY_PIXELS,
    BinaryConfusion,
    BoundaryF,
    DetectionAccumulator,
    matched_ground_truth,
)
from mtl_perception.evaluation.toolkit_det import PredictedFrame, score_detections
from mtl_perception.runtime.nms import nms
from mtl_perception.runtime.perception import PerceptionResult
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.presets import PEER_EVALUATION, deployed
from mtl_perception.runtime.realtime import percentiles


class EvalSummary(TypedDict, total=False):
    """What eval, eval-bag and the demo report; docs/metrics.md defines every number. tasks, frames and
    latency_ms always; the det* keys with detection labels, drivable and lane with those masks."""

    tasks: dict[str, Any]  # {"scored": [task, ...], "skipped": {task: why}}
    frames: int
    latency_ms: dict[str, float]  # p50, p90, p99
    det: dict[str, Any]  # the peers' merged-vehicle figures
    det_all_classes: dict[str, Any]
    det_occlusion: dict[str, Any]
    det_toolkit: dict[str, Any]  # toolkit_det.DetScores.as_dict()
    drivable: dict[str, float]
    lane: dict[str, float]
    tracking: dict[str, Any]  # tracking_eval.TrackScores.summary(), where the split has box_track labels
    model: str  # set by eval
    data: str



class Evaluator:
    """Accumulates every metric of docs/metrics.md over a split, for the tasks the split has labels for."""

    def __init__(self, model_classes: Sequence[str], operating_threshold: float | None = None,
                 tasks: Sequence[str] = TASKS, skipped: Mapping[str, str] | None = None) -> None:
        """operating_threshold: where precision and recall are read; None: the node's score_threshold."""
        if operating_threshold is None:
            operating_threshold = deployed().score_threshold
        self.model_classes = tuple(model_classes)
        self.tasks = tuple(tasks)
        self.skipped = dict(skipped or {})
        self.operating_threshold = operating_threshold
        self.vehicle = DetectionAccumulator(("vehicle",), operating_threshold)
        self.all_classes = DetectionAccumulator(DETECTION_CLASSES, operating_threshold)
        self.drivable = BinaryConfusion()
        self.lane = BinaryConfusion()
        self.lane_boundary = BoundaryF()
        self.latencies: list[float] = []
        self.frames = 0
        self._to_bdd = np.array([DETECTION_CLASSES.index(c) if c in DETECTION_CLASSES else -1
                                 for c in self.model_classes] + [-1])
        self._is_vehicle = np.array([c in VEHICLE_CLASSES or c == "vehicle" for c in self.model_classes] + [False])
        self._bdd_classes = bool((self._to_bdd >= 0).any())  # a merged "vehicle" model has none
        # the toolkit's COCO evaluation needs every frame at once; it scores BDD100K's classes only
        self.toolkit_labels: list[FrameLabels] = []
        self.predictions: list[PredictedFrame] = []
        self.vehicles_found = {"occluded": [0, 0], "visible": [0, 0]}  # found, total

    def add(self, result: PerceptionResult, labels: FrameLabels, drivable: np.ndarray | None,
            lane: np.ndarray | None) -> None:
        """result in camera pixels; labels in the same pixels; drivable and lane bool[H, W] ground truth
        (None where the split has no such labels)."""
        # kept for eval --save-predictions as well as for the toolkit's scoring (of BDD100K's classes only)
        self.predictions.append(self._predicted(labels.name, result.detections))
        if "detection" in self.tasks:
            self._add_detections(result.detections, labels)
        if drivable is not None:
            self.drivable.add(result.drivable > 0, drivable)
        if lane is not None:
            self.lane.add(result.lane > 0, lane)
            self.lane_boundary.add(result.lane > 0, lane)
        self.latencies.append(result.timings["total"])
        self.frames += 1

    def _add_detections(self, det: Detections, labels: FrameLabels) -> None:
        # the peers' figures: every box of a detection class is ground truth (crowd boxes too, as the
        # peers read det_20); the toolkit's ignored categories are no class of theirs
        counted = ~labels.ignored
        gt_all = np.array([DETECTION_CLASSES.index(c) for c in labels.categories], dtype=np.int64)[counted]
        gt_vehicle = np.array([c in VEHICLE_CLASSES for c in labels.categories], dtype=bool) & counted
        bdd_ids = self._to_bdd[det.class_ids] if len(det) else np.zeros(0, np.int64)
        known = bdd_ids >= 0
        self.all_classes.add(det.boxes[known], det.scores[known], bdd_ids[known], labels.boxes[counted], gt_all)

        vehicles = self._is_vehicle[det.class_ids] if len(det) else np.zeros(0, bool)
        v_boxes, v_scores = det.boxes[vehicles], det.scores[vehicles]
        keep = nms(v_boxes, v_scores, PEER_EVALUATION.iou_threshold)  # a car that is also a truck is one vehicle
        v_boxes, v_scores = v_boxes[keep], v_scores[keep]
        self.vehicle.add(v_boxes, v_scores, np.zeros(len(keep), np.int64),
                         labels.boxes[gt_vehicle], np.zeros(int(gt_vehicle.sum()), np.int64))

        # recall of occluded and of fully visible vehicles at the operating threshold (IoU 0.5)
        real = gt_vehicle & ~labels.crowd
        confident = v_scores >= self.operating_threshold
        found = matched_ground_truth(v_boxes[confident], v_scores[confident], labels.boxes[real])
        occluded = labels.occluded[real]
        for key, part in (("occluded", occluded), ("visible", ~occluded)):
            self.vehicles_found[key][0] += int(found[part].sum())
            self.vehicles_found[key][1] += int(part.sum())

        if self._bdd_classes:
            self.toolkit_labels.append(labels)

    def _predicted(self, name: str, det: Detections) -> PredictedFrame:
        """The frame's detections under BDD100K's names; a model of other classes (a merged "vehicle") keeps
        its own, which the toolkit does not score (score-det says so)."""
        if not self._bdd_classes:
            return PredictedFrame(name, det.boxes, det.scores,
                                  tuple(self.model_classes[i] for i in det.class_ids.tolist()))
        bdd_ids = self._to_bdd[det.class_ids] if len(det) else np.zeros(0, np.int64)
        known = bdd_ids >= 0
        return PredictedFrame(name, det.boxes[known], det.scores[known],
                              tuple(DETECTION_CLASSES[i] for i in bdd_ids[known].tolist()))

    @property
    def scores_bdd100k_classes(self) -> bool:
        """Whether the model predicts any of BDD100K's det_20 classes (a merged "vehicle" model does not)."""
        return self._bdd_classes

    def summary(self) -> EvalSummary:
        out: EvalSummary = {
            "tasks": {"scored": list(self.tasks), "skipped": self.skipped},
            "frames": self.frames,
            "latency_ms": percentiles(self.latencies),
        }
        if "detection" in self.tasks:
            vehicle, every = self.vehicle.summary(), self.all_classes.summary()
            out["det"] = {"map50": vehicle["map50"], "map50_95": vehicle["map50_95"], "recall": vehicle["recall"],
                          "mode": f"vehicle (car, truck, bus, train merged), score >= "
                                  f"{PEER_EVALUATION.score_threshold}, NMS IoU {PEER_EVALUATION.iou_threshold}"}
            out["det_all_classes"] = {
                "map50": every["map50"], "map50_95": every["map50_95"], "recall": every["recall"],
                "per_class_ap50": every["per_class_ap50"],
                "operating_threshold": every["operating_threshold"],
                "precision_at_threshold": every["precision_at_threshold"],
                "recall_at_threshold": every["recall_at_threshold"],
            }
            out["det_occlusion"] = {
                "operating_threshold": self.operating_threshold,
                **{f"recall_{k}": (found / total if total else None) for k, (found, total) in
                   self.vehicles_found.items()},
                **{f"{k}_vehicles": total for k, (_, total) in self.vehicles_found.items()},
            }
            if self.toolkit_labels:
                out["det_toolkit"] = score_detections(self.toolkit_labels, self.predictions).as_dict()
        if "drivable" in self.tasks:
            out["drivable"] = self.drivable.drivable_summary()
        if "lane" in self.tasks:
            out["lane"] = {**self.lane.lane_summary(), **self.lane_boundary.summary()}
        return out


def format_summary(summary: EvalSummary) -> str:
    """The table eval prints: which tasks were scored (and why others were not), then each figure
    under the definition it follows."""
    lines = [f"frames: {summary['frames']}   latency p50 {summary['latency_ms']['p50']:.1f} ms, "
             f"p90 {summary['latency_ms']['p90']:.1f} ms",
             f"scored: {', '.join(summary['tasks']['scored']) or 'nothing'}"]
    lines += [f"skipped {task}: {why}" for task, why in summary["tasks"]["skipped"].items()]
    lines += ["", "| task | metric (definition) | value |", "|---|---|---|"]
    if "det" in summary:
        det, every, occl = summary["det"], summary["det_all_classes"], summary["det_occlusion"]
        lines += [
            f"| detection (vehicle) | mAP@0.5 (YOLOP/HybridNets) | {det['map50']:.3f} |",
            f"| detection (vehicle) | mAP@0.5:0.95 | {det['map50_95']:.3f} |",
            f"| detection (vehicle) | recall | {det['recall']:.3f} |",
            f"| detection (10 classes) | mAP@0.5 | {every['map50']:.3f} |",
            f"| detection (10 classes) | P / R at {every['operating_threshold']:.2f} | "
            f"{every['precision_at_threshold']:.3f} / {every['recall_at_threshold']:.3f} |",
        ]
        for kind in ("occluded", "visible"):
            value = occl[f"recall_{kind}"]
            lines.append(f"| detection (vehicle) | recall at {occl['operating_threshold']:.2f}, {kind} "
                         f"({occl[f'{kind}_vehicles']}) | {'-' if value is None else f'{value:.3f}'} |")
        if "det_toolkit" in summary:
            overall = summary["det_toolkit"]["overall"]
            lines += [f"| detection (10 classes) | {m} (BDD100K toolkit, x100) | {overall[m]:.1f} |"
                      for m in ("AP", "AP50", "AP75", "AR100")]
    if "drivable" in summary:
        drivable = summary["drivable"]
        lines += [f"| drivable area | mIoU (YOLOP) | {drivable['miou']:.3f} |",
                  f"| drivable area | IoU | {drivable['iou']:.3f} |",
                  f"| drivable area | pixel accuracy | {drivable['acc']:.3f} |",
                  f"| drivable area | precision / recall | {drivable['precision']:.3f} / {drivable['recall']:.3f} |"]
    if "lane" in summary:
        lane = summary["lane"]
        lines += [f"| lane | accuracy (YOLOP: lane recall) | {lane['acc']:.3f} |",
                  f"| lane | IoU (YOLOP) | {lane['iou']:.3f} |",
                  f"| lane | balanced accuracy (HybridNets) | {lane['balanced_acc']:.3f} |"]
        lines += [f"| lane | F-score within {r} px (BDD100K toolkit) | {lane[f'f1_{r}px']:.3f} |"
                  for r in BOUNDARY_PIXELS]
    if "tracking" in summary:
        track = summary["tracking"]
        lines += [f"| tracking ({track['videos']} videos) | mMOTA (BDD100K toolkit, x100) | {track['mMOTA']:.1f} |",
                  f"| tracking | mIDF1 (BDD100K toolkit, x100) | {track['mIDF1']:.1f} |",
                  f"| tracking | ID switches per 100 frames | {track['IDSw_per_100_frames']:.1f} |"]
    if "det_all_classes" in summary and summary["det_all_classes"]["per_class_ap50"]:
        lines.append("per-class AP@0.5: " + ", ".join(
            f"{k} {v:.2f}" for k, v in summary["det_all_classes"]["per_class_ap50"].items()))
    return "\n".join(lines)
