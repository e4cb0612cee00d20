"""How each output message is laid out, written once for both of the package's writers.

The node publishes rclpy messages (ros/conversions.py) and the bag tools write rosbags messages
(bags.py). Both build them with the functions here, through a MessageFactory of their kind,
so a message's fields, units and conventions (boxes in camera pixels with centre and size, the grid's
origin and row order, the marking points' fields) cannot differ between a live node and a recorded
result. The reading side is here too (grid_from_message), for any reader of either kind. No ROS import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mtl_perception.runtime.ego_lane import EgoLane, LaneBoundary
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.ground_objects import GroundObjects
from mtl_perception.runtime.lane_markings import MARKING_POINT_DTYPE, GroundMarking, marking_points
from mtl_perception.runtime.postprocess import Detections

# sensor_msgs/PointField's datatype constants (test_message_layouts checks them against rclpy's and rosbags'
# definitions of the message)
POINT_FIELD_FLOAT32 = 7
POINT_FIELD_UINT32 = 6
# lane_marking_points: each sampled metre of each marking, and which marking it belongs to (packed, 4 bytes each)
MARKING_POINT_FIELDS = (("x", POINT_FIELD_FLOAT32), ("y", POINT_FIELD_FLOAT32), ("z", POINT_FIELD_FLOAT32),
                        ("marking_id", POINT_FIELD_UINT32))
DETECTION_ARRAY = "vision_msgs/msg/Detection2DArray"
DETECTION_3D_ARRAY = "vision_msgs/msg/Detection3DArray"
IMAGE = "sensor_msgs/msg/Image"
OCCUPANCY_GRID = "nav_msgs/msg/OccupancyGrid"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
PATH = "nav_msgs/msg/Path"
EGO_LANE = "mtl_perception_msgs/msg/EgoLane"
OBJECT_MOTION_ARRAY = "mtl_perception_msgs/msg/ObjectMotionArray"
EGO_LANE_PATH_STEP_M = 1.0  # ego_lane/left and right: one pose per metre of the boundary's range
DEPARTURES = {"": 0, "left": 1, "right": 2}  # EgoLane.departure's constants


class MessageFactory(Protocol):
    """Makes messages of one library's kind: `make` takes the ROS type name and every field (rosbags' types
    have no defaults, so the layouts give them all), the array helpers the form that library wants."""

    def make(self, type_name: str, **fields: Any) -> Any: ...

    def uint8s(self, values: np.ndarray) -> Any: ...

    def int8s(self, values: np.ndarray) -> Any: ...

    def float64s(self, values: Sequence[float]) -> Any: ...


def _pose(factory: MessageFactory, x: float = 0.0, y: float = 0.0) -> Any:
    return factory.make("geometry_msgs/msg/Pose", position=factory.make("geometry_msgs/msg/Point", x=x, y=y, z=0.0),
                        orientation=factory.make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))


def detection_array(factory: MessageFactory, header: Any, detections: Detections,
                    class_names: Sequence[str], track_ids: Sequence[int] | None = None) -> Any:
    """Detection2DArray in the Humble+ layout: boxes by centre and size in camera pixels, class_id the class
    name, one hypothesis per detection (no 3-D pose: one shared identity pose with zero covariance); `id` the
    box's track ID where it has one ("" for a box no confirmed track holds yet)."""
    ids = [str(i) if i else "" for i in track_ids] if track_ids is not None else [""] * len(detections)
    pose = factory.make("geometry_msgs/msg/PoseWithCovariance", pose=_pose(factory),
                        covariance=factory.float64s([0.0] * 36))
    make = factory.make
    detections_out = []
    for (cx, cy, w, h, name, score), track_id in zip(detections.as_centre_size(class_names), ids):
        hypothesis = make("vision_msgs/msg/ObjectHypothesisWithPose",
                          hypothesis=make("vision_msgs/msg/ObjectHypothesis", class_id=name, score=score), pose=pose)
        centre = make("vision_msgs/msg/Pose2D", position=make("vision_msgs/msg/Point2D", x=cx, y=cy), theta=0.0)
        detections_out.append(make("vision_msgs/msg/Detection2D", header=header, results=[hypothesis],
                                   bbox=make("vision_msgs/msg/BoundingBox2D", center=centre, size_x=w, size_y=h),
                                   id=track_id))
    return make(DETECTION_ARRAY, header=header, detections=detections_out)


