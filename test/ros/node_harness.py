"""Run perception_node in its own process and talk to it from this one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from mtl_perception.ros.conversions import as_uint8_array

NODE = [sys.executable, "-m", "mtl_perception.ros.node"]


class NodeProcess:
    """perception_node with parameters; waits until it has subscribed, collects its output."""

    def __init__(self, params: dict[str, Any], namespace: str = "", extra_args: tuple[str, ...] = ()) -> None:
        args = [*NODE, "--ros-args", *extra_args]
        for key, value in params.items():
            args += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                return text in self.output
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        self._reader.join(timeout=2)
        return self.proc.returncode


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


def image_msg(frame: np.ndarray, stamp_ns: int, frame_id: str = "camera", encoding: str = "bgr8") -> Image:
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding=encoding,
                step=frame.shape[1] * (frame.shape[2] if frame.ndim == 3 else 1))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.data = as_uint8_array(frame)
    return msg


def stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def scene(height: int, width: int) -> np.ndarray:
    """A frame with structure (not a flat colour), so masks and boxes vary."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 251, y % 241, (x + y) % 239], axis=-1).astype(np.uint8)


REPO = Path(__file__).resolve().parents[2]
