"""Pseudo-labels: fusion and thresholds on constructed inputs, and the command on a folder, a video and a bag
with the real teachers (skipped where ../shared is absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data.bdd100k import (
    DETECTION_CLASSES,
    DRIVABLE_DIRECT,
    DRIVABLE_IGNORE,
    LANE_IGNORE,
    BDD100KSplit,
    decode_lane_mask,
)
from mtl_perception.data.check import check_split
from mtl_perception.data.pseudo_label import (
    COCO_TO_BDD100K,
    Thresholds,
    fuse_boxes,
    fuse_masks,
    to_bdd100k,
)
from mtl_perception.data.teachers import COCO_CLASSES, TeacherDetections, TeacherMasks

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TEACHERS = SHARED / "teachers"
REAL = SHARED / "real-unlabeled"


def _det(boxes, scores, labels) -> TeacherDetections:
    return TeacherDetections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), tuple(labels))


def test_every_mapped_class_is_a_coco_and_a_bdd100k_class() -> None:
    assert set(COCO_TO_BDD100K) <= set(COCO_CLASSES)
    assert set(COCO_TO_BDD100K.values()) <= set(DETECTION_CLASSES)
    mapped = to_bdd100k(_det([[0, 0, 10, 10]] * 3, [0.9] * 3, ["person", "dog", "truck"]), DETECTION_CLASSES)
    assert mapped.labels == ("pedestrian", "truck")


def test_agreeing_passes_fuse_into_one_box_and_a_lone_box_is_weighed_down() -> None:
    t = Thresholds(box_keep=0.3, box_ignore=0.1)
    a = _det([[100, 100, 200, 180], [400, 100, 440, 140]], [0.8, 0.5], ["car", "car"])
    b = _det([[104, 102, 204, 182]], [0.6], ["car"])
    fused = fuse_boxes([a, b], DETECTION_CLASSES, 1280, 720, t)
    assert len(fused.boxes) == 2
    order = np.argsort(fused.boxes[:, 0])
    first, lone = order
    np.testing.assert_allclose(fused.boxes[first], [100 + 4 * 0.6 / 1.4, 100 + 2 * 0.6 / 1.4,
                                                    200 + 4 * 0.6 / 1.4, 180 + 2 * 0.6 / 1.4], atol=0.5)
    assert fused.scores[first] == pytest.approx(0.7, abs=1e-3)  # the mean of both passes
    assert fused.scores[lone] == pytest.approx(0.25, abs=1e-3)  # one pass of two saw it: halved
    assert not fused.ignore[first] and fused.ignore[lone]  # between box_ignore and box_keep: an ignore region


def test_a_person_on_a_bicycle_is_an_ignore_region_not_a_pedestrian() -> None:
    det = _det([[100, 50, 140, 150], [95, 90, 150, 160], [600, 50, 640, 150]], [0.9, 0.9, 0.9],
               ["pedestrian", "bicycle", "pedestrian"])
    fused = fuse_boxes([det], DETECTION_CLASSES, 1280, 720, Thresholds())
    by_x = {round(float(b[0])): bool(i) for b, i in zip(fused.boxes, fused.ignore, strict=False)}
    assert by_x == {100: True, 95: False, 600: False}


def test_masks_average_their_teachers_and_ignore_the_unsure_pixels() -> None:
    shape = (4, 5)
    one = TeacherMasks(np.full(shape, 0.9, np.float32), np.full(shape, 0.1, np.float32))
    two = TeacherMasks(np.full(shape, 0.9, np.float32), np.full(shape, 0.1, np.float32))
    two.drivable[0, 0], two.lane[1, 1] = 0.1, 0.9  # means 0.5: unsure
    drivable, lane = fuse_masks([one, two], shape, Thresholds())
    assert drivable is not None and lane is not None
    assert drivable[0, 0] == DRIVABLE_IGNORE and (drivable == DRIVABLE_DIRECT).sum() == 19
    assert lane[1, 1] == LANE_IGNORE and not decode_lane_mask(lane).any()


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="box-ignore <= box-keep"):
        Thresholds(box_keep=0.2, box_ignore=0.3)
    with pytest.raises(ValueError, match="drivable-margin"):
        Thresholds(drivable_margin=0.5)


needs_teachers = pytest.mark.skipif(not TEACHERS.is_dir() or not REAL.is_dir(),
                                    reason="../shared/teachers and ../shared/real-unlabeled are not beside this "
                                           "clone: the command needs the real teacher models")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "pseudo-label", *args],
                          capture_output=True, text=True, timeout=600)


def _teachers() -> list[str]:
    return ["--detector", f"yolox:{TEACHERS / 'yolox_nano_coco_416.onnx'}@640",
            "--segmenter", f"twinlite:{TEACHERS / 'twinlitenetplus_nano_384x640.onnx'}", "--no-progress"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    for path in sorted((REAL / "bdd100k-train-50").glob("*.jpg"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


@needs_teachers
def test_a_folder_becomes_a_clean_bdd100k_split(frames: Path, tmp_path: Path) -> None:
    out = tmp_path / "labelled"
    result = _cli("--input", str(frames), "--out", str(out), *_teachers())
    assert result.returncode == 0, result.stderr
    report = check_split(out, "train", progress=False)
    assert not report.problems
    split = BDD100KSplit(out, "train")
    assert len(split) == 3 and split.tasks == ("detection", "drivable", "lane")
    sample = split[0]
    assert sample.drivable is not None and sample.drivable[-200:, 500:800].mean() > 0.5  # the road ahead
    labels = json.loads((out / "labels" / "det_20" / "det_train.json").read_text())
    boxes = [lab for frame in labels for lab in frame["labels"]]
    assert boxes and all("score" in b and b["attributes"]["pseudo_label"].startswith("yolox") for b in boxes)
    manifest = json.loads((out / "labels" / "pseudo_label_train.json").read_text())
    assert manifest["drivable_definition"] == "direct+alternative" and "rider" in manifest["unseen_classes"]
    again = _cli("--input", str(frames), "--out", str(out), *_teachers())
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


@needs_teachers
def test_shards_merge_into_what_one_job_writes(frames: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _cli("--input", str(frames), "--out", str(whole), *_teachers()).returncode == 0
    first = _cli("--input", str(frames), "--out", str(parts), "--shard", "1/2", *_teachers())
    assert first.returncode == 0, first.stderr
    early = _cli("--out", str(parts), "--merge")
    assert early.returncode == 2 and "shards [2] of 2" in early.stderr
    assert _cli("--input", str(frames), "--out", str(parts), "--shard", "2/2", *_teachers()).returncode == 0
    assert _cli("--out", str(parts), "--merge").returncode == 0
    det = "labels/det_20/det_train.json"
    assert json.loads((parts / det).read_text()) == json.loads((whole / det).read_text())


@needs_teachers
def test_a_video_and_a_bag(tmp_path: Path, frames: Path) -> None:
    from mtl_perception.bags import write_image_bag

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (1280, 720))
    for path in sorted(frames.glob("*.jpg")):
        writer.write(cv2.imread(str(path)))
    writer.release()
    bag = tmp_path / "drive_bag"
    write_image_bag(sorted(frames.glob("*.jpg")), bag)
    out = tmp_path / "labelled"
    result = _cli("--input", str(video), "--input", str(bag), "--every", "2", "--out", str(out), *_teachers())
    assert result.returncode == 0, result.stderr
    names = sorted(f["name"] for f in json.loads((out / "labels/det_20/det_train.json").read_text()))
    assert names == ["clip_00000.jpg", "clip_00002.jpg",
                     "drive_bag_camera_image_raw_00000.jpg", "drive_bag_camera_image_raw_00002.jpg"]
    assert not check_split(out, "train", progress=False).problems


@needs_teachers
def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    missing = _cli("--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), *_teachers())
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    odd = _cli("--input", str(tmp_path / "notes.yaml"), "--out", str(tmp_path / "o"), *_teachers())
    assert odd.returncode == 2 and "not an image folder" in odd.stderr
    assert not (tmp_path / "o" / "labels" / "det_20" / "det_train.json").exists()
