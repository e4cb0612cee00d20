"""The road plane seen by a calibrated camera: from image masks to the vehicle's frame.

Frames follow REP 103: the vehicle frame (base_link) has x forward, y left, z up, and the ground is
z = 0. The camera's body frame is placed in it by CameraPose (x, y, z, roll, pitch, yaw, fixed axes
X-Y-Z as tf2 uses them); all angles zero looks straight ahead, a positive pitch looks down. Its optical
frame (z forward, x right, y down) follows from it, and CameraIntrinsics (sensor_msgs/CameraInfo's K)
maps that to pixels. Lenses are taken as rectified (no distortion), as a CameraInfo's P describes them.

Pure numpy: the node builds a GroundGrid once per camera geometry and looks the masks up per frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtl_perception.errors import UserFacingError

GRID_UNKNOWN, GRID_FREE, GRID_OCCUPIED = -1, 0, 100  # nav_msgs/OccupancyGrid's values


class GeometryError(ValueError, UserFacingError):
    """A camera geometry the ground projection cannot use; the message names what is wrong."""


# What the ground lookups are built for at most: a camera of 7680x4320 (8K, the node's max_image_pixels
# default) and a grid of 4 million cells (e.g. 100 m x 40 m at 5 cm). The lookups cost about 16 bytes a
# pixel and a cell, so both bounds together keep them under 1 GB.
MAX_CAMERA_PIXELS = 7680 * 4320
MAX_GRID_CELLS = 4_000_000


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels of the images the masks have (sensor_msgs/CameraInfo's K)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise GeometryError(f"camera_info K's {name} is {value}: every intrinsic must be a finite number "
                                    "(is the camera calibrated?)")
        if not (self.fx > 0 and self.fy > 0 and self.width > 0 and self.height > 0):
            raise GeometryError(f"camera intrinsics need positive focal lengths and size, got fx {self.fx}, "
                                f"fy {self.fy}, {self.width}x{self.height}: is camera_info calibrated?")
        if self.width * self.height > MAX_CAMERA_PIXELS:
            raise GeometryError(f"camera_info says {self.width}x{self.height}, over the {MAX_CAMERA_PIXELS:,} pixels "
                                "the ground lookups are built for: is its width/height right?")

    @classmethod
    def from_camera_info(cls, k: tuple[float, ...] | list[float], width: int, height: int) -> CameraIntrinsics:
        """From CameraInfo's row-major 3x3 K."""
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))


