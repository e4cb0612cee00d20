"""NMS against hand-computed cases and torchvision's implementation."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import nms as tv_nms

from mtl_perception.runtime.nms import batched_nms, box_iou, nms
from mtl_perception.runtime.postprocess import select_detections


def test_iou_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_nms_hand_computed() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]  # IoU(0, 1) = 90 / 110 > 0.5
    assert nms(boxes, scores, 0.95).tolist() == [0, 1, 2]


def test_matches_torchvision() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (300, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    classes = rng.integers(0, 4, 300)
    expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), expected)
    expected = tv_batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), 0.5)
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.5), expected.numpy())


def test_select_detections_class_aware_threshold_and_cap() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.6]], np.float32)
    found = select_detections(boxes, scores, score_threshold=0.5, iou_threshold=0.5, max_detections=10)
    # anchor 0 is a class-0 and a class-1 detection (different classes never suppress each other);
    # anchor 1's class-0 box is suppressed by anchor 0's; anchor 2 is class 1 only
    assert found.class_ids.tolist() == [0, 1, 1]
    np.testing.assert_allclose(found.scores, [0.9, 0.8, 0.6])
    assert len(select_detections(boxes, scores, 0.5, 0.5, max_detections=2)) == 2
    assert len(select_detections(boxes, scores, 0.95, 0.5, 10)) == 0
