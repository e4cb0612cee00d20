"""perception_node's /diagnostics status: its statistics and each camera's state, with the level and message
of runtime/health.py's ladder."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from mtl_perception.ros.node_parts import Configured
from mtl_perception.runtime.health import CameraState, node_health
from mtl_perception.runtime.realtime import RollingStats
from mtl_perception.topics import diagnostics_name


def diagnostic_status(node_name: str, parts: Configured, stats: RollingStats, now: float) -> DiagnosticStatus:
    snapshot = stats.snapshot(now)
    cameras = camera_states(parts, stats, now)
    health = node_health(snapshot, cameras, parts.worker.died,
                         all(camera.input.subscribed for camera in parts.cameras.values()))
    backend = parts.pipeline.perception.backend.name
    status = DiagnosticStatus(name=diagnostics_name(node_name), level=bytes([health.level]), message=health.message,
                              hardware_id=backend)
    values = {**{k: f"{v:.2f}" if isinstance(v, float) else str(v) for k, v in snapshot.items()},
              "backend": backend, "model": str(parts.settings.perception.model_path)}
    for camera in cameras:
        key = f"camera {camera.name}" if camera.name else "camera"
        values[f"{key}: topic"] = camera.topic
        values[f"{key}: seconds since a frame"] = "never" if camera.since_frame_s is None else \
            f"{camera.since_frame_s:.2f}"
    for part in parts.cameras.values():
        key = f"camera {part.name}" if part.name else "camera"
        for reason, count in part.ground.objects_left_out.items():
            values[f"{key}: objects left out, {reason}"] = str(count)
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status


def camera_states(parts: Configured, stats: RollingStats, now: float) -> list[CameraState]:
    """Each subscribed camera as runtime.health reads it."""
    losses = stats.recent_loss_by_source(now)
    skews = parts.surround.stamp_skews() if parts.surround is not None else {}
    states = []
    for camera in parts.cameras.values():
        if not camera.input.subscribed or camera.subscribed_at is None:
            continue
        states.append(CameraState(
            name=camera.name, topic=camera.input.topic_name or "",
            since_frame_s=None if camera.last_received is None else now - camera.last_received,
            since_subscribed_s=now - camera.subscribed_at, recent_loss=losses.get(camera.name, 0.0),
            grid_off=camera.ground.off_reason, stamp_skew_s=skews.get(camera.name, 0.0),
            other_transport=camera.input.other_transport_with_publishers()))
    return states
