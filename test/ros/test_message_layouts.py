"""One layout per output message serves both writers: the node's rclpy messages and the bag tools' rosbags
messages. Built from the same values, each side's serialised bytes read back by the other library give that
library's own message (rclpy's Fast CDR against rosbags' pure-Python CDR; padding bytes, which Fast CDR
leaves uninitialised, are not compared): a field laid out differently on either side fails here."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointField
from std_msgs.msg import Header

from mtl_perception import message_layouts as layouts
from mtl_perception.bags import RosbagsMessages, typestore
from mtl_perception.ros.conversions import RclpyMessages
from mtl_perception.runtime.ego_lane import EgoLane, LaneBoundary
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.ground_objects import GroundObjects
from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.runtime.postprocess import Detections

STAMP = (1_700_000_123, 456_000_000)
CLASSES = ("pedestrian", "car", "truck")


@pytest.fixture(scope="module")
def factories() -> tuple[RclpyMessages, RosbagsMessages]:
    return RclpyMessages(), RosbagsMessages(typestore())


def _headers(rosbags: RosbagsMessages) -> tuple[Header, object]:
    t = rosbags.store.types
    rclpy_header = Header(frame_id="camera_optical")
    rclpy_header.stamp.sec, rclpy_header.stamp.nanosec = STAMP
    return rclpy_header, t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=STAMP[0],
                                                                                        nanosec=STAMP[1]),
                                                    frame_id="camera_optical")


def _same_bytes(factories, build, type_name: str, nan: bool = False) -> None:
    """nan: the message holds NaN (never equal to itself), so rclpy's reading of rosbags' bytes is compared as
    rclpy serialises it again."""
    rclpy_factory, rosbags_factory = factories
    store = rosbags_factory.store
    rclpy_header, rosbags_header = _headers(rosbags_factory)
    rclpy_message, rosbags_message = build(rclpy_factory, rclpy_header), build(rosbags_factory, rosbags_header)
    by_rclpy = bytes(serialize_message(rclpy_message))
    by_rosbags = bytes(store.serialize_cdr(rosbags_message, type_name))
    assert len(by_rclpy) == len(by_rosbags)
    # rclpy's bytes, read by rosbags, are rosbags' message (compared as rosbags serialises it: zero padding)
    assert bytes(store.serialize_cdr(store.deserialize_cdr(by_rclpy, type_name), type_name)) == by_rosbags
    # rosbags' bytes, read by rclpy, are rclpy's message
    back = deserialize_message(by_rosbags, type(rclpy_message))
    if nan:
        again = bytes(serialize_message(back))
        assert len(again) == len(by_rclpy) and back.__slots__ == rclpy_message.__slots__
        assert bytes(store.serialize_cdr(store.deserialize_cdr(again, type_name), type_name)) == by_rosbags
    else:
        assert back == rclpy_message


def test_detection_array(factories) -> None:
    detections = Detections(np.array([[10.0, 20.0, 110.0, 220.0], [5.5, 6.5, 7.5, 8.5]], np.float32),
                            np.array([0.9, 0.31], np.float32), np.array([1, 2]))
    _same_bytes(factories, lambda f, h: layouts.detection_array(f, h, detections, CLASSES), layouts.DETECTION_ARRAY)
    _same_bytes(factories, lambda f, h: layouts.detection_array(f, h, Detections.empty(), CLASSES),
                layouts.DETECTION_ARRAY)


@pytest.mark.parametrize(("shape", "encoding"), [((4, 6), "mono8"), ((3, 5, 3), "bgr8")])
def test_image(factories, shape: tuple[int, ...], encoding: str) -> None:
    pixels = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    _same_bytes(factories, lambda f, h: layouts.image(f, h, pixels, encoding), layouts.IMAGE)


def test_occupancy_grid_and_its_inverse(factories) -> None:
    spec = GridSpec(0.5, 0.0, 4.0, 1.5, 40.0)
    occupancy = np.random.default_rng(0).choice(np.array([-1, 0, 100], np.int8), spec.shape)
    _same_bytes(factories, lambda f, h: layouts.occupancy_grid(f, h, occupancy, spec), layouts.OCCUPANCY_GRID)
    rclpy_header, rosbags_header = _headers(factories[1])
    for factory, header in zip(factories, (rclpy_header, rosbags_header)):
        back, back_spec = layouts.grid_from_message(layouts.occupancy_grid(factory, header, occupancy, spec))
        assert np.array_equal(back, occupancy)
        assert (back_spec.resolution, back_spec.x_min, back_spec.x_max, back_spec.y_half) == (0.5, 0.0, 4.0, 1.5)
        assert back_spec.shape == spec.shape


def test_marking_cloud(factories) -> None:
    markings = [GroundMarking(np.array([[5.0, 1.75], [6.0, 1.8]]), (1.7, 0.01, 0.0)),
                GroundMarking(np.array([[5.0, -1.75]]), (-1.75, 0.0, 0.0))]
    _same_bytes(factories, lambda f, h: layouts.marking_cloud(f, h, markings), layouts.POINT_CLOUD)


def test_objects_with_their_motion(factories) -> None:
    detections = Detections(np.array([[10.0, 200.0, 110.0, 260.0], [300.0, 210.0, 330.0, 290.0]], np.float32),
                            np.array([0.9, 0.6], np.float32), np.array([1, 0]))
    objects = GroundObjects(np.array([0, 1]), np.array([[12.0, 1.5, 0.75], [20.0, -3.0, 0.85]]),
                            np.array([[9.75, 1.2, 0.0], [19.75, -3.0, 0.0]]), np.array([[4.5, 1.8, 1.5], [0.5, 0.5, 1.7]]),
                            np.array([0.12, -0.15]), 0, 0, np.array([[-2.5, 0.1], [np.nan, np.nan]]))
    _same_bytes(factories, lambda f, h: layouts.object_array(f, h, objects, detections, CLASSES, [7, 0]),
                layouts.DETECTION_3D_ARRAY)
    _same_bytes(factories, lambda f, h: layouts.object_motion_array(f, h, objects, [7, 0]), layouts.OBJECT_MOTION_ARRAY)


@pytest.mark.parametrize("valid", [True, False])
def test_ego_lane_its_paths_and_its_inverse(factories, valid: bool) -> None:
    # float32 fields hold values a float32 holds exactly: rclpy keeps the Python float until it serialises
    left, right = LaneBoundary((1.7, 0.01, 1e-3, -1e-5), (4.0, 31.0), 0.875), LaneBoundary((-1.9, 0.0, 1e-3, 0.0),
                                                                                         (6.0, 25.0), 0.6875)
    lane = EgoLane(True, "", left, right, offset_m=0.125, heading_rad=-0.015625, curvature=0.001953125,
                   width_m=3.625, left_distance_m=0.75, right_distance_m=0.9375, time_to_left_s=3.5,
                   departure="") if valid else \
        EgoLane.invalid("no lane marking on the right")
    _same_bytes(factories, lambda f, h: layouts.ego_lane_state(f, h, lane), layouts.EGO_LANE, nan=not valid)
    for side in (lane.left, lane.right):
        _same_bytes(factories, lambda f, h, side=side: layouts.lane_path(f, h, side), layouts.PATH)
    rclpy_header, rosbags_header = _headers(factories[1])
    for factory, header in zip(factories, (rclpy_header, rosbags_header)):
        back = layouts.ego_lane_from_message(layouts.ego_lane_state(factory, header, lane))
        assert back.valid == lane.valid and back.reason == lane.reason
        if valid:
            assert back.left.coefficients == pytest.approx(left.coefficients)  # type: ignore[union-attr]
            assert back.width_m == pytest.approx(3.625) and back.departure == ""


def test_camera_info(factories) -> None:
    k = (500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0)
    _same_bytes(factories, lambda f, h: layouts.camera_info(f, h, 640, 480, k), layouts.CAMERA_INFO)


def test_point_field_datatypes_are_sensor_msgs_own() -> None:
    """The layout's datatype numbers are sensor_msgs/PointField's constants, as rclpy and rosbags define them."""
    rosbags_point_field = typestore().types["sensor_msgs/msg/PointField"]
    assert layouts.POINT_FIELD_FLOAT32 == PointField.FLOAT32 == rosbags_point_field.FLOAT32
    assert layouts.POINT_FIELD_UINT32 == PointField.UINT32 == rosbags_point_field.UINT32
