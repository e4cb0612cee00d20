"""Tracking per camera: ByteTrack's association (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating
Every Detection Box", ECCV 2022; the reference is ifzhang/ByteTrack's BYTETracker), driven by the frames' header
stamps so that a bag replayed at any rate gives the same tracks.

Per frame:
1. every track's Kalman filter predicts the box to the frame's stamp (constant velocity, the state of
   ByteTrack's KalmanFilterXYAH: centre, aspect, height and their velocities; its noise scales with the height);
2. boxes scoring at least `high_score` are matched to the tracked and the recently lost tracks by IoU (the
   Hungarian assignment, scipy's linear_sum_assignment), at IoU >= 1 - `match_distance`;
3. the low-score boxes (from `low_score` to `high_score`) are matched to the tracks still unmatched that were
   tracked in the previous frame, at IoU >= 0.5: an occluded object's weak box keeps its track, where a
   tracker fed only confident boxes would lose it;
4. an unmatched high box scoring at least `new_track_score` starts a track; it gets its ID (never reused) once
   it is matched again in the next frame, as ByteTrack confirms a track, so that a one-frame false box takes
   no ID;
5. a track unmatched for `lost_seconds` of stamps is removed; until then it can be matched again, under its ID.

The assignment is scipy's (a maintained library that installs on JetPack's Pythons: apt's python3-scipy, or
pip's scipy 1.10 with NumPy 1.24 on 3.8); the Kalman filter and the two-pass logic are ByteTrack's few lines,
written here in numpy because no maintained library offers them without torch (boxmot) or a detection
framework's types (supervision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtl_perception.runtime.postprocess import Detections
from mtl_perception.stamps import NS_PER_S


@dataclass(frozen=True)
class TrackerSettings:
    """ByteTrack's thresholds; the node's (track_* parameters, whose defaults are ByteTrack's: track_thresh 0.5,
    new tracks from 0.6, a buffer of 30 frames at 30 fps) come from runtime/presets.py's deployed_tracking()."""

    high_score: float  # boxes for the first association and for new tracks
    low_score: float  # the second association's boxes lie in [low_score, high_score)
    new_track_score: float  # an unmatched box starts a track from this score
    lost_seconds: float  # a track unseen this long (by stamps) is removed
    match_distance: float = 0.8  # 1 - IoU allowed in the first association (ByteTrack's match_thresh)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError(f"need 0 <= low_score <= high_score <= 1, got {self.low_score} and {self.high_score}")
        if not 0.0 < self.match_distance < 1.0:
            raise ValueError(f"match_distance must lie in (0, 1), got {self.match_distance}")
        if self.lost_seconds < 0:
            raise ValueError(f"lost_seconds must be >= 0, got {self.lost_seconds}")


@dataclass(frozen=True)
class TrackedDetections:
    """A frame's detections with their tracks: track_ids int64[N] (0: a box no confirmed track holds) and,
    per box, the track's velocity in pixels per second (float32[N, 2], cx and cy) and its age in seconds."""

    detections: Detections
    track_ids: np.ndarray
    velocities: np.ndarray
    ages: np.ndarray


class KalmanBox:
    """ByteTrack's KalmanFilterXYAH: state (cx, cy, aspect, height) and their rates per frame of a 30 Hz video,
    its time unit; noise relative to the height. A stamp difference of dt seconds is dt * 30 such frames, so
    the filter follows the stamps at any camera rate."""

    POSITION_WEIGHT = 1.0 / 20
    VELOCITY_WEIGHT = 1.0 / 160
    FRAME_S = 1.0 / 30  # ByteTrack's noise is per frame of a 30 Hz video

    def __init__(self, box: np.ndarray) -> None:
        measurement = _xyah(box)
        self.mean = np.concatenate([measurement, np.zeros(4)])
        h = measurement[3]
        std = [2 * self.POSITION_WEIGHT * h, 2 * self.POSITION_WEIGHT * h, 1e-2, 2 * self.POSITION_WEIGHT * h,
               10 * self.VELOCITY_WEIGHT * h, 10 * self.VELOCITY_WEIGHT * h, 1e-5, 10 * self.VELOCITY_WEIGHT * h]
        self.covariance = np.diag(np.square(std))

    def predict(self, dt: float) -> None:
        steps = max(dt / self.FRAME_S, 0.0)
        motion = np.eye(8)
        motion[:4, 4:] = np.eye(4) * steps
        h = self.mean[3]
        std = [self.POSITION_WEIGHT * h, self.POSITION_WEIGHT * h, 1e-2, self.POSITION_WEIGHT * h,
               self.VELOCITY_WEIGHT * h, self.VELOCITY_WEIGHT * h, 1e-5, self.VELOCITY_WEIGHT * h]
        self.mean = motion @ self.mean
        self.covariance = motion @ self.covariance @ motion.T + np.diag(np.square(std)) * steps

    def update(self, box: np.ndarray) -> None:
        h = self.mean[3]
        std = [self.POSITION_WEIGHT * h, self.POSITION_WEIGHT * h, 1e-1, self.POSITION_WEIGHT * h]
        projection = np.eye(4, 8)
        innovation_cov = projection @ self.covariance @ projection.T + np.diag(np.square(std))
        gain = np.linalg.solve(innovation_cov, projection @ self.covariance).T
        self.mean = self.mean + gain @ (_xyah(box) - projection @ self.mean)
        self.covariance = self.covariance - gain @ innovation_cov @ gain.T

    @property
    def box(self) -> np.ndarray:
        cx, cy, aspect, h = self.mean[:4]
        w = aspect * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    @property
    def velocity(self) -> np.ndarray:
        """The centre's rate, pixels per second."""
        return self.mean[4:6] / self.FRAME_S