@dataclass(frozen=True)
class CameraPose:
    """The camera body frame in the vehicle frame: metres and radians, REP 103."""

    x: float = 0.0
    y: float = 0.0
    z: float = 1.5
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    def rotation(self) -> np.ndarray:
        """3x3 rotation from the camera body frame to the vehicle frame: Rz(yaw) Ry(pitch) Rx(roll)."""
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        return rz @ ry @ rx

    @classmethod
    def from_optical_transform(cls, translation: tuple[float, float, float],
                               quaternion: tuple[float, float, float, float]) -> CameraPose:
        """The pose from a TF transform of the camera's optical frame (the frame_id of its images and
        camera_info) in the vehicle frame: translation x, y, z and rotation quaternion x, y, z, w."""
        qx, qy, qz, qw = quaternion
        norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
        if not norm > 0:
            raise GeometryError("the camera's TF rotation is a zero quaternion")
        qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
        optical = np.array([
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
        body = optical @ _OPTICAL_TO_BODY.T  # Rz(yaw) Ry(pitch) Rx(roll)
        pitch = -math.asin(max(-1.0, min(1.0, float(body[2, 0]))))
        roll = math.atan2(float(body[2, 1]), float(body[2, 2]))
        yaw = math.atan2(float(body[1, 0]), float(body[0, 0]))
        x, y, z = (float(v) for v in translation)
        return cls(x, y, z, roll, pitch, yaw)


# optical (x right, y down, z forward) -> body (x forward, y left, z up)
_OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def optical_to_vehicle(pose: CameraPose) -> np.ndarray:
    """3x3 rotation from the camera's optical frame (x right, y down, z forward) to the vehicle frame."""
    rotation: np.ndarray = pose.rotation() @ _OPTICAL_TO_BODY
    return rotation


def camera_matrix(intrinsics: CameraIntrinsics) -> np.ndarray:
    """CameraInfo's K as a 3x3 array."""
    return np.array([[intrinsics.fx, 0.0, intrinsics.cx], [0.0, intrinsics.fy, intrinsics.cy], [0.0, 0.0, 1.0]])


def ground_to_pixels(points: np.ndarray, intrinsics: CameraIntrinsics, pose: CameraPose) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Points float[N, 3] in the vehicle frame -> (pixels float[N, 2] (u, v), in front bool[N])."""
    rotation = optical_to_vehicle(pose)
    camera = np.array([pose.x, pose.y, pose.z])
    optical = (points - camera) @ rotation  # rows: rotation.T @ (p - c)
    depth = optical[:, 2]
    ahead = depth > 1e-6
    safe = np.where(ahead, depth, 1.0)
    u = intrinsics.fx * optical[:, 0] / safe + intrinsics.cx
    v = intrinsics.fy * optical[:, 1] / safe + intrinsics.cy
    return np.stack([u, v], axis=1), ahead


def pixels_to_ground(pixels: np.ndarray, intrinsics: CameraIntrinsics, pose: CameraPose) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Pixels float[N, 2] (u, v) -> (ground points float[N, 3] in the vehicle frame, valid bool[N]);
    a pixel above the horizon meets no ground: valid is False there."""
    rays = np.stack([(pixels[:, 0] - intrinsics.cx) / intrinsics.fx, (pixels[:, 1] - intrinsics.cy) / intrinsics.fy,
                     np.ones(len(pixels))], axis=1) @ optical_to_vehicle(pose).T
    down = rays[:, 2] < -1e-9
    scale = np.where(down, -pose.z / np.where(down, rays[:, 2], -1.0), np.nan)
    points = np.array([pose.x, pose.y, pose.z]) + rays * scale[:, None]
    return points, down


@dataclass(frozen=True)
class GridSpec:
    """An occupancy grid in the vehicle frame: cells of `resolution` metres from x_min to x_max ahead and
    from -y_half to y_half across; cells farther than max_range from the camera are unknown. The node's grid
    comes from its parameters (from_parameters; the defaults of config/jetson.yaml: from_node_defaults)."""

    resolution: float
    x_min: float
    x_max: float
    y_half: float
    max_range: float

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> GridSpec:
        """perception_node's grid from its parameters grid_resolution, grid_backward, grid_forward, grid_side,
        grid_range."""
        return cls(float(values["grid_resolution"]), 0.0 - float(values["grid_backward"]),  # 0.0 - : never -0.0
                   float(values["grid_forward"]), float(values["grid_side"]), float(values["grid_range"]))

    @classmethod
    def from_node_defaults(cls) -> GridSpec:
        """The grid a node publishes at config/jetson.yaml's defaults."""
        from mtl_perception.defaults import node_defaults

        return cls.from_parameters(node_defaults())

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.resolution, self.x_min, self.x_max, self.y_half, self.max_range)):
            raise GeometryError(f"grid {self} has a value that is not a finite number")
        if self.resolution <= 0 or self.x_max <= self.x_min or self.y_half <= 0:
            raise GeometryError(f"grid {self} is empty: resolution > 0, x_max > x_min and y_half > 0 are needed")
        rows, cols = self.shape
        if rows * cols > MAX_GRID_CELLS:
            raise GeometryError(f"grid of {cols}x{rows} cells ({rows * cols / 1e6:.1f} million) is over the "
                                f"{MAX_GRID_CELLS / 1e6:g} million a grid may hold: raise grid_resolution "
                                f"({self.resolution:g} m) or shrink grid_forward / grid_backward / grid_side")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows along y, columns along x), as OccupancyGrid's height and width."""
        return round(2 * self.y_half / self.resolution), round((self.x_max - self.x_min) / self.resolution)

    @property
    def origin(self) -> tuple[float, float]:
        """The vehicle-frame (x, y) of cell (0, 0)'s corner: OccupancyGrid's info.origin."""
        return self.x_min, -self.y_half

    def cell_centres(self) -> np.ndarray:
        """float[rows, cols, 3] centres on the ground (z = 0)."""
        rows, cols = self.shape
        x = self.x_min + (np.arange(cols) + 0.5) * self.resolution
        y = -self.y_half + (np.arange(rows) + 0.5) * self.resolution
        grid_x, grid_y = np.meshgrid(x, y)
        return np.stack([grid_x, grid_y, np.zeros_like(grid_x)], axis=-1)


