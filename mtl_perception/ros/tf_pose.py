"""The camera's pose in the vehicle frame from TF, where tf2_ros is installed.

tf2_ros comes with every ROS 2 install (apt, the ROS docker images, a Jetson's ROS), but there is no
wheel of it on PyPI, so the node imports it only when camera_pose is unset and uses the parameter
where it is missing. The transform looked up is target_frame <- the images' frame_id, which REP 103
makes the camera's optical frame (x right, y down, z forward).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from mtl_perception.runtime.ground import CameraPose


def tf_available() -> bool:
    return importlib.util.find_spec("tf2_ros") is not None


class TfCameraPose:
    """A TF buffer and listener on the node; pose() looks up the latest transform."""

    def __init__(self, node: Any, target_frame: str) -> None:
        import tf2_ros

        self.target_frame = target_frame
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node)

    def close(self) -> None:
        """Stop listening (its /tf subscriptions go with it)."""
        self.listener.unregister()

    def pose(self, camera_frame: str) -> CameraPose:
        """The camera's pose; LookupError naming both frames when TF cannot say it (yet)."""
        import rclpy.time
        import tf2_ros

        try:
            stamped = self.buffer.lookup_transform(self.target_frame, camera_frame, rclpy.time.Time())
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException) as err:
            raise LookupError(f"no TF from {self.target_frame} to the images' frame {camera_frame!r}: {err}") from err
        t, q = stamped.transform.translation, stamped.transform.rotation
        return CameraPose.from_optical_transform((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
