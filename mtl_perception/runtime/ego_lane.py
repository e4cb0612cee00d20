"""The ego lane: the two markings that bound the car's lane, as cubic curves in the vehicle frame, smoothed over
time, and what a lane-keeping function reads from them.

Input is one frame's lane markings on the ground (runtime/lane_markings.py; x ahead, y to the left, metres). A
marking seen from near enough and over enough length is a candidate boundary; extrapolated to the car (x = 0),
the nearest candidate on the left and the nearest on the right bound the ego lane if they lie a lane's width
apart. Each is refitted as y = c0 + c1 x + c2 x^2 + c3 x^3 to the slices it was seen in (the degree falls to 2
or 1 over short spans, where a cubic term would only fit the noise), and smoothed over time with a time
constant in seconds of the frames' stamps, so a replay at any pace gives the same lane. A jump of half a lane
(a lane change, or a marking lost on one side) starts the smoothing afresh instead of blending two lanes.

A frame without both boundaries (no markings, a junction, markings too far apart) gives an invalid lane that
says why: never a guess from the last frame. The smoothed state survives such frames for hold_s, so the lane
picks up where it left off.

From the smoothed boundaries: the car's offset from the lane centre, its heading relative to the lane, the
centre line's curvature, the lane's width, the distance from each side of the car to its line, the time to
cross it at the present lateral speed, and a departure flag when either is below its threshold.

Pure numpy, no ROS: the frame pipeline keeps one EgoLaneTracker per camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.stamps import NS_PER_S


@dataclass(frozen=True)
class EgoLaneSettings:
    """Metres and seconds."""

    min_width_m: float = 2.4  # narrower pairs are not a lane (two lines of one double marking)
    max_width_m: float = 5.0
    near_m: float = 20.0  # a boundary must be seen from nearer than this
    min_length_m: float = 6.0  # and along at least this much road
    smoothing_s: float = 0.3  # time constant of the smoothing over the frames' stamps
    hold_s: float = 0.5  # a gap (or a stamp jump) longer than this starts the smoothing afresh
    vehicle_width_m: float = 1.9  # the car, for the distance from its sides to the lines
    departure_distance_m: float = 0.2  # departure: a side of the car nearer its line than this,
    departure_time_s: float = 1.0  # or the line crossed within this at the present lateral speed

    def __post_init__(self) -> None:
        if not 0 < self.min_width_m < self.max_width_m:
            raise ValueError(f"ego lane widths: need 0 < min_width_m < max_width_m, got {self.min_width_m}, "
                             f"{self.max_width_m}")
        for name in ("near_m", "min_length_m", "smoothing_s", "hold_s", "vehicle_width_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ego lane {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class LaneBoundary:
    """One side of the ego lane: y(x) = c0 + c1 x + c2 x^2 + c3 x^3 over the range seen, and how sure."""

    coefficients: tuple[float, float, float, float]
    x_range: tuple[float, float]
    confidence: float  # 0..1: the length seen (30 m = 1) and how closely the curve fits it

    def lateral_at(self, x: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.polynomial.polynomial.polyval(np.asarray(x, np.float64), self.coefficients))

    def points(self, step_m: float = 1.0) -> np.ndarray:
        """float[N, 2]: (x, y) every step_m over the range seen."""
        x = np.arange(self.x_range[0], self.x_range[1] + 1e-6, step_m)
        return np.stack([x, self.lateral_at(x)], axis=1)


@dataclass(frozen=True)
class EgoLane:
    """The ego lane of one frame. Angles in radians, positive to the left (counter-clockwise); offset positive
    when the car is left of the lane centre; curvature positive when the lane bends left; times inf when the
    car is not moving towards that line."""

    valid: bool
    reason: str = ""  # why not valid
    left: LaneBoundary | None = None
    right: LaneBoundary | None = None
    offset_m: float = math.nan
    heading_rad: float = math.nan
    curvature: float = math.nan
    width_m: float = math.nan
    left_distance_m: float = math.nan
    right_distance_m: float = math.nan
    time_to_left_s: float = math.inf
    time_to_right_s: float = math.inf
    departure: str = ""  # "", "left" or "right"

    @classmethod
    def invalid(cls, reason: str) -> EgoLane:
        return cls(False, reason)


@dataclass(frozen=True)
class _Candidate:
    marking: GroundMarking
    y0: float  # its lateral at the car, extrapolated


def _candidates(markings: list[GroundMarking], settings: EgoLaneSettings) -> list[_Candidate]:
    out = []
    for marking in markings:
        near, far = marking.x_range
        if near <= settings.near_m and far - near >= settings.min_length_m:
            out.append(_Candidate(marking, float(marking.lateral_at(0.0))))
    return out


def fit_boundary(marking: GroundMarking) -> LaneBoundary:
    """The marking's slices fitted as a cubic (a quadratic or a line over short spans), weighted as seen."""
    data = marking.observed if marking.observed is not None else \
        np.column_stack([marking.points, np.ones(len(marking.points))])
    x, y, w = data[:, 0], data[:, 1], data[:, 2]
    span = float(x.max() - x.min())
    degree = 3 if span >= 25.0 and len(x) >= 8 else 2 if span >= 10.0 and len(x) >= 5 else 1
    # weighted least squares on the Vandermonde matrix (what numpy's polyfit does, without its per-call cost)
    vander = np.vander(x, degree + 1, increasing=True)
    coefficients = np.linalg.lstsq(vander * w[:, None], y * w, rcond=None)[0]
    residual = y - vander @ coefficients
    rms = float(np.sqrt(np.average(residual ** 2, weights=w)))
    confidence = min(span / 30.0, 1.0) * math.exp(-rms / 0.15)
    c0, c1, c2, c3 = (float(c) for c in np.pad(coefficients, (0, 4 - len(coefficients))))
    return LaneBoundary((c0, c1, c2, c3), (float(x.min()), float(x.max())), confidence)


