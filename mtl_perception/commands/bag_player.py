"""A rosbag2 player for machines without `ros2 bag` (the play-bag command): a bag's camera topics published as recorded.

Images (raw or compressed) and camera_info go out as the bag holds them (their CDR bytes, no decoding), each
topic with the QoS its recording says the publisher offered, at the recorded timing (scaled by `speed`) or
at a fixed rate. rosbags reads the bag; rclpy publishes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mtl_perception.evaluation.bags import (
    CAMERA_INFO,
    COMPRESSED,
    IMAGE,
    BagError,
    offered_qos,
    reader_errors,
    typestore,
)

MESSAGE_TYPES: dict[str, type] = {IMAGE: Image, COMPRESSED: CompressedImage, CAMERA_INFO: CameraInfo}
DEFAULT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # where the bag lists none
SETTLE_S = 0.5


@dataclass(frozen=True)
class PlayResult:
    messages: dict[str, int]  # topic -> messages published
    seconds: float


def qos_of(connection: Any) -> QoSProfile:
    """The QoS the recording says the topic's publisher offered (rosbag2's offered_qos_profiles)."""
    qos = offered_qos(connection)
    if qos is None:
        return DEFAULT_QOS
    reliability = ReliabilityPolicy.BEST_EFFORT if qos.reliability == "BEST_EFFORT" else ReliabilityPolicy.RELIABLE
    durability = DurabilityPolicy.TRANSIENT_LOCAL if qos.durability == "TRANSIENT_LOCAL" else \
        DurabilityPolicy.VOLATILE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(qos.depth, 1), reliability=reliability,
                      durability=durability)


class BagPlayer:
    """Publishes a bag's camera topics from `node`; remap maps a recorded topic to the one to publish on."""

    def __init__(self, node: Node, bag: Path, rate_hz: float | None = None, speed: float = 1.0,
                 remap: Mapping[str, str] | None = None) -> None:
        if not bag.exists():
            raise BagError(f"bag {bag} does not exist")
        if speed <= 0:
            raise ValueError(f"--speed must be > 0, got {speed}")
        self.node, self.bag, self.rate_hz, self.speed = node, bag, rate_hz, speed
        self.remap = dict(remap or {})

    def play(self, wait_for_subscribers: float = 0.0) -> PlayResult:
        """Publish every camera message; with wait_for_subscribers > 0, first wait up to that many seconds for
        each image topic to be matched (a replay into a node that is still starting loses nothing)."""
        from rosbags.highlevel import AnyReader

        counts: dict[str, int] = {}
        started = time.monotonic()
        with reader_errors(self.bag), AnyReader([self.bag], default_typestore=typestore()) as reader:
            connections = [c for c in reader.connections if c.msgtype in MESSAGE_TYPES]
            if not connections:
                listed = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "none"
                raise BagError(f"{self.bag} has no image or camera_info topics to play; its topics: {listed}")
            publishers: dict[int, Any] = {c.id: self.node.create_publisher(MESSAGE_TYPES[c.msgtype], self.remap.get(c.topic, c.topic),
                                                           qos_of(c)) for c in connections}
            if self._wait_for(publishers.values(), wait_for_subscribers):
                # the publisher sees the subscriber before the subscriber has taken the publisher in: a moment
                # for discovery to finish on its side too (ros2 bag play's --delay serves the same end)
                time.sleep(SETTLE_S)
            started = time.monotonic()
            first_stamp: int | None = None
            frame = -1
            for connection, stamp, raw in reader.messages(connections=connections):
                if first_stamp is None:
                    first_stamp = stamp
                if connection.msgtype != CAMERA_INFO:
                    frame += 1
                due = frame / self.rate_hz if self.rate_hz else (stamp - first_stamp) / 1e9 / self.speed
                delay = started + due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                publishers[connection.id].publish(bytes(raw))  # the recorded CDR bytes: no decoding
                topic = self.remap.get(connection.topic, connection.topic)
                counts[topic] = counts.get(topic, 0) + 1
            for publisher in publishers.values():  # reliable subscribers have what was sent before the end
                publisher.wait_for_all_acked(Duration(seconds=5))
        return PlayResult(counts, time.monotonic() - started)

    @staticmethod
    def _wait_for(publishers: Any, timeout: float) -> bool:
        """True when every publisher has a subscriber (within timeout)."""
        deadline = time.monotonic() + timeout
        for publisher in publishers:
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        return all(p.get_subscription_count() > 0 for p in publishers)