def object_array(factory: MessageFactory, header: Any, objects: GroundObjects, detections: Detections,
                 class_names: Sequence[str], track_ids: Sequence[int] | None = None) -> Any:
    """Detection3DArray of road users on the ground, in header's frame (the vehicle's): bbox.center the object's
    centre (its heading about z: the camera's ray), bbox.size its class's length, width and height,
    results[0].hypothesis its class name and score, id its track's ("" for a box no confirmed track holds)."""
    make = factory.make
    out = []
    for row, index in enumerate(objects.indices.tolist()):
        x, y, z = (float(v) for v in objects.centres[row])
        half = float(objects.headings[row]) / 2
        pose = make("geometry_msgs/msg/Pose", position=make("geometry_msgs/msg/Point", x=x, y=y, z=z),
                    orientation=make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(half), w=math.cos(half)))
        length, width, height = (float(v) for v in objects.sizes[row])
        hypothesis = make("vision_msgs/msg/ObjectHypothesisWithPose",
                          hypothesis=make("vision_msgs/msg/ObjectHypothesis",
                                          class_id=class_names[int(detections.class_ids[index])],
                                          score=float(detections.scores[index])),
                          pose=make("geometry_msgs/msg/PoseWithCovariance", pose=pose,
                                    covariance=factory.float64s([0.0] * 36)))
        track = int(track_ids[index]) if track_ids is not None else 0
        out.append(make("vision_msgs/msg/Detection3D", header=header, results=[hypothesis],
                        bbox=make("vision_msgs/msg/BoundingBox3D", center=pose,
                                  size=make("geometry_msgs/msg/Vector3", x=length, y=width, z=height)),
                        id=str(track) if track else ""))
    return make(DETECTION_3D_ARRAY, header=header, detections=out)


def lane_path(factory: MessageFactory, header: Any, boundary: LaneBoundary | None) -> Any:
    """nav_msgs/Path along an ego-lane boundary, a pose every EGO_LANE_PATH_STEP_M over the range it was seen,
    each heading along the curve; empty for an invalid lane."""
    make = factory.make
    poses = []
    if boundary is not None:
        points = boundary.points(EGO_LANE_PATH_STEP_M)
        slopes = np.polynomial.polynomial.polyval(points[:, 0], np.polynomial.polynomial.polyder(boundary.coefficients))
        for (x, y), slope in zip(points.tolist(), slopes.tolist()):
            half = math.atan(slope) / 2
            pose = make("geometry_msgs/msg/Pose", position=make("geometry_msgs/msg/Point", x=x, y=y, z=0.0),
                        orientation=make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=math.sin(half),
                                         w=math.cos(half)))
            poses.append(make("geometry_msgs/msg/PoseStamped", header=header, pose=pose))
    return make(PATH, header=header, poses=poses)


def ego_lane_state(factory: MessageFactory, header: Any, lane: EgoLane) -> Any:
    """mtl_perception_msgs/EgoLane: the lane's figures and both boundaries' cubics; an invalid lane carries its
    reason, NaN figures and zero boundaries."""
    make = factory.make

    def side(boundary: LaneBoundary | None) -> Any:
        if boundary is None:
            return make("mtl_perception_msgs/msg/LaneBoundary", coefficients=factory.float64s([0.0] * 4), x_min=0.0,
                        x_max=0.0, confidence=0.0)
        return make("mtl_perception_msgs/msg/LaneBoundary", coefficients=factory.float64s(boundary.coefficients),
                    x_min=boundary.x_range[0], x_max=boundary.x_range[1], confidence=boundary.confidence)

    return make(EGO_LANE, header=header, valid=lane.valid, reason=lane.reason, lateral_offset=lane.offset_m,
                heading=lane.heading_rad, curvature=lane.curvature, width=lane.width_m, left=side(lane.left),
                right=side(lane.right), left_distance=lane.left_distance_m, right_distance=lane.right_distance_m,
                time_to_left_crossing=lane.time_to_left_s, time_to_right_crossing=lane.time_to_right_s,
                departure=DEPARTURES[lane.departure])


def object_motion_array(factory: MessageFactory, header: Any, objects: GroundObjects,
                        track_ids: Sequence[int] | None) -> Any:
    """mtl_perception_msgs/ObjectMotionArray: one entry per detection of object_array's message, in its order."""
    make = factory.make
    velocities = objects.velocities if objects.velocities is not None else np.full((len(objects), 2), np.nan)
    out = []
    for row, index in enumerate(objects.indices.tolist()):
        track = int(track_ids[index]) if track_ids is not None else 0
        vx, vy = (float(v) for v in velocities[row])
        known = math.isfinite(vx) and math.isfinite(vy)
        out.append(make("mtl_perception_msgs/msg/ObjectMotion", id=str(track) if track else "",
                        velocity=make("geometry_msgs/msg/Vector3", x=vx if known else 0.0, y=vy if known else 0.0,
                                      z=0.0),
                        velocity_known=known))
    return make(OBJECT_MOTION_ARRAY, header=header, objects=out)


