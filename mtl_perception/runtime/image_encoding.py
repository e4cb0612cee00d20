"""Camera frames to BGR uint8 arrays, from raw sensor_msgs/Image fields or compressed bytes.

No ROS types here: the node passes msg.data and the header fields, so this runs and is
tested without ROS. bgr8 frames are zero-copy views of the message buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from mtl_perception.errors import UserFacingError

# encoding: (channels, conversion to BGR or None when already BGR)
_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "bgr8": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


class ImageFormatError(ValueError, UserFacingError):
    """A frame that cannot be used; the message says what was expected and what came."""


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """ImageFormatError for a frame larger than max_pixels: checked from the header, before any decoding, so a
    small file that decodes to a huge image cannot take a robot's memory."""
    if max_pixels > 0 and width * height > max_pixels:
        raise ImageFormatError(f"image is {width}x{height} = {width * height / 1e6:.1f} M pixels, more than "
                               f"max_image_pixels {max_pixels / 1e6:.1f} M; raise max_image_pixels or send "
                               "smaller frames")


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # frame headers


def compressed_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's frame header, without decoding; None if neither.

    JPEG segments are walked as libjpeg walks them (jdmarker.c): through every segment before the frame
    header, however long (ICC profiles in APP2 run to hundreds of KB), skipping 0xFF fill bytes before a
    marker. Nothing is copied."""
    buf = _bytes_view(data)
    n = len(buf)
    if n >= 24 and bytes(buf[:8]) == b"\x89PNG\r\n\x1a\n" and bytes(buf[12:16]) == b"IHDR":
        return int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")
    for marker, i in _jpeg_segments(buf):
        if marker in _JPEG_SOF:
            return (int.from_bytes(buf[i + 7:i + 9], "big"), int.from_bytes(buf[i + 5:i + 7], "big")) \
                if i + 9 <= n else None
        if marker in (0xD9, 0xDA):  # end of image, or scan data, before any frame header
            return None
    return None


def _bytes_view(data: bytes | bytearray | memoryview | np.ndarray) -> memoryview:
    source: Any = np.ascontiguousarray(data).reshape(-1) if isinstance(data, np.ndarray) else data
    return memoryview(source).cast("B")


def _jpeg_segments(buf: memoryview) -> Iterator[tuple[int, int]]:
    """(marker, offset of its 0xFF) of each marker of a JPEG up to its first scan or end of image, walked as
    libjpeg walks them (jdmarker.c): through every segment by its length, however long, skipping 0xFF fill
    bytes; it stops at anything else (not a JPEG, or cut inside its headers). Nothing is copied."""
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return
    i = 2
    while i + 1 < n:
        if buf[i] != 0xFF:
            return
        while i + 1 < n and buf[i + 1] == 0xFF:  # fill bytes
            i += 1
        if i + 1 >= n:
            return
        marker = buf[i + 1]
        yield marker, i
        if marker in (0xD9, 0xDA):
            return
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return
        i += 2 + int.from_bytes(buf[i + 2:i + 4], "big")


def raw_to_bgr(data: bytes | bytearray | memoryview | np.ndarray, height: int, width: int, encoding: str,
               step: int, max_pixels: int = 0) -> np.ndarray:
    """A (height, width, 3) uint8 BGR array from raw image bytes laid out row by row, `step` bytes apart;
    max_pixels > 0 refuses larger frames."""
    check_pixels(width, height, max_pixels)
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


def compressed_to_bgr(data: bytes | bytearray | memoryview | np.ndarray, fmt: str = "",
                      max_pixels: int = 0) -> np.ndarray:
    """Decode jpeg/png bytes (sensor_msgs/CompressedImage) to BGR; max_pixels > 0 refuses larger images
    (read from the file's header, before decoding) and files whose size cannot be read."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size == 0:
        raise ImageFormatError("compressed image is empty (0 bytes)")
    if max_pixels > 0:
        size = compressed_size(buffer)
        if size is None:
            raise ImageFormatError(f"compressed image ({fmt or 'unknown format'}, {buffer.size} bytes) has no "
                                   "readable jpeg/png header, so its size cannot be checked: corrupt, or not jpeg/png")
        check_pixels(*size, max_pixels)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f"compressed image ({fmt or 'unknown format'}, {buffer.size} bytes) could not be "
                               "decoded: corrupt or truncated, or not jpeg/png")
    return image


def jpeg_truncated(data: bytes | bytearray | memoryview | np.ndarray) -> bool:
    """True for a JPEG whose end-of-image marker is missing: libjpeg decodes such a file with a warning on
    stderr only, filling the rows it lacks with grey, so the frame would pass for a whole one. (Corrupt scan
    data with its marker intact cannot be told without decoding: that is left to the decoder.)"""
    buf = _bytes_view(data)
    if len(buf) < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return False  # not a JPEG
    tail = bytes(buf[-16:])
    return b"\xff\xd9" not in tail  # a few bytes of padding after EOI are allowed



# What may follow 0xFF inside a scan's entropy-coded data: a stuffed zero, a restart marker, a fill byte
_IN_SCAN = {0x00, 0xFF, *range(0xD0, 0xD8)}
# Segments that may come between the scans of a progressive or multi-scan file (ITU T.81 B.2.4, B.5)
_BETWEEN_SCANS = {0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)}


def jpeg_damage(data: bytes | bytearray | memoryview | np.ndarray) -> str | None:
    """What is wrong with a JPEG that libjpeg would still decode (with a warning on stderr only, the damage
    painted grey or smeared), or None for an intact file or one that is not a JPEG:
    - cut short: no end-of-image marker (jpeg_truncated);
    - broken scan data: a marker that cannot occur there (a second start-of-image where two frames were
      glued, a reserved marker where bytes were overwritten).
    Bit errors inside the Huffman data that form no marker are decoded without complaint and cannot be told
    without decoding; this check reads markers only (about 1 ms for a 1280x720 frame)."""
    if jpeg_truncated(data):
        return "cut short: no end-of-image marker"
    buf = _bytes_view(data)
    arr = np.frombuffer(buf, np.uint8)
    if arr.size < 4 or arr[0] != 0xFF or arr[1] != 0xD8:
        return None
    start = next((i + 2 + int.from_bytes(buf[i + 2:i + 4], "big") for marker, i in _jpeg_segments(buf)
                  if marker == 0xDA and i + 4 <= len(buf)), None)  # just past the first start-of-scan segment
    if start is None:
        return "no scan: the file holds headers only"
    ff = np.flatnonzero(arr[start:-1] == 0xFF) + start
    following = arr[ff + 1]
    markers = ff[~np.isin(following, sorted(_IN_SCAN))]
    cursor = start
    for position in markers.tolist():
        if position < cursor:
            continue  # inside a segment between scans, skipped by its length
        marker = int(arr[position + 1])
        if marker == 0xD9:
            return None  # end of image; what follows is padding
        if marker not in _BETWEEN_SCANS or position + 4 > arr.size:
            return f"broken scan data: marker 0xFF{marker:02X} at byte {position}"
        cursor = position + 2 + (int(arr[position + 2]) << 8 | int(arr[position + 3]))
    return "cut short: no end-of-image marker"
