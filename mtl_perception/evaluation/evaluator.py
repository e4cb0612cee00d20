"""Scoring runtime results against BDD100K labels, one frame at a time (bounded memory).

Peer-comparable detection figures use one merged `vehicle` class (car, truck, bus,
train), as YOLOP and HybridNets evaluate; the 10-class figures and the operating
point come from the same detections. docs/metrics.md defines every number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtl_perception.data.bdd100k import DETECTION_CLASSES, VEHICLE_CLASSES, FrameLabels
from mtl_perception.evaluation.metrics import BinaryConfusion, DetectionAccumulator
from mtl_perception.runtime.nms import nms
from mtl_perception.runtime.perception import PerceptionResult

# what the peers' evaluation keeps: every box down to 0.001, NMS at 0.6
PEER_SCORE_THRESHOLD = 0.001
PEER_NMS_IOU = 0.6
PEER_MAX_DETECTIONS = 300


class Evaluator:
    def __init__(self, model_classes: Sequence[str], operating_threshold: float = 0.3) -> None:
        self.model_classes = tuple(model_classes)
        self.vehicle = DetectionAccumulator(("vehicle",), operating_threshold)
        self.all_classes = DetectionAccumulator(DETECTION_CLASSES, operating_threshold)
        self.drivable = BinaryConfusion()
        self.lane = BinaryConfusion()
        self.latencies: list[float] = []
        self.frames = 0
        self._to_bdd = np.array([DETECTION_CLASSES.index(c) if c in DETECTION_CLASSES else -1
                                 for c in self.model_classes] + [-1])
        self._is_vehicle = np.array([c in VEHICLE_CLASSES or c == "vehicle" for c in self.model_classes] + [False])

    def add(self, result: PerceptionResult, labels: FrameLabels, drivable: np.ndarray, lane: np.ndarray) -> None:
        """result in camera pixels; labels in the same pixels; drivable and lane bool[H, W] ground truth."""
        det = result.detections
        gt_all = np.array([DETECTION_CLASSES.index(c) for c in labels.categories], dtype=np.int64)
        gt_vehicle = np.array([c in VEHICLE_CLASSES for c in labels.categories], dtype=bool)

        bdd_ids = self._to_bdd[det.class_ids] if len(det) else np.zeros(0, np.int64)
        known = bdd_ids >= 0
        self.all_classes.add(det.boxes[known], det.scores[known], bdd_ids[known], labels.boxes, gt_all)

        vehicles = self._is_vehicle[det.class_ids] if len(det) else np.zeros(0, bool)
        v_boxes, v_scores = det.boxes[vehicles], det.scores[vehicles]
        keep = nms(v_boxes, v_scores, PEER_NMS_IOU)  # a car that is also a truck is one vehicle
        self.vehicle.add(v_boxes[keep], v_scores[keep], np.zeros(len(keep), np.int64),
                         labels.boxes[gt_vehicle], np.zeros(int(gt_vehicle.sum()), np.int64))

        self.drivable.add(result.drivable > 0, drivable)
        self.lane.add(result.lane > 0, lane)
        self.latencies.append(result.timings["total"])
        self.frames += 1

    def summary(self) -> dict:
        vehicle = self.vehicle.summary()
        every = self.all_classes.summary()
        p50, p90, p99 = np.percentile(self.latencies, [50, 90, 99]) if self.latencies else (0.0, 0.0, 0.0)
        return {
            "det": {"map50": vehicle["map50"], "map50_95": vehicle["map50_95"], "recall": vehicle["recall"],
                    "mode": "vehicle (car, truck, bus, train merged), score >= 0.001, NMS IoU 0.6"},
            "det_all_classes": {
                "map50": every["map50"], "map50_95": every["map50_95"], "recall": every["recall"],
                "per_class_ap50": every["per_class_ap50"],
                "operating_threshold": every["operating_threshold"],
                "precision_at_threshold": every["precision_at_threshold"],
                "recall_at_threshold": every["recall_at_threshold"],
            },
            "drivable": self.drivable.drivable_summary(),
            "lane": self.lane.lane_summary(),
            "frames": self.frames,
            "latency_ms": {"p50": float(p50), "p90": float(p90), "p99": float(p99)},
        }


def format_summary(summary: dict) -> str:
    det, every = summary["det"], summary["det_all_classes"]
    lines = [
        f"frames: {summary['frames']}   latency p50 {summary['latency_ms']['p50']:.1f} ms, "
        f"p90 {summary['latency_ms']['p90']:.1f} ms",
        "| task | metric | value |", "|---|---|---|",
        f"| detection (vehicle) | mAP@0.5 | {det['map50']:.3f} |",
        f"| detection (vehicle) | mAP@0.5:0.95 | {det['map50_95']:.3f} |",
        f"| detection (vehicle) | recall | {det['recall']:.3f} |",
        f"| detection (10 classes) | mAP@0.5 | {every['map50']:.3f} |",
        f"| detection (10 classes) | P / R at {every['operating_threshold']:.2f} | "
        f"{every['precision_at_threshold']:.3f} / {every['recall_at_threshold']:.3f} |",
        f"| drivable area | mIoU | {summary['drivable']['miou']:.3f} |",
        f"| drivable area | IoU | {summary['drivable']['iou']:.3f} |",
        f"| drivable area | pixel accuracy | {summary['drivable']['acc']:.3f} |",
        f"| lane | accuracy (YOLOP: lane recall) | {summary['lane']['acc']:.3f} |",
        f"| lane | IoU | {summary['lane']['iou']:.3f} |",
        f"| lane | balanced accuracy (HybridNets) | {summary['lane']['balanced_acc']:.3f} |",
    ]
    if every["per_class_ap50"]:
        lines.append("per-class AP@0.5: " + ", ".join(f"{k} {v:.2f}" for k, v in every["per_class_ap50"].items()))
    return "\n".join(lines)
