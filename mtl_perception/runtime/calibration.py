"""INT8 calibration data: camera images letterboxed exactly as at run time, one batch at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from mtl_perception.runtime.engine_cache import file_digest
from mtl_perception.runtime.letterbox import letterbox_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def calibration_images(folder: Path, limit: int = 500) -> list[Path]:
    """Up to `limit` image files of a folder, sorted, so a calibration is reproducible."""
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder {folder} does not exist; pass a folder of camera images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise FileNotFoundError(f"calibration folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def calibration_digest(files: list[Path]) -> str:
    """sha256 over the calibration images' names and bytes, in order: what the int8 scales depend on."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + file_digest(path).encode())
    return digest.hexdigest()


def calibration_batches(files: list[Path], height: int, width: int, pad_value: int,
                        batch_size: int = 1) -> Iterator[np.ndarray]:
    """uint8[batch_size, height, width, 3] batches; the last, partial batch is dropped (engines are fixed-batch).

    Unreadable files are skipped: one bad file must not end a minutes-long calibration.
    """
    batch = np.empty((batch_size, height, width, 3), np.uint8)
    filled = 0
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        letterbox_image(image, height, width, pad_value, out=batch[filled])
        filled += 1
        if filled == batch_size:
            yield batch.copy()
            filled = 0
