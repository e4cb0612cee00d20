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


class _Places:
    """One track's (t, x, y) over the window, with the running sums its line fit needs: each frame adds one
    sample and drops the expired ones, so a fit costs the same however long the window (times are kept
    relative to the track's first stamp, so the sums stay small)."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.samples: deque[tuple[float, float, float]] = deque()
        self.sums = [0.0] * 6  # t, x, y, t*t, t*x, t*y

    def add(self, t: float, x: float, y: float, sign: float = 1.0) -> None:
        t -= self.origin
        for i, value in enumerate((t, x, y, t * t, t * x, t * y)):
            self.sums[i] += sign * value
        if sign > 0:
            self.samples.append((t, x, y))

    def drop_before(self, t: float) -> None:
        while self.samples and self.samples[0][0] < t - self.origin:
            old = self.samples.popleft()
            self.add(old[0] + self.origin, old[1], old[2], sign=-1.0)

    def span(self) -> float:
        return self.samples[-1][0] - self.samples[0][0] if self.samples else 0.0

    def slope(self) -> tuple[float, float]:
        n = len(self.samples)
        st, sx, sy, stt, stx, sty = self.sums
        spread = n * stt - st * st
        return (n * stx - st * sx) / spread, (n * sty - st * sy) / spread


@dataclass
class ObjectMotion:
    """One camera's tracks on the ground over time."""

    settings: MotionSettings = field(default_factory=MotionSettings)
    _places: dict[int, _Places] = field(default_factory=dict)
    _last_ns: int | None = None

    def update(self, track_ids: np.ndarray, places: np.ndarray, stamp_ns: int) -> np.ndarray:
        """track_ids int[N] (0: no confirmed track), places float[N, 2] (x, y) of this frame -> float[N, 2]
        velocities in m/s (NaN where a box has no track or its track is too young)."""
        if self._last_ns is not None and stamp_ns < self._last_ns:
            self._places.clear()  # a replay started over
        self._last_ns = stamp_ns
        now = stamp_ns / NS_PER_S
        window, min_age = self.settings.window_s, self.settings.min_age_s
        velocities = np.full((len(track_ids), 2), np.nan)
        for row, (track, (x, y)) in enumerate(zip(track_ids.tolist(), places.tolist())):
            if track <= 0:
                continue
            history = self._places.get(track)
            if history is None:
                history = self._places[track] = _Places(now)
            history.add(now, x, y)
            history.drop_before(now - window)
            if len(history.samples) >= 3 and history.span() >= min_age:
                velocities[row] = history.slope()
        for track in [t for t, h in self._places.items() if now - (h.samples[-1][0] + h.origin) > window]:
            del self._places[track]
        return velocities
