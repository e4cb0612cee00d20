"""Velocities of tracked road users on the ground (issue 32 item 3): a least-squares line through each track's
places against the stamps, none while a track is young, the same at any frame rate."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.runtime.object_motion import MotionSettings, ObjectMotion

pytestmark = pytest.mark.jetson_python
NS = 1_000_000_000


def _run(rate_hz: float, seconds: float, noise: float = 0.0) -> list[np.ndarray]:
    motion, rng, out = ObjectMotion(MotionSettings(window_s=1.0, min_age_s=0.3)), np.random.default_rng(0), []
    for frame in range(int(seconds * rate_hz) + 1):
        t = frame / rate_hz
        places = np.array([[20.0 - 4.0 * t, 1.5 + 0.5 * t], [35.0 + 2.0 * t, -3.0], [9.0, 9.0]])
        places[:2] += rng.normal(0, noise, (2, 2))
        out.append(motion.update(np.array([3, 7, 0]), places, round(t * NS)))
    return out


@pytest.mark.parametrize("rate_hz", [10.0, 30.0])
def test_constant_motion_is_recovered_at_any_rate(rate_hz: float) -> None:
    velocities = _run(rate_hz, 2.0)
    assert velocities[-1][:2] == pytest.approx(np.array([[-4.0, 0.5], [2.0, 0.0]]), abs=1e-9)
    assert np.isnan(velocities[-1][2]).all()  # a box no confirmed track holds


def test_no_velocity_while_a_track_is_young() -> None:
    velocities = _run(10.0, 1.0)
    assert np.isnan(velocities[1][0]).all() and np.isnan(velocities[2][0]).all()  # 0.1 s, 0.2 s old
    assert np.isfinite(velocities[3][0]).all()  # 0.3 s


def test_noisy_places_give_a_steady_velocity() -> None:
    velocities = np.array([v[0] for v in _run(10.0, 3.0, noise=0.2)[15:]])
    assert np.median(velocities, axis=0) == pytest.approx([-4.0, 0.5], abs=0.3)


def test_a_replay_from_the_start_forgets_the_tracks() -> None:
    motion = ObjectMotion()
    for frame in range(5):
        motion.update(np.array([1]), np.array([[10.0 + frame, 0.0]]), frame * NS // 10)
    assert np.isnan(motion.update(np.array([1]), np.array([[10.0, 0.0]]), 0)).all()
