"""From the model's boxes and scores to a short list of detections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtl_perception.runtime.nms import batched_nms

PRE_NMS_TOP_K = 1000  # candidates into NMS at most, as torchvision's detectors cap them


@dataclass(frozen=True)
class Detections:
    """boxes float32[N, 4] x1, y1, x2, y2; scores float32[N]; class_ids int64[N]; best first."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def as_centre_size(self, class_names: Sequence[str]) -> list[tuple[float, float, float, float, str, float]]:
        """(centre x, centre y, width, height, class name, score) per detection: vision_msgs' BoundingBox2D
        and hypothesis fields, whichever message library builds them."""
        return [((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, class_names[c], s) for (x1, y1, x2, y2), c, s in
                zip(self.boxes.tolist(), self.class_ids.tolist(), self.scores.tolist())]

    @classmethod
    def from_centre_size(cls, rows: Sequence[tuple[float, float, float, float, str, float]],
                         class_names: Sequence[str]) -> Detections:
        """The inverse of as_centre_size (detections read back from vision_msgs)."""
        boxes = [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cx, cy, w, h, _, _ in rows]
        return cls(np.array(boxes, np.float32).reshape(-1, 4), np.array([r[5] for r in rows], np.float32),
                   np.array([list(class_names).index(r[4]) for r in rows], np.int64))


def select_detections(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float,
                      max_detections: int) -> Detections:
    """boxes float[A, 4], scores float[A, C] -> class-aware NMS over (anchor, class) pairs above the threshold."""
    # flat indices, then divmod: the same row-major order as np.nonzero on 2-D, at a quarter of its cost
    anchor_idx, class_idx = np.divmod(np.flatnonzero(scores > score_threshold), scores.shape[1])
    if anchor_idx.size == 0:
        return Detections.empty()
    candidate_scores = scores[anchor_idx, class_idx]
    if candidate_scores.size > PRE_NMS_TOP_K:
        top = np.argpartition(-candidate_scores, PRE_NMS_TOP_K)[:PRE_NMS_TOP_K]
        anchor_idx, class_idx, candidate_scores = anchor_idx[top], class_idx[top], candidate_scores[top]
    candidate_boxes = boxes[anchor_idx]
    keep = batched_nms(candidate_boxes, candidate_scores, class_idx, iou_threshold, max_detections)
    return Detections(candidate_boxes[keep].astype(np.float32), candidate_scores[keep].astype(np.float32),
                      class_idx[keep].astype(np.int64))
