"""sensor_msgs/vision_msgs <-> numpy and runtime results. Conversion only: no model logic here."""

from __future__ import annotations

import array
import importlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import ColorRGBA, Header

try:
    from vision_msgs.msg import (
        Detection2DArray,
        LabelInfo,
        VisionClass,
    )
except ImportError as _err:  # Humble's first vision_msgs (4.0.0) has no LabelInfo or VisionClass
    raise SystemExit(f"mtl_perception needs vision_msgs 4.1.0 or later, with LabelInfo and VisionClass ({_err}): "
                     "sudo apt install --only-upgrade ros-$ROS_DISTRO-vision-msgs") from None
from visualization_msgs.msg import Marker, MarkerArray

from mtl_perception import message_layouts as layouts
from mtl_perception.runtime.ground import CameraIntrinsics, GridSpec
from mtl_perception.runtime.ground_objects import GroundObjects
from mtl_perception.runtime.image_encoding import compressed_to_bgr, raw_to_bgr
from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.runtime.pipeline import EncodedImage
from mtl_perception.runtime.postprocess import Detections


def image_to_bgr(msg: Image, max_pixels: int = 0) -> np.ndarray:
    """A BGR view (bgr8) or converted copy of a sensor_msgs/Image; ImageFormatError on bad frames, and on
    frames over max_pixels (when > 0)."""
    return raw_to_bgr(msg.data, msg.height, msg.width, msg.encoding, msg.step, max_pixels)


def compressed_image_to_bgr(msg: CompressedImage, max_pixels: int = 0) -> np.ndarray:
    return compressed_to_bgr(msg.data, msg.format, max_pixels)


def encoded_image(msg: Image | CompressedImage) -> EncodedImage:
    """The message's image as the frame pipeline takes it, not yet decoded (a view of msg.data)."""
    if isinstance(msg, CompressedImage):
        return EncodedImage(msg.data, msg.format, compressed=True)
    return EncodedImage(msg.data, msg.encoding, msg.height, msg.width, msg.step)


def as_uint8_array(pixels: np.ndarray) -> array.array:
    """The bytes of pixels as array.array('B'): the one type rclpy's uint8[] setter takes without checking
    every element in Python (bytes or lists cost tens of milliseconds per camera frame)."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(pixels).data)
    return out


class RclpyMessages:
    """message_layouts' factory for rclpy: message classes looked up by ROS type name (once each), arrays in the
    forms rclpy's setters take without checking every element in Python."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def make(self, type_name: str, **fields: Any) -> Any:
        cls = self._classes.get(type_name)
        if cls is None:
            package, _, name = type_name.split("/")
            cls = self._classes[type_name] = getattr(importlib.import_module(f"{package}.msg"), name)
        return cls(**fields)

    def uint8s(self, values: np.ndarray) -> array.array:
        return as_uint8_array(values)

    def int8s(self, values: np.ndarray) -> array.array:
        return array.array("b", np.ascontiguousarray(values, dtype=np.int8).tobytes())

    def float64s(self, values: Sequence[float]) -> list[float]:
        return [float(v) for v in values]


def occupancy_grid_msg(header: Header, occupancy: np.ndarray, spec: GridSpec,
                       factory: RclpyMessages | None = None) -> OccupancyGrid:
    """message_layouts.occupancy_grid, as rclpy's nav_msgs/OccupancyGrid."""
    return layouts.occupancy_grid(factory or RclpyMessages(), header, occupancy, spec)


MARKING_WIDTH_M = 0.15  # how wide RViz draws a marking's line
MARKING_COLOUR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)


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


OBJECT_COLOUR = ColorRGBA(r=0.0, g=0.8, b=1.0, a=0.5)
LABEL_COLOUR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
LABEL_HEIGHT_M = 0.8  # RViz's text size, metres


def object_markers_msg(header: Header, objects: GroundObjects, detections: Detections, class_names: Sequence[str],
                       track_ids: Sequence[int] | None) -> MarkerArray:
    """visualization_msgs/MarkerArray for RViz, beside `objects` (RViz has no display for vision_msgs' 3-D
    detections without an extra plugin): a DELETEALL, then per road user a CUBE of its place and size and a
    TEXT_VIEW_FACING label above it, "#ID class" (ids: 2 i and 2 i + 1)."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, ns="objects", action=Marker.DELETEALL))
    for row, index in enumerate(objects.indices.tolist()):
        x, y, z = (float(v) for v in objects.centres[row])
        half = float(objects.headings[row]) / 2
        box = Marker(header=header, ns="objects", id=2 * row, type=Marker.CUBE, action=Marker.ADD)
        box.pose.position.x, box.pose.position.y, box.pose.position.z = x, y, z
        box.pose.orientation.z, box.pose.orientation.w = math.sin(half), math.cos(half)
        box.scale.x, box.scale.y, box.scale.z = (float(v) for v in objects.sizes[row])
        box.color = OBJECT_COLOUR
        track = int(track_ids[index]) if track_ids is not None else 0
        label = Marker(header=header, ns="objects", id=2 * row + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.pose.position.x, label.pose.position.y = x, y
        label.pose.position.z = 2 * z + LABEL_HEIGHT_M
        label.pose.orientation.w = 1.0
        label.scale.z = LABEL_HEIGHT_M
        label.color = LABEL_COLOUR
        label.text = f"{f'#{track} ' if track else ''}{class_names[int(detections.class_ids[index])]}"
        out.markers += [box, label]
    return out


def marking_points_msg(header: Header, markings: Sequence[GroundMarking],
                       factory: RclpyMessages | None = None) -> PointCloud2:
    """message_layouts.marking_cloud, as rclpy's sensor_msgs/PointCloud2."""
    return layouts.marking_cloud(factory or RclpyMessages(), header, markings)


def camera_info_msg(header: Header, intrinsics: CameraIntrinsics) -> CameraInfo:
    """A rectified pinhole sensor_msgs/CameraInfo (no distortion) for publishers of synthetic frames."""
    i = intrinsics
    return layouts.camera_info(RclpyMessages(), header, i.width, i.height, (i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0,
                                                                            0.0, 1.0))


def mask_to_image(header: Header, mask: np.ndarray, factory: RclpyMessages | None = None) -> Image:
    """uint8[H, W] 0/255 -> mono8 Image with the input's header."""
    return layouts.image(factory or RclpyMessages(), header, mask, "mono8")


def bgr_to_image(header: Header, frame: np.ndarray, factory: RclpyMessages | None = None) -> Image:
    return layouts.image(factory or RclpyMessages(), header, frame, "bgr8")


def detections_to_msg(header: Header, detections: Detections, class_names: Sequence[str],
                      factory: RclpyMessages | None = None, track_ids: Sequence[int] | None = None
                      ) -> Detection2DArray:
    """message_layouts.detection_array, as rclpy's vision_msgs/Detection2DArray."""
    return layouts.detection_array(factory or RclpyMessages(), header, detections, class_names, track_ids)


def label_info_msg(header: Header, class_names: Sequence[str], threshold: float) -> LabelInfo:
    return LabelInfo(header=header, threshold=float(threshold),
                     class_map=[VisionClass(class_id=i, class_name=n) for i, n in enumerate(class_names)])
