"""NMS against hand-computed cases and a plain greedy NMS written here from its definition.

Runs on JetPack's OpenCV 4.5.4 too, where cv2.dnn.NMSBoxesBatched does not exist and batched NMS
takes the class-offset route; test_nms_torchvision.py holds both routes against torchvision.
"""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.nms import batched_nms, box_iou, nms, nms_class_offset
from mtl_perception.runtime.postprocess import select_detections

pytestmark = pytest.mark.jetson_python


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> list[int]:
    """The textbook algorithm: highest score first; drop every later box of its class above the threshold."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable").tolist():
        if all(classes[k] != classes[i] or box_iou(boxes[[k]], boxes[[i]])[0, 0] <= iou_threshold for k in kept):
            kept.append(i)
    return kept


def random_boxes(seed: int, count: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (count, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (count, 2))], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, count).astype(np.float32), rng.integers(0, 4, count)


def test_iou_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_nms_hand_computed() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]  # IoU(0, 1) = 90 / 110 > 0.5
    assert nms(boxes, scores, 0.95).tolist() == [0, 1, 2]


def test_batched_hand_computed() -> None:
    # the same two overlapping boxes: one class suppresses, two classes do not
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert batched_nms(boxes, scores, np.array([0, 0]), 0.5).tolist() == [0]
    assert batched_nms(boxes, scores, np.array([0, 1]), 0.5).tolist() == [0, 1]
    assert nms_class_offset(boxes, scores, np.array([0, 1]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_equals_greedy_definition(seed: int) -> None:
    boxes, scores, classes = random_boxes(seed)
    expected = greedy_nms(boxes, scores, classes, 0.5)
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == expected
    assert nms_class_offset(boxes, scores, classes, 0.5).tolist() == expected  # the OpenCV < 4.7 route
    assert nms(boxes, scores, 0.5).tolist() == greedy_nms(boxes, scores, np.zeros(len(boxes), int), 0.5)
    assert batched_nms(boxes, scores, classes, 0.5, max_keep=5).tolist() == expected[:5]


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


def test_detections_as_vision_msgs_fields_and_back() -> None:
    from mtl_perception.runtime.postprocess import Detections

    det = Detections(np.array([[10, 20, 50, 40], [0, 0, 4, 8]], np.float32), np.array([0.9, 0.5], np.float32),
                     np.array([1, 0]))
    rows = det.as_centre_size(("car", "bus"))
    assert rows == [(30.0, 30.0, 40.0, 20.0, "bus", pytest.approx(0.9)), (2.0, 4.0, 4.0, 8.0, "car", 0.5)]
    back = Detections.from_centre_size(rows, ("car", "bus"))
    np.testing.assert_array_equal(back.boxes, det.boxes)
    assert back.class_ids.tolist() == [1, 0]
