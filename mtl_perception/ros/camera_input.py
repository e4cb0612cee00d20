"""The camera's subscriptions: its images (raw or compressed) with their QoS matched to the publishers, and its
camera_info."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mtl_perception.topics import camera_topic

MATCH_PERIOD_S = 0.5  # how often `auto` reliability looks at the publishers again
# camera_info: best effort hears a publisher of either reliability; the latest is all the node uses
CAMERA_INFO_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
_FIXED = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


def choose_reliability(offered: list[ReliabilityPolicy]) -> ReliabilityPolicy | None:
    """rosbag2's rule: reliable only if every publisher offers it (a reliable subscriber never hears a
    best-effort publisher); None while there is no publisher to match."""
    if not offered:
        return None
    return ReliabilityPolicy.RELIABLE if all(r == ReliabilityPolicy.RELIABLE for r in offered) \
        else ReliabilityPolicy.BEST_EFFORT


class CameraInput:
    """Created in on_configure with the node's input settings, subscribed by start() (on_activate) and
    unsubscribed by stop() (on_deactivate). With reliability `auto` the image subscription follows what its
    publishers offer, re-checked every MATCH_PERIOD_S (a camera started later, or restarted with another
    QoS, is heard without a restart)."""

    def __init__(self, node: Node, transport: str, reliability: str, on_image: Callable[[Any], None],
                 on_camera_info: Callable[[CameraInfo], None], prefix: str = "") -> None:
        self.node = node
        self.prefix = prefix  # the camera's name: its topics go under it (topics.camera_topic)
        self.compressed = transport == "compressed"
        self.auto = reliability == "auto"
        self._initial = _FIXED.get(reliability, ReliabilityPolicy.RELIABLE)
        self._on_image, self._on_camera_info = on_image, on_camera_info
        self.reliability: ReliabilityPolicy | None = None
        self._image: Any = None
        self._camera_info: Any = None
        self._match_timer: Any = None

    @property
    def subscribed(self) -> bool:
        return self._image is not None

    @property
    def topic_name(self) -> str | None:
        return self._image.topic_name if self._image is not None else None

    def other_transport_with_publishers(self) -> str | None:
        """The image topic of the other transport (raw for compressed, compressed for raw) where it has
        publishers and this subscription's topic has none: a node listening for the wrong one; else None."""
        if self._image is None:
            return None
        topic = self._image.topic_name
        other = topic[:-len("/compressed")] if self.compressed else f"{topic}/compressed"
        if self.node.count_publishers(topic) == 0 and self.node.count_publishers(other) > 0:
            return other
        return None

    def start(self) -> None:
        self._subscribe(self._initial)
        self._camera_info = self.node.create_subscription(
            CameraInfo, camera_topic(self.prefix, "camera_info"), self._on_camera_info, CAMERA_INFO_QOS)
        if self.auto:
            self._match_timer = self.node.create_timer(MATCH_PERIOD_S, self._match_publishers)

    def stop(self) -> None:
        for subscription in (self._image, self._camera_info):
            if subscription is not None:
                self.node.destroy_subscription(subscription)
        if self._match_timer is not None:
            self.node.destroy_timer(self._match_timer)
        self._image = self._camera_info = self._match_timer = None

    def _subscribe(self, reliability: ReliabilityPolicy) -> None:
        if self._image is not None:
            self.node.destroy_subscription(self._image)
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        msg_type, topic = (CompressedImage, "image/compressed") if self.compressed else (Image, "image")
        self._image = self.node.create_subscription(msg_type, camera_topic(self.prefix, topic), self._on_image, qos)
        self.reliability = reliability
        self.node.get_logger().info(f"subscribed to {self._image.topic_name} ({reliability.name.lower()})")

    def _match_publishers(self) -> None:
        if self._image is None:
            return
        publishers = self.node.get_publishers_info_by_topic(self._image.topic_name)
        offered = [info.qos_profile.reliability for info in publishers]
        wanted = choose_reliability(offered)
        if wanted is not None and wanted != self.reliability:
            self._subscribe(wanted)
