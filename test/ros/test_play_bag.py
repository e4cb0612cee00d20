"""play-bag over real rclpy: a bag's frames and camera_info reach a subscriber with their recorded stamps and
the recorded QoS, at a set rate and at the recorded timing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from node_harness import Client
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from mtl_perception.evaluation.bags import write_image_bag
from mtl_perception.stamps import to_ns


@pytest.fixture
def bag(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((48, 64, 3), 30 * i, np.uint8))
    calibration = {"width": 64, "height": 48, "k": [50.0, 0, 32.0, 0, 50.0, 24.0, 0, 0, 1.0],
                   "distortion_model": "plumb_bob", "d": [], "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": []}
    out = tmp_path / "drive"
    stamps = write_image_bag(sorted(frames.glob("*.png")), out, rate_hz=5.0, camera_info=calibration)
    return out, stamps


@pytest.mark.parametrize("timing", [["--rate", "20"], ["--speed", "4"]])
def test_play_bag_delivers_every_frame_and_camera_info(bag: tuple[Path, dict[str, int]], timing: list[str]) -> None:
    path, stamps = bag
    client = Client("play_bag_viewer")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    client.listen(Image, "/played/image", qos)
    client.listen(CameraInfo, "/camera/camera_info", qos)
    try:
        player = subprocess.Popen([sys.executable, "-m", "mtl_perception.cli", "play-bag", str(path), *timing,
                                   "--remap", "/camera/image_raw:=/played/image", "--wait", "20"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        assert client.spin_until(lambda: len(client.received["/played/image"]) == 6
                                 and len(client.received["/camera/camera_info"]) == 6, 60), \
            {k: len(v) for k, v in client.received.items()}
        out, err = player.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert player.returncode == 0, err
    assert "/played/image 6" in out and "/camera/camera_info 6" in out
    assert sorted(to_ns(m.header.stamp) for m in client.received["/played/image"]) == sorted(stamps.values())
    assert client.received["/camera/camera_info"][0].k[0] == 50.0
    assert client.received["/played/image"][0].height == 48 and elapsed < 30  # 6 frames: about a second