class GroundGrid:
    """A lookup table from grid cells to mask pixels for one camera geometry, so each frame costs one
    gather: OccupancyGrid data from a drivable mask."""

    def __init__(self, intrinsics: CameraIntrinsics, pose: CameraPose, spec: GridSpec) -> None:
        if pose.z <= 0:
            raise GeometryError(f"the camera is {pose.z:g} m above the ground: it must be above it (z > 0)")
        horizon = pixels_to_ground(np.array([[intrinsics.cx, intrinsics.height - 1.0]]), intrinsics, pose)[1]
        if not horizon[0]:
            raise GeometryError("the camera sees no ground (its image's bottom row looks above the horizon): "
                                "check the pitch (positive looks down) and the mounting")
        self.intrinsics, self.pose, self.spec = intrinsics, pose, spec
        centres = spec.cell_centres().reshape(-1, 3)
        pixels, ahead = ground_to_pixels(centres, intrinsics, pose)
        u, v = np.floor(pixels[:, 0]).astype(np.int64), np.floor(pixels[:, 1]).astype(np.int64)
        in_range = np.hypot(centres[:, 0] - pose.x, centres[:, 1] - pose.y) <= spec.max_range
        seen = ahead & in_range & (u >= 0) & (u < intrinsics.width) & (v >= 0) & (v < intrinsics.height)
        self.seen = seen.reshape(spec.shape)
        self._flat_index = np.where(seen, v * intrinsics.width + u, 0).reshape(spec.shape)

    def occupancy(self, drivable: np.ndarray) -> np.ndarray:
        """int8[rows, cols]: 0 where the mask says drivable, 100 where not, -1 where the camera does not see the
        ground or beyond max_range. drivable: [height, width] of the intrinsics' size, non-zero = drivable."""
        if drivable.shape[:2] != (self.intrinsics.height, self.intrinsics.width):
            raise GeometryError(f"mask is {drivable.shape[1]}x{drivable.shape[0]}, the camera geometry "
                                f"{self.intrinsics.width}x{self.intrinsics.height}")
        values = np.where(drivable.reshape(-1)[self._flat_index] > 0, GRID_FREE, GRID_OCCUPIED)
        return np.where(self.seen, values, GRID_UNKNOWN).astype(np.int8)


def fuse_occupancy(grids: Sequence[np.ndarray]) -> np.ndarray:
    """One grid from several cameras' grids on the same GridSpec. A cell is unknown until a camera sees it;
    where the cameras that see it disagree, not drivable wins: a planner must not take a cell one camera saw
    blocked because another, seeing it from farther or more obliquely, saw road. With OccupancyGrid's values
    (-1 < 0 < 100) that rule is the cell-wise maximum."""
    if not grids:
        raise ValueError("fuse_occupancy needs at least one grid")
    return np.maximum.reduce([np.asarray(g, np.int8) for g in grids])
