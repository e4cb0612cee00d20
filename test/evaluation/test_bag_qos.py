"""The QoS a bag records for its publishers, as make-bag writes it and as play-bag reads it, under both rosbags
APIs: typed profiles (0.10+) and rosbag2's YAML text (0.9.23, JetPack 5's Python 3.8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from mtl_perception.bags import OfferedQos, offered_qos, typestore

pytestmark = pytest.mark.jetson_python

# metadata.yaml's offered_qos_profiles as `ros2 bag record` on Humble writes it (rosbag2 format 5): numbers,
# history 3 (unknown: DDS does not report it), a best-effort camera driver
HUMBLE_RECORDED = """- history: 3
  depth: 0
  reliability: 2
  durability: 2
  deadline:
    sec: 9223372036
    nsec: 854775807
  lifespan:
    sec: 9223372036
    nsec: 854775807
  liveliness: 1
  liveliness_lease_duration:
    sec: 9223372036
    nsec: 854775807
  avoid_ros_namespace_conventions: false"""


def _connection(offered: object) -> SimpleNamespace:
    return SimpleNamespace(ext=SimpleNamespace(offered_qos_profiles=offered))


def test_recorded_yaml_text_and_its_absence() -> None:
    assert offered_qos(_connection(HUMBLE_RECORDED)) == OfferedQos("BEST_EFFORT", "VOLATILE", 0)
    assert offered_qos(_connection("")) is None and offered_qos(_connection([])) is None
    assert offered_qos(SimpleNamespace()) is None  # a ROS 1 bag's connection


def test_make_bag_records_a_reliable_camera_that_reads_back(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    made = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "make-bag", "--images", str(images),
                           "--out", str(tmp_path / "bag")], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    with AnyReader([tmp_path / "bag"], default_typestore=typestore()) as reader:
        (connection,) = reader.connections
        assert offered_qos(connection) == OfferedQos("RELIABLE", "VOLATILE", 1)
    assert "&id" not in (tmp_path / "bag" / "metadata.yaml").read_text()  # plain YAML, no aliases
