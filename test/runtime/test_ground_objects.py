"""Road users placed on the ground from their boxes' bottom edges, against the exact geometry: a car of known
size standing at a known place, its box drawn by projecting its 3-D corners into the camera (the camera's
model run forwards), placed back within a few centimetres; boxes above the horizon or beyond range counted."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, ground_to_pixels
from mtl_perception.runtime.ground_objects import CLASS_SIZES, place_on_ground

pytestmark = pytest.mark.jetson_python

CAMERA = CameraIntrinsics(800.0, 800.0, 640.0, 360.0, 1280, 720)
POSE = CameraPose(1.5, 0.0, 1.4, 0.0, 0.05, 0.0)


def _box_of(centre_x: float, centre_y: float, name: str) -> np.ndarray:
    """The image box of an object of its class's size, axis-aligned with the car, centred at (x, y)."""
    length, width, height = CLASS_SIZES[name]
    corners = np.array([[centre_x + dx * length / 2, centre_y + dy * width / 2, z]
                        for dx in (-1, 1) for dy in (-1, 1) for z in (0.0, height)])
    pixels, ahead = ground_to_pixels(corners, CAMERA, POSE)
    assert ahead.all()
    return np.array([pixels[:, 0].min(), pixels[:, 1].min(), pixels[:, 0].max(), pixels[:, 1].max()])


@pytest.mark.parametrize("distance", [8.0, 15.0, 25.0, 38.0])
def test_a_car_straight_ahead_is_placed_where_it_stands(distance: float) -> None:
    box = _box_of(distance, 0.0, "car")
    placed = place_on_ground(box[None], ["car"], CAMERA, POSE, max_range=60.0)
    assert len(placed) == 1
    # the bottom edge's middle is the car's nearest face: its centre is half a length farther
    np.testing.assert_allclose(placed.contacts[0, :2], [distance - CLASS_SIZES["car"][0] / 2, 0.0], atol=0.05)
    np.testing.assert_allclose(placed.centres[0], [distance, 0.0, CLASS_SIZES["car"][2] / 2], atol=0.05)
    assert abs(placed.headings[0]) < 1e-6


def test_a_car_off_to_the_side_is_placed_along_its_ray() -> None:
    box = _box_of(20.0, -4.0, "car")
    placed = place_on_ground(box[None], ["car"], CAMERA, POSE, max_range=60.0)
    # the bottom edge of a car seen obliquely is its near corner's row: the placement errs by well under 10 %
    distance = np.hypot(*(placed.centres[0, :2] - [POSE.x, POSE.y]))
    truth = np.hypot(20.0 - POSE.x, -4.0)
    assert abs(distance - truth) / truth < 0.1 and placed.centres[0, 1] < -2.5


def test_only_road_users_are_placed_and_the_rest_counted() -> None:
    boxes = np.stack([_box_of(12.0, 0.0, "car"), _box_of(12.0, 3.0, "pedestrian"),
                      np.array([600.0, 100.0, 640.0, 200.0]),  # a traffic light: not a road user
                      np.array([600.0, 100.0, 680.0, 300.0]),  # its bottom above the horizon (v < 360)
                      _box_of(80.0, 0.0, "truck")])  # beyond range
    placed = place_on_ground(boxes, ["car", "pedestrian", "traffic light", "car", "truck"], CAMERA, POSE,
                             max_range=40.0)
    assert placed.indices.tolist() == [0, 1]
    np.testing.assert_allclose(placed.sizes[1], CLASS_SIZES["pedestrian"])
    assert (placed.above_horizon, placed.beyond_range) == (1, 1)
    empty = place_on_ground(np.zeros((0, 4)), [], CAMERA, POSE, max_range=40.0)
    assert len(empty) == 0 and empty.centres.shape == (0, 3)


@pytest.mark.parametrize("roll", [-0.06, 0.04])
def test_a_rolled_camera_places_a_wide_vehicle_where_it_stands(roll: float) -> None:
    """Rolled, the camera sees a truck's bottom edge tilted: the box's lowest row is one end of it, which alone
    would put the truck several per cent nearer than it is."""
    pose = CameraPose(1.5, 0.0, 1.4, roll, 0.05, 0.0)
    length, width, height = CLASS_SIZES["truck"]
    corners = np.array([[20.0 + dx * length / 2, dy * width / 2, z] for dx in (-1, 1) for dy in (-1, 1)
                        for z in (0.0, height)])
    pixels, _ = ground_to_pixels(corners, CAMERA, pose)
    box = np.array([pixels[:, 0].min(), pixels[:, 1].min(), pixels[:, 0].max(), pixels[:, 1].max()])
    placed = place_on_ground(box[None], ["truck"], CAMERA, pose, max_range=60.0)
    near_face = 20.0 - length / 2 - pose.x
    assert abs(placed.contacts[0, 0] - pose.x - near_face) / near_face < 0.01


def test_a_rider_stands_on_the_bicycle_under_it() -> None:
    bicycle = _box_of(15.0, 2.0, "bicycle")
    rider = np.array([bicycle[0] + 5, bicycle[1] - 60, bicycle[2] - 5, (bicycle[1] + bicycle[3]) / 2])
    placed = place_on_ground(np.stack([bicycle, rider]), ["bicycle", "rider"], CAMERA, POSE, max_range=60.0)
    np.testing.assert_allclose(placed.contacts[1, :2], placed.contacts[0, :2], atol=1e-6)
    alone = place_on_ground(rider[None], ["rider"], CAMERA, POSE, max_range=60.0)
    assert alone.contacts[0, 0] > placed.contacts[1, 0] + 1.0  # from its own bottom edge, the saddle: too far
