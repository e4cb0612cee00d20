"""A real rclpy round trip between two processes: 1280x720 bgr8 Image and Detection2DArray."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from roundtrip_publisher import HEIGHT, WIDTH, pattern
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray


def test_image_and_detections_cross_processes() -> None:
    publisher = subprocess.Popen([sys.executable, str(Path(__file__).with_name("roundtrip_publisher.py"))])
    node = Node("roundtrip_listener")
    got: dict[str, object] = {}
    node.create_subscription(Image, "image", lambda m: got.setdefault("image", m), 1)
    node.create_subscription(Detection2DArray, "detections", lambda m: got.setdefault("det", m), 5)
    try:
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline and publisher.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        publisher.send_signal(signal.SIGINT)
        publisher.wait(timeout=10)

    assert set(got) == {"image", "det"}, f"received only {sorted(got)}"
    img = got["image"]
    assert (img.width, img.height, img.encoding, img.step) == (WIDTH, HEIGHT, "bgr8", WIDTH * 3)
    frame = np.frombuffer(img.data, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(frame, pattern())
    det = got["det"].detections[0]
    assert (det.bbox.center.position.x, det.bbox.center.position.y) == (640.5, 360.25)
    assert (det.bbox.size_x, det.bbox.size_y) == (100.0, 50.0)
    assert det.results[0].hypothesis.class_id == "car"
    assert det.results[0].hypothesis.score == 0.875
    assert got["det"].header.frame_id == "camera"
