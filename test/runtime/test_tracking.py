"""ByteTrack's association (runtime/tracking.py) against hand-made cases: stable IDs on moving boxes, two
objects crossing, an occlusion shorter and longer than the buffer, a weak box that keeps its track (the
low-score pass), one-frame false boxes that take no ID, IDs never reused, and stamps, not arrival, driving it."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.presets import deployed_tracking
from mtl_perception.runtime.tracking import (
    ByteTracker,
    KalmanBox,
    boxes_of,
    iou_matrix,
    predict_all,
    update_all,
)

pytestmark = pytest.mark.jetson_python

HZ = 10
NS = 1_000_000_000 // HZ


def _frame(*boxes: tuple[float, float, float, float, float]) -> Detections:
    """Boxes (x1, y1, x2, y2, score), all of class 2 (car)."""
    array = np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4)
    scores = np.array([b[4] for b in boxes], np.float32)
    return Detections(array, scores, np.full(len(boxes), 2, np.int64))


def _moving(x0: float, speed_px_per_frame: float, frame: int, score: float = 0.9, y: float = 100.0) -> tuple:
    x = x0 + speed_px_per_frame * frame
    return (x, y, x + 60, y + 40, score)


def _run(tracker: ByteTracker, frames: list[Detections], start: int = 0, step_ns: int = NS) -> list[list[int]]:
    return [tracker.update(frame, start + i * step_ns).track_ids.tolist() for i, frame in enumerate(frames)]


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])


def test_a_moving_object_keeps_its_id() -> None:
    ids = _run(ByteTracker(deployed_tracking()), [_frame(_moving(100, 8, i)) for i in range(30)])
    assert ids == [[1]] * 30


def test_the_first_frames_boxes_are_tracks_at_once_later_ones_after_a_second_frame() -> None:
    tracker = ByteTracker(deployed_tracking())
    ids = _run(tracker, [_frame(_moving(100, 5, 0)), _frame(_moving(100, 5, 1), _moving(400, 5, 0)),
                         _frame(_moving(100, 5, 2), _moving(400, 5, 1))])
    assert ids == [[1], [1, 0], [1, 2]]  # the newcomer is confirmed by its second frame


def test_a_one_frame_false_box_takes_no_id_and_ids_are_never_reused() -> None:
    tracker = ByteTracker(deployed_tracking())
    frames = [_frame(_moving(100, 5, i)) for i in range(3)]
    frames.append(_frame(_moving(100, 5, 3), (600, 300, 650, 340, 0.95)))  # a flash
    frames += [_frame(_moving(100, 5, i)) for i in range(4, 6)]
    ids = _run(tracker, frames)
    assert ids[3] == [1, 0] and ids[-1] == [1]
    # the object leaves for longer than the buffer and comes back: a new ID, never 1 again and never 2 twice
    later = _run(tracker, [_frame(_moving(100, 5, 30))], start=30 * NS) + \
        _run(tracker, [_frame(_moving(100, 5, 31))], start=31 * NS)
    assert later == [[0], [2]]


def test_two_objects_crossing_keep_their_ids() -> None:
    """One moves right, one left, on the same row at different heights of the image: their boxes overlap for a
    few frames; the Kalman prediction carries each through."""
    frames = [_frame(_moving(100, 12, i, y=100), _moving(460, -12, i, y=120)) for i in range(30)]
    ids = _run(ByteTracker(deployed_tracking()), frames)
    right, left = ids[0]
    # the detections are listed in the same order every frame: the right-mover first
    assert all(frame == [right, left] for frame in ids), ids


@pytest.mark.parametrize(("gap_frames", "kept"), [(5, True), (15, False)])
def test_an_occlusion_shorter_than_the_buffer_keeps_the_id(gap_frames: int, kept: bool) -> None:
    tracker = ByteTracker(deployed_tracking(lost_seconds=1.0))  # 10 frames at 10 Hz
    before = [_frame(_moving(100, 6, i)) for i in range(10)]
    gap = [_frame() for _ in range(gap_frames)]
    after = [_frame(_moving(100, 6, i)) for i in range(10 + gap_frames, 14 + gap_frames)]
    ids = _run(tracker, before + gap + after)
    if kept:
        assert ids[-1] == [1] and ids[len(before) + gap_frames] == [1]  # matched again at once, same ID
    else:
        assert ids[len(before) + gap_frames] == [0] and ids[-1] == [2]


def test_the_low_score_pass_recovers_a_fading_track() -> None:
    """An object half hidden for a few frames scores 0.3: BYTE matches the weak box to its track."""
    scores = [0.9] * 5 + [0.3] * 4 + [0.9] * 3
    frames = [_frame(_moving(100, 6, i, score=s)) for i, s in enumerate(scores)]
    assert _run(ByteTracker(deployed_tracking()), frames) == [[1]] * len(scores)
    # with the second pass off (its threshold above every score), the weak boxes are dropped and the track
    # goes unmatched: the boxes get no ID while weak
    only_high = ByteTracker(deployed_tracking(low_score=0.5))
    assert [ids for ids in _run(only_high, frames)][5:9] == [[0]] * 4


def test_the_stamps_drive_it_not_the_rate_it_is_fed_at() -> None:
    """A replay at another rate gives the same frames the same stamps: the same IDs. A gap in the stamps
    counts, however fast the frames came."""
    frames = [_frame(_moving(100, 6, i), _moving(500, -4, i, y=300)) for i in range(20)]
    assert _run(ByteTracker(deployed_tracking()), frames) == _run(ByteTracker(deployed_tracking()), frames)
    tracker = ByteTracker(deployed_tracking(lost_seconds=1.0))
    _run(tracker, frames[:5])
    # the same object 2 s of stamps later: lost beyond the buffer, whatever the wall clock did meanwhile
    assert _run(tracker, [frames[5]], start=25 * NS) == [[0, 0]]


def test_velocity_and_age_come_with_the_id() -> None:
    tracker = ByteTracker(deployed_tracking())
    result = None
    for i in range(15):
        result = tracker.update(_frame(_moving(100, 8, i)), i * NS)
    assert result is not None
    assert result.velocities[0, 0] == pytest.approx(8 * HZ, rel=0.1) and abs(result.velocities[0, 1]) < 2
    assert result.ages[0] == pytest.approx(1.4)


def test_a_replay_from_the_start_restarts_the_tracks() -> None:
    tracker = ByteTracker(deployed_tracking())
    frames = [_frame(_moving(100, 6, i)) for i in range(5)]
    _run(tracker, frames)
    again = _run(tracker, frames)  # stamps back to 0: a new drive, new tracks, new IDs
    assert again[0] == [2] and again[-1] == [2]


def test_the_batched_filters_do_what_one_filter_does() -> None:
    """predict_all and update_all (every track at once) against KalmanBox.predict and update, one at a time."""
    rng = np.random.default_rng(0)
    starts = [np.array([x, y, x + w, y + h]) for x, y, w, h in rng.uniform([0, 0, 10, 10], [600, 300, 90, 60], (6, 4))]
    singles, batched = [KalmanBox(b) for b in starts], [KalmanBox(b) for b in starts]
    for step in range(4):
        dt = 0.1 * (step + 1)
        boxes = np.stack(starts) + rng.normal(0, 3, (6, 4)) + 8 * step
        for f, box in zip(singles, boxes):
            f.predict(dt)
            f.update(box)
        predict_all(batched, dt)
        update_all(batched, boxes)
    for one, many in zip(singles, batched):
        np.testing.assert_allclose(many.mean, one.mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(many.covariance, one.covariance, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(boxes_of(batched), np.stack([f.box for f in singles]), atol=1e-9)
