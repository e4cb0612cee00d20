"""Argument helpers shared by the subcommands."""

from __future__ import annotations


def parse_hw(text: str, multiple: int = 32) -> tuple[int, int]:
    """'384x640' -> (384, 640); both must be positive multiples of `multiple`."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not HxW, e.g. 384x640") from None
    if multiple == 1:
        return height, width
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ValueError(f"image size {text} is not divisible by {multiple} (the network downsamples "
                         f"{multiple}x); use e.g. 256x384, 256x512, 384x640 or 768x1280")
    return height, width
