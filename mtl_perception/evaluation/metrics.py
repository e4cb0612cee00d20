"""Detection and segmentation metrics with the definitions the BDD100K peers use (docs/metrics.md).

Both accumulators take one frame at a time and keep fixed-size statistics, so
memory does not grow with the number of frames or with a 0.001 score threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.runtime.nms import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's 101-point interpolation
SCORE_BINS = 10_000  # detections are counted per score bin: ties below 1e-4 merge


def _score_bins(scores: np.ndarray) -> np.ndarray:
    return np.minimum((scores * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)


def match_frame(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """COCO greedy matching of one class in one frame: bool[T, D], True where detection d is a TP at threshold t.

    Detections are taken by descending score; each takes the unmatched ground truth it
    overlaps most, if that IoU reaches the threshold.
    """
    tp = np.zeros((len(iou_thresholds), len(pred_boxes)), dtype=bool)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    order = np.argsort(-pred_scores, kind="stable")
    ious = box_iou(pred_boxes[order], gt_boxes)
    for t, threshold in enumerate(iou_thresholds):
        taken = np.zeros(len(gt_boxes), dtype=bool)
        for d in range(len(order)):
            candidates = np.where(taken, -1.0, ious[d])
            best = int(candidates.argmax())
            if candidates[best] >= threshold:
                taken[best] = True
                tp[t, order[d]] = True
    return tp


def interpolated_ap(tp_cum: np.ndarray, fp_cum: np.ndarray, n_gt: int) -> float:
    """COCO 101-point interpolated AP from cumulative TP/FP counts ordered by descending score."""
    if n_gt == 0:
        return float("nan")
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1e-12)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= r
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(envelope), envelope[np.minimum(index, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


class DetectionAccumulator:
    """Per class and IoU threshold, TP and FP counts per score bin, plus ground-truth counts."""

    def __init__(self, class_names: Sequence[str], operating_threshold: float = 0.25) -> None:
        self.class_names = tuple(class_names)
        c, t = len(self.class_names), len(IOU_THRESHOLDS)
        self.tp = np.zeros((c, t, SCORE_BINS), np.int64)
        self.fp = np.zeros((c, t, SCORE_BINS), np.int64)
        self.n_gt = np.zeros(c, np.int64)
        self.operating_threshold = operating_threshold

    def add(self, pred_boxes: np.ndarray, pred_scores: np.ndarray, pred_classes: np.ndarray,
            gt_boxes: np.ndarray, gt_classes: np.ndarray) -> None:
        """One frame: float[D, 4], float[D], int[D] predictions; float[G, 4], int[G] ground truth."""
        for c in range(len(self.class_names)):
            p, g = pred_classes == c, gt_classes == c
            self.n_gt[c] += int(g.sum())
            if not p.any():
                continue
            tp = match_frame(pred_boxes[p], pred_scores[p], gt_boxes[g])
            bins = _score_bins(pred_scores[p])
            for t in range(len(IOU_THRESHOLDS)):
                np.add.at(self.tp[c, t], bins[tp[t]], 1)
                np.add.at(self.fp[c, t], bins[~tp[t]], 1)

    def _cumulative(self, c: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        return np.cumsum(self.tp[c, t, ::-1]), np.cumsum(self.fp[c, t, ::-1])

    def ap(self, c: int, t: int) -> float:
        tp_cum, fp_cum = self._cumulative(c, t)
        return interpolated_ap(tp_cum, fp_cum, int(self.n_gt[c]))

    def summary(self) -> dict:
        """map50, map50_95, recall (max recall at IoU 0.5, as the peers report it), per class AP,
        and precision/recall at the operating threshold."""
        present = [c for c in range(len(self.class_names)) if self.n_gt[c] > 0]
        ap = np.array([[self.ap(c, t) for t in range(len(IOU_THRESHOLDS))] for c in present]).reshape(-1, 10)
        total_gt = int(self.n_gt[present].sum()) if present else 0
        tp50 = self.tp[present, 0].sum() if present else 0
        op_bin = int(_score_bins(np.array([self.operating_threshold]))[0])
        op_tp = int(self.tp[present, 0, op_bin:].sum()) if present else 0
        op_fp = int(self.fp[:, 0, op_bin:].sum())
        return {
            "map50": float(ap[:, 0].mean()) if present else 0.0,
            "map50_95": float(ap.mean()) if present else 0.0,
            "recall": float(tp50 / total_gt) if total_gt else 0.0,
            "per_class_ap50": {self.class_names[c]: float(ap[i, 0]) for i, c in enumerate(present)},
            "operating_threshold": self.operating_threshold,
            "precision_at_threshold": float(op_tp / (op_tp + op_fp)) if op_tp + op_fp else 0.0,
            "recall_at_threshold": float(op_tp / total_gt) if total_gt else 0.0,
            "ground_truth": total_gt,
        }


@dataclass
class BinaryConfusion:
    """One 2x2 confusion matrix over a whole split: [[TN, FP], [FN, TP]]."""

    tn: int = 0
    fp: int = 0
    fn: int = 0
    tp: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        """bool arrays of one frame, same shape."""
        if pred.shape != truth.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
        n_pred, n_true = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
        tp = int(np.count_nonzero(pred & truth))
        self.tp += tp
        self.fp += n_pred - tp
        self.fn += n_true - tp
        self.tn += pred.size - n_pred - n_true + tp

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        # nothing to find and nothing found is a perfect score, not an undefined one
        return num / den if den else 1.0

    @property
    def iou(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def background_iou(self) -> float:
        return self._ratio(self.tn, self.tn + self.fn + self.fp)

    @property
    def recall(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def precision(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def specificity(self) -> float:
        return self._ratio(self.tn, self.tn + self.fp)

    @property
    def pixel_accuracy(self) -> float:
        return self._ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn)

    def drivable_summary(self) -> dict:
        # precision and recall beside the IoU: a planner pays more for road drawn where there is none
        return {"miou": (self.iou + self.background_iou) / 2, "iou": self.iou, "acc": self.pixel_accuracy,
                "precision": self.precision, "recall": self.recall}

    def lane_summary(self) -> dict:
        # "acc" is YOLOP's lane accuracy, the lane-pixel recall; balanced_acc is HybridNets'.
        return {"acc": self.recall, "iou": self.iou, "balanced_acc": (self.recall + self.specificity) / 2}


def matched_ground_truth(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                         iou_threshold: float = 0.5) -> np.ndarray:
    """bool[G]: which ground-truth boxes a detection claims under COCO's greedy matching (by score,
    each detection taking the unclaimed box it overlaps most)."""
    found = np.zeros(len(gt_boxes), dtype=bool)
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return found
    ious = box_iou(pred_boxes[np.argsort(-pred_scores, kind="stable")], gt_boxes)
    for row in ious:
        candidates = np.where(found, -1.0, row)
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            found[best] = True
    return found


BOUNDARY_PIXELS = (1, 2, 5)  # the BDD100K toolkit's lane thresholds (bdd100k/eval/lane.py)


def disk(radius: int) -> np.ndarray:
    """uint8 disk of a radius, as skimage.morphology.disk: (x, y) with x^2 + y^2 <= radius^2."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def boundary_f_score(pred: np.ndarray, truth: np.ndarray, radius: int) -> float:
    """The toolkit's lane F-score of one frame (eval_lane_per_threshold): precision = predicted marking
    pixels within `radius` of a true one, recall = true pixels within `radius` of a predicted one,
    with its conventions for empty masks (nothing predicted and nothing there: 1)."""
    n_pred, n_true = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    if n_pred == 0 and n_true == 0:
        precision, recall = 1.0, 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_true == 0:
        precision, recall = 0.0, 1.0
    else:
        kernel = disk(radius)
        pred_near = cv2.dilate(pred.astype(np.uint8), kernel).astype(bool)
        true_near = cv2.dilate(truth.astype(np.uint8), kernel).astype(bool)
        precision = np.count_nonzero(pred & true_near) / n_pred
        recall = np.count_nonzero(truth & pred_near) / n_true
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


@dataclass
class BoundaryF:
    """The toolkit's lane marking F-score at 1, 2 and 5 px, averaged over frames as the toolkit does."""

    total: np.ndarray = field(default_factory=lambda: np.zeros(len(BOUNDARY_PIXELS)))
    frames: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        """bool[H, W] masks of one frame (all markings: the model predicts no category)."""
        self.total += [boundary_f_score(pred, truth, r) for r in BOUNDARY_PIXELS]
        self.frames += 1

    def summary(self) -> dict[str, float]:
        mean = self.total / max(self.frames, 1)
        return {f"f1_{r}px": float(v) for r, v in zip_strict(BOUNDARY_PIXELS, mean)}
