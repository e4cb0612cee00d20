"""How well the masks land on the road: the drivable grid and the lane markings against ground truth in metres.

Per frame, the drivable mask goes through the node's GroundGrid and the lane mask through its
MarkingExtractor, with the frame's own camera. The grid is scored by IoU against the true road within
5-30 m ahead (the ego lane, BDD100K's direct area, unless the whole road is asked for), over the cells the camera sees: cells out of view, or whose pixel lies in a labelled
object's box (the road behind a car is hidden, neither drivable nor not) or on the ego vehicle's hood,
count for neither side.
Each true marking that is in view at 10, 20 and 30 m is matched to the nearest extracted one at that
distance; the lateral error is the gap between them, and a marking with none within MATCH_M is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mtl_perception.data.ground_truth import FrameGround, lateral
from mtl_perception.runtime.ground import (
    GRID_FREE,
    GRID_UNKNOWN,
    GridSpec,
    GroundGrid,
    fuse_occupancy,
    ground_to_pixels,
)
from mtl_perception.runtime.lane_markings import GroundMarking, MarkingExtractor
from mtl_perception.runtime.presets import DRIVABLE_DEFINITION, includes_alternative

IOU_RANGE_M = (5.0, 30.0)
DISTANCES_M = (10, 20, 30)
MATCH_M = 1.0  # an extracted marking farther than this from a true one is another marking
_IOU_GRID = GridSpec(resolution=0.1, x_min=IOU_RANGE_M[0], x_max=IOU_RANGE_M[1], y_half=15.0, max_range=100.0)
_MARKING_GRID = GridSpec(resolution=0.1, x_min=0.0, x_max=40.0, y_half=15.0, max_range=100.0)


@dataclass(frozen=True)
class _Lookups:
    """One camera's lookups: the IoU grid, its cells' pixels and the marking extractor."""

    grid: GroundGrid
    cell_pixels: np.ndarray
    extractor: MarkingExtractor

    @classmethod
    def of(cls, truth: FrameGround) -> _Lookups:
        pixels, _ = ground_to_pixels(_IOU_GRID.cell_centres().reshape(-1, 3), truth.intrinsics, truth.pose)
        return cls(GroundGrid(truth.intrinsics, truth.pose, _IOU_GRID), pixels,
                   MarkingExtractor(truth.intrinsics, truth.pose, _MARKING_GRID))


@dataclass
class GroundScores:
    """Accumulates frames; summary() gives medians and tails over them."""

    # what drivable means: the whole road (the default, runtime/presets.py's DRIVABLE_DEFINITION), or the ego lane
    include_alternative: bool = includes_alternative(DRIVABLE_DEFINITION)
    iou: list[float] = field(default_factory=list)
    errors: dict[int, list[float]] = field(default_factory=lambda: {d: [] for d in DISTANCES_M})
    visible: dict[int, int] = field(default_factory=lambda: {d: 0 for d in DISTANCES_M})
    # the last camera's lookups: a drive keeps its camera, so they are built once, not per frame
    _cached: tuple[tuple, _Lookups] | None = field(default=None, repr=False)

    def _lookups(self, truth: FrameGround) -> _Lookups:
        key = (truth.intrinsics, truth.pose)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, _Lookups.of(truth))
        return self._cached[1]

    def add(self, truth: FrameGround, drivable: np.ndarray, lane: np.ndarray, boxes: np.ndarray) -> None:
        """drivable, lane: [H, W] non-zero where the mask says so, at the camera's size; boxes: float[N, 4]
        x1, y1, x2, y2 of the frame's labelled objects."""
        lookups = self._lookups(truth)
        iou = drivable_iou(truth, lookups, drivable, boxes, self.include_alternative)
        if iou is not None:
            self.iou.append(iou)
        extracted = lookups.extractor.markings(lane)
        for distance in DISTANCES_M:
            errors, visible = lateral_errors(truth, extracted, boxes, distance)
            self.errors[distance] += errors
            self.visible[distance] += visible

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"frames_with_road": len(self.iou)}
        iou = np.array(self.iou)
        out["iou_mean"] = _stat(iou, np.mean)
        out["iou_median"] = _stat(iou, np.median)
        out["iou_p10"] = _stat(iou, lambda a: np.percentile(a, 10))
        for d in DISTANCES_M:
            errors = np.array(self.errors[d])
            out[f"lateral_error_{d}m_median"] = _stat(errors, np.median)
            out[f"lateral_error_{d}m_p90"] = _stat(errors, lambda a: np.percentile(a, 90))
            out[f"marking_recall_{d}m"] = len(errors) / self.visible[d] if self.visible[d] else None
            out[f"markings_visible_{d}m"] = self.visible[d]
        return out


def _stat(values: np.ndarray, how: object) -> float | None:
    return round(float(how(values)), 4) if values.size else None  # type: ignore[operator]


