"""Anchor boxes: the defaults for BDD100K at 384x640, and k-means fitting to a data set's boxes."""

from __future__ import annotations

import numpy as np

STRIDES = (8, 16, 32)
# (w, h) in input pixels per level, 3 aspect ratios each: YOLOP's k-means anchors for BDD100K at 640 wide.
DEFAULT_ANCHORS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((3, 9), (5, 11), (4, 20)),
    ((7, 18), (6, 39), (12, 31)),
    ((19, 50), (38, 81), (68, 157)),
)


def _wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors sharing a corner. wh: [N, 2], anchors: [K, 2] -> [N, K]."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = wh[:, None].prod(-1) + anchors[None].prod(-1) - inter
    return inter / union


def fit_anchors(wh: np.ndarray, per_level: int = 3, levels: int = 3, iterations: int = 100,
                seed: int = 0) -> tuple[tuple[tuple[float, float], ...], ...]:
    """k-means on box sizes with 1 - IoU as the distance, sorted by area and split across levels.

    wh: float[N, 2] box widths and heights in input pixels (after letterboxing).
    """
    wh = wh[(wh > 1).all(axis=1)]
    k = per_level * levels
    if len(wh) < k:
        raise ValueError(f"k-means anchors need at least {k} boxes wider and taller than 1 px, got {len(wh)}")
    rng = np.random.default_rng(seed)
    # k-means++ seeding: each new centre far (in 1 - IoU) from those chosen, or clusters get missed
    centres = wh[[rng.integers(len(wh))]].astype(np.float64)
    while len(centres) < k:
        distance = 1 - _wh_iou(wh, centres).max(axis=1)
        centres = np.vstack([centres, wh[rng.choice(len(wh), p=distance**2 / (distance**2).sum())]])
    for _ in range(iterations):
        assign = _wh_iou(wh, centres).argmax(axis=1)
        updated = np.array([np.median(wh[assign == j], axis=0) if (assign == j).any() else centres[j]
                            for j in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    centres = centres[np.argsort(centres.prod(axis=1))]
    return tuple(tuple((round(float(w), 1), round(float(h), 1)) for w, h in centres[i * per_level:(i + 1) * per_level])
                 for i in range(levels))


def anchor_fitness(wh: np.ndarray, anchors: tuple[tuple[tuple[float, float], ...], ...]) -> float:
    """Mean best-anchor IoU of the boxes: how well a set of anchors covers a data set."""
    flat = np.array([a for level in anchors for a in level], dtype=np.float64)
    return float(_wh_iou(wh.astype(np.float64), flat).max(axis=1).mean())
