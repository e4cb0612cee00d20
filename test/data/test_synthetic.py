"""The synthetic set: BDD100K encodings, determinism, labels that match the picture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data import synthetic_set
from mtl_perception.data.bdd100k import (
    DETECTION_CLASSES,
    LANE_IGNORE,
    VALID_LANE_VALUES,
    BDD100KSplit,
    decode_lane_mask,
    encode_lane,
    load_det_json,
    read_mask,
)
from mtl_perception.data.ground_truth import lateral
from mtl_perception.data.synthetic import CLEAR_WEATHERS, VEHICLE_SIZES, render_scene
from mtl_perception.data.synthetic_set import SynthConfig, write_dataset
from mtl_perception.runtime.ground import pixels_to_ground

SIZE = (288, 512)


@pytest.fixture(scope="module")
def scenes() -> list:
    return [render_scene(np.random.default_rng([7, i]), *SIZE) for i in range(24)]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(SynthConfig(out, train=6, val=3, seed=3, height=SIZE[0], width=SIZE[1]), progress=False)
    return out


def test_lane_masks_use_bdd100k_encoding(small_set: Path) -> None:
    # the same checks the real samples pass in test_bdd100k.py
    for path in sorted((small_set / "labels/lane/masks/train").glob("*.png")):
        raw = read_mask(path)
        lane = decode_lane_mask(raw)
        assert raw.dtype == np.uint8 and raw.shape == SIZE
        assert set(np.unique(raw[~lane]).tolist()) == {255}
        # every marking value is one the toolkit reads as a marking (no stray bits 6-7, not the ignore value)
        assert set(np.unique(raw[lane]).tolist()) <= VALID_LANE_VALUES - {LANE_IGNORE, 255}
    drivable_values = {v for p in (small_set / "labels/drivable/masks/train").glob("*.png")
                       for v in np.unique(read_mask(p)).tolist()}
    assert drivable_values == {0, 1, 2} or drivable_values == {0, 2}


def test_scene_variety(scenes: list) -> None:
    categories = {o.category for s in scenes for o in s.objects}
    assert {"car", "truck", "bus"} <= categories
    assert categories <= set(DETECTION_CLASSES)
    assert len({s.attributes["timeofday"] for s in scenes}) >= 2
    lane_values = {v for s in scenes for v in np.unique(s.lane).tolist()}
    assert {6, 6 | 16} <= lane_values  # solid and dashed white
    assert lane_values & {3, 7}  # some yellow
    # across the road (BDD100K's vertical direction, bit 5): stop lines and crosswalks
    assert {encode_lane("single white", vertical=True), encode_lane("crosswalk", vertical=True)} <= lane_values
    assert lane_values <= VALID_LANE_VALUES - {LANE_IGNORE}  # exact labels: nothing left unlabelled


def test_vertical_markings_lie_across_the_road(scenes: list) -> None:
    """A stop line or crosswalk spans many columns in few rows, unlike the markings along the road."""
    for value in (encode_lane("single white", vertical=True), encode_lane("crosswalk", vertical=True)):
        spans = []
        for scene in scenes:
            ys, xs = np.nonzero(scene.lane == value)
            if len(ys) > 20:
                spans.append((xs.max() - xs.min()) / max(ys.max() - ys.min(), 1))
        assert spans and np.median(spans) > 3, value


def test_same_seed_same_files(small_set: Path, tmp_path: Path) -> None:
    write_dataset(SynthConfig(tmp_path, train=6, val=3, seed=3, height=SIZE[0], width=SIZE[1], workers=2),
                  progress=False)
    for rel in ("labels/det_20/det_train.json", "labels/det_20/det_val.json"):
        assert (tmp_path / rel).read_bytes() == (small_set / rel).read_bytes()
    for mask in (small_set / "labels/lane/masks/val").glob("*.png"):
        assert (tmp_path / "labels/lane/masks/val" / mask.name).read_bytes() == mask.read_bytes()


def test_different_seed_differs(small_set: Path, tmp_path: Path) -> None:
    write_dataset(SynthConfig(tmp_path, train=0, val=3, seed=4, height=SIZE[0], width=SIZE[1]), progress=False)
    assert (tmp_path / "labels/det_20/det_val.json").read_bytes() != \
        (small_set / "labels/det_20/det_val.json").read_bytes()


def test_boxes_are_tight_and_inside(scenes: list) -> None:
    h, w = SIZE
    for scene in scenes:
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            ys, xs = np.nonzero(obj.silhouette)
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_flags_match_the_picture(scenes: list) -> None:
    h, w = SIZE
    flagged = {"occluded": 0, "truncated": 0}
    for scene in scenes:
        for i, obj in enumerate(scene.objects):
            visible = (scene.object_ids == i).sum()
            assert obj.occluded == (visible < 0.97 * obj.silhouette.sum())
            touches_border = obj.box[0] == 0 or obj.box[1] == 0 or obj.box[2] == w or obj.box[3] == h
            # the ego vehicle's hood cuts objects as the frame's edge does
            touches_ego = bool((cv2.dilate(scene.ego.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)[obj.silhouette].any())
            if obj.truncated:
                assert touches_border or touches_ego
            flagged["occluded"] += obj.occluded
            flagged["truncated"] += obj.truncated
    assert flagged["occluded"] > 0 and flagged["truncated"] > 0


def test_vehicles_stand_on_the_road(scenes: list) -> None:
    """The ground under each vehicle's near face, found through the frame's recorded camera, lies on the
    road (in-lane vehicles) or beside it (parked ones): no car floats in the sky or stands in a field."""
    checked = 0
    for scene in scenes:
        truth = scene.ground
        for obj in scene.objects:
            if obj.category not in VEHICLE_SIZES or obj.truncated:
                continue
            u, v = 0.5 * (obj.box[0] + obj.box[2]), obj.box[3] - 0.5
            (x, y, _), valid = (a[0] for a in pixels_to_ground(np.array([[u, v]]), truth.intrinsics, truth.pose))
            assert valid and x > 0
            left, right = float(lateral(truth.left_edge, x)), float(lateral(truth.right_edge, x))
            if obj.parked:
                assert right - 4.0 < y < left + 4.0, (obj.box, x, y, left, right)
            else:
                assert right - 1.0 < y < left + 1.0, (obj.box, x, y, left, right)
            checked += 1
    assert checked > 20


def test_masks_agree_with_pixels(scenes: list) -> None:
    for scene in scenes:
        covered = scene.object_ids >= 0
        assert (scene.drivable[covered] == 2).all() and (scene.lane[covered] == 255).all()
        grey = scene.image.astype(np.float32).mean(axis=2)
        lane = decode_lane_mask(scene.lane)
        road = (scene.drivable <= 1) & ~lane
        clear = scene.attributes["weather"] in CLEAR_WEATHERS  # rain and snow veil the paint
        if lane.sum() > 50 and scene.attributes["timeofday"] == "daytime" and clear:
            assert grey[lane].mean() > grey[road].mean() + 15  # painted markings are brighter than asphalt


def test_round_trip_through_reader(small_set: Path) -> None:
    data = BDD100KSplit(small_set, "train")
    frames = load_det_json(small_set / "labels/det_20/det_train.json")
    assert len(data) == 6
    for sample, frame in zip(data, frames, strict=True):
        assert sample.image.shape == (*SIZE, 3)
        assert sample.drivable.dtype == bool and sample.drivable.any()
        np.testing.assert_array_equal(sample.labels.boxes, frame.boxes)


def test_failure_leaves_no_complete_looking_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synthetic_set.render_scene

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic_set, "render_scene", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(SynthConfig(tmp_path, train=5, val=0, height=SIZE[0], width=SIZE[1]), progress=False)
    assert not (tmp_path / "labels/det_20/det_train.json").exists()
    assert not (tmp_path / "images/100k/train").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # staging removed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "-3"], "frame counts must be >= 0"),
        (["--size", "big"], "is not HxW"),
        (["--size", "10x10"], "out of range"),
        (["--train", "0", "--val", "0"], "nothing to generate"),
    ],
)
def test_cli_rejects_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(tmp_path), *args],
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr


def test_cli_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(blocker / "x"),
                             "--train", "1", "--val", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "cannot write to" in result.stderr


def test_gallery(small_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "gallery.png"
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(small_set),
                             "--gallery", str(out), "--gallery-only"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import cv2

    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[1] == 3 * 640 and sheet.std() > 10


def test_cli_refuses_to_replace_a_dataset_without_overwrite(small_set: Path) -> None:
    before = sorted(p.relative_to(small_set) for p in small_set.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(small_set),
                             "--train", "1", "--val", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "--overwrite" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.relative_to(small_set) for p in small_set.rglob("*")) == before  # nothing deleted
