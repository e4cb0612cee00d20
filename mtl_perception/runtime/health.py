"""The node's health, as /diagnostics reports it: a pure function of what the node counted and what each camera
is doing, so every level of the warning ladder is tested without a node.

The ladder, most severe first: the processing thread has died (ERROR); inactive (OK: nothing is expected);
then every warning that holds, each naming its camera (and, for the unnamed camera, the topic it listens on):
a camera silent since activation or stopped, a camera losing frames on the way, a camera whose ground
outputs are off, a camera whose stamps disagree with the others', frames that failed, damaged JPEGs, and a
model slower than the cameras. No warning: OK.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl_perception.runtime.realtime import StatsSnapshot

# a camera that sent nothing for this long (since its last frame, or since the node subscribed) is reported
# silent: cameras run at 10-30 Hz, so two seconds is tens of missed frames, and long enough not to flag a
# single slow batch
CAMERA_SILENT_S = 2.0
LOSS_WARNING = 0.1  # a camera more of whose frames than this never reach the node is warned about
DROP_WARNING = 0.1  # the share of received frames replaced by newer ones before the model took them

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels, without importing ROS


@dataclass(frozen=True)
class CameraState:
    """What the node knows of one camera when /diagnostics is published."""

    name: str  # "": the unnamed camera
    topic: str  # the image topic it listens on (resolved, after remapping)
    since_frame_s: float | None  # seconds since its last frame; None: none yet
    since_subscribed_s: float  # seconds since its image subscription was made (activation)
    recent_loss: float = 0.0  # share of its frames in the statistics window that never arrived (stamp gaps)
    grid_off: str | None = None  # why its ground outputs are off now (a geometry fault), or None
    stamp_skew_s: float = 0.0  # its stamps' offset from the other cameras' (+ ahead), where one is known
    # an image topic of the other transport with publishers while this one has none (raw against compressed)
    other_transport: str | None = None

    @property
    def label(self) -> str:
        return f"camera {self.name}" if self.name else f"the camera on {self.topic}"


@dataclass(frozen=True)
class Health:
    level: int
    message: str


SKEW_WARNING_S = 0.5  # cameras of one rig are stamped by synchronised clocks: half a second apart is a clock fault


def node_health(snapshot: StatsSnapshot, cameras: list[CameraState], worker_died: bool, subscribed: bool,
                ) -> Health:
    """The node's level and one message naming every current problem (joined by '; ')."""
    if worker_died:
        return Health(ERROR, "the processing thread has stopped: no frame is answered; restart the node")
    if not subscribed:
        return Health(OK, "inactive: configured, not subscribed")
    problems = [problem for camera in cameras for problem in _camera_problems(camera)]
    if snapshot["recent_errors"] or snapshot["recent_bad_frames"]:
        problems.append("some frames could not be processed")
    if snapshot["recent_damaged_frames"]:
        problems.append("some jpeg frames came damaged (answered; damaged_frames counts them)")
    if snapshot["recent_received"] and snapshot["recent_dropped"] > DROP_WARNING * snapshot["recent_received"]:
        problems.append("dropping frames: the model is slower than the camera")
    return Health(WARN, "; ".join(problems)) if problems else Health(OK, "ok")


def _camera_problems(camera: CameraState) -> list[str]:
    problems = []
    if camera.since_frame_s is None and camera.since_subscribed_s > CAMERA_SILENT_S:
        problems.append(f"{camera.label}: no frame since the node subscribed {camera.since_subscribed_s:.0f} s ago "
                        f"(listening on {camera.topic}){_transport_hint(camera)}")
    elif camera.since_frame_s is not None and camera.since_frame_s > CAMERA_SILENT_S:
        problems.append(f"{camera.label} stopped: no frame for {camera.since_frame_s:.0f} s (listening on "
                        f"{camera.topic}){_transport_hint(camera)}")
    if camera.recent_loss > LOSS_WARNING:
        problems.append(f"{camera.label}: {100 * camera.recent_loss:.0f}% of its frames never arrived (header "
                        "stamp gaps): give the camera driver config/fastdds_large_frames.xml, or publish "
                        "reliable (README)")
    if camera.grid_off:
        problems.append(f"{camera.label}: no drivable_grid or lane markings: {camera.grid_off}")
    if abs(camera.stamp_skew_s) > SKEW_WARNING_S:
        way = "ahead of" if camera.stamp_skew_s > 0 else "behind"
        problems.append(f"{camera.label}: its stamps are {abs(camera.stamp_skew_s):.1f} s {way} the other "
                        "cameras': the surround grid fuses it by arrival time; synchronise the cameras' clocks")
    return problems


def _transport_hint(camera: CameraState) -> str:
    if camera.other_transport is None:
        return ""
    wanted = "compressed" if camera.other_transport.endswith("/compressed") else "raw"
    return f"; frames arrive on {camera.other_transport}: set input_transport:={wanted}"
