"""Letterboxing: scale a frame to fit the model's input, keep its aspect ratio, pad the rest.

Training, export and the runtime all use these functions, so a box or a mask maps
between camera pixels and input pixels the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_PAD_VALUE = 114  # grey, as YOLO-family models are trained


@dataclass(frozen=True)
class Letterbox:
    """How a src_h x src_w frame sits in a dst_h x dst_w input: input = frame * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: int
    pad_y: int
    new_w: int
    new_h: int
    src_h: int
    src_w: int
    dst_h: int
    dst_w: int


def compute_letterbox(src_h: int, src_w: int, dst_h: int, dst_w: int) -> Letterbox:
    if src_h <= 0 or src_w <= 0:
        raise ValueError(f"cannot letterbox an empty {src_w}x{src_h} frame")
    scale = min(dst_h / src_h, dst_w / src_w)
    new_w, new_h = max(round(src_w * scale), 1), max(round(src_h * scale), 1)
    pad_x, pad_y = (dst_w - new_w) // 2, (dst_h - new_h) // 2
    return Letterbox(scale, pad_x, pad_y, new_w, new_h, src_h, src_w, dst_h, dst_w)


def letterbox_image(image: np.ndarray, dst_h: int, dst_w: int, pad_value: int = DEFAULT_PAD_VALUE,
                    out: np.ndarray | None = None, interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, Letterbox]:
    """Letterbox image (H, W[, C]) into out (dst_h, dst_w[, C]), allocated when None.

    Only the pad borders and the resized region are written, so a preallocated
    buffer costs no extra copy.
    """
    lb = compute_letterbox(image.shape[0], image.shape[1], dst_h, dst_w)
    if out is None:
        out = np.empty((dst_h, dst_w, *image.shape[2:]), dtype=image.dtype)
    inner = out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w]
    if (lb.new_h, lb.new_w) == image.shape[:2]:
        inner[...] = image
    else:
        cv2.resize(image, (lb.new_w, lb.new_h), dst=inner, interpolation=interpolation)
    out[:lb.pad_y] = pad_value
    out[lb.pad_y + lb.new_h:] = pad_value
    out[lb.pad_y:lb.pad_y + lb.new_h, :lb.pad_x] = pad_value
    out[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x + lb.new_w:] = pad_value
    return out, lb


def boxes_to_input(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """float[N, 4] x1, y1, x2, y2 from frame pixels to input pixels."""
    out = boxes.astype(np.float32) * lb.scale
    out[:, 0::2] += lb.pad_x
    out[:, 1::2] += lb.pad_y
    return out


def boxes_to_frame(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """float[N, 4] from input pixels back to frame pixels, clipped to the frame."""
    out = boxes.astype(np.float32).copy()
    out[:, 0::2] = (out[:, 0::2] - lb.pad_x) / lb.scale
    out[:, 1::2] = (out[:, 1::2] - lb.pad_y) / lb.scale
    np.clip(out[:, 0::2], 0, lb.src_w, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, lb.src_h, out=out[:, 1::2])
    return out


def mask_to_frame(mask: np.ndarray, lb: Letterbox, on_value: int = 255) -> np.ndarray:
    """A 0/1 input-sized mask cropped out of the letterbox and resized (nearest) to the frame, as 0/on_value."""
    inner = mask[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w]
    if on_value != 1:
        inner = inner * np.uint8(on_value)
    if inner.shape == (lb.src_h, lb.src_w):
        return np.ascontiguousarray(inner)
    return cv2.resize(inner, (lb.src_w, lb.src_h), interpolation=cv2.INTER_NEAREST)
