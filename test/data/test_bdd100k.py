"""BDD100K decoding, checked on real BDD100K lane masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data.bdd100k import (
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


def test_crosswalk_value_zero_is_lane() -> None:
    mask = np.array([[0, 255, 32, 7 | 16]], np.uint8)
    np.testing.assert_array_equal(decode_lane_mask(mask), [[True, False, False, True]])


def test_encode_lane_bits() -> None:
    assert encode_lane("single white") == 6
    assert encode_lane("single white", dashed=True) == 6 | 16
    assert encode_lane("crosswalk", vertical=True) == 8
    assert encode_lane("double yellow") == 3


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
    with pytest.raises(DatasetError, match="lists no frames"):
        BDD100KSplit(tmp_path, "val")