def ego_lane_from_message(msg: Any) -> EgoLane:
    """An mtl_perception_msgs/EgoLane (rclpy's or rosbags') back into an EgoLane: the inverse of ego_lane_state,
    for the readers of the node's output (the demo, tests)."""
    if not msg.valid:
        return EgoLane.invalid(msg.reason)

    def side(boundary: Any) -> LaneBoundary:
        c0, c1, c2, c3 = (float(c) for c in boundary.coefficients)
        return LaneBoundary((c0, c1, c2, c3), (float(boundary.x_min), float(boundary.x_max)), float(boundary.confidence))

    departure = {value: name for name, value in DEPARTURES.items()}[int(msg.departure)]
    return EgoLane(True, "", side(msg.left), side(msg.right), offset_m=msg.lateral_offset, heading_rad=msg.heading,
                   curvature=msg.curvature, width_m=msg.width, left_distance_m=msg.left_distance,
                   right_distance_m=msg.right_distance, time_to_left_s=msg.time_to_left_crossing,
                   time_to_right_s=msg.time_to_right_crossing, departure=departure)


def contacts_from_message(msg: Any) -> dict[str, tuple[float, float]]:
    """A vision_msgs/Detection3DArray of object_array's layout -> {track id: (x, y) of the contact point}: the
    centre brought back half the length along the heading (the objects without a track are left out)."""
    out = {}
    for detection in msg.detections:
        if not detection.id:
            continue
        pose = detection.bbox.center
        heading = 2 * math.atan2(pose.orientation.z, pose.orientation.w)
        half = detection.bbox.size.x / 2
        out[detection.id] = (pose.position.x - half * math.cos(heading), pose.position.y - half * math.sin(heading))
    return out


def detections_from_message(msg: Any, class_names: Sequence[str]) -> Detections:
    """A vision_msgs/Detection2DArray (rclpy's or rosbags') back into Detections: the inverse of
    detection_array, for the readers of the node's output (the demo, tests)."""
    return Detections.from_centre_size(
        [(d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y,
          d.results[0].hypothesis.class_id, d.results[0].hypothesis.score) for d in msg.detections], class_names)


def image(factory: MessageFactory, header: Any, pixels: np.ndarray, encoding: str) -> Any:
    """sensor_msgs/Image of uint8 pixels (H, W) or (H, W, C), little endian, rows packed."""
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    return factory.make(IMAGE, header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                        is_bigendian=0, step=pixels.shape[1] * channels, data=factory.uint8s(pixels))


def occupancy_grid(factory: MessageFactory, header: Any, occupancy: np.ndarray, spec: GridSpec) -> Any:
    """int8[rows, cols] (0 free, 100 occupied, -1 unknown) -> nav_msgs/OccupancyGrid in header.frame_id: rows
    along y from -y_half, columns along x from x_min, row-major as OccupancyGrid wants."""
    rows, cols = occupancy.shape
    info = factory.make("nav_msgs/msg/MapMetaData", map_load_time=header.stamp, resolution=float(spec.resolution),
                        width=cols, height=rows, origin=_pose(factory, *spec.origin))
    return factory.make(OCCUPANCY_GRID, header=header, info=info, data=factory.int8s(occupancy))


def grid_from_message(grid: Any) -> tuple[np.ndarray, GridSpec]:
    """The inverse of occupancy_grid, for a message of either kind: (occupancy int8[rows, cols], its GridSpec;
    max_range is not in the message and comes back as the farthest corner's distance)."""
    info = grid.info
    x_min, y_min = float(info.origin.position.x), float(info.origin.position.y)
    x_max = x_min + info.width * info.resolution
    spec = GridSpec(float(info.resolution), x_min, x_max, -y_min, float(np.hypot(max(abs(x_min), abs(x_max)), y_min)))
    return np.asarray(grid.data, np.int8).reshape(info.height, info.width), spec


def marking_cloud(factory: MessageFactory, header: Any, markings: Sequence[GroundMarking]) -> Any:
    """sensor_msgs/PointCloud2 of every marking's polyline points (x, y, z = 0 in header.frame_id) with a uint32
    marking_id field: the form a program reads markings in without RViz's types."""
    points = marking_points(list(markings))
    fields = [factory.make("sensor_msgs/msg/PointField", name=name, offset=4 * i, datatype=kind, count=1)
              for i, (name, kind) in enumerate(MARKING_POINT_FIELDS)]
    return factory.make(POINT_CLOUD, header=header, height=1, width=len(points), fields=fields, is_bigendian=False,
                        point_step=MARKING_POINT_DTYPE.itemsize, row_step=MARKING_POINT_DTYPE.itemsize * len(points),
                        data=factory.uint8s(points.view(np.uint8)), is_dense=True)


def camera_info(factory: MessageFactory, header: Any, width: int, height: int, k: Sequence[float],
                distortion_model: str = "plumb_bob", d: Sequence[float] = (0.0,) * 5,
                r: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                p: Sequence[float] = ()) -> Any:
    """sensor_msgs/CameraInfo; P defaults to K with no translation (a rectified, monocular camera)."""
    p = p or (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0)
    roi = factory.make("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return factory.make(CAMERA_INFO, header=header, height=height, width=width, distortion_model=distortion_model,
                        d=factory.float64s(d), k=factory.float64s(k), r=factory.float64s(r), p=factory.float64s(p),
                        binning_x=0, binning_y=0, roi=roi)
