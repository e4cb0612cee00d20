"""Lane markings on the ground: from a lane mask to one polyline per marking, in the vehicle frame.

The lane mask carries no instances, so markings are told apart by where they lie on the ground: the
mask's pixels are projected onto the road (runtime/ground.py), cut into slices across the road, and the
points of one slice split wherever a lateral gap is wider than a marking. Clusters wider than a marking
run across the road (stop lines), and so do their edges in the next slices; clusters closer together
than lane lines ever are stripes of a crosswalk: all of these are left out. Slices are chained near to far into
tracks, each cluster joining the track whose path it continues, so a dashed line survives its gaps.
Each long enough track is fitted as y = a0 + a1 x + a2 x^2, the shape a road keeps over tens of metres,
and sampled along x as the polyline.

Pure numpy: the node builds a RoadProjection (a GroundGrid and a MarkingExtractor) once per camera geometry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mtl_perception.runtime.ground import (
    CameraIntrinsics,
    CameraPose,
    GeometryError,
    GridSpec,
    GroundGrid,
    pixels_to_ground,
)


@dataclass(frozen=True)
class MarkingSettings:
    """Metres. Defaults suit BDD100K's markings (0.1-0.2 m wide, dashes 3 m every 12 m)."""

    slice_m: float = 1.0  # depth of one slice across the road
    gap_m: float = 0.4  # a lateral gap wider than this separates two markings in a slice
    max_width_m: float = 1.0  # wider clusters are transverse markings, not lane lines
    min_spacing_m: float = 1.5  # lane lines lie farther apart than this; crosswalk stripes (about 1 m) do not
    link_m: float = 0.6  # how far sideways a marking may stray from its track's path
    max_gap_m: float = 15.0  # longest stretch a track may go unseen (a dashed line's gap is about 9 m)
    min_length_m: float = 6.0  # shorter tracks are crosswalk stripes (3-4 m), arrows or noise
    outlier_m: float = 0.3  # points this far from the first fit are dropped before the second
    sample_m: float = 1.0  # spacing of the polyline's points along x


@dataclass(frozen=True)
class GroundMarking:
    """One marking: points float[N, 2] (x, y) every sample_m along x, and its curve y(x)."""

    points: np.ndarray
    coefficients: tuple[float, float, float]  # a0, a1, a2
    # float[M, 3]: x, y and weight of the slices the curve was fitted to (what the ego lane refits)
    observed: np.ndarray | None = None

    @property
    def x_range(self) -> tuple[float, float]:
        return float(self.points[0, 0]), float(self.points[-1, 0])

    def lateral_at(self, x: float) -> float:
        a0, a1, a2 = self.coefficients
        return a0 + a1 * x + a2 * x * x


@dataclass
class _Track:
    x: list[float]
    y: list[float]
    weight: list[float]

    def predict(self, x: float) -> float:
        """y at x along the line through the last few points (or the last y, until they span 2 m)."""
        xs, ys = self.x[-8:], self.y[-8:]
        if xs[-1] - xs[0] < 2.0:
            return ys[-1]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((a - mean_x) * (b - mean_y) for a, b in zip(xs, ys)) / sum((a - mean_x) ** 2 for a in xs)
        return mean_y + slope * (x - mean_x)