def find_boundaries(markings: list[GroundMarking], settings: EgoLaneSettings
                    ) -> tuple[LaneBoundary, LaneBoundary] | str:
    """The ego lane's left and right boundaries in this frame's markings, or why there are none."""
    candidates = _candidates(markings, settings)
    if not candidates:
        return "no lane marking seen near enough and long enough"
    left = [c for c in candidates if c.y0 > 0]
    right = [c for c in candidates if c.y0 <= 0]
    if not left or not right:
        return f"no lane marking on the {'left' if not left else 'right'}"
    nearest_left = min(left, key=lambda c: c.y0)
    nearest_right = max(right, key=lambda c: c.y0)
    width = nearest_left.y0 - nearest_right.y0
    if not settings.min_width_m <= width <= settings.max_width_m:
        return (f"the nearest markings are {width:.1f} m apart, not a lane "
                f"({settings.min_width_m:g}-{settings.max_width_m:g} m)")
    return fit_boundary(nearest_left.marking), fit_boundary(nearest_right.marking)


@dataclass
class EgoLaneTracker:
    """One camera's ego lane over time, driven by the frames' stamps."""

    settings: EgoLaneSettings = field(default_factory=EgoLaneSettings)
    _left: np.ndarray | None = None  # smoothed coefficients
    _right: np.ndarray | None = None
    _stamp_ns: int | None = None  # of the last frame with a lane
    _offset: float = math.nan
    _lateral_speed: float = 0.0  # m/s, positive to the left

    def reset(self) -> None:
        self._left = self._right = None
        self._stamp_ns = None
        self._offset, self._lateral_speed = math.nan, 0.0

    def update(self, markings: list[GroundMarking], stamp_ns: int) -> EgoLane:
        found = find_boundaries(markings, self.settings)
        if self._stamp_ns is not None:
            dt = (stamp_ns - self._stamp_ns) / NS_PER_S
            if dt < 0 or dt > self.settings.hold_s:  # a replay started over, or the lane was lost too long
                self.reset()
        if isinstance(found, str):
            return EgoLane.invalid(found)
        left, right = found
        alpha, dt = self._blend(left, right, stamp_ns)
        new_left, new_right = np.array(left.coefficients), np.array(right.coefficients)
        self._left = new_left if self._left is None else self._left + alpha * (new_left - self._left)
        self._right = new_right if self._right is None else self._right + alpha * (new_right - self._right)
        self._stamp_ns = stamp_ns
        return self._lane(LaneBoundary(_cubic(self._left), left.x_range, left.confidence),
                          LaneBoundary(_cubic(self._right), right.x_range, right.confidence), alpha, dt)

    def _blend(self, left: LaneBoundary, right: LaneBoundary, stamp_ns: int) -> tuple[float, float]:
        """How much of this frame goes into the smoothed lane (1: all of it), and the time since the last."""
        if self._left is None or self._right is None or self._stamp_ns is None:
            return 1.0, 0.0
        jump = max(abs(left.coefficients[0] - self._left[0]), abs(right.coefficients[0] - self._right[0]))
        if jump > 0.5 * self.settings.min_width_m:  # another lane: start from it rather than blend two
            self._offset, self._lateral_speed = math.nan, 0.0
            return 1.0, 0.0
        dt = (stamp_ns - self._stamp_ns) / NS_PER_S
        return 1.0 - math.exp(-dt / self.settings.smoothing_s), dt

    def _lane(self, left: LaneBoundary, right: LaneBoundary, alpha: float, dt: float) -> EgoLane:
        s = self.settings
        l0, l1, l2, _ = left.coefficients
        r0, r1, r2, _ = right.coefficients
        c0, c1, c2 = 0.5 * (l0 + r0), 0.5 * (l1 + r1), 0.5 * (l2 + r2)  # the lane's centre line
        offset = -c0
        if dt > 0 and not math.isnan(self._offset):
            self._lateral_speed += alpha * ((offset - self._offset) / dt - self._lateral_speed)
        self._offset = offset
        half_car = 0.5 * s.vehicle_width_m
        left_distance, right_distance = l0 - half_car, -r0 - half_car
        speed = self._lateral_speed
        time_left = left_distance / speed if speed > 1e-3 else math.inf
        time_right = right_distance / -speed if speed < -1e-3 else math.inf
        departure = ""
        if left_distance < s.departure_distance_m or time_left < s.departure_time_s:
            departure = "left"
        elif right_distance < s.departure_distance_m or time_right < s.departure_time_s:
            departure = "right"
        return EgoLane(True, "", left, right, offset_m=offset, heading_rad=-math.atan(c1),
                       curvature=2 * c2 / (1 + c1 * c1) ** 1.5, width_m=l0 - r0, left_distance_m=left_distance,
                       right_distance_m=right_distance, time_to_left_s=max(time_left, 0.0),
                       time_to_right_s=max(time_right, 0.0), departure=departure)


def _cubic(values: np.ndarray) -> tuple[float, float, float, float]:
    c0, c1, c2, c3 = (float(v) for v in values)
    return c0, c1, c2, c3
