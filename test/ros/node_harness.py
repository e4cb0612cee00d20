"""Talk to a perception_node process (mtl_perception.ros.node_process) from the test process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image


class Client:
    """A node in the test process: publishes camera frames, records what perception_node publishes."""

    def __init__(self, name: str = "test_client", namespace: str = "") -> None:
        self.node = Node(name, namespace=namespace)
        self.received: dict[str, list[Any]] = {}

    def listen(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> None:
        self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, lambda m: self.received[topic].append(m), qos)

    def camera(self, reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE, compressed: bool = False) -> Any:
        qos = QoSProfile(depth=1, reliability=reliability)
        return self.node.create_publisher(CompressedImage if compressed else Image,
                                          "image/compressed" if compressed else "image", qos)

    def spin_until(self, done: Callable[[], bool], timeout: float = 30.0, each: Callable[[], None] | None = None,
                   ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if each is not None:
                each()
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return done()

    def close(self) -> None:
        self.node.destroy_node()


def latched() -> QoSProfile:
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def scene(height: int, width: int) -> np.ndarray:
    """A frame with structure (not a flat colour), so masks and boxes vary."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 251, y % 241, (x + y) % 239], axis=-1).astype(np.uint8)


REPO = Path(__file__).resolve().parents[2]
