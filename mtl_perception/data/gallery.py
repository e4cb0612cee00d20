"""Contact sheets: frames with their boxes and masks drawn, for people to look at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mtl_perception.data.bdd100k import BDD100KSplit

DRIVABLE_COLOUR = np.array([80, 200, 60], np.float32)  # BGR green
LANE_COLOUR = np.array([40, 40, 255], np.float32)  # BGR red
BOX_COLOUR = (255, 200, 0)


def draw_labels(image: np.ndarray, boxes: np.ndarray, names: Sequence[str],
                drivable: np.ndarray | None = None, lane: np.ndarray | None = None,
                alpha: float = 0.45) -> np.ndarray:
    """A copy of image with masks blended in and boxes with their names drawn.

    boxes: float[N, 4] x1, y1, x2, y2 in image pixels; masks: bool[H, W].
    """
    out = image.astype(np.float32)
    for mask, colour in ((drivable, DRIVABLE_COLOUR), (lane, LANE_COLOUR)):
        if mask is not None:
            out[mask] = (1 - alpha) * out[mask] + alpha * colour
    out = out.astype(np.uint8)
    scale = max(image.shape[1] / 1280, 0.4)
    for (x1, y1, x2, y2), name in zip(boxes.tolist(), names, strict=True):
        p1, p2 = (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1)
        cv2.rectangle(out, p1, p2, BOX_COLOUR, max(round(2 * scale), 1))
        cv2.putText(out, name, (p1[0], max(p1[1] - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, BOX_COLOUR, max(round(scale), 1), cv2.LINE_AA)
    return out


def contact_sheet(tiles: Sequence[np.ndarray], columns: int = 3, tile_width: int = 640) -> np.ndarray:
    """Tiles resized to one width and laid out in a grid, left to right, top to bottom."""
    resized = [cv2.resize(t, (tile_width, round(t.shape[0] * tile_width / t.shape[1])),
                          interpolation=cv2.INTER_AREA) for t in tiles]
    tile_h = max(t.shape[0] for t in resized)
    rows = -(-len(resized) // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_width, 3), np.uint8)
    for i, tile in enumerate(resized):
        r, c = divmod(i, columns)
        sheet[r * tile_h:r * tile_h + tile.shape[0], c * tile_width:(c + 1) * tile_width] = tile
    return sheet


def dataset_gallery(root: Path, split: str, out: Path, count: int = 9, columns: int = 3) -> Path:
    """Draw the first `count` frames of a BDD100K-layout split with their labels into one PNG."""
    data = BDD100KSplit(root, split, limit=count)
    tiles = [draw_labels(s.image, s.labels.boxes, s.labels.categories, s.drivable, s.lane) for s in data]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), contact_sheet(tiles, columns)):
        raise OSError(f"could not write {out}")
    return out
