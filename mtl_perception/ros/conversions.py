"""sensor_msgs/vision_msgs <-> numpy and runtime results. Conversion only: no model logic here."""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header

try:
    from vision_msgs.msg import (
        Detection2D,
        Detection2DArray,
        LabelInfo,
        ObjectHypothesisWithPose,
        VisionClass,
    )
except ImportError as _err:  # Humble's first vision_msgs (4.0.0) has no LabelInfo or VisionClass
    raise SystemExit(f"mtl_perception needs vision_msgs 4.1.0 or later, with LabelInfo and VisionClass ({_err}): "
                     "sudo apt install --only-upgrade ros-$ROS_DISTRO-vision-msgs") from None
from visualization_msgs.msg import Marker, MarkerArray

from mtl_perception.runtime.ground import CameraIntrinsics, GridSpec
from mtl_perception.runtime.image_encoding import compressed_to_bgr, raw_to_bgr
from mtl_perception.runtime.lane_markings import MARKING_POINT_DTYPE, GroundMarking, marking_points
from mtl_perception.runtime.postprocess import Detections


def image_to_bgr(msg: Image, max_pixels: int = 0) -> np.ndarray:
    """A BGR view (bgr8) or converted copy of a sensor_msgs/Image; ImageFormatError on bad frames, and on
    frames over max_pixels (when > 0)."""
    return raw_to_bgr(msg.data, msg.height, msg.width, msg.encoding, msg.step, max_pixels)


def compressed_image_to_bgr(msg: CompressedImage, max_pixels: int = 0) -> np.ndarray:
    return compressed_to_bgr(msg.data, msg.format, max_pixels)


def as_uint8_array(pixels: np.ndarray) -> array.array:
    """The bytes of pixels as array.array('B'): the one type rclpy's uint8[] setter takes without checking
    every element in Python (bytes or lists cost tens of milliseconds per camera frame)."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(pixels).data)
    return out


def _image(header: Header, pixels: np.ndarray, encoding: str) -> Image:
    msg = Image(header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=0)
    msg.step = pixels.shape[1] * (pixels.shape[2] if pixels.ndim == 3 else 1)
    msg.data = as_uint8_array(pixels)
    return msg


def occupancy_grid_msg(header: Header, occupancy: np.ndarray, spec: GridSpec) -> OccupancyGrid:
    """int8[rows, cols] (0 free, 100 occupied, -1 unknown) -> nav_msgs/OccupancyGrid in header.frame_id:
    rows along y from -grid_side, columns along x from grid's x_min, row-major as OccupancyGrid wants."""
    msg = OccupancyGrid(header=header)
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(spec.resolution)
    msg.info.height, msg.info.width = occupancy.shape
    msg.info.origin.position.x, msg.info.origin.position.y = spec.origin
    msg.info.origin.orientation.w = 1.0
    msg.data = array.array("b", np.ascontiguousarray(occupancy, dtype=np.int8).tobytes())
    return msg


MARKING_WIDTH_M = 0.15  # how wide RViz draws a marking's line
MARKING_COLOUR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
# lane_marking_points: one point per sampled metre of each marking, and which marking it belongs to
MARKING_POINT_FIELDS = (("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32),
                        ("marking_id", PointField.UINT32))


def lane_markers_msg(header: Header, markings: Sequence[GroundMarking]) -> MarkerArray:
    """visualization_msgs/MarkerArray for RViz: a DELETEALL (last frame's markings go), then one LINE_STRIP
    per marking on the ground of header.frame_id, ids in the order of lane_marking_points' marking_id."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns="lane_markings", action=Marker.DELETEALL))
    for index, marking in enumerate(markings):
        marker = Marker(header=header, ns="lane_markings", id=index, type=Marker.LINE_STRIP, action=Marker.ADD)
        marker.pose.orientation.w = 1.0
        marker.scale.x = MARKING_WIDTH_M
        marker.color = MARKING_COLOUR
        marker.points = [Point(x=float(x), y=float(y), z=0.0) for x, y in marking.points.tolist()]
        out.markers.append(marker)
    return out


def marking_points_msg(header: Header, markings: Sequence[GroundMarking]) -> PointCloud2:
    """sensor_msgs/PointCloud2 of every marking's polyline points (x, y, z = 0 in header.frame_id) with
    a uint32 marking_id field: the form a program reads markings in without RViz's types."""
    points = marking_points(list(markings))
    count = len(points)
    msg = PointCloud2(header=header, height=1, width=count, is_bigendian=False, is_dense=True)
    msg.fields = [PointField(name=name, offset=4 * i, datatype=kind, count=1)
                  for i, (name, kind) in enumerate(MARKING_POINT_FIELDS)]  # four 4-byte fields, packed
    msg.point_step = MARKING_POINT_DTYPE.itemsize
    msg.row_step = msg.point_step * count
    msg.data = as_uint8_array(points.view(np.uint8))
    return msg


def camera_info_msg(header: Header, intrinsics: CameraIntrinsics) -> CameraInfo:
    """A rectified pinhole sensor_msgs/CameraInfo (no distortion) for publishers of synthetic frames."""
    i = intrinsics
    msg = CameraInfo(header=header, width=i.width, height=i.height, distortion_model="plumb_bob")
    msg.d = [0.0] * 5
    msg.k = [i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def mask_to_image(header: Header, mask: np.ndarray) -> Image:
    """uint8[H, W] 0/255 -> mono8 Image with the input's header."""
    return _image(header, mask, "mono8")


def bgr_to_image(header: Header, frame: np.ndarray) -> Image:
    return _image(header, frame, "bgr8")


def detections_to_msg(header: Header, detections: Detections, class_names: Sequence[str]) -> Detection2DArray:
    """Detection2DArray in the Humble+ layout, boxes in camera pixels, class_id = class name."""
    out = Detection2DArray(header=header)
    for cx, cy, w, h, name, score in detections.as_centre_size(class_names):
        det = Detection2D(header=header)
        det.bbox.center.position.x, det.bbox.center.position.y = cx, cy
        det.bbox.size_x, det.bbox.size_y = w, h
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = name
        hypothesis.hypothesis.score = score
        det.results.append(hypothesis)
        out.detections.append(det)
    return out


def label_info_msg(header: Header, class_names: Sequence[str], threshold: float) -> LabelInfo:
    return LabelInfo(header=header, threshold=float(threshold),
                     class_map=[VisionClass(class_id=i, class_name=n) for i, n in enumerate(class_names)])
