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

from mtl_perception.bags import write_image_bag
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


def test_frames_pair_each_image_with_its_camera_info_as_a_recorder_logs_them(tmp_path: Path) -> None:
    """`ros2 bag record` logs a camera's image and camera_info at slightly different times, either first:
    every message is still published once, each camera_info before the image it came with."""
    import rclpy
    from rosbags.rosbag2 import Writer

    from mtl_perception.bags import CAMERA_INFO, CAMERA_QOS, IMAGE, offered_qos_argument, typestore
    from mtl_perception.ros.bag_player import BagPlayer

    store = typestore()
    t = store.types
    bag = tmp_path / "recorded"
    offsets_ms = [-3, 2, 0, -1, 4]  # camera_info's log time minus its image's
    with Writer(bag, version=8) as writer:
        image_c = writer.add_connection("/cam/image_raw", IMAGE, typestore=store,
                                        offered_qos_profiles=offered_qos_argument([CAMERA_QOS]))
        info_c = writer.add_connection("/cam/camera_info", CAMERA_INFO, typestore=store)
        records = []
        for i, offset in enumerate(offsets_ms):
            stamp = 1_000_000_000 * (i + 1)
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=i + 1, nanosec=0), frame_id="c")
            image = t[IMAGE](header=header, height=2, width=2, encoding="mono8", is_bigendian=0, step=2,
                             data=np.full(4, i, np.uint8))
            roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
            info = t[CAMERA_INFO](header=header, height=2, width=2, distortion_model="plumb_bob",
                                  d=np.zeros(0), k=np.full(9, float(i)), r=np.eye(3).ravel(), p=np.zeros(12),
                                  binning_x=0, binning_y=0, roi=roi)
            records += [(stamp, image_c, store.serialize_cdr(image, IMAGE)),
                        (stamp + offset * 1_000_000, info_c, store.serialize_cdr(info, CAMERA_INFO))]
        for stamp, connection, raw in sorted(records, key=lambda r: r[0]):
            writer.write(connection, stamp, raw)
    context = rclpy.Context()  # its own: the viewer of the other tests may hold the default one
    context.init()
    try:
        node = rclpy.create_node("grouping_check", context=context)
        frames = BagPlayer(node, bag).frames()
        node.destroy_node()
    finally:
        context.shutdown()
    assert len(frames) == 5 and sum(len(f.messages) for f in frames) == 10  # nothing lost, nothing twice
    deserialize = store.deserialize_cdr
    images = [int(deserialize(f.messages[-1][1], IMAGE).data[0]) for f in frames]
    infos = [[deserialize(raw, CAMERA_INFO).k[0] for _, raw in f.messages[:-1]] for f in frames]
    assert images == [0, 1, 2, 3, 4] and [f.stamp_ns for f in frames] == [1_000_000_000 * (i + 1) for i in range(5)]
    # logged before its image: with it (0, 3); at its stamp: with it (2); after: with the next image (1 goes
    # out before image 2), the last with the last (4)
    assert infos == [[0.0], [], [1.0, 2.0], [3.0], [4.0]]


@pytest.mark.parametrize("little_endian", [True, False])
def test_restamped_frames_read_back_with_the_new_stamp_by_rclpy_and_rosbags(little_endian: bool) -> None:
    """A frame sent again under a new stamp (bench-node loops a short bag): the rewritten CDR of an Image, a
    CompressedImage and a CameraInfo decodes, by rclpy's deserializer and by rosbags', to the same message
    with only the stamp changed."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage

    from mtl_perception.bags import CAMERA_INFO, COMPRESSED, IMAGE, typestore
    from mtl_perception.ros.bag_player import RecordedFrame, restamped

    store = typestore()
    t = store.types
    header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=7, nanosec=5), frame_id="cam_x")
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    recorded = {
        IMAGE: t[IMAGE](header=header, height=2, width=3, encoding="mono8", is_bigendian=0, step=3,
                        data=np.arange(6, dtype=np.uint8)),
        COMPRESSED: t[COMPRESSED](header=header, format="jpeg", data=np.arange(9, dtype=np.uint8)),
        CAMERA_INFO: t[CAMERA_INFO](header=header, height=2, width=3, distortion_model="plumb_bob", d=np.zeros(5),
                                    k=np.arange(9.0), r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0,
                                    binning_y=0, roi=roi),
    }
    rclpy_types = {IMAGE: Image, COMPRESSED: CompressedImage, CAMERA_INFO: CameraInfo}
    names = list(recorded)
    frame = RecordedFrame(7_000_000_005, tuple(
        (i, bytes(store.serialize_cdr(recorded[n], n, little_endian=little_endian))) for i, n in enumerate(names)))
    new_stamp = 1_234_000_000_987
    out = restamped(frame, new_stamp)
    assert out.stamp_ns == new_stamp
    for (_, raw), name in zip(out.messages, names):
        by_rosbags = store.deserialize_cdr(raw, name)
        assert (by_rosbags.header.stamp.sec, by_rosbags.header.stamp.nanosec) == (1234, 987)
        assert by_rosbags.header.frame_id == "cam_x"
        if little_endian:  # rclpy (Fast CDR) reads the byte order the encapsulation names; rosbags reads both
            by_rclpy = deserialize_message(raw, rclpy_types[name])
            assert to_ns(by_rclpy.header.stamp) == new_stamp and by_rclpy.header.frame_id == "cam_x"
        original = recorded[name]
        for field in ("data", "k"):
            if hasattr(original, field):
                assert np.array_equal(getattr(by_rosbags, field), getattr(original, field))
