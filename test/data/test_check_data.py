"""mtl-perception check-data finds what would break a long run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.data.synthetic_set import SynthConfig, write_dataset


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("check")
    write_dataset(SynthConfig(out, train=0, val=9, seed=5, height=96, width=160), progress=False)
    return out


def _check(root: Path) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "check-data", "--data", str(root),
                             "--split", "val", "--json"], capture_output=True, text=True)
    return result.returncode, json.loads(result.stdout)


def test_dashed_and_vertical_markings_pass_and_read_as_markings(tmp_path: Path) -> None:
    """A split whose lane masks hold every kind of marking BDD100K has: check-data accepts it, and the
    reader returns every marking pixel (values from the toolkit's encoding, written by hand)."""
    write_dataset(SynthConfig(tmp_path, train=0, val=1, seed=5, height=96, width=160), progress=False)
    mask_path = next((tmp_path / "labels/lane/masks/val").glob("*.png"))
    mask = np.full((96, 160), 255, np.uint8)
    values = [*range(0, 8), *range(16, 24), *range(32, 40), *range(48, 56)]
    mask[10, :len(values)] = values
    cv2.imwrite(str(mask_path), mask)
    code, report = _check(tmp_path)
    assert code == 0 and report["problems"] == []
    assert report["per_image"][mask_path.with_suffix(".jpg").name]["lane_px"] == len(values)
    from mtl_perception.data.bdd100k import BDD100KSplit

    assert BDD100KSplit(tmp_path, "val")[0].lane.sum() == len(values)
    mask[10, 0] = 8  # background bit set, but not the background value: invalid
    cv2.imwrite(str(mask_path), mask)
    code, report = _check(tmp_path)
    assert code == 1 and "invalid values [8]" in report["problems"][0]


def test_clean_set_passes_with_counts(clean_set: Path) -> None:
    code, report = _check(clean_set)
    assert code == 0 and report["problems"] == []
    assert report["images"] == 9 and len(report["per_image"]) == 9
    labels = json.loads((clean_set / "labels/det_20/det_val.json").read_text())
    for frame in labels:
        counts = report["per_image"][frame["name"]]
        crowd = sum(bool((label.get("attributes") or {}).get("crowd")) for label in frame["labels"])
        assert counts["boxes"] + counts["ignore_regions"] == len(frame["labels"])
        assert counts["ignore_regions"] == crowd
        drivable = cv2.imread(str(clean_set / "labels/drivable/masks/val" / frame["name"].replace(".jpg", ".png")),
                              cv2.IMREAD_UNCHANGED)
        assert counts["drivable_px"] == int((drivable == 0).sum()) > 0  # at the original resolution
        assert counts["lane_px"] > 0


def test_every_kind_of_problem_is_reported(clean_set: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(clean_set, broken)
    images, masks = broken / "images/100k/val", broken / "labels"
    names = sorted(p.name for p in images.iterdir())
    (images / names[0]).write_bytes(b"not a jpeg")  # corrupt image
    (images / names[1]).unlink()  # labels without an image
    (masks / "drivable/masks/val" / names[2].replace(".jpg", ".png")).unlink()  # missing mask
    cv2.imwrite(str(masks / "lane/masks/val" / names[3].replace(".jpg", ".png")), np.zeros((10, 10), np.uint8))
    bad_values = np.full((96, 160), 7, np.uint8)
    cv2.imwrite(str(masks / "drivable/masks/val" / names[4].replace(".jpg", ".png")), bad_values)
    cv2.imwrite(str(images / "extra.jpg"), np.zeros((96, 160, 3), np.uint8))  # image without labels
    # JPEGs that OpenCV 4.5 still decodes (with a warning on stderr): cut to a third, and glued to another
    whole = (images / names[5]).read_bytes()
    (images / names[5]).write_bytes(whole[: len(whole) // 3])
    (images / names[6]).write_bytes((images / names[6]).read_bytes()[:1500] + (images / names[7]).read_bytes())
    labels_file = masks / "det_20/det_val.json"
    frames = json.loads(labels_file.read_text())
    by_name = {f["name"]: f for f in frames}
    by_name[names[7]]["labels"][0]["box2d"]["x1"] = float("nan")  # json writes NaN, as numpy users do
    box = by_name[names[8]]["labels"][0]["box2d"]
    box["x1"], box["x2"] = box["x2"], box["x1"]  # inverted
    labels_file.write_text(json.dumps(frames))
    code, report = _check(broken)
    problems = "\n".join(report["problems"])
    assert code == 1
    assert f"corrupt image (labels without an image) (cannot decode): {images / names[0]}" in problems
    assert f"missing image (labels without an image): {images / names[1]}" in problems
    assert "missing drivable mask" in problems
    assert f"lane mask of {names[3]} is (10, 10), its image is (96, 160)" in problems
    assert f"drivable mask of {names[4]} has invalid values [7]" in problems
    assert "image without labels: extra.jpg" in problems
    assert f"(cut short: no end-of-image marker): {images / names[5]}" in problems
    assert "(broken scan data: marker 0xFFD8 at byte" in problems and str(images / names[6]) in problems
    assert f"frame {names[7]!r}: box 0 [nan," in problems and "is not a finite number" in problems
    assert f"frame {names[8]!r}: box 0 [" in problems and "is inverted (x2 < x1 or y2 < y1)" in problems


def test_missing_labels_file(tmp_path: Path) -> None:
    code, report = _check(tmp_path)
    assert code == 1 and any("det_val.json" in p for p in report["problems"])
