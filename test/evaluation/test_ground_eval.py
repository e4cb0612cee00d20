"""eval-ground against the synthetic scenes' ground truth in metres, and what it says without any."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtl_perception.cli import main
from mtl_perception.data.bdd100k import SplitPaths, decode_lane_mask
from mtl_perception.data.ground_truth import FrameGround, ground_json, lateral, load_ground_truth
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic import render_scene
from mtl_perception.data.synthetic_set import SynthConfig, write_dataset
from mtl_perception.runtime.ground import ground_to_pixels


@pytest.fixture(scope="module")
def ground_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ground")
    # full size: the bundled model was trained on 1280x720 frames and is weaker on smaller renderings
    write_dataset(SynthConfig(out, train=0, val=12, seed=5), progress=False)
    return out


def test_ground_truth_lands_on_the_painted_markings() -> None:
    """The recorded camera and marking curves put each solid marking on lane pixels of the frame's mask."""
    checked = 0
    for i in range(10):
        scene = render_scene(np.random.default_rng([11, i]))
        lane = decode_lane_mask(scene.lane)
        truth = scene.ground
        for marking in truth.markings:
            if marking.dashed or marking.category.startswith("double"):  # a double line's centre is its gap
                continue
            if abs(float(lateral(marking.coefficients, 20.0))) > 6.0:
                continue  # far to the side a row spans several columns of a thin line: rows are drawn as steps
            x = np.array([d for d in np.arange(8.0, 30.0, 0.5) if truth.has_markings_at(d)])
            points = np.stack([x, lateral(marking.coefficients, x), np.zeros_like(x)], axis=1)
            pixels, _ = ground_to_pixels(points, truth.intrinsics, truth.pose)
            u, v = np.floor(pixels).astype(int).T
            inside = (u >= 0) & (u < lane.shape[1]) & (v >= 0) & (v < lane.shape[0])
            free = inside.copy()
            free[inside] = scene.object_ids[v[inside], u[inside]] < 0  # not behind an object
            if free.sum() < 10:
                continue
            assert lane[v[free], u[free]].mean() > 0.8, (i, marking)  # unlabelled poles hide a few
            checked += 1
    assert checked >= 10


def test_record_round_trip(ground_set: Path) -> None:
    truth = load_ground_truth(SplitPaths(ground_set, "val"))
    assert len(truth) == 12
    frame = next(iter(truth.values()))
    assert FrameGround.from_record(frame.to_record("x")) == frame
    world = Randomisation()
    for frame in truth.values():
        assert np.radians(world.pitch_deg[0]) <= frame.pose.pitch <= np.radians(world.pitch_deg[1])
        assert abs(frame.pose.roll) <= np.radians(world.roll_deg_max)
        assert world.mount_height_m[0] <= frame.pose.z <= world.mount_height_m[1]


