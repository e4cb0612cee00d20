"""Lane markings from a mask: painted from known lines on the ground, read back in metres."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.ground import (
    CameraIntrinsics,
    CameraPose,
    GeometryError,
    GridSpec,
    ground_to_pixels,
)
from mtl_perception.runtime.lane_markings import MarkingExtractor

pytestmark = pytest.mark.jetson_python

K = CameraIntrinsics(fx=1000.0, fy=1000.0, cx=640.0, cy=360.0, width=1280, height=720)
POSE = CameraPose(z=1.5, pitch=0.03, roll=0.01)
SPEC = GridSpec(resolution=0.1, x_min=0.0, x_max=40.0, y_half=10.0, max_range=40.0)


def _paint(mask: np.ndarray, y_of_x, x_from: float, x_to: float, width: float = 0.15) -> None:
    """Fill the ground strip y_of_x(x) +- width/2 for x in [x_from, x_to) into the mask, through the camera."""
    x = np.arange(x_from, x_to, 0.01)
    for offset in np.linspace(-width / 2, width / 2, 7):
        points = np.stack([x, y_of_x(x) + offset, np.zeros_like(x)], axis=1)
        pixels, ahead = ground_to_pixels(points, K, POSE)
        u, v = np.floor(pixels[ahead]).astype(int).T
        inside = (u >= 0) & (u < K.width) & (v >= 0) & (v < K.height)
        mask[v[inside], u[inside]] = 255


def test_markings_come_back_where_they_were_painted() -> None:
    lines = [lambda x: 1.8 + 0.002 * x * x, lambda x: -1.8 + 0.002 * x * x, lambda x: -5.4 + 0.002 * x * x]
    mask = np.zeros((K.height, K.width), np.uint8)
    for line in lines:
        _paint(mask, line, 4.0, 40.0)
    found = MarkingExtractor(K, POSE, SPEC).markings(mask)
    assert len(found) == 3
    for marking in sorted(found, key=lambda m: m.lateral_at(20.0))[1:]:  # the two beside the camera
        assert marking.points[0, 0] < 6.0 and marking.points[-1, 0] > 35.0  # they span what was painted
    for marking in found:
        nearest = min(lines, key=lambda line: abs(line(20.0) - marking.lateral_at(20.0)))
        for x in (10.0, 20.0, 30.0):
            assert marking.lateral_at(x) == pytest.approx(float(nearest(x)), abs=0.05)


def test_a_dashed_line_is_one_marking_and_crossings_are_none() -> None:
    mask = np.zeros((K.height, K.width), np.uint8)
    for start in np.arange(5.0, 40.0, 12.0):  # 3 m dashes every 12 m: gaps of 9 m
        _paint(mask, lambda x: np.full_like(x, 1.7), start, start + 3.0)
    _paint(mask, lambda x: np.full_like(x, -1.9), 4.0, 40.0)
    # a stop line across the lane 12 m ahead, and zebra stripes 25-28 m ahead
    for y in np.arange(-1.8, 1.8, 0.05):
        _paint(mask, lambda x, y=y: np.full_like(x, y), 12.0, 12.4, width=0.06)
    for y in np.arange(-5.0, 5.0, 1.0):
        _paint(mask, lambda x, y=y: np.full_like(x, y), 25.0, 28.0, width=0.5)
    found = sorted(MarkingExtractor(K, POSE, SPEC).markings(mask), key=lambda m: m.lateral_at(20.0))
    assert len(found) == 2
    assert [round(m.lateral_at(20.0), 1) for m in found] == [-1.9, 1.7]
    assert found[1].x_range[1] - found[1].x_range[0] > 25.0  # the dashes joined up across their gaps


def test_nothing_and_bad_input() -> None:
    extractor = MarkingExtractor(K, POSE, SPEC)
    assert extractor.markings(np.zeros((K.height, K.width), np.uint8)) == []
    blot = np.zeros((K.height, K.width), np.uint8)
    blot[500:] = 255  # an untrained model's lane mask: one wide blot, nothing shaped like a line
    assert extractor.markings(blot) == []
    with pytest.raises(GeometryError, match="mask is 640x360"):
        extractor.markings(np.zeros((360, 640), np.uint8))
    with pytest.raises(GeometryError, match="sees the ground"):
        MarkingExtractor(K, CameraPose(z=1.5, pitch=-0.8), SPEC)