# Every track's filter at once (ByteTrack's multi_predict, and the same for the update): the arithmetic of
# KalmanBox.predict and KalmanBox.update on stacked states, since fifty small numpy calls per track cost a
# millisecond a frame where one batched call costs tens of microseconds.
_EYE8 = np.eye(8)
_DIAG8, _DIAG4 = np.arange(8), np.arange(4)


def predict_all(filters: list[KalmanBox], dt: float) -> None:
    if not filters:
        return
    steps = max(dt / KalmanBox.FRAME_S, 0.0)
    motion = _EYE8.copy()
    motion[:4, 4:] = np.eye(4) * steps
    means = np.stack([f.mean for f in filters])
    covariances = np.stack([f.covariance for f in filters])
    h = means[:, 3]
    position, velocity = KalmanBox.POSITION_WEIGHT * h, KalmanBox.VELOCITY_WEIGHT * h
    std = np.stack([position, position, np.full_like(h, 1e-2), position, velocity, velocity,
                    np.full_like(h, 1e-5), velocity], axis=1)
    means = means @ motion.T
    covariances = motion @ covariances @ motion.T
    covariances[:, _DIAG8, _DIAG8] += np.square(std) * steps
    for f, mean, covariance in zip(filters, means, covariances):
        f.mean, f.covariance = mean, covariance


def update_all(filters: list[KalmanBox], boxes: np.ndarray) -> None:
    """Each filter corrected by its box (boxes float[M, 4], one per filter)."""
    if not filters:
        return
    means = np.stack([f.mean for f in filters])
    covariances = np.stack([f.covariance for f in filters])
    h = means[:, 3]
    position = KalmanBox.POSITION_WEIGHT * h
    innovation_cov = covariances[:, :4, :4].copy()
    innovation_cov[:, _DIAG4, _DIAG4] += np.square(np.stack([position, position, np.full_like(h, 1e-1), position],
                                                            axis=1))
    gain = np.linalg.solve(innovation_cov, covariances[:, :4, :]).transpose(0, 2, 1)  # [M, 8, 4]
    x1, y1, x2, y2 = (np.asarray(boxes, np.float64)[:, i] for i in range(4))
    height = np.maximum(y2 - y1, 1e-3)
    measured = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / height, height], axis=1)
    means = means + (gain @ (measured - means[:, :4])[:, :, None])[:, :, 0]
    covariances = covariances - gain @ innovation_cov @ gain.transpose(0, 2, 1)
    for f, mean, covariance in zip(filters, means, covariances):
        f.mean, f.covariance = mean, covariance


def boxes_of(filters: list[KalmanBox]) -> np.ndarray:
    """float[T, 4] x1, y1, x2, y2 of every filter's box."""
    if not filters:
        return np.zeros((0, 4))
    means = np.stack([f.mean[:4] for f in filters])
    w = means[:, 2] * means[:, 3]
    return np.stack([means[:, 0] - w / 2, means[:, 1] - means[:, 3] / 2, means[:, 0] + w / 2,
                     means[:, 1] + means[:, 3] / 2], axis=1)


@dataclass
class _Track:
    filter: KalmanBox
    class_id: int
    score: float
    first_ns: int
    last_ns: int  # the stamp it was last matched at
    track_id: int = 0  # 0 until confirmed (matched in a second frame); then its ID, never reused
    tracked: bool = True  # matched in the latest frame


