"""infer's tracks.json (issue 32 item 5, infer's part): a video's tracked boxes in BDD100K's box_track layout,
read back with scalabel's own loader (the format box_track_20 and `bdd100k.eval.run -t box_track` read)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from mtl_perception.data.synthetic import render_scene


def test_a_videos_tracks_load_with_scalabel_and_keep_their_ids(bundled_model: Path, tmp_path: Path) -> None:
    from scalabel.label.io import load

    image = render_scene(np.random.default_rng(3), 360, 640).image  # a road with cars, moving left 6 px a frame
    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 360))
    for i in range(6):
        writer.write(np.ascontiguousarray(np.roll(image, -6 * i, axis=1)))
    writer.release()
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "infer", "--model", str(bundled_model),
                             "--input", str(video), "--out", str(tmp_path / "out"), "--backend", "onnxruntime"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    frames = load(str(tmp_path / "out" / "tracks.json")).frames
    assert [(f.videoName, f.frameIndex) for f in frames] == [("drive", i) for i in range(6)]
    ids = [{label.id for label in f.labels or []} for f in frames]
    assert ids[0] and set.intersection(*ids), ids  # a car tracked through all six frames under one ID
    assert all(label.box2d is not None and label.category for f in frames for label in f.labels or [])


def _camera_info_yaml(path: Path, fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> None:
    """camera_info_manager's YAML, as camera_calibration writes it."""
    path.write_text(f"""image_width: {width}
image_height: {height}
camera_name: front
camera_matrix:
  rows: 3
  cols: 3
  data: [{fx}, 0.0, {cx}, 0.0, {fy}, {cy}, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
""")


def test_with_the_camera_infer_writes_the_scene_over_time(bundled_model: Path, tmp_path: Path) -> None:
    """--camera-info and --camera-pose: scene.json holds each frame's road users on the ground (with their track
    ids, and velocities once the tracks are old enough) and its ego lane, as the node publishes them; the road
    users lie where the drive's truth puts them."""
    from mtl_perception.data.drive import DriveSettings, plan_drive, render_drive_frame
    from mtl_perception.data.randomisation import Randomisation

    drive = plan_drive((5, 1), DriveSettings(6), 360, 640, Randomisation().fixed_camera())
    folder = tmp_path / "frames"
    folder.mkdir()
    scenes = [render_drive_frame(drive, i) for i in range(6)]
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(folder / f"{i:03d}.png"), scene.image)
    i, pose = scenes[0].ground.intrinsics, scenes[0].ground.pose
    _camera_info_yaml(tmp_path / "front.yaml", i.fx, i.fy, i.cx, i.cy, i.width, i.height)
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "infer", "--model", str(bundled_model),
                             "--input", str(folder), "--out", str(tmp_path / "out"), "--backend", "onnxruntime",
                             "--camera-info", str(tmp_path / "front.yaml"),
                             "--camera-pose", f"0,0,{pose.z},{pose.roll},{pose.pitch},0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    scene = json.loads((tmp_path / "out" / "scene.json").read_text())
    tracks = json.loads((tmp_path / "out" / "tracks.json").read_text())
    assert [f["frameIndex"] for f in scene] == list(range(6))
    nearest = []
    for frame, tracked, truth in zip(scene, tracks, scenes):
        assert {o["id"] for o in frame["objects"] if o["id"]} <= {label["id"] for label in tracked["labels"]}
        lane = frame["ego_lane"]
        assert lane["valid"] or lane["reason"]
        places = [o.contact for o in truth.ground.objects]
        for placed in frame["objects"]:  # each placed road user near one the drive has there
            x, y = placed["contact_m"]
            if 5 <= x <= 40:
                nearest.append(min(np.hypot(x - px, y - py) / np.hypot(px, py) for px, py in places))
    assert nearest and np.median(nearest) < 0.1
    assert any(o["velocity_mps"] is not None for f in scene[3:] for o in f["objects"])
    assert any(f["ego_lane"]["valid"] for f in scene)
    alone = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "infer", "--model", str(bundled_model),
                            "--input", str(folder), "--out", str(tmp_path / "out2"), "--camera-info",
                            str(tmp_path / "front.yaml")], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "go together" in alone.stderr and not (tmp_path / "out2").exists()
