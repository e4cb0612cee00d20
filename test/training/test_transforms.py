"""Augmentations move the image, its boxes and its masks together."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mtl_perception.training.transforms import AugmentConfig, TrainSample, augment, warp_boxes


def _sample() -> TrainSample:
    image = np.zeros((64, 96, 3), np.uint8)
    image[10:30, 20:50] = 200  # a bright box where the label is
    mask = np.zeros((64, 96), np.uint8)
    mask[10:30, 20:50] = 1
    return TrainSample(image, np.array([[20, 10, 50, 30]], np.float32), np.array([2]), mask.copy(), mask.copy())


def _only(**on: Any) -> AugmentConfig:
    """Every augmentation off but those given."""
    still = {"degrees": 0, "translate": 0, "scale": 0, "shear": 0, "perspective": 0, "flip": 0, "hsv_h": 0,
             "hsv_s": 0, "hsv_v": 0, "blur_p": 0, "noise_p": 0, "jpeg_p": 0, "zoom_p": 0, "night_p": 0,
             "rain_p": 0}
    return AugmentConfig(**{**still, **on})


def test_flip_only_mirrors_everything() -> None:
    out = augment(_sample(), np.random.default_rng(0), _only(flip=1.0))
    np.testing.assert_allclose(out.boxes, [[46, 10, 76, 30]])  # x -> 96 - x
    ys, xs = np.nonzero(out.drivable)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (46, 76, 10, 30)
    assert (out.lane == out.drivable).all() and out.image[20, 60, 0] == 200


@pytest.mark.parametrize("switch", ["blur_p", "noise_p", "jpeg_p"])
def test_each_degradation_is_a_switch(switch: str) -> None:
    """On, it changes the pixels and nothing else; off (the others all off too), the image passes untouched."""
    sample = _sample()
    sample.image[:] = np.random.default_rng(1).integers(0, 256, sample.image.shape, dtype=np.uint8)
    off = augment(sample, np.random.default_rng(0), _only())
    np.testing.assert_array_equal(off.image, sample.image)
    on = augment(sample, np.random.default_rng(0), _only(**{switch: 1.0}))
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


def test_a_crop_enlarges_the_box_with_its_pixels_and_keeps_it_where_they_are() -> None:
    """zoom 2: the box doubles in size, and it still frames the bright pixels and the mask wherever the crop's
    window was drawn."""
    small = _sample()  # a 12 x 10 box, which a window half the frame's size often holds whole
    small.image[:], small.drivable[:] = 0, 0
    small.image[26:36, 40:52], small.drivable[26:36, 40:52] = 200, 1
    small.boxes = np.array([[40, 26, 52, 36]], np.float32)
    whole = 0
    for seed in range(12):
        out = augment(small, np.random.default_rng(seed), _only(zoom_p=1.0, zoom_range=(2.0, 2.0)))
        if len(out.boxes) == 0:
            continue  # this crop's window missed the box
        x1, y1, x2, y2 = out.boxes[0]
        if x1 > 0 and y1 > 0 and x2 < 96 and y2 < 64:  # whole in the crop: exactly twice the size
            assert (x2 - x1, y2 - y1) == pytest.approx((24, 20), abs=0.01)
            whole += 1
        ys, xs = np.nonzero(out.drivable)
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1
        bright = np.nonzero(out.image[..., 0] > 100)
        assert abs(bright[1].min() - x1) <= 1 and abs(bright[0].max() + 1 - y2) <= 1
    assert whole >= 2, f"the box lay whole in only {whole} of 12 crops: the size check compared almost nothing"


def test_a_zoom_out_shrinks_the_frame_about_its_centre() -> None:
    out = augment(_sample(), np.random.default_rng(0), _only(zoom_p=1.0, zoom_range=(0.5, 0.5)))
    # x about the centre 48: 20 -> 34, 50 -> 49; y about 32: 10 -> 21, 30 -> 31
    np.testing.assert_allclose(out.boxes, [[34, 21, 49, 31]], atol=1e-4)
    assert out.image[0, 0, 0] == 114  # what the shrunk frame uncovers is the letterbox's pad


def test_night_darkens_the_shadows_more_than_the_lights_and_moves_no_label() -> None:
    sample = _sample()
    sample.image[:] = 60
    sample.image[10:30, 20:50] = 240
    out = augment(sample, np.random.default_rng(0), _only(night_p=1.0))
    dark, light = out.image[40:, :, 1].mean(), out.image[10:30, 20:50, 1].mean()
    assert dark < 0.5 * 60 and light > 0.4 * 240 and light / dark > 240 / 60
    assert out.image[..., 0].mean() > out.image[..., 2].mean()  # bluer (BGR)
    np.testing.assert_array_equal(out.boxes, sample.boxes)
    np.testing.assert_array_equal(out.lane, sample.lane)


def test_rain_veils_and_streaks_the_frame_and_moves_no_label() -> None:
    sample = _sample()
    out = augment(sample, np.random.default_rng(0), _only(rain_p=1.0))
    assert out.image[40:, :].mean() > sample.image[40:, :].mean() + 5  # veil and streaks over the black
    np.testing.assert_array_equal(out.boxes, sample.boxes)
    np.testing.assert_array_equal(out.drivable, sample.drivable)
