"""The node's health (/diagnostics' level and message) as a pure function of its statistics and its cameras'
states, level by level: each rung of the ladder alone, then several at once."""

from __future__ import annotations

import dataclasses

import pytest

from mtl_perception.runtime.health import (
    CAMERA_SILENT_S,
    ERROR,
    OK,
    SKEW_WARNING_S,
    WARN,
    CameraState,
    node_health,
)
from mtl_perception.runtime.realtime import RollingStats, StatsSnapshot

pytestmark = pytest.mark.jetson_python

QUIET: StatsSnapshot = RollingStats().snapshot(now=0.0)
FRONT = CameraState("front", "/rig/front/image", since_frame_s=0.1, since_subscribed_s=30.0)
UNNAMED = CameraState("", "/camera/image_raw", since_frame_s=0.1, since_subscribed_s=30.0)


def _health(*cameras: CameraState, snapshot: StatsSnapshot = QUIET, died: bool = False, subscribed: bool = True):
    return node_health(snapshot, list(cameras), died, subscribed)


def test_all_well_is_ok() -> None:
    health = _health(FRONT, UNNAMED)
    assert (health.level, health.message) == (OK, "ok")


def test_a_dead_worker_is_an_error_whatever_else_holds() -> None:
    health = _health(dataclasses.replace(FRONT, since_frame_s=None), died=True)
    assert health.level == ERROR and "processing thread has stopped" in health.message


def test_inactive_is_ok_and_says_so() -> None:
    assert _health(dataclasses.replace(FRONT, since_frame_s=None), subscribed=False).message.startswith("inactive")


def test_a_named_camera_that_never_sent_is_named() -> None:
    """Issue 34 item 2: it stayed 'ok', with only a value 'never'."""
    fresh = dataclasses.replace(FRONT, since_frame_s=None, since_subscribed_s=CAMERA_SILENT_S / 2)
    assert _health(fresh).level == OK  # just subscribed: the camera may not have sent yet
    silent = dataclasses.replace(FRONT, since_frame_s=None, since_subscribed_s=5.0)
    health = _health(silent, dataclasses.replace(FRONT, name="rear", topic="/rig/rear/image"))
    assert health.level == WARN
    assert health.message == "camera front: no frame since the node subscribed 5 s ago (listening on /rig/front/image)"


def test_a_stopped_unnamed_camera_is_named_by_its_topic() -> None:
    """Issue 34 item 6: it read 'camera  stopped'."""
    health = _health(dataclasses.replace(UNNAMED, since_frame_s=3.2))
    assert health.level == WARN
    assert health.message == "the camera on /camera/image_raw stopped: no frame for 3 s (listening on /camera/image_raw)"


def test_frames_on_the_other_transport_are_pointed_at() -> None:
    listening = dataclasses.replace(UNNAMED, topic="/camera/image_raw/compressed", since_frame_s=None,
                                    other_transport="/camera/image_raw")
    assert _health(listening).message.endswith("frames arrive on /camera/image_raw: set input_transport:=raw")
    raw = dataclasses.replace(UNNAMED, since_frame_s=None, other_transport="/camera/image_raw/compressed")
    assert _health(raw).message.endswith("set input_transport:=compressed")


def test_loss_is_judged_per_camera() -> None:
    """Issue 34 item 3: one camera of three losing 25 % stayed 'ok' under the pooled ratio."""
    lossy = dataclasses.replace(FRONT, name="left", recent_loss=0.25)
    health = _health(FRONT, lossy, dataclasses.replace(FRONT, name="right"))
    assert health.level == WARN and health.message.startswith("camera left: 25% of its frames never arrived")
    assert "fastdds_large_frames.xml" in health.message and "camera front" not in health.message
    assert _health(dataclasses.replace(FRONT, recent_loss=0.05)).level == OK


def test_a_camera_without_its_grid_is_named_with_the_reason() -> None:
    """Issue 34 item 4: /diagnostics said 'ok' while a camera's grid was off."""
    off = dataclasses.replace(FRONT, grid_off="camera_info is 1280x720, the frames 640x480")
    health = _health(off)
    assert health.level == WARN
    assert health.message == ("camera front: no drivable_grid or lane markings: camera_info is 1280x720, the "
                              "frames 640x480")


def test_a_skewed_camera_is_named_with_its_skew() -> None:
    """Issue 34 item 5."""
    assert _health(dataclasses.replace(FRONT, stamp_skew_s=SKEW_WARNING_S / 2)).level == OK
    health = _health(dataclasses.replace(FRONT, stamp_skew_s=100.0), dataclasses.replace(FRONT, name="zero",
                                                                                       stamp_skew_s=-1.7e9))
    assert health.level == WARN
    assert "camera front: its stamps are 100.0 s ahead of the other cameras'" in health.message
    assert "camera zero: its stamps are 1700000000.0 s behind" in health.message


def test_failed_damaged_and_dropped_frames_warn() -> None:
    for key, expected in (("recent_errors", "could not be processed"), ("recent_bad_frames", "could not be processed"),
                          ("recent_damaged_frames", "came damaged")):
        health = _health(FRONT, snapshot={**QUIET, key: 1})
        assert health.level == WARN and expected in health.message
    dropping = {**QUIET, "recent_received": 100, "recent_dropped": 30}
    assert "the model is slower than the camera" in _health(FRONT, snapshot=dropping).message
    assert _health(FRONT, snapshot={**QUIET, "recent_received": 100, "recent_dropped": 5}).level == OK


def test_every_problem_at_once_is_said_once_each() -> None:
    silent = dataclasses.replace(FRONT, since_frame_s=None, since_subscribed_s=4.0)
    lossy = dataclasses.replace(FRONT, name="left", recent_loss=0.5, grid_off="camera_info unusable")
    health = _health(silent, lossy, snapshot={**QUIET, "recent_errors": 2})
    parts = health.message.split("; ")
    assert health.level == WARN and len(parts) == 4
    assert parts[0].startswith("camera front: no frame") and parts[1].startswith("camera left: 50%")
    assert parts[2].startswith("camera left: no drivable_grid") and parts[3] == "some frames could not be processed"