def test_geometry_and_bundled_model_meet_the_targets(ground_set: Path, bundled_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "ground.json"
    picture = tmp_path / "ground.png"
    assert main(["eval-ground", "--data", str(ground_set), "--model", str(bundled_model), "--json", str(out),
                 "--picture", str(picture)]) == 0
    results = json.loads(out.read_text())
    geometry, model = results["ground_truth_masks"], results["model"]
    # issue 15's targets; the model's on 12 frames only, so with some room for a small sample
    assert geometry["iou_median"] >= 0.97 and geometry["lateral_error_20m_median"] < 0.05
    assert geometry["marking_recall_20m"] > 0.9
    assert model["iou_median"] >= 0.85 and model["lateral_error_20m_median"] < 0.15
    assert picture.stat().st_size > 10_000


def test_a_split_without_ground_truth_says_so(ground_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(ground_set, copy)
    ground_json(SplitPaths(copy, "val")).unlink()
    assert main(["eval-ground", "--data", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ground_val.json not found" in err[0] and "synthetic" in err[0]


def _pixels_of(truth: FrameGround, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The in-view pixels (u, v) of ground points (x, y)."""
    pixels, ahead = ground_to_pixels(np.stack([x, y, np.zeros_like(x)], axis=1), truth.intrinsics, truth.pose)
    u, v = np.floor(pixels).astype(int).T
    inside = ahead & (u >= 0) & (u < truth.intrinsics.width) & (v >= 0) & (v < truth.intrinsics.height)
    return u[inside], v[inside]


def test_rig_views_paint_the_road_where_the_truth_puts_it() -> None:
    """Each rig camera's picture and labels, checked by projecting the truth into it (ground_to_pixels, the
    other direction from the renderer's ray casting): solid markings on lane pixels and bright paint, the road
    1 m inside its edges drivable, the verge 2 m outside not."""
    from mtl_perception.data.rig import render_rig

    checked = {"marking": 0, "road": 0}
    for seed in range(3):
        scene = render_rig(np.random.default_rng([21, seed]))
        for name, view in scene.views.items():
            truth = view.truth
            x = np.arange(6.0, 30.0, 0.25)
            x = x[(x <= truth.road_far) & np.array([truth.has_markings_at(d) for d in x])]

            grey = view.image.mean(axis=2)
            for marking in truth.markings:
                if marking.dashed or marking.category.startswith("double"):  # a double line's centre is its gap
                    continue
                u, v = _pixels_of(truth, x, lateral(marking.coefficients, x))
                if len(u) >= 10:
                    assert view.lane[v, u].mean() > 0.8, (seed, name, marking)
                    assert grey[v, u].mean() > 125  # paint (white, or yellow at about 150), brighter than asphalt (100)
                    checked["marking"] += 1
            for edge, inward in ((truth.left_edge, -1.0), (truth.right_edge, 1.0)):
                u, v = _pixels_of(truth, x, lateral(edge, x) + inward)
                if len(u) >= 10:
                    assert view.drivable[v, u].mean() > 0.95, (seed, name)
                    checked["road"] += 1
                u, v = _pixels_of(truth, x, lateral(edge, x) - 2 * inward)
                if len(u) >= 10:
                    assert view.drivable[v, u].mean() < 0.05, (seed, name)
    assert checked["marking"] >= 5 and checked["road"] >= 10, checked


def test_eval_ground_scores_the_rigs_fused_grid(bundled_model: Path, tmp_path: Path) -> None:
    out, picture = tmp_path / "rig.json", tmp_path / "rig.png"
    assert main(["eval-ground", "--rig", "3", "--model", str(bundled_model), "--backend", "onnxruntime",
                 "--json", str(out), "--picture", str(picture)]) == 0
    results = json.loads(out.read_text())
    geometry, model = results["ground_truth_masks"], results["model"]
    assert set(geometry) == {"front", "front_left", "front_right", "fused"}
    # the rig's own masks: the geometry alone, exact but for the cells the road's edge cuts
    assert geometry["fused"]["iou_mean"] >= 0.97 and geometry["fused"]["coverage_mean"] >= 0.99
    # the side cameras see what the front one misses
    assert geometry["fused"]["coverage_mean"] > geometry["front"]["coverage_mean"] + 0.05
    assert model["fused"]["coverage_mean"] == geometry["fused"]["coverage_mean"]
    assert model["fused"]["iou_mean"] > 0.5  # 0.63 over 50 scenes (docs/benchmarks.md); 3 here
    assert picture.stat().st_size > 10_000


def test_eval_ground_scores_the_scene_over_time_on_drives(bundled_model: Path, tmp_path: Path) -> None:
    """On a split of drives (issue 32 item 5): the labelled boxes fed as detections keep their identities (IDF1,
    the toolkit's OVERALL row, >= 95) and are placed within 3 % of their distance (median, 5-40 m, the geometry
    being exact); the ego lane from the labelled markings is found and lies within centimetres of the truth; the
    model's run reports the same figures for itself."""
    data = tmp_path / "drives"
    write_dataset(SynthConfig(data, train=0, val=16, seed=5, drive_frames=8), progress=False)
    out = tmp_path / "scene.json"
    assert main(["eval-ground", "--data", str(data), "--model", str(bundled_model), "--threads", "2",
                 "--json", str(out)]) == 0
    scene = json.loads(out.read_text())["scene"]
    labels, model = scene["labels"], scene["model"]
    assert labels["tracking"]["IDF1"] >= 95.0 and labels["tracking"]["frames"] == 16
    assert labels["distance_relative_error_5_40m_median"] <= 0.03
    assert sum(band["objects"] for band in labels["distance_relative_error"].values()) > 30
    assert labels["ego_lane"]["found"] >= 0.5 and labels["ego_lane"]["boundary_error_10m_median"] < 0.1
    for key in ("tracking", "distance_relative_error", "ego_lane"):
        assert key in model
    assert model["tracking"]["videos"] == 2 and model["ego_lane"]["frames"] == 16


def test_the_rig_renders_a_drive() -> None:
    """data/rig.py's drive (issue 32 item 1): one road and mounting for every frame, the car moving along it, so
    the dashes come towards each camera frame by frame, and a dash period's drive later they are back where they
    were; the road's truth in metres is the same throughout."""
    from mtl_perception.data.rig import DASH_PERIOD_M, render_rig_drive

    rate = 10.0
    scenes = list(render_rig_drive(np.random.default_rng(1), 3, rate_hz=rate, height=120, width=160,
                                   speed_mps=(DASH_PERIOD_M * rate, DASH_PERIOD_M * rate)))  # a dash period a frame
    moved = list(render_rig_drive(np.random.default_rng(1), 2, rate_hz=rate, height=120, width=160,
                                  speed_mps=(0.5 * DASH_PERIOD_M * rate, 0.5 * DASH_PERIOD_M * rate)))
    for name in scenes[0].views:
        first, later = scenes[0].views[name], scenes[2].views[name]
        assert np.array_equal(first.lane, later.lane) and np.array_equal(first.drivable, later.drivable)
        assert first.truth.markings == later.truth.markings and first.truth.pose == later.truth.pose
        assert not np.array_equal(first.image, later.image)  # the sensor's noise is each frame's own
    assert any(m.dashed for m in scenes[0].road.markings)  # this seed's road has dashed lines, which half a period
    assert not np.array_equal(moved[0].views["front"].lane, moved[1].views["front"].lane)  # moves
