"""Drawing detections and masks onto frames, for people to look at (node overlay, infer, galleries)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

DRIVABLE_COLOUR = np.array([80, 200, 60], np.float32)  # BGR green
LANE_COLOUR = np.array([40, 40, 255], np.float32)  # BGR red
BOX_COLOUR = (255, 200, 0)


def detection_labels(class_names: Sequence[str], class_ids: np.ndarray, scores: np.ndarray) -> list[str]:
    """The text drawn beside each box: "car 0.87"."""
    return [f"{class_names[c]} {s:.2f}" for c, s in zip(class_ids.tolist(), scores.tolist())]


def draw_overlay(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str],
                 drivable: np.ndarray | None = None, lane: np.ndarray | None = None,
                 alpha: float = 0.45) -> np.ndarray:
    """A copy of a BGR image with masks blended in and labelled boxes drawn.

    boxes: float[N, 4] x1, y1, x2, y2 in image pixels; masks: bool or 0/255 arrays of the image's size.
    """
    out = image.copy()
    for mask, colour in ((drivable, DRIVABLE_COLOUR), (lane, LANE_COLOUR)):
        if mask is not None:
            on = mask.astype(bool)
            out[on] = ((1 - alpha) * out[on] + alpha * colour).astype(np.uint8)
    scale = max(image.shape[1] / 1280, 0.4)
    thickness = max(round(2 * scale), 1)
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels):
        p1, p2 = (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1)
        cv2.rectangle(out, p1, p2, BOX_COLOUR, thickness)
        cv2.putText(out, label, (p1[0], max(p1[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, BOX_COLOUR, max(round(scale), 1), cv2.LINE_AA)
    return out