@dataclass
class ByteTracker:
    """One camera's tracks. update() takes a frame's detections and its stamp and returns them with track IDs."""

    settings: TrackerSettings
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1
    _last_ns: int | None = None
    _frames: int = 0

    def reset(self) -> None:
        """Forget every track (a camera restarted, stamps went backwards); IDs go on from where they were."""
        self._tracks, self._last_ns, self._frames = [], None, 0

    def update(self, detections: Detections, stamp_ns: int) -> TrackedDetections:
        if self._last_ns is not None and stamp_ns < self._last_ns:
            self.reset()  # a bag replayed from its start: the old tracks' future is not this one
        dt = 0.0 if self._last_ns is None else (stamp_ns - self._last_ns) / NS_PER_S
        self._last_ns = stamp_ns
        self._frames += 1
        # a track unseen for longer than the buffer, by the stamps, is gone before it can be matched: a gap in a
        # camera's stamps counts however fast its frames came
        tracks = [t for t in self._tracks if (stamp_ns - t.last_ns) / NS_PER_S <= self.settings.lost_seconds]
        predict_all([t.filter for t in tracks], dt)
        scores = detections.scores
        high = np.flatnonzero(scores >= self.settings.high_score)
        low = np.flatnonzero((scores >= self.settings.low_score) & (scores < self.settings.high_score))
        owner: list[_Track | None] = [None] * len(detections)

        # 1: confident boxes against every track, tracked or lost
        pairs, lone_tracks, lone_high = _associate(boxes_of([t.filter for t in tracks]), detections.boxes[high],
                                                   1.0 - self.settings.match_distance)
        for t, d in pairs:
            owner[high[d]] = tracks[t]
        # 2: weak boxes against the tracks followed in the previous frame that are still unmatched
        followed = [tracks[t] for t in lone_tracks if tracks[t].tracked]
        pairs_low, _, _ = _associate(boxes_of([t.filter for t in followed]), detections.boxes[low], 0.5)
        for t, d in pairs_low:
            owner[low[d]] = followed[t]
        matched_rows = [index for index, held in enumerate(owner) if held is not None]
        update_all([owner[index].filter for index in matched_rows], detections.boxes[matched_rows])  # type: ignore[union-attr]
        for index, held in enumerate(owner):
            if held is None:
                continue
            held.class_id, held.score = int(detections.class_ids[index]), float(scores[index])
            if held.track_id == 0:  # seen in two frames running: confirmed, and given its ID
                held.track_id, self._next_id = self._next_id, self._next_id + 1
            held.last_ns = stamp_ns
        matched = {id(t) for t in owner if t is not None}
        for track in tracks:
            track.tracked = id(track) in matched
        # an unconfirmed track that missed its second frame goes, and so does one lost for too long
        kept = [t for t in tracks if id(t) in matched or
                (t.track_id and (stamp_ns - t.last_ns) / NS_PER_S <= self.settings.lost_seconds)]
        for d in lone_high:
            index = high[d]
            if scores[index] < self.settings.new_track_score:
                continue
            new = _Track(KalmanBox(detections.boxes[index]), int(detections.class_ids[index]), float(scores[index]),
                         stamp_ns, stamp_ns)
            if self._frames == 1:  # ByteTrack confirms the tracks of the very first frame at once
                new.track_id, self._next_id = self._next_id, self._next_id + 1
            kept.append(new)
            owner[index] = new
        self._tracks = kept
        return _result(detections, owner, stamp_ns)


def _result(detections: Detections, owner: list[_Track | None], stamp_ns: int) -> TrackedDetections:
    ids = np.zeros(len(detections), np.int64)
    velocities = np.zeros((len(detections), 2), np.float32)
    ages = np.zeros(len(detections), np.float32)
    rows = [index for index, track in enumerate(owner) if track is not None and track.track_id]
    if rows:
        held = [owner[index] for index in rows]
        ids[rows] = [t.track_id for t in held]  # type: ignore[union-attr]
        velocities[rows] = np.stack([t.filter.mean[4:6] for t in held]) / KalmanBox.FRAME_S  # type: ignore[union-attr]
        ages[rows] = [(stamp_ns - t.first_ns) / NS_PER_S for t in held]  # type: ignore[union-attr]
    return TrackedDetections(detections, ids, velocities, ages)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of a (float[N, 4] x1, y1, x2, y2) with every box of b (float[M, 4])."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    inter = (np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
             * np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None))
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _associate(track_boxes: np.ndarray, boxes: np.ndarray, min_iou: float,
               ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian matching on 1 - IoU: (track, box) pairs at IoU >= min_iou, the unmatched tracks, the unmatched
    boxes (indices into their lists)."""
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(track_boxes, boxes)
    pairs: list[tuple[int, int]] = []
    if iou.size:
        rows, cols = linear_sum_assignment(1.0 - iou)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
    taken_t, taken_b = {t for t, _ in pairs}, {b for _, b in pairs}
    return (pairs, [t for t in range(len(track_boxes)) if t not in taken_t],
            [b for b in range(len(boxes)) if b not in taken_b])


def _xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    h = max(y2 - y1, 1e-3)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])