class MarkingExtractor:
    """Ground coordinates of every pixel for one camera geometry, and the markings of each lane mask."""

    def __init__(self, intrinsics: CameraIntrinsics, pose: CameraPose, spec: GridSpec,
                 settings: MarkingSettings | None = None) -> None:
        if pose.z <= 0:
            raise GeometryError(f"the camera is {pose.z:g} m above the ground: it must be above it (z > 0)")
        self.intrinsics, self.pose, self.spec = intrinsics, pose, spec
        self.settings = settings or MarkingSettings()
        v, u = np.mgrid[0:intrinsics.height, 0:intrinsics.width]
        pixels = np.stack([u.ravel() + 0.5, v.ravel() + 0.5], axis=1)
        ground, valid = pixels_to_ground(pixels, intrinsics, pose)
        x, y = ground[:, 0], ground[:, 1]
        in_range = np.hypot(x - pose.x, y - pose.y) <= spec.max_range
        valid &= in_range & (x >= spec.x_min) & (x <= spec.x_max) & (np.abs(y) <= spec.y_half)
        if not valid.any():
            raise GeometryError("no pixel of the camera sees the ground inside the grid: check the pitch "
                                "(positive looks down) and the grid's extent")
        self._valid = valid
        self._xy = np.where(valid[:, None], ground[:, :2], 0.0).astype(np.float32)

    def markings(self, lane: np.ndarray) -> list[GroundMarking]:
        """lane: [height, width] of the intrinsics' size, non-zero = marking."""
        if lane.shape[:2] != (self.intrinsics.height, self.intrinsics.width):
            raise GeometryError(f"mask is {lane.shape[1]}x{lane.shape[0]}, the camera geometry "
                                f"{self.intrinsics.width}x{self.intrinsics.height}")
        index = np.flatnonzero((lane.reshape(-1) > 0) & self._valid)
        if index.size == 0:
            return []
        clusters = self._clusters(self._xy[index])
        if len(clusters) == 0:  # all of it ran across the road (or the mask is one blot)
            return []
        tracks = self._chain(clusters)
        fitted = (self._fit(t) for t in tracks)
        return [m for m in fitted if m is not None]

    def _clusters(self, xy: np.ndarray) -> np.ndarray:
        """float[K, 4]: slice centre x, mean y, width, point count of each cluster, ordered by slice."""
        s = self.settings
        slices = np.floor((xy[:, 0] - self.spec.x_min) / s.slice_m).astype(np.int64)
        order = np.lexsort((xy[:, 1], slices))
        slices, y = slices[order], xy[order, 1].astype(np.float64)
        starts = np.flatnonzero(np.r_[True, (np.diff(slices) != 0) | (np.diff(y) > s.gap_m)])
        counts = np.diff(np.r_[starts, len(y)])
        mean_y = np.add.reduceat(y, starts) / counts
        low, high = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
        width = high - low
        slice_of = slices[starts]
        keep = width <= s.max_width_m
        for w in np.flatnonzero(~keep):  # a transverse line's ragged edges fall into the slices beside it
            beside = (np.abs(slice_of - slice_of[w]) <= 1) & (high >= low[w]) & (low <= high[w])
            keep &= ~beside
        close = (slice_of[1:] == slice_of[:-1]) & (np.diff(mean_y) < s.min_spacing_m)
        keep &= ~np.r_[close, False] & ~np.r_[False, close]
        centre_x = self.spec.x_min + (slice_of + 0.5) * s.slice_m
        return np.stack([centre_x, mean_y, width, counts], axis=1)[keep]

    def _chain(self, clusters: np.ndarray) -> list[_Track]:
        s = self.settings
        active: list[_Track] = []
        done: list[_Track] = []
        slice_starts = np.flatnonzero(np.r_[True, np.diff(clusters[:, 0]) != 0])
        for here in np.split(clusters, slice_starts[1:]):
            x = float(here[0, 0])
            done += [t for t in active if x - t.x[-1] > s.max_gap_m]
            active = [t for t in active if x - t.x[-1] <= s.max_gap_m]
            # nearest pairs first, each track and each cluster used once
            predicted = [t.predict(x) for t in active]
            pairs = sorted((abs(p - y), ti, ci) for ti, p in enumerate(predicted)
                           for ci, y in enumerate(here[:, 1].tolist()))
            used_tracks, used_clusters = set(), set()
            for distance, ti, ci in pairs:
                if distance > s.link_m or ti in used_tracks or ci in used_clusters:
                    continue
                used_tracks.add(ti)
                used_clusters.add(ci)
                track = active[ti]
                track.x.append(float(x))
                track.y.append(float(here[ci, 1]))
                track.weight.append(float(np.sqrt(here[ci, 3])))
            active += [_Track([float(x)], [float(c[1])], [float(np.sqrt(c[3]))])
                       for ci, c in enumerate(here) if ci not in used_clusters]
        return done + active

    def _fit(self, track: _Track) -> GroundMarking | None:
        s = self.settings
        x, y, w = np.array(track.x), np.array(track.y), np.array(track.weight)
        if len(x) < 3 or x[-1] - x[0] < s.min_length_m:
            return None
        coefficients = _polyfit(x, y, w)
        inliers = np.abs(np.polyval(coefficients[::-1], x) - y) <= s.outlier_m
        if inliers.sum() >= 3 and not inliers.all():
            x, y, w = x[inliers], y[inliers], w[inliers]
            coefficients = _polyfit(x, y, w)
        if x[-1] - x[0] < s.min_length_m:
            return None
        samples = np.arange(x[0], x[-1] + 1e-6, s.sample_m)
        points = np.stack([samples, np.polyval(coefficients[::-1], samples)], axis=1)
        a0, a1, a2 = (float(c) for c in coefficients)
        return GroundMarking(points, (a0, a1, a2), np.stack([x, y, w], axis=1))


def _polyfit(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """a0, a1, a2 of the weighted least-squares curve; a straight line over short spans, where a
    quadratic term would only fit the noise."""
    degree = 2 if x[-1] - x[0] >= 15.0 and len(x) >= 5 else 1
    coefficients = np.polynomial.polynomial.polyfit(x, y, degree, w=weight)
    return np.pad(coefficients, (0, 3 - len(coefficients)))


# lane_marking_points' layout: one record per polyline point, packed (16 bytes), little-endian
MARKING_POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("marking_id", "<u4")])


def marking_points(markings: list[GroundMarking]) -> np.ndarray:
    """Every marking's polyline points as MARKING_POINT_DTYPE records (z = 0), marking_id its index."""
    points = np.zeros(sum(len(m.points) for m in markings), MARKING_POINT_DTYPE)
    start = 0
    for index, marking in enumerate(markings):
        end = start + len(marking.points)
        points["x"][start:end], points["y"][start:end] = marking.points[:, 0], marking.points[:, 1]
        points["marking_id"][start:end] = index
        start = end
    return points


@dataclass(frozen=True)
class RoadView:
    """One frame's masks on the ground: the occupancy grid, the markings, and what they cost."""

    occupancy: np.ndarray
    markings: list[GroundMarking]
    milliseconds: float


class RoadProjection:
    """The drivable grid and the lane markings for one camera geometry: both lookups are built once here,
    so a frame costs a gather and a few hundred clusters."""

    def __init__(self, intrinsics: CameraIntrinsics, pose: CameraPose, spec: GridSpec,
                 settings: MarkingSettings | None = None) -> None:
        self.grid = GroundGrid(intrinsics, pose, spec)
        self.extractor = MarkingExtractor(intrinsics, pose, spec, settings)

    @property
    def spec(self) -> GridSpec:
        return self.grid.spec

    def project(self, drivable: np.ndarray, lane: np.ndarray) -> RoadView:
        """drivable, lane: masks of the camera's size, non-zero where set. GeometryError if the size differs."""
        start = time.perf_counter()
        occupancy = self.grid.occupancy(drivable)
        markings = self.extractor.markings(lane)
        return RoadView(occupancy, markings, 1e3 * (time.perf_counter() - start))
