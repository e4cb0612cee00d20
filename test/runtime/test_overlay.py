"""Overlays: masks blended and labelled boxes drawn where the detections are."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.overlay import BOX_COLOUR, DRIVABLE_COLOUR, detection_labels, draw_overlay

pytestmark = pytest.mark.jetson_python


def test_labels_name_and_score() -> None:
    assert detection_labels(("car", "bus"), np.array([1, 0]), np.array([0.876, 0.3])) == ["bus 0.88", "car 0.30"]
    assert detection_labels(("car",), np.zeros(0, int), np.zeros(0)) == []


def test_masks_and_boxes_drawn_on_a_copy() -> None:
    frame = np.zeros((120, 200, 3), np.uint8)
    drivable = np.zeros((120, 200), np.uint8)
    drivable[80:, :] = 255
    out = draw_overlay(frame, np.array([[20.0, 30.0, 60.0, 70.0]]), ["car 0.90"], drivable, None)
    assert not frame.any()  # the input is untouched
    blended = (0.45 * DRIVABLE_COLOUR).astype(np.uint8)
    np.testing.assert_array_equal(out[100, 150], blended)
    assert tuple(out[50, 20]) == BOX_COLOUR  # left edge of the box
    assert tuple(out[50, 40]) == (0, 0, 0)  # inside the box stays as it was
    assert out[10:30, 20:60].any()  # the label above the box
