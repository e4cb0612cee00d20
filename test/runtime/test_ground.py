"""The road-plane projection against hand-computed pixels for known cameras (level, pitched, rolled)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_perception.runtime.ground import (
    GRID_FREE,
    GRID_OCCUPIED,
    GRID_UNKNOWN,
    CameraIntrinsics,
    CameraPose,
    GeometryError,
    GridSpec,
    GroundGrid,
    ground_to_pixels,
    pixels_to_ground,
)

pytestmark = pytest.mark.jetson_python

K = CameraIntrinsics(fx=1000.0, fy=1000.0, cx=640.0, cy=360.0, width=1280, height=720)


def test_level_camera_hand_computed() -> None:
    # 1.5 m up, looking ahead: a ground point d ahead lies f * h / d below the centre, f * y / d beside it
    pose = CameraPose(z=1.5)
    pixels, ahead = ground_to_pixels(np.array([[15.0, 0.0, 0.0], [15.0, 1.5, 0.0], [30.0, -3.0, 0.0]]), K, pose)
    np.testing.assert_allclose(pixels, [[640, 460], [540, 460], [740, 410]])
    assert ahead.all()
    points, valid = pixels_to_ground(np.array([[640.0, 460.0], [740.0, 410.0], [640.0, 300.0]]), K, pose)
    np.testing.assert_allclose(points[:2], [[15, 0, 0], [30, -3, 0]], atol=1e-9)
    assert valid.tolist() == [True, True, False]  # 60 px above the centre: sky


def test_pitched_camera_hand_computed() -> None:
    # pitched down by p: a point d ahead is seen atan(h/d) - p below the optical axis
    pose = CameraPose(z=1.5, pitch=0.1)
    (u, v), = ground_to_pixels(np.array([[15.0, 0.0, 0.0]]), K, pose)[0]
    assert u == pytest.approx(640.0)
    assert v == pytest.approx(360.0 + 1000.0 * math.tan(math.atan(1.5 / 15.0) - 0.1))


def test_rolled_camera_hand_computed() -> None:
    # rolled by r about its forward axis: the point straight ahead moves to (f h sin r / d, f h cos r / d)
    pose = CameraPose(z=1.5, roll=0.1)
    (u, v), = ground_to_pixels(np.array([[15.0, 0.0, 0.0]]), K, pose)[0]
    assert u == pytest.approx(640.0 + 1000.0 * 1.5 * math.sin(0.1) / 15.0)
    assert v == pytest.approx(360.0 + 1000.0 * 1.5 * math.cos(0.1) / 15.0)


def test_round_trip_for_a_mounted_camera() -> None:
    pose = CameraPose(x=1.2, y=-0.3, z=1.4, roll=0.02, pitch=0.08, yaw=-0.05)
    rng = np.random.default_rng(0)
    pixels = np.stack([rng.uniform(0, 1280, 200), rng.uniform(500, 720, 200)], axis=1)
    points, valid = pixels_to_ground(pixels, K, pose)
    assert valid.all() and np.allclose(points[:, 2], 0.0)
    back, ahead = ground_to_pixels(points, K, pose)
    assert ahead.all()
    np.testing.assert_allclose(back, pixels, atol=1e-6)


def test_grid_frame_origin_and_lookup() -> None:
    spec = GridSpec(resolution=0.1, x_min=0.0, x_max=40.0, y_half=10.0, max_range=40.0)
    assert spec.shape == (200, 400) and spec.origin == (0.0, -10.0)
    grid = GroundGrid(K, CameraPose(z=1.5, pitch=0.05), spec)
    drivable = np.zeros((720, 1280), np.uint8)
    occupancy = grid.occupancy(drivable)
    assert occupancy.dtype == np.int8 and set(np.unique(occupancy).tolist()) == {GRID_UNKNOWN, GRID_OCCUPIED}
    assert (occupancy[:, :5] == GRID_UNKNOWN).all()  # the first half metre is under the camera's view
    row, col = 100, 150  # the cell whose centre is (15.05, 0.05): find its pixel by hand and mark it drivable
    (u, v), = ground_to_pixels(np.array([[15.05, 0.05, 0.0]]), K, CameraPose(z=1.5, pitch=0.05))[0]
    drivable[int(v), int(u)] = 255
    assert grid.occupancy(drivable)[row, col] == GRID_FREE
    assert (grid.occupancy(np.full((720, 1280), 255, np.uint8))[grid.seen] == GRID_FREE).all()


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: GroundGrid(K, CameraPose(z=1.5, pitch=-0.6), GridSpec.from_node_defaults()), "sees no ground"),
    (lambda: CameraIntrinsics(0.0, 1000.0, 640.0, 360.0, 1280, 720), "positive focal lengths"),
    (lambda: GroundGrid(K, CameraPose(z=0.0), GridSpec.from_node_defaults()), "must be above it"),
    (lambda: GroundGrid(K, CameraPose(z=1.5), GridSpec.from_node_defaults()).occupancy(np.zeros((480, 640), np.uint8)),
     "mask is 640x480, the camera geometry 1280x720"),
])
def test_bad_geometry_is_refused_with_a_reason(make: object, reason: str) -> None:
    with pytest.raises(GeometryError, match=reason):
        make()  # type: ignore[operator]


# REP 103's optical frame of a camera_link: rpy (-pi/2, 0, -pi/2), the quaternion every URDF camera carries
OPTICAL_IN_CAMERA_LINK = (-0.5, 0.5, -0.5, 0.5)


def _multiply(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Hamilton product of quaternions (x, y, z, w): rotation a, then b in a's frame (a TF chain)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def test_pose_from_a_tf_chain_of_the_optical_frame() -> None:
    level = CameraPose.from_optical_transform((1.2, 0.1, 1.5), OPTICAL_IN_CAMERA_LINK)
    assert (level.x, level.y, level.z) == (1.2, 0.1, 1.5)
    assert (level.roll, level.pitch, level.yaw) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    # camera_link pitched 0.1 rad down (about y, REP 103), rolled 0.02 and yawed -0.05: base_link -> camera_link
    # as yaw, then pitch, then roll (fixed axes X-Y-Z), then -> optical
    yaw, pitch, roll = (0.0, 0.0, math.sin(-0.025), math.cos(-0.025)), (0.0, math.sin(0.05), 0.0, math.cos(0.05)), \
        (math.sin(0.01), 0.0, 0.0, math.cos(0.01))
    chain = _multiply(_multiply(_multiply(yaw, pitch), roll), OPTICAL_IN_CAMERA_LINK)
    pose = CameraPose.from_optical_transform((0.0, 0.0, 1.4), chain)
    assert (pose.roll, pose.pitch, pose.yaw) == pytest.approx((0.02, 0.1, -0.05), abs=1e-9)
    # and the projection agrees with the one from the angles given directly
    point = np.array([[12.0, 0.7, 0.0]])
    direct = ground_to_pixels(point, K, CameraPose(z=1.4, roll=0.02, pitch=0.1, yaw=-0.05))[0]
    np.testing.assert_allclose(ground_to_pixels(point, K, pose)[0], direct, atol=1e-6)
    with pytest.raises(GeometryError, match="zero quaternion"):
        CameraPose.from_optical_transform((0.0, 0.0, 1.4), (0.0, 0.0, 0.0, 0.0))


@pytest.mark.parametrize(("k", "size", "message"), [
    ((500.0, 0.0, float("nan"), 0.0, 500.0, 240.0), (640, 480), "cx is nan"),
    ((float("inf"), 0.0, 320.0, 0.0, 500.0, 240.0), (640, 480), "fx is inf"),
    ((500.0, 0.0, 50000.0, 0.0, 500.0, 50000.0), (100000, 100000), "100000x100000, over the"),
])
def test_intrinsics_that_no_camera_has_are_refused_naming_the_field(k: tuple, size: tuple, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        CameraIntrinsics.from_camera_info([k[0], k[1], k[2], k[3], k[4], k[5], 0.0, 0.0, 1.0], *size)


def test_a_grid_the_node_cannot_hold_is_refused_in_range_parameters() -> None:
    """0.01 m cells over 200 m x 2 x 100 m: each parameter inside its range, 400 million cells together."""
    with pytest.raises(GeometryError, match="raise grid_resolution"):
        GridSpec(0.01, 0.0, 200.0, 100.0, 200.0)
    assert GridSpec(0.05, 0.0, 100.0, 20.0, 100.0).shape == (800, 2000)  # 1.6 million: fine


def _perfect_mask(road_half_width: float, intrinsics: CameraIntrinsics, pose: CameraPose) -> np.ndarray:
    """The drivable mask a perfect model gives for a straight road |y| < road_half_width, found by casting
    each pixel's ray to the ground (the inverse of the grid's lookup)."""
    v, u = np.mgrid[0:intrinsics.height, 0:intrinsics.width]
    points, valid = pixels_to_ground(np.stack([u.ravel() + 0.5, v.ravel() + 0.5], axis=1).astype(float),
                                     intrinsics, pose)
    road = valid & (np.abs(points[:, 1]) < road_half_width)
    return road.reshape(intrinsics.height, intrinsics.width).astype(np.uint8)


def test_a_fused_rig_sees_more_and_where_it_sees_it_is_right() -> None:
    from mtl_perception.runtime.ground import fuse_occupancy

    intrinsics = CameraIntrinsics(fx=320.0, fy=320.0, cx=320.0, cy=240.0, width=640, height=480)
    spec = GridSpec(resolution=0.25, x_min=0.0, x_max=30.0, y_half=15.0, max_range=30.0)
    rig = [CameraPose(1.5, 0.0, 1.4, 0.0, 0.15, 0.0), CameraPose(1.3, 0.5, 1.4, 0.0, 0.15, math.radians(45)),
           CameraPose(1.3, -0.5, 1.4, 0.0, 0.15, math.radians(-45))]
    grids = [GroundGrid(intrinsics, pose, spec).occupancy(_perfect_mask(6.0, intrinsics, pose)) for pose in rig]
    fused = fuse_occupancy(grids)
    seen = [g != GRID_UNKNOWN for g in grids]
    assert ((fused != GRID_UNKNOWN) == np.logical_or.reduce(seen)).all()  # unknown until a camera sees it
    assert (fused != GRID_UNKNOWN).sum() > 1.3 * max(s.sum() for s in seen)  # the side cameras add ground
    centres = spec.cell_centres()
    truth = np.where(np.abs(centres[..., 1]) < 6.0, GRID_FREE, GRID_OCCUPIED)
    known = fused != GRID_UNKNOWN
    # cells cut by the road's edge may go either way (a cell is one pixel's answer); the rest are right
    edge = np.abs(np.abs(centres[..., 1]) - 6.0) < spec.resolution
    assert (fused[known & ~edge] == truth[known & ~edge]).all()


def test_fusion_keeps_what_any_camera_saw_blocked() -> None:
    from mtl_perception.runtime.ground import fuse_occupancy

    u, f, o = GRID_UNKNOWN, GRID_FREE, GRID_OCCUPIED
    front = np.array([[u, f, f, o, u]], np.int8)
    side = np.array([[u, u, o, f, f]], np.int8)
    assert fuse_occupancy([front, side]).tolist() == [[u, f, o, o, f]]
    assert fuse_occupancy([front]).tolist() == front.tolist()
    with pytest.raises(ValueError, match="at least one grid"):
        fuse_occupancy([])
