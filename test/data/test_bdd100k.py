"""BDD100K decoding, checked on real BDD100K lane masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data.bdd100k import (
    LANE_CATEGORIES,
    LANE_IGNORE,
    VALID_LANE_VALUES,
    BDD100KSplit,
    ClassSet,
    DatasetError,
    decode_drivable_mask,
    decode_lane_mask,
    encode_lane,
    load_det_json,
)


def test_lane_decoding_on_real_bdd100k_masks(bdd100k_samples: Path) -> None:
    files = sorted((bdd100k_samples / "lane").glob("*.png"))
    assert len(files) == 4
    for path in files:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert raw.shape == (720, 1280) and raw.dtype == np.uint8
        lane = decode_lane_mask(raw)
        # background is 255, markings hold categories 0..7: lane == "not 255" on these files
        assert lane.sum() == (raw != 255).sum() > 1000
        assert set(np.unique(raw[lane]).tolist()) <= set(range(8))
        # the tempting "non-zero is lane" reading would mark nearly the whole frame
        assert (raw != 0).sum() > 0.99 * raw.size


def toolkit_foreground(byte: np.ndarray) -> np.ndarray:
    """The BDD100K toolkit's own reading (bdd100k/eval/lane.py, get_foreground = get_lane_class(value=0,
    offset=3, width=1)): a pixel is a marking where bit 3, shifted down and masked, equals 0."""
    return np.equal(np.bitwise_and(np.right_shift(byte, 3), (1 << 1) - 1), 0)


def toolkit_value(category: int, style: int, direction: int) -> int:
    """The toolkit's writer (bdd100k/label/to_mask.py): category + (style << 4) + (direction << 5)."""
    return category + (style << 4) + (direction << 5)


EVERY_VALID = [*range(0, 8), *range(16, 24), *range(32, 40), *range(48, 56), 255]


def test_every_valid_lane_value_decodes_as_the_toolkit_does() -> None:
    mask = np.array([EVERY_VALID], np.uint8)
    np.testing.assert_array_equal(decode_lane_mask(mask), toolkit_foreground(mask))
    assert decode_lane_mask(mask).tolist() == [[True] * 32 + [False]]  # every marking is a marking
    # and the pseudo-labels' ignore value (254): background to the toolkit, as to this reader
    ignore = np.array([[LANE_IGNORE]], np.uint8)
    assert not decode_lane_mask(ignore).any() and not toolkit_foreground(ignore).any()
    assert VALID_LANE_VALUES == {*EVERY_VALID, LANE_IGNORE}


def test_encoder_is_the_toolkits() -> None:
    for category, name in enumerate(LANE_CATEGORIES):
        for style in (0, 1):
            for direction in (0, 1):
                assert encode_lane(name, dashed=bool(style), vertical=bool(direction)) == \
                    toolkit_value(category, style, direction)
    assert encode_lane("crosswalk", vertical=True) == 32  # a crosswalk: vertical, bit 5
    assert encode_lane("single white", dashed=True) == 22


def test_vertical_and_dashed_markings_are_not_background() -> None:
    # the reading this replaced took bit 5 for background: every vertical marking vanished
    mask = np.array([[32, 33, 38, 48, 55, 8, 255]], np.uint8)
    assert decode_lane_mask(mask).tolist() == [[True, True, True, True, True, False, False]]


def test_drivable_decoding_direct_by_default() -> None:
    ids = np.array([[0, 1, 2]], np.uint8)
    np.testing.assert_array_equal(decode_drivable_mask(ids), [[True, False, False]])
    np.testing.assert_array_equal(decode_drivable_mask(ids, include_alternative=True), [[True, True, False]])


def test_class_sets() -> None:
    bdd = ClassSet.named("bdd10")
    assert len(bdd.names) == 10 and bdd.class_id("car") == 2 and bdd.class_id("traffic sign") == 9
    vehicle = ClassSet.named("vehicle")
    assert vehicle.names == ("vehicle",)
    assert [vehicle.class_id(c) for c in ("car", "bus", "truck", "train", "pedestrian")] == [0, 0, 0, 0, None]
    with pytest.raises(ValueError, match="unknown class set 'cars'"):
        ClassSet.named("cars")


def test_missing_and_malformed_labels_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"det_train\.json"):
        load_det_json(tmp_path / "det_train.json")
    bad = tmp_path / "det_val.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_det_json(bad)
    bad.write_text(json.dumps([{"labels": []}]))
    with pytest.raises(DatasetError, match="frame 0 is malformed"):
        load_det_json(bad)


def test_missing_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        BDD100KSplit(tmp_path / "nowhere", "val")


def test_empty_split(tmp_path: Path) -> None:
    (tmp_path / "labels/det_20").mkdir(parents=True)
    (tmp_path / "labels/det_20/det_val.json").write_text("[]")
    with pytest.raises(DatasetError, match=r"\[val\] has no drivable and no lane labels .*separate downloads"):
        BDD100KSplit(tmp_path, "val")  # training's default: every kind of label
    with pytest.raises(DatasetError, match="lists no frames"):
        BDD100KSplit(tmp_path, "val", require=())
