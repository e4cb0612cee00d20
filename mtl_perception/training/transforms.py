"""Augmentations that move the image, its boxes and its masks together (numpy, OpenCV).

Images are uint8 BGR (H, W, 3); boxes float32[N, 4] x1, y1, x2, y2 in pixels; masks uint8 (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mtl_perception.data import scene_effects
from mtl_perception.runtime.letterbox import DEFAULT_PAD_VALUE, boxes_to_input, letterbox_image


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation, as the field uses it (YOLOv5/YOLOP's geometric and HSV ranges). Every switch
    is here with its default; 0 turns one off (the `augment:` section of `train --config`). They apply
    to real and synthetic data alike: what only the synthetic world varies is data/randomisation.py."""

    # geometric, one homography for image, boxes and masks: degrees of rotation, fraction of translation,
    # scale change, degrees of shear, perspective; then a horizontal flip with probability `flip`
    degrees: float = 2.0
    translate: float = 0.05
    scale: float = 0.15
    shear: float = 1.0
    perspective: float = 0.0002
    flip: float = 0.5
    # photometric: HSV gains within 1 +- these
    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.35
    # photometric, each with its probability: Gaussian blur (sigma 0.5-1.5 px), sensor noise (sd 2-8
    # grey levels), JPEG re-encoding (quality 40-90)
    blur_p: float = 0.1
    noise_p: float = 0.2
    jpeg_p: float = 0.2
    # a crop or a zoom-out with probability zoom_p, scale drawn log-uniform in zoom_range, so that distant
    # vehicles are also seen large and near ones small: real dashcam frames hold each car at the size its
    # distance gives, which `scale` alone barely changes. A crop is centred anywhere its window fits
    zoom_p: float = 0.3
    zoom_range: tuple[float, float] = (0.6, 2.0)
    # what real frames, mostly taken by day in the dry, lack: night (darker with the highlights kept, bluer,
    # noisier) and rain (veil, streaks, drops: data/scene_effects.py's rain, as the synthetic world draws it)
    night_p: float = 0.1
    rain_p: float = 0.05
    min_box_size: float = 2.0


@dataclass
class TrainSample:
    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    drivable: np.ndarray
    lane: np.ndarray


def letterbox_sample(sample: TrainSample, height: int, width: int) -> TrainSample:
    image, lb = letterbox_image(sample.image, height, width, DEFAULT_PAD_VALUE)
    masks = [letterbox_image(m, height, width, 0, interpolation=cv2.INTER_NEAREST)[0]
             for m in (sample.drivable, sample.lane)]
    return TrainSample(image, boxes_to_input(sample.boxes, lb), sample.classes, masks[0], masks[1])


def _draw_zoom(rng: np.random.Generator, cfg: AugmentConfig, height: int, width: int) -> tuple[float, float, float]:
    """(zoom, x, y): the scale and the point of the frame that lands at the output's centre. Below 1 the
    whole frame shrinks about its centre; above, the crop's window lies inside the frame."""
    low, high = cfg.zoom_range
    zoom = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if rng.random() < cfg.zoom_p else 1.0
    half_w, half_h = width / (2 * max(zoom, 1.0)), height / (2 * max(zoom, 1.0))
    return zoom, rng.uniform(half_w, width - half_w), rng.uniform(half_h, height - half_h)


