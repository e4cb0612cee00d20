"""Augmentations move the image, its boxes and its masks together."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_perception.training.transforms import AugmentConfig, TrainSample, augment, warp_boxes


def _sample() -> TrainSample:
    image = np.zeros((64, 96, 3), np.uint8)
    image[10:30, 20:50] = 200  # a bright box where the label is
    mask = np.zeros((64, 96), np.uint8)
    mask[10:30, 20:50] = 1
    return TrainSample(image, np.array([[20, 10, 50, 30]], np.float32), np.array([2]), mask.copy(), mask.copy())


def test_flip_only_mirrors_everything() -> None:
    cfg = AugmentConfig(degrees=0, translate=0, scale=0, shear=0, perspective=0, hsv_h=0, hsv_s=0, hsv_v=0, flip=1.0,
                        blur_p=0, noise_p=0, jpeg_p=0)
    out = augment(_sample(), np.random.default_rng(0), cfg)
    np.testing.assert_allclose(out.boxes, [[46, 10, 76, 30]])  # x -> 96 - x
    ys, xs = np.nonzero(out.drivable)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (46, 76, 10, 30)
    assert (out.lane == out.drivable).all() and out.image[20, 60, 0] == 200


@pytest.mark.parametrize("switch", ["blur_p", "noise_p", "jpeg_p"])
def test_each_degradation_is_a_switch(switch: str) -> None:
    """On, it changes the pixels and nothing else; off (the others all off too), the image passes untouched."""
    still = {"degrees": 0, "translate": 0, "scale": 0, "shear": 0, "perspective": 0, "flip": 0, "hsv_h": 0,
             "hsv_s": 0, "hsv_v": 0, "blur_p": 0, "noise_p": 0, "jpeg_p": 0}
    sample = _sample()
    sample.image[:] = np.random.default_rng(1).integers(0, 256, sample.image.shape, dtype=np.uint8)
    off = augment(sample, np.random.default_rng(0), AugmentConfig(**still))
    np.testing.assert_array_equal(off.image, sample.image)
    on = augment(sample, np.random.default_rng(0), AugmentConfig(**{**still, switch: 1.0}))
    assert on.image.shape == sample.image.shape and np.abs(on.image.astype(int) - sample.image).mean() > 1
    np.testing.assert_array_equal(on.drivable, sample.drivable)
    np.testing.assert_array_equal(on.boxes, sample.boxes)


def test_random_warp_keeps_boxes_on_their_pixels() -> None:
    cfg = AugmentConfig(hsv_h=0, hsv_s=0, hsv_v=0)
    checked = 0
    for seed in range(10):
        out = augment(_sample(), np.random.default_rng(seed), cfg)
        if len(out.boxes) == 0:
            continue  # the warp pushed the box out of the frame: nothing to compare on this seed
        ys, xs = np.nonzero(out.drivable)
        x1, y1, x2, y2 = out.boxes[0]
        # the box around the warped corners encloses the warped mask, within a pixel of rounding
        assert xs.min() >= x1 - 1 and xs.max() + 1 <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() + 1 <= y2 + 1
        assert out.classes.tolist() == [2]
        checked += 1
    assert checked >= 5, f"only {checked} of 10 seeds kept the box: the check compared almost nothing"


def test_warp_drops_boxes_pushed_out_of_the_frame() -> None:
    shift = np.array([[1, 0, 500], [0, 1, 0], [0, 0, 1]], np.float64)
    _, keep = warp_boxes(np.array([[20, 10, 50, 30]], np.float32), shift, 64, 96)
    assert keep.tolist() == [False]
