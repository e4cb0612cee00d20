"""Camera frames to BGR uint8 arrays, from raw sensor_msgs/Image fields or compressed bytes.

No ROS types here: the node passes msg.data and the header fields, so this runs and is
tested without ROS. bgr8 frames are zero-copy views of the message buffer.
"""

from __future__ import annotations

import cv2
import numpy as np

# encoding: (channels, conversion to BGR or None when already BGR)
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "bgr8": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


class ImageFormatError(ValueError):
    """A frame that cannot be used; the message says what was expected and what came."""


def raw_to_bgr(data: bytes | bytearray | memoryview | np.ndarray, height: int, width: int, encoding: str,
               step: int) -> np.ndarray:
    """A (height, width, 3) uint8 BGR array from raw image bytes laid out row by row, `step` bytes apart."""
    if encoding not in _ENCODINGS:
        raise ImageFormatError(f"image encoding {encoding!r} is not supported; use one of "
                               f"{', '.join(SUPPORTED_ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"empty image: {width}x{height}")
    channels, conversion = _ENCODINGS[encoding]
    row = width * channels
    if step < row:
        raise ImageFormatError(f"image step {step} is smaller than width x channels = {width} x {channels} = {row}")
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    needed = step * (height - 1) + row  # the last row's padding may be absent
    if buffer.size < needed:
        raise ImageFormatError(f"image data is truncated: {buffer.size} bytes for a {width}x{height} {encoding} "
                               f"frame with step {step} (needs {needed})")
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, row), strides=(step, 1))
    pixels = rows.reshape(height, width, channels)  # still a view: rows keep their stride
    if conversion is None:
        return pixels
    return cv2.cvtColor(pixels if channels > 1 else pixels[..., 0], conversion)


def compressed_to_bgr(data: bytes | bytearray | memoryview | np.ndarray, fmt: str = "") -> np.ndarray:
    """Decode jpeg/png bytes (sensor_msgs/CompressedImage) to BGR."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size == 0:
        raise ImageFormatError("compressed image is empty (0 bytes)")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f"compressed image ({fmt or 'unknown format'}, {buffer.size} bytes) could not be "
                               "decoded: corrupt or truncated, or not jpeg/png")
    return image