def _hidden(pixels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """bool[N]: pixels inside any of the boxes."""
    if len(boxes) == 0:
        return np.zeros(len(pixels), bool)
    u, v = pixels[:, 0:1], pixels[:, 1:2]
    inside = (u >= boxes[None, :, 0]) & (u < boxes[None, :, 2]) & (v >= boxes[None, :, 1]) & (v < boxes[None, :, 3])
    return np.asarray(inside.any(axis=1), bool)


def drivable_iou(truth: FrameGround, lookups: _Lookups, drivable: np.ndarray, boxes: np.ndarray,
                 include_alternative: bool = False) -> float | None:
    """IoU of the grid's free cells and the true road over the cells in view and not hidden; None where
    neither has any."""
    grid, pixels = lookups.grid, lookups.cell_pixels
    predicted = grid.occupancy(drivable) == GRID_FREE
    centres = _IOU_GRID.cell_centres()
    hidden = _hidden(pixels, boxes) | truth.hidden_by_ego(pixels)
    counted = grid.seen & ~hidden.reshape(grid.seen.shape)
    actual = truth.drivable(centres[..., 0], centres[..., 1], include_alternative)
    return _iou(predicted, actual, counted)


def _iou(predicted: np.ndarray, actual: np.ndarray, counted: np.ndarray) -> float | None:
    """IoU of two cell sets over the counted cells; None where neither has any there."""
    union = ((predicted | actual) & counted).sum()
    return float(((predicted & actual) & counted).sum() / union) if union else None


def lateral_errors(truth: FrameGround, extracted: Sequence[GroundMarking], boxes: np.ndarray,
                   distance: float) -> tuple[list[float], int]:
    """(errors in metres of the matched true markings, how many true markings are in view) at a distance."""
    if not truth.has_markings_at(distance):
        return [], 0
    y_true = np.array([float(lateral(m.coefficients, distance)) for m in truth.markings])
    points = np.stack([np.full_like(y_true, distance), y_true, np.zeros_like(y_true)], axis=1)
    pixels, ahead = ground_to_pixels(points, truth.intrinsics, truth.pose)
    i = truth.intrinsics
    in_view = ahead & (pixels[:, 0] >= 0) & (pixels[:, 0] < i.width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < i.height)
    in_view &= ~_hidden(pixels, boxes) & ~truth.hidden_by_ego(pixels)
    near = [m for m in extracted if m.x_range[0] - 2.0 <= distance <= m.x_range[1] + 2.0]
    candidates = np.array([m.lateral_at(distance) for m in near])
    errors = []
    for y in y_true[in_view]:
        if candidates.size:
            gap = float(np.abs(candidates - y).min())
            if gap <= MATCH_M:
                errors.append(gap)
    return errors, int(in_view.sum())


# the surround grid of a rig (data/rig.py): the cameras' grids fused as the node fuses them, scored over
# IOU_RANGE_M ahead and SURROUND_SIDE_M to each side, where the side cameras add what the front one misses
SURROUND_SIDE_M = 15.0
SURROUND_GRID = GridSpec(resolution=0.1, x_min=0.0, x_max=IOU_RANGE_M[1], y_half=SURROUND_SIDE_M, max_range=40.0)
FUSED = "fused"


def surround_iou(road: FrameGround, occupancy: np.ndarray, spec: GridSpec,
                 include_alternative: bool) -> tuple[float | None, float]:
    """(IoU of the grid's free cells and the true road over the cells it knows, None where neither has any;
    coverage: the share of the scored region's cells it knows), over x in IOU_RANGE_M."""
    centres = spec.cell_centres()
    region = (centres[..., 0] >= IOU_RANGE_M[0]) & (centres[..., 0] <= IOU_RANGE_M[1])
    counted = region & (occupancy != GRID_UNKNOWN)
    actual = road.drivable(centres[..., 0], centres[..., 1], include_alternative)
    return _iou(occupancy == GRID_FREE, actual, counted), float(counted.sum() / region.sum())


@dataclass
class SurroundScores:
    """Accumulates rig scenes: each camera's grid and the fused one, against the road's truth."""

    include_alternative: bool = includes_alternative(DRIVABLE_DEFINITION)
    iou: dict[str, list[float]] = field(default_factory=dict)
    coverage: dict[str, list[float]] = field(default_factory=dict)

    def add(self, road: FrameGround, grids: dict[str, np.ndarray], spec: GridSpec = SURROUND_GRID) -> None:
        """grids: each camera's occupancy on spec (GroundGrid.occupancy)."""
        for name, grid in {**grids, FUSED: fuse_occupancy(list(grids.values()))}.items():
            iou, coverage = surround_iou(road, grid, spec, self.include_alternative)
            if iou is not None:
                self.iou.setdefault(name, []).append(iou)
            self.coverage.setdefault(name, []).append(coverage)

    def summary(self) -> dict[str, dict[str, float | None]]:
        return {name: {"iou_mean": _stat(np.array(self.iou.get(name, [])), np.mean),
                       "iou_p10": _stat(np.array(self.iou.get(name, [])), lambda a: np.percentile(a, 10)),
                       "coverage_mean": _stat(np.array(coverage), np.mean)}
                for name, coverage in self.coverage.items()}
