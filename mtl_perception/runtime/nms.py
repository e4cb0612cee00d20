"""Box IoU in numpy and non-maximum suppression (OpenCV's C++ NMS, checked against torchvision's)."""

from __future__ import annotations

import cv2
import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of float[N, 4] and float[M, 4] boxes (x1, y1, x2, y2) -> float[N, M]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Indices of the boxes kept, highest score first: greedy NMS, equal to torchvision.ops.nms.

    OpenCV's C++ implementation: a Python loop over boxes costs hundreds of milliseconds at the
    thousands of candidates an evaluation at score 0.001 produces. Boxes scoring exactly 0 are dropped.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    # OpenCV's stubs say sequences; the binding takes arrays, and converting to lists is what costs time
    kept = cv2.dnn.NMSBoxes(_xywh(boxes), scores.astype(np.float32), 0.0, iou_threshold)  # type: ignore[arg-type]
    keep = np.asarray(kept, dtype=np.int64).reshape(-1)
    return keep[:max_keep] if max_keep is not None else keep


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                max_keep: int | None = None) -> np.ndarray:
    """Class-aware NMS (boxes of different classes never suppress each other), equal to
    torchvision.ops.batched_nms, highest score first.

    OpenCV's NMSBoxesBatched exists from 4.7 only; JetPack and Ubuntu 22.04 ship 4.5.4 and 4.8, so
    older versions take the class-offset route, which is what torchvision does itself.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if hasattr(cv2.dnn, "NMSBoxesBatched"):
        keep = nms_boxes_batched_opencv(boxes, scores, classes, iou_threshold)
    else:
        keep = nms_class_offset(boxes, scores, classes, iou_threshold)
    return keep[:max_keep] if max_keep is not None else keep


def nms_boxes_batched_opencv(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                             iou_threshold: float) -> np.ndarray:
    """cv2.dnn.NMSBoxesBatched (OpenCV >= 4.7)."""
    kept = cv2.dnn.NMSBoxesBatched(_xywh(boxes), scores.astype(np.float32),  # type: ignore[arg-type]
                                   classes.astype(np.int32), 0.0, iou_threshold)  # type: ignore[arg-type]
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def nms_class_offset(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                     iou_threshold: float) -> np.ndarray:
    """Class-aware NMS with plain NMSBoxes (any OpenCV 4): each class's boxes are moved by a
    class-sized offset so that boxes of different classes never overlap."""
    boxes = boxes.astype(np.float64)
    offset = classes.astype(np.float64)[:, None] * (float(boxes.max()) - float(boxes.min()) + 1.0)
    return nms(boxes - float(boxes.min()) + offset, scores, iou_threshold)