def _random_homography(rng: np.random.Generator, cfg: AugmentConfig, height: int, width: int) -> np.ndarray:
    zoom, focus_x, focus_y = _draw_zoom(rng, cfg, height, width)
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -focus_x, -focus_y
    persp = np.eye(3)
    persp[2, 0], persp[2, 1] = rng.uniform(-cfg.perspective, cfg.perspective, 2)
    rot = np.eye(3)
    rot[:2] = cv2.getRotationMatrix2D((0, 0), rng.uniform(-cfg.degrees, cfg.degrees),
                                      zoom * rng.uniform(1 - cfg.scale, 1 + cfg.scale))
    shear = np.eye(3)
    shear[0, 1], shear[1, 0] = np.tan(np.radians(rng.uniform(-cfg.shear, cfg.shear, 2)))
    move = np.eye(3)
    move[0, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * width
    move[1, 2] = rng.uniform(0.5 - cfg.translate, 0.5 + cfg.translate) * height
    return move @ shear @ rot @ persp @ centre


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes through a homography: the box around the four warped corners, clipped.

    Returns the boxes and a keep mask of those still larger than a sliver.
    """
    if len(boxes) == 0:
        return boxes, np.zeros(0, dtype=bool)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)
    xyz = np.concatenate([corners, np.ones((len(corners), 1))], axis=1) @ matrix.T
    xy = (xyz[:, :2] / xyz[:, 2:3]).reshape(-1, 4, 2)
    out = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
    area_before = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    area_after = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    keep = (out[:, 2] - out[:, 0] > 1) & (out[:, 3] - out[:, 1] > 1) & (area_after > 0.2 * area_before)
    return out.astype(np.float32), keep


def augment_hsv(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> None:
    """In-place HSV gain jitter through a lookup table (YOLOv5's method: cheap on large frames)."""
    if cfg.hsv_h == cfg.hsv_s == cfg.hsv_v == 0:
        return  # off: not even the lossy round trip through HSV
    gains = rng.uniform(-1, 1, 3) * (cfg.hsv_h, cfg.hsv_s, cfg.hsv_v) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR, dst=image)


def degrade(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Blur, noise and JPEG artefacts, each with its probability: what cheap lenses, small sensors and
    compressed bags do to frames."""
    if rng.random() < cfg.blur_p:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < cfg.noise_p:
        noisy = image.astype(np.float32) + rng.normal(0, rng.uniform(2, 8), image.shape).astype(np.float32)
        image = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg_p:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 91))])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            image = np.asarray(decoded, np.uint8)
    return image


def weather(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Night or rain, each with its probability, on a day's frame: pixels only, the labels hold. Night is a
    gamma curve and a gain (dark shadows, lights still bright), a blue cast and the noise of a sensor at high
    gain."""
    night, rain = rng.random() < cfg.night_p, rng.random() < cfg.rain_p
    if not (night or rain):
        return image
    img = image.astype(np.float32)
    if night:
        img = 255.0 * (img / 255.0) ** rng.uniform(1.6, 2.4) * rng.uniform(0.45, 0.8)
        img *= np.array([rng.uniform(1.0, 1.2), 1.0, rng.uniform(0.8, 0.95)], np.float32)  # BGR: bluer
        img += rng.normal(0, rng.uniform(3, 8), img.shape).astype(np.float32)
    if rain:
        scene_effects.rain(img, rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(sample: TrainSample, rng: np.random.Generator, cfg: AugmentConfig) -> TrainSample:
    """Random perspective/affine with crops and zooms, HSV jitter, night and rain, blur/noise/JPEG and
    horizontal flip, on an already letterboxed sample."""
    h, w = sample.image.shape[:2]
    matrix = _random_homography(rng, cfg, h, w)
    image = cv2.warpPerspective(sample.image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                borderValue=(DEFAULT_PAD_VALUE,) * 3)
    drivable, lane = (cv2.warpPerspective(m, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
                      for m in (sample.drivable, sample.lane))
    boxes, keep = warp_boxes(sample.boxes, matrix, h, w)
    boxes, classes = boxes[keep], sample.classes[keep]
    augment_hsv(image, rng, cfg)
    image = weather(image, rng, cfg)
    image = degrade(image, rng, cfg)
    if rng.random() < cfg.flip:
        image, drivable, lane = image[:, ::-1], drivable[:, ::-1], lane[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return TrainSample(np.ascontiguousarray(image), boxes, classes,
                       np.ascontiguousarray(drivable), np.ascontiguousarray(lane))
