"""How the tracked road users move on the ground: each track's contact point over its last frames, fitted as a
straight line against the frames' stamps (least squares, so one noisy box bends the estimate little), gives its
velocity in the vehicle frame: relative to the car, since the pipeline knows nothing of the car's own motion.
A track seen for less than min_age_s has no velocity yet (NaN), as a two-frame difference of boxes would be
mostly noise. Driven by stamps: a replay at any pace gives the same velocities.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mtl_perception.stamps import NS_PER_S


@dataclass(frozen=True)
class MotionSettings:
    window_s: float = 1.0  # the places of the last window_s are fitted
    min_age_s: float = 0.3  # a track seen for less than this has no velocity yet

    def __post_init__(self) -> None:
        if not 0 < self.min_age_s <= self.window_s:
            raise ValueError(f"motion: need 0 < min_age_s <= window_s, got {self.min_age_s}, {self.window_s}")


@dataclass
class ObjectMotion:
    """One camera's tracks on the ground over time."""

    settings: MotionSettings = field(default_factory=MotionSettings)
    _places: dict[int, deque] = field(default_factory=dict)  # track id -> (seconds, x, y), oldest first
    _last_ns: int | None = None

    def update(self, track_ids: np.ndarray, places: np.ndarray, stamp_ns: int) -> np.ndarray:
        """track_ids int[N] (0: no confirmed track), places float[N, 2] (x, y) of this frame -> float[N, 2]
        velocities in m/s (NaN where a box has no track or its track is too young)."""
        if self._last_ns is not None and stamp_ns < self._last_ns:
            self._places.clear()  # a replay started over
        self._last_ns = stamp_ns
        now = stamp_ns / NS_PER_S
        velocities = np.full((len(track_ids), 2), np.nan)
        for row, (track, place) in enumerate(zip(track_ids.tolist(), places.tolist())):
            if track <= 0:
                continue
            history = self._places.setdefault(int(track), deque())
            history.append((now, place[0], place[1]))
            velocities[row] = self._fit(history)
        for track in [t for t, h in self._places.items() if now - h[-1][0] > self.settings.window_s]:
            del self._places[track]
        for history in self._places.values():
            while now - history[0][0] > self.settings.window_s:
                history.popleft()
        return velocities

    def _fit(self, history: deque) -> np.ndarray:
        samples = np.array([h for h in history if history[-1][0] - h[0] <= self.settings.window_s])
        if len(samples) < 3 or samples[-1, 0] - samples[0, 0] < self.settings.min_age_s:
            return np.full(2, np.nan)
        t = samples[:, 0] - samples[:, 0].mean()
        return np.asarray((t @ (samples[:, 1:] - samples[:, 1:].mean(axis=0))) / (t @ t))
