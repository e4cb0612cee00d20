"""sensor_msgs/vision_msgs <-> numpy and runtime results. Conversion only: no model logic here."""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import (
    Detection2D,
    Detection2DArray,
    LabelInfo,
    ObjectHypothesisWithPose,
    VisionClass,
)

from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.image_encoding import compressed_to_bgr, raw_to_bgr
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
