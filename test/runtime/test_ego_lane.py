"""The ego lane (issue 32 item 4): boundaries against the synthetic drives' truth in metres, an invalid lane
where none can be found, cubic fits, smoothing driven by stamps, and the departure flag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_perception.data.bdd100k import decode_lane_mask
from mtl_perception.data.drive import DriveSettings, plan_drive, render_drive_frame
from mtl_perception.data.ground_truth import lateral
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.runtime.ego_lane import EgoLaneSettings, EgoLaneTracker, fit_boundary
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.lane_markings import GroundMarking, RoadProjection

NS = 1_000_000_000
jetson_python = pytest.mark.jetson_python  # the pure ego-lane cases; rendering drives stays on this machine


def _marking(coefficients: tuple[float, ...], x0: float = 5.0, x1: float = 40.0, noise: float = 0.0,
             seed: int = 0) -> GroundMarking:
    x = np.arange(x0, x1 + 1e-6, 1.0)
    y = np.polynomial.polynomial.polyval(x, coefficients) + np.random.default_rng(seed).normal(0, noise, len(x))
    quadratic = np.polynomial.polynomial.polyfit(x, y, 2)
    return GroundMarking(np.stack([x, np.polynomial.polynomial.polyval(x, quadratic)], 1),
                         tuple(float(c) for c in quadratic), np.stack([x, y, np.ones(len(x))], 1))  # type: ignore[arg-type]


def test_boundaries_match_the_drives_truth() -> None:
    """Label lane masks of synthetic drives -> markings on the ground -> the ego lane, against each frame's
    ego-lane edges in metres (a fixed camera, as a car carries one). The drives hide markings behind traffic, stop
    lines and crosswalks: a frame that shows no boundary on one side is invalid, and says so."""
    world = Randomisation().fixed_camera()
    errors, offsets, frames, valid = [], [], 0, 0
    for seed in range(8):
        drive = plan_drive((seed, 9), DriveSettings(6), 360, 640, world)
        tracker, projection = EgoLaneTracker(), None
        for index in range(6):
            scene = render_drive_frame(drive, index)
            truth = scene.ground
            projection = projection or RoadProjection(truth.intrinsics, truth.pose, GridSpec.from_node_defaults())
            lane = decode_lane_mask(scene.lane).astype(np.uint8)
            ego = tracker.update(projection.project(np.zeros_like(lane), lane).markings, index * NS // 10)
            frames += 1
            if not ego.valid:
                assert ego.reason and ego.left is None
                continue
            valid += 1
            for x in (10.0, 20.0):
                errors += [ego.left.lateral_at(x) - lateral(truth.ego_left, x),
                           ego.right.lateral_at(x) - lateral(truth.ego_right, x)]
            offsets.append(ego.offset_m + 0.5 * (truth.ego_left[0] + truth.ego_right[0]))
    errors_m = np.abs(np.array(errors, np.float64))
    assert valid >= 0.5 * frames
    assert np.median(errors_m) < 0.05 and np.percentile(errors_m, 90) < 0.25
    assert np.median(np.abs(offsets)) < 0.1


@jetson_python
def test_no_markings_or_one_side_is_invalid_and_says_why() -> None:
    tracker = EgoLaneTracker()
    assert tracker.update([], 0).reason == "no lane marking seen near enough and long enough"
    assert not tracker.update([_marking((1.8, 0.0, 0.0))], NS // 10).valid
    assert "on the right" in tracker.update([_marking((1.8, 0.0, 0.0))], 2 * NS // 10).reason
    wide = tracker.update([_marking((4.0, 0.0, 0.0)), _marking((-3.5, 0.0, 0.0))], 3 * NS // 10)
    assert not wide.valid and "7.5 m apart" in wide.reason
    # markings only beyond a junction (seen from 30 m on) are not near enough to bound the car's lane
    beyond = tracker.update([_marking((1.8, 0.0, 0.0), 30.0), _marking((-1.8, 0.0, 0.0), 30.0)], 4 * NS // 10)
    assert not beyond.valid


@jetson_python
def test_the_nearest_markings_each_side_bound_the_lane_and_its_figures() -> None:
    # a car 0.3 m left of its lane's centre, turned 0.02 rad right of the lane, which bends left (1/200 m)
    curvature, slope = 1 / 200, 0.02
    markings = [_marking((y0, slope, curvature / 2)) for y0 in (5.1, 1.5, -2.1, -5.7)]
    lane = EgoLaneTracker().update(markings, 0)
    assert lane.valid
    assert lane.left.coefficients[0] == pytest.approx(1.5, abs=1e-6)
    assert lane.right.coefficients[0] == pytest.approx(-2.1, abs=1e-6)
    assert lane.offset_m == pytest.approx(0.3) and lane.width_m == pytest.approx(3.6)
    assert lane.heading_rad == pytest.approx(-math.atan(slope))
    assert lane.curvature == pytest.approx(curvature / (1 + slope ** 2) ** 1.5)
    assert lane.left_distance_m == pytest.approx(1.5 - 0.95) and lane.departure == ""


@jetson_python
def test_a_cubic_is_recovered_over_a_long_span() -> None:
    boundary = fit_boundary(_marking((1.7, 0.01, 2e-3, -4e-5), 5.0, 45.0))
    assert boundary.coefficients == pytest.approx((1.7, 0.01, 2e-3, -4e-5), abs=1e-6)
    assert boundary.x_range == (5.0, 45.0) and boundary.confidence > 0.9
    short = fit_boundary(_marking((1.7, 0.01, 0.0), 5.0, 12.0))
    assert short.coefficients[3] == 0.0  # too short for a cubic term


@jetson_python
@pytest.mark.parametrize("rate_hz", [10.0, 30.0])
def test_smoothing_follows_the_stamps_not_the_frame_count(rate_hz: float) -> None:
    """A lane that moves 0.4 m sideways at t = 1 s (less than half a lane: a drift, not a lane change) is followed
    with the same time constant at any frame rate."""
    tracker = EgoLaneTracker(EgoLaneSettings(smoothing_s=0.3))
    seen = {}
    for frame in range(int(2 * rate_hz) + 1):
        t = frame / rate_hz
        shift = 0.4 if t >= 1.0 else 0.0
        lane = tracker.update([_marking((1.8 + shift, 0.0, 0.0)), _marking((-1.8 + shift, 0.0, 0.0))],
                              round(t * NS))
        seen[round(t, 3)] = lane.left.coefficients[0] - 1.8
    # exponential smoothing in time: a step seen first at t0 stands at 1 - exp(-(t - t0 + dt) / tau) of itself at t
    # (the frame at t0 takes a frame period's share), whatever the frame period dt
    dt = 1 / rate_hz
    for t in (1.0, 1.3, 1.6, 2.0):
        assert seen[t] == pytest.approx(0.4 * (1 - math.exp(-(t - 1.0 + dt) / 0.3)), abs=1e-9)


@jetson_python
def test_a_lane_change_starts_afresh_instead_of_blending_two_lanes() -> None:
    """Three lines; the car crosses the middle one to the left between two frames, so what bounds it jumps a lane."""
    tracker = EgoLaneTracker()
    for frame in range(5):
        before = tracker.update([_marking((y, 0.0, 0.0)) for y in (3.9, 0.3, -3.3)], frame * NS // 10)
    assert before.left.coefficients[0] == pytest.approx(0.3) and before.departure == "left"
    after = tracker.update([_marking((y, 0.0, 0.0)) for y in (3.3, -0.3, -3.9)], 5 * NS // 10)
    assert after.valid
    assert after.left.coefficients[0] == pytest.approx(3.3) and after.right.coefficients[0] == pytest.approx(-0.3)


@jetson_python
def test_drifting_towards_a_line_flags_a_departure_before_it_is_crossed() -> None:
    tracker = EgoLaneTracker()
    lanes = []
    for frame in range(30):  # the car drifts left at 0.5 m/s: the lane moves right under it
        y = -0.05 * frame
        lanes.append(tracker.update([_marking((1.8 + y, 0.0, 0.0)), _marking((-1.8 + y, 0.0, 0.0))], frame * NS // 10))
    flagged = [i for i, lane in enumerate(lanes) if lane.departure == "left"]
    assert flagged and all(lanes[i].left_distance_m > 0 for i in flagged[:1])  # warned before the line
    first = lanes[flagged[0]]
    assert first.time_to_left_s < 1.0 or first.left_distance_m < 0.2
    assert lanes[-1].time_to_right_s == math.inf  # moving away from the right line
