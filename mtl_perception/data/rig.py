"""A synthetic camera rig: several cameras on one car see the same road, with its ground truth in metres.

The road (its edges, lanes and markings as curves in the vehicle frame) is one of the synthetic scenes'
roads (render_scene's FrameGround). Each camera's picture is made by casting every pixel's ray to the
flat ground and painting what lies there: asphalt, the markings, the verge, and sky above the horizon.
There are no objects and no buildings: what the rig is for is the geometry of several cameras, and
every painted pixel is exactly what the truth says. The vehicle frame's origin is the front camera's
foot on the ground (x forward, y left, REP 103), as in the synthetic scenes.

render_rig_drive() gives a drive instead: the car moving along the same road at a drawn speed, the dashes and
any junction coming towards it frame by frame (the road's bend looks the same from anywhere along it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from mtl_perception.data.ground_truth import FrameGround, lateral
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic import render_scene
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, pixels_to_ground
from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, includes_alternative

MARKING_WIDTH_M = 0.15
DASH_M, DASH_PERIOD_M = 3.0, 9.0  # a dashed marking: 3 m painted in every 9 m (as the synthetic scenes')
HAZE_M = 150.0  # ground farther than this from a camera fades into the verge's colour
SUPERSAMPLE = 2  # rays per pixel side: markings a few pixels wide keep smooth edges


@dataclass(frozen=True)
class RigCamera:
    """One camera of the rig: where it sits on the car (metres, from the front camera's foot) and where it
    looks (yaw, degrees, left positive). Height and pitch are the rig's."""

    name: str
    x: float
    y: float
    yaw_deg: float


# front, front-left and front-right at +-45 deg: with 90 deg lenses their views overlap by a few degrees
DEFAULT_RIG: tuple[RigCamera, ...] = (RigCamera("front", 0.0, 0.0, 0.0), RigCamera("front_left", -0.3, 0.6, 45.0),
                                      RigCamera("front_right", -0.3, -0.6, -45.0))


@dataclass(frozen=True)
class RigView:
    """One camera's picture with its labels and its geometry."""

    image: np.ndarray  # uint8 [H, W, 3] BGR
    drivable: np.ndarray  # uint8 [H, W], 1 on the road (DRIVABLE_DEFINITION's road)
    lane: np.ndarray  # uint8 [H, W], 1 on a marking
    truth: FrameGround  # the road, with this camera's intrinsics and pose


@dataclass(frozen=True)
class RigScene:
    views: dict[str, RigView]  # in the rig's order
    road: FrameGround  # the road in the vehicle frame (its intrinsics and pose: the front camera's)


def rig_poses(rig: tuple[RigCamera, ...], height_m: float, pitch_rad: float) -> dict[str, CameraPose]:
    """Each camera's pose in the vehicle frame."""
    return {c.name: CameraPose(c.x, c.y, height_m, 0.0, pitch_rad, math.radians(c.yaw_deg)) for c in rig}


def render_rig(rng: np.random.Generator, height: int = 480, width: int = 640,
               rig: tuple[RigCamera, ...] = DEFAULT_RIG, horizontal_fov_deg: float = 90.0) -> RigScene:
    """One road seen by every camera of the rig. All randomness comes from rng: the road (a plain synthetic
    scene's), the mounting height and pitch, and the colours."""
    road = render_scene(rng, 90, 160, Randomisation.plain()).ground  # the road's curves in metres
    focal = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
    intrinsics = CameraIntrinsics(focal, focal, width / 2, height / 2, width, height)
    poses = rig_poses(rig, road.pose.z, road.pose.pitch)
    return _scene(road, intrinsics, poses, rig, _Palette.draw(rng), rng, 0.0)


def render_rig_drive(rng: np.random.Generator, frames: int, rate_hz: float = 10.0, height: int = 480,
                     width: int = 640, rig: tuple[RigCamera, ...] = DEFAULT_RIG, horizontal_fov_deg: float = 90.0,
                     speed_mps: tuple[float, float] = (6.0, 14.0)) -> Iterator[RigScene]:
    """A drive seen by the rig: render_rig's road, mounting and colours drawn once, then frames at rate_hz with
    the car moving along the road at a speed drawn from speed_mps (each frame's sensor noise drawn anew)."""
    road = render_scene(rng, 90, 160, Randomisation.plain()).ground
    focal = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
    intrinsics = CameraIntrinsics(focal, focal, width / 2, height / 2, width, height)
    poses = rig_poses(rig, road.pose.z, road.pose.pitch)
    palette = _Palette.draw(rng)
    speed = float(rng.uniform(*speed_mps))
    for index in range(frames):
        yield _scene(road, intrinsics, poses, rig, palette, rng, speed * index / rate_hz)


def _scene(road: FrameGround, intrinsics: CameraIntrinsics, poses: dict[str, CameraPose],
           rig: tuple[RigCamera, ...], palette: _Palette, rng: np.random.Generator, travelled: float) -> RigScene:
    """The road after the car has driven `travelled` metres along it, seen by every camera."""
    junction = road.junction
    if junction is not None:
        junction = (junction[0] - travelled, junction[1] - travelled) if junction[1] > travelled else None
    road = replace(road, junction=junction)
    views = {}
    for camera in rig:
        truth = replace(road, intrinsics=intrinsics, pose=poses[camera.name], ego_edge=())
        views[camera.name] = _view(truth, palette, rng, travelled)
    return RigScene(views, replace(road, intrinsics=intrinsics, pose=poses[rig[0].name], ego_edge=()))


@dataclass(frozen=True)
class _Palette:
    sky_top: np.ndarray
    sky_bottom: np.ndarray
    verge: np.ndarray
    asphalt: np.ndarray
    white: np.ndarray
    yellow: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Palette:
        def colour(bgr: tuple[float, float, float], spread: float) -> np.ndarray:
            return np.clip(np.array(bgr, np.float32) + rng.normal(0, spread, 3), 0, 255).astype(np.float32)

        return cls(colour((235, 180, 110), 10), colour((250, 225, 200), 8), colour((80, 125, 95), 15),
                   colour((100, 100, 100), 10), colour((225, 228, 230), 5), colour((40, 190, 225), 8))


def _view(truth: FrameGround, palette: _Palette, rng: np.random.Generator, travelled: float = 0.0) -> RigView:
    i = truth.intrinsics
    h, w = i.height * SUPERSAMPLE, i.width * SUPERSAMPLE
    v, u = np.mgrid[0:h, 0:w]
    pixels = np.stack([(u.ravel() + 0.5) / SUPERSAMPLE, (v.ravel() + 0.5) / SUPERSAMPLE], axis=1)
    points, on_ground = pixels_to_ground(pixels, i, truth.pose)
    x, y = np.nan_to_num(points[:, 0]), np.nan_to_num(points[:, 1])
    distance = np.where(on_ground, np.hypot(x - truth.pose.x, y - truth.pose.y), np.inf)
    road = on_ground & truth.drivable(x, y, include_alternative=True)
    drivable = on_ground & truth.drivable(x, y, includes_alternative(DRIVABLE_DEFINITION))
    lane = np.zeros(len(x), bool)
    yellow = np.zeros(len(x), bool)
    painted = on_ground & (x <= truth.road_far)  # FrameGround.has_markings_at, for every ray at once
    if truth.junction is not None:
        painted &= ~((x >= truth.junction[0]) & (x < truth.junction[1]))
    for marking in truth.markings:
        on = painted & (np.abs(y - lateral(marking.coefficients, x)) < MARKING_WIDTH_M / 2)
        if marking.dashed:
            on &= np.mod(x + travelled, DASH_PERIOD_M) < DASH_M  # dashes stay where they are painted
        lane |= on
        if "yellow" in marking.category:
            yellow |= on

    rows = (v.ravel() / h)[:, None]
    image = palette.sky_top * (1 - rows) + palette.sky_bottom * rows
    haze = np.clip(distance / HAZE_M, 0, 1)[:, None]
    ground = np.where(road[:, None], palette.asphalt, palette.verge)
    ground = ground * (1 - haze) + palette.sky_bottom * haze * 0.6 + palette.verge * haze * 0.4
    image = np.where(on_ground[:, None], ground, image)
    image = np.where(lane[:, None], np.where(yellow[:, None], palette.yellow, palette.white), image)
    shrunk = cv2.resize(image.reshape(h, w, 3).astype(np.float32), (i.width, i.height),
                        interpolation=cv2.INTER_AREA)
    noise = rng.normal(0, 4.0, (i.height, i.width, 3))  # sensor noise, so no region is flat
    picture = np.clip(np.asarray(shrunk, np.float64) + noise, 0, 255).astype(np.uint8)

    def label(mask: np.ndarray) -> np.ndarray:  # a pixel is labelled where most of its rays are
        return (cv2.resize(mask.reshape(h, w).astype(np.float32), (i.width, i.height),
                           interpolation=cv2.INTER_AREA) >= 0.5).astype(np.uint8)

    return RigView(picture, label(drivable), label(lane), truth)
