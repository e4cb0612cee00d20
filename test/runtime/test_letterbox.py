"""Letterbox geometry against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.letterbox import (
    boxes_to_frame,
    boxes_to_input,
    compute_letterbox,
    letterbox_image,
    mask_to_frame,
)

pytestmark = pytest.mark.jetson_python


def test_bdd_frame_into_384x640() -> None:
    lb = compute_letterbox(720, 1280, 384, 640)
    assert (lb.scale, lb.new_h, lb.new_w, lb.pad_y, lb.pad_x) == (0.5, 360, 640, 12, 0)


def test_portrait_frame_pads_sides() -> None:
    lb = compute_letterbox(480, 240, 256, 384)
    assert (lb.scale, lb.new_h, lb.new_w, lb.pad_y, lb.pad_x) == (256 / 480, 256, 128, 0, 128)


def test_letterbox_into_preallocated_buffer() -> None:
    frame = np.full((720, 1280, 3), 7, np.uint8)
    out = np.zeros((384, 640, 3), np.uint8)
    result, _ = letterbox_image(frame, 384, 640, pad_value=114, out=out)
    assert result is out
    assert (out[:12] == 114).all() and (out[372:] == 114).all() and (out[12:372] == 7).all()


def test_boxes_round_trip_and_clip() -> None:
    lb = compute_letterbox(720, 1280, 384, 640)
    boxes = np.array([[100, 200, 300, 400]], np.float32)
    inp = boxes_to_input(boxes, lb)
    np.testing.assert_allclose(inp, [[50, 112, 150, 212]])
    np.testing.assert_allclose(boxes_to_frame(inp, lb), boxes)
    outside = np.array([[-10, 5, 700, 390]], np.float32)  # reaches into the pad on every side
    np.testing.assert_allclose(boxes_to_frame(outside, lb), [[0, 0, 1280, 720]])


def test_mask_back_to_frame_is_cropped_and_nearest() -> None:
    lb = compute_letterbox(720, 1280, 384, 640)
    mask = np.zeros((384, 640), np.uint8)
    mask[12:372, 0:320] = 1  # left half of the image region
    mask[:12] = 1  # the pad must not leak into the frame
    frame_mask = mask_to_frame(mask, lb)
    assert frame_mask.shape == (720, 1280)
    assert set(np.unique(frame_mask)) == {0, 255}
    assert (frame_mask[:, :640] == 255).all() and (frame_mask[:, 640:] == 0).all()


def test_empty_frame_rejected() -> None:
    with pytest.raises(ValueError, match="empty 0x0 frame"):
        compute_letterbox(0, 0, 384, 640)
