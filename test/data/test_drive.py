"""Synthetic drives (issue 32 item 1): consecutive frames of one road whose road users keep their track ids,
labelled in BDD100K's box_track layout (read here by scalabel's own loader, checked against the official
toolkit's box_track categories) with each object's place in metres (checked by projecting it through a
pinhole camera written out below, not the project's ground code)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtl_perception.data.bdd100k import SplitPaths
from mtl_perception.data.ground_truth import load_ground_truth
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic_set import SynthConfig, video_name, write_dataset

SIZE = (288, 512)
FRAMES = 8
RATE_HZ = 10.0
PITCH_DEG = 2.0


@pytest.fixture(scope="module")
def drives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drives")
    world = Randomisation().fixed_camera(focal_fraction=0.8, height_m=1.5, pitch_deg=PITCH_DEG)
    write_dataset(SynthConfig(out, train=0, val=3 * FRAMES, seed=4, height=SIZE[0], width=SIZE[1], randomisation=world,
                              drive_frames=FRAMES, rate_hz=RATE_HZ), progress=False)
    return out


def _videos(out: Path) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "labels/box_track_20/val").glob("*.json"))}


def test_box_track_files_read_by_scalabel_in_the_toolkits_categories(drives: Path) -> None:
    io = pytest.importorskip("scalabel.label.io", reason="the BDD100K toolkit (make setup's toolkit extra)")
    from bdd100k.common.utils import load_bdd100k_config
    from scalabel.label.utils import get_leaf_categories

    categories = {c.name for c in get_leaf_categories(load_bdd100k_config("box_track").scalabel.categories)}
    videos = io.group_and_sort(io.load(str(drives / "labels/box_track_20/val")).frames)
    assert [v[0].videoName for v in videos] == [video_name(4, "val", d) for d in range(3)]
    for video in videos:
        assert [f.frameIndex for f in video] == list(range(FRAMES))
        assert [f.timestamp for f in video] == [round(1000 * i / RATE_HZ) for i in range(FRAMES)]
        labels = [label for frame in video for label in frame.labels or []]
        assert labels and {label.category for label in labels} <= categories
        assert all(label.id.isdigit() for label in labels)  # the toolkit reads predictions' ids as integers


def test_identities_persist_and_the_det_labels_agree(drives: Path) -> None:
    det = {f["name"]: {label["id"]: label["box2d"] for label in f["labels"]}
           for f in json.loads(SplitPaths(drives, "val").det_json.read_text())}
    persisted = 0
    for frames in _videos(drives).values():
        ids = [{label["id"] for label in frame["labels"]} for frame in frames]
        persisted += sum(len(a & b) for a, b in zip(ids, ids[1:]))
        for frame in frames:  # the same boxes under the same ids as the frame's detection labels
            assert all(det[frame["name"]][label["id"]] == label["box2d"] for label in frame["labels"])
    assert persisted >= 5 * 3 * (FRAMES - 1)  # several objects stay in view from frame to frame


def _project(x: float, y: float, fx: float, fy: float, cx: float, cy: float, height: float, pitch: float
             ) -> tuple[float, float]:
    """A ground point (vehicle frame: x ahead, y left, on the road) in the image of a pinhole camera height metres
    above the origin, pitched down by pitch radians, without roll."""
    forward = np.array([math.cos(pitch), 0.0, -math.sin(pitch)])
    down = np.array([-math.sin(pitch), 0.0, -math.cos(pitch)])
    right = np.array([0.0, -1.0, 0.0])
    ray = np.array([x, y, -height])
    depth = float(ray @ forward)
    return cx + fx * float(ray @ right) / depth, cy + fy * float(ray @ down) / depth


def test_places_in_metres_project_onto_the_boxes(drives: Path) -> None:
    truth = load_ground_truth(SplitPaths(drives, "val"))
    checked = 0
    for frames in _videos(drives).values():
        for frame in frames:
            ground = truth[frame["name"]]
            i = ground.intrinsics
            assert ground.pose.pitch == pytest.approx(math.radians(PITCH_DEG)) and ground.pose.roll == 0.0
            places = {o.track_id: o for o in ground.objects}
            assert set(places) == {label["id"] for label in frame["labels"]}
            for label in frame["labels"]:
                a, box = label["attributes"], label["box2d"]
                if a["occluded"] or a["truncated"] or label["category"] == "rider":  # a rider's feet are off the road
                    continue
                u, v = _project(*places[label["id"]].contact, i.fx, i.fy, i.cx, i.cy, ground.pose.z, ground.pose.pitch)
                assert v == pytest.approx(box["y2"], abs=2.0), (frame["name"], label)
                if label["category"] in ("car", "truck", "bus") and abs(places[label["id"]].contact[1]) < 0.8:
                    assert u == pytest.approx(0.5 * (box["x1"] + box["x2"]), abs=2.0)  # seen straight from behind
                checked += 1
    assert checked >= 20


def test_velocities_are_the_change_of_place(drives: Path) -> None:
    truth = load_ground_truth(SplitPaths(drives, "val"))
    compared = 0
    for frames in _videos(drives).values():
        for before, after in zip(frames, frames[1:]):
            now = {o.track_id: o for o in truth[before["name"]].objects}
            for later in truth[after["name"]].objects:
                if later.track_id in now:
                    dx = later.contact[0] - now[later.track_id].contact[0]
                    assert dx == pytest.approx(now[later.track_id].velocity[0] / RATE_HZ, abs=1e-6)
                    compared += 1
    assert compared > 20


def test_synth_cli_renders_drives(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(tmp_path), "--train", "0",
                             "--val", "6", "--drive-frames", "3", "--rate-hz", "5", "--size", "144x256"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    paths = SplitPaths(tmp_path, "val")
    files = sorted(paths.box_track.glob("*.json"))
    assert [p.stem for p in files] == [video_name(0, "val", 0), video_name(0, "val", 1)]
    assert [f["timestamp"] for f in json.loads(files[0].read_text())] == [0, 200, 400]


@pytest.mark.parametrize("args, message", [(["--drive-frames", "-1"], "--drive-frames must be >= 0"),
                                           (["--drive-frames", "4", "--rate-hz", "0"], "frame rate")])
def test_synth_cli_refuses_bad_drive_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(tmp_path), "--val", "4",
                             *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
