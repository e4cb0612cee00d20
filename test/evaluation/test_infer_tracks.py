"""infer's tracks.json (issue 32 item 5, infer's part): a video's tracked boxes in BDD100K's box_track layout,
read back with scalabel's own loader (the format box_track_20 and `bdd100k.eval.run -t box_track` read)."""

from __future__ import annotations

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
