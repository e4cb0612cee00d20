"""Ground truth on the road plane, in metres: what the synthetic scenes know and BDD100K does not.

Each synthetic frame records its camera (intrinsics in pixels; height, pitch and roll of its mounting)
and the road in the vehicle frame of runtime/ground.py (x forward, y left, from the point on the ground
below the camera): the road's two edges, the ego lane's two edges (BDD100K's "direct" drivable area; the
rest of the road is "alternative") and each longitudinal marking, all as y(x) = a0 + a1 x + a2 x^2.
The file sits beside the BDD100K labels (labels/ground/ground_SPLIT.json) and is optional: a split
without it still reads, only eval-ground needs it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

from mtl_perception.data.bdd100k import DatasetError, SplitPaths
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose

# typing.Tuple: a builtin tuple[...] evaluated at import fails under JetPack 5's Python 3.8
Coefficients = Tuple[float, float, float]


def lateral(coefficients: Coefficients, x: np.ndarray | float) -> np.ndarray:
    """y at x of the curve y = a0 + a1 x + a2 x^2."""
    a0, a1, a2 = coefficients
    x = np.asarray(x, np.float64)
    return np.asarray(a0 + a1 * x + a2 * x * x)


@dataclass(frozen=True)
class MarkingTruth:
    """One longitudinal marking (a lane boundary), by its centre line."""

    category: str  # BDD100K's lane category, e.g. "single white"
    dashed: bool
    coefficients: Coefficients


@dataclass(frozen=True)
class ObjectTruth:
    """Where one labelled road user of a drive is, in the vehicle frame (data/drive.py)."""

    track_id: str  # its label's id in the frame's box_track record
    category: str
    contact: tuple[float, float]  # x, y: the middle of the face the camera sees, where it meets the ground
    centre: tuple[float, float]  # x, y: the middle of its footprint
    velocity: tuple[float, float]  # vx, vy: m/s relative to the ego vehicle

    def to_record(self) -> dict:
        return {"id": self.track_id, "category": self.category, "contact_m": list(self.contact),
                "centre_m": list(self.centre), "velocity_mps": list(self.velocity)}

    @classmethod
    def from_record(cls, record: dict) -> ObjectTruth:
        def pair(key: str) -> tuple[float, float]:
            x, y = (float(v) for v in record[key])
            return x, y
        return cls(str(record["id"]), str(record["category"]), pair("contact_m"), pair("centre_m"),
                   pair("velocity_mps"))


@dataclass(frozen=True)
class FrameGround:
    intrinsics: CameraIntrinsics
    pose: CameraPose
    road_far: float  # metres ahead where the road ends
    left_edge: Coefficients  # the road lies between these two curves (left: larger y)
    right_edge: Coefficients
    ego_left: Coefficients  # the ego lane: the direct drivable area
    ego_right: Coefficients
    markings: tuple[MarkingTruth, ...]
    junction: tuple[float, float] | None = None  # x range of a crossing road (alternative area, no markings)
    # the top edge of the ego vehicle's hood or dashboard in the image, (u, v) points left to right:
    # pixels below it show the car, not the road
    ego_edge: tuple[tuple[float, float], ...] = ()
    objects: tuple[ObjectTruth, ...] = ()  # the road users' places, in a drive's frames

    def hidden_by_ego(self, pixels: np.ndarray) -> np.ndarray:
        """bool[N]: image pixels (u, v) that show the ego vehicle rather than the world."""
        if not self.ego_edge:
            return np.zeros(len(pixels), bool)
        edge = np.array(self.ego_edge)
        return np.asarray(pixels[:, 1] >= np.interp(pixels[:, 0], edge[:, 0], edge[:, 1]))

    def has_markings_at(self, x: float) -> bool:
        """Whether the longitudinal markings run at x (a junction interrupts them)."""
        return x <= self.road_far and not (self.junction is not None and self.junction[0] <= x < self.junction[1])

    def drivable(self, x: np.ndarray, y: np.ndarray, include_alternative: bool = False) -> np.ndarray:
        """bool: ground points (x, y) in the direct drivable area (the ego lane), or anywhere on the road
        with include_alternative, as BDD100K's two drivable classes."""
        left, right = (self.left_edge, self.right_edge) if include_alternative else (self.ego_left, self.ego_right)
        inside = (x <= self.road_far) & (y <= lateral(left, x)) & (y >= lateral(right, x))
        if include_alternative and self.junction is not None:
            inside |= (x >= self.junction[0]) & (x < self.junction[1])
        return np.asarray(inside)

    def to_record(self, name: str) -> dict:
        i, p = self.intrinsics, self.pose
        return {
            "name": name,
            "camera": {"fx": i.fx, "fy": i.fy, "cx": i.cx, "cy": i.cy, "width": i.width, "height": i.height,
                       "mount_height_m": p.z, "pitch_rad": p.pitch, "roll_rad": p.roll},
            "road": {"far_m": self.road_far, "left_edge": list(self.left_edge), "right_edge": list(self.right_edge),
                     "ego_lane_left": list(self.ego_left), "ego_lane_right": list(self.ego_right)},
            "markings": [{"category": m.category, "dashed": m.dashed, "y_of_x": list(m.coefficients)}
                         for m in self.markings],
            "junction_m": list(self.junction) if self.junction is not None else None,
            "ego_edge_px": [list(p) for p in self.ego_edge],
            "objects": [o.to_record() for o in self.objects],
        }

    @classmethod
    def from_record(cls, record: dict) -> FrameGround:
        camera, road = record["camera"], record["road"]
        return cls(
            CameraIntrinsics(camera["fx"], camera["fy"], camera["cx"], camera["cy"], camera["width"],
                             camera["height"]),
            CameraPose(z=camera["mount_height_m"], pitch=camera["pitch_rad"], roll=camera["roll_rad"]),
            float(road["far_m"]), _coefficients(road["left_edge"]), _coefficients(road["right_edge"]),
            _coefficients(road["ego_lane_left"]), _coefficients(road["ego_lane_right"]),
            tuple(MarkingTruth(m["category"], bool(m["dashed"]), _coefficients(m["y_of_x"]))
                  for m in record["markings"]),
            _junction(record.get("junction_m")),
            tuple((float(u), float(v)) for u, v in record.get("ego_edge_px", [])),
            tuple(ObjectTruth.from_record(o) for o in record.get("objects", [])),
        )


def _coefficients(values: list[float]) -> Coefficients:
    a0, a1, a2 = (float(v) for v in values)
    if not all(math.isfinite(v) for v in (a0, a1, a2)):
        raise ValueError(f"non-finite curve coefficients {values}")
    return a0, a1, a2


def _junction(values: list[float] | None) -> tuple[float, float] | None:
    return None if values is None else (float(values[0]), float(values[1]))


def ground_json(paths: SplitPaths) -> Path:
    return paths.root / "labels" / "ground" / f"ground_{paths.split}.json"


def load_ground_truth(paths: SplitPaths) -> dict[str, FrameGround]:
    """Frame name -> FrameGround; a split without the file (BDD100K itself) raises DatasetError saying so."""
    path = ground_json(paths)
    if not path.is_file():
        raise DatasetError(f"{path} not found: ground truth in metres exists only for synthetic splits "
                           "(write one with `mtl-perception synth`)")
    try:
        records = json.loads(path.read_text())
        return {r["name"]: FrameGround.from_record(r) for r in records}
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{path} is not a ground-truth file of this package: {err!r}") from err
