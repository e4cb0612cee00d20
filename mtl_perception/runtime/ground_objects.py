"""Road users on the ground (issue 32 item 3, the geometry): each tracked box of a vehicle, pedestrian, rider,
bicycle or motorcycle placed in the vehicle frame from the middle of its bottom edge (raised by what a rolled
camera tilts it; a rider's from the two-wheeler under it), with the camera geometry the drivable grid uses, as Autoware's roi_based_detector places a camera's box. The contact point is where the
ray through that pixel meets the ground; the object's centre lies half its class's typical length farther
along the ray's heading on the ground, and its size is the class's prior. A box whose bottom edge lies at or
above the horizon meets no ground; one placed beyond `max_range` is too far for the geometry to be trusted:
both are left out and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, pixels_to_ground

# Typical sizes (length, width, height in metres) of BDD100K's road users: a mid-size car, a box truck, a city
# bus, a person, a bicycle or motorcycle with its rider. Classes not listed (lights, signs, trains) are not
# placed.
CLASS_SIZES: dict[str, tuple[float, float, float]] = {
    "car": (4.5, 1.8, 1.5),
    "truck": (7.0, 2.5, 3.0),
    "bus": (12.0, 2.55, 3.2),
    "pedestrian": (0.5, 0.5, 1.7),
    "rider": (1.8, 0.6, 1.7),
    "bicycle": (1.8, 0.6, 1.2),
    "motorcycle": (2.1, 0.8, 1.3),
    "vehicle": (4.5, 1.8, 1.5),  # the peers' merged class
}


@dataclass(frozen=True)
class GroundObjects:
    """Placed objects, one row each: index into the frame's detections (int64[N]), centre and contact point on
    the ground (float64[N, 3], vehicle frame, z = 0 for the contact, half the height for the centre), size
    (float64[N, 3] length, width, height) and heading (float64[N], rad, the ray's on the ground); and how many
    road users could not be placed, by reason."""

    indices: np.ndarray
    centres: np.ndarray
    contacts: np.ndarray
    sizes: np.ndarray
    headings: np.ndarray
    above_horizon: int
    beyond_range: int
    # float64[N, 2]: vx, vy in m/s relative to the car, NaN where not known yet (runtime/object_motion.py)
    velocities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)


def place_on_ground(boxes: np.ndarray, class_names: list[str], intrinsics: CameraIntrinsics, pose: CameraPose,
                    max_range: float) -> GroundObjects:
    """boxes float[N, 4] x1, y1, x2, y2 in camera pixels with their class names; only road users are placed."""
    road_users = np.array([name in CLASS_SIZES for name in class_names], bool)
    candidates = np.flatnonzero(road_users)
    # a rolled camera tilts the object's bottom edge: the box's lowest row is then one end of it, and its middle
    # lies half the box's width times tan(roll) higher
    lift = 0.5 * (boxes[candidates, 2] - boxes[candidates, 0]) * abs(math.tan(pose.roll))
    bottom_rows = _on_their_wheels(boxes, class_names)[candidates] - lift
    bottoms = np.stack([(boxes[candidates, 0] + boxes[candidates, 2]) / 2, bottom_rows], axis=1) \
        if len(candidates) else np.zeros((0, 2))
    contacts, valid = pixels_to_ground(bottoms, intrinsics, pose)
    camera = np.array([pose.x, pose.y])
    planar = np.where(valid[:, None], contacts[:, :2] - camera, 0.0)
    distance = np.linalg.norm(planar, axis=1)
    near = valid & (distance <= max_range)
    keep = candidates[near]
    sizes = np.array([CLASS_SIZES[class_names[i]] for i in keep], np.float64).reshape(-1, 3)
    headings = np.arctan2(planar[near, 1], planar[near, 0])
    ground = contacts[near].copy()
    ground[:, 2] = 0.0
    direction = np.stack([np.cos(headings), np.sin(headings)], axis=1)
    centres = np.concatenate([ground[:, :2] + direction * sizes[:, :1] / 2, sizes[:, 2:3] / 2], axis=1)
    return GroundObjects(keep.astype(np.int64), centres, ground, sizes, headings,
                         above_horizon=int((~valid).sum()), beyond_range=int((valid & ~near).sum()))


def _on_their_wheels(boxes: np.ndarray, class_names: list[str]) -> np.ndarray:
    """float[N]: each box's bottom row, but a rider's is the bottom of the bicycle or motorcycle under it (a
    rider's box ends at the saddle, not on the road; BDD100K boxes the two apart): the two-wheeler box that holds
    the rider's bottom middle and reaches lowest, where there is one."""
    bottoms = boxes[:, 3].astype(np.float64).copy()
    wheels = [i for i, name in enumerate(class_names) if name in ("bicycle", "motorcycle")]
    for i, name in enumerate(class_names):
        if name != "rider" or not wheels:
            continue
        u, v = (boxes[i, 0] + boxes[i, 2]) / 2, boxes[i, 3]
        under = [w for w in wheels if boxes[w, 0] <= u <= boxes[w, 2] and boxes[w, 1] <= v <= boxes[w, 3]]
        if under:
            bottoms[i] = max(float(boxes[w, 3]) for w in under)
    return bottoms
