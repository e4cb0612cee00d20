"""eval, make-bag, eval-bag and bench as a user runs them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from mtl_perception.bags import FRAMES_FILE, read_image_frames


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", *args], capture_output=True, text=True)


def _images(labelled_set: Path) -> Path:
    return labelled_set / "images" / "100k" / "val"


def test_eval_json(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = _cli("eval", "--data", str(labelled_set), "--split", "val", "--model", str(random_model),
                  "--json", str(out), "--limit", "4")
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["frames"] == 4
    assert {"map50", "map50_95", "recall"} <= set(summary["det"])
    assert {"miou", "iou", "acc"} <= set(summary["drivable"]) and {"acc", "iou"} <= set(summary["lane"])
    assert {"p50", "p90"} <= set(summary["latency_ms"])
    assert "| drivable area | mIoU (YOLOP) |" in result.stdout  # --json FILE: the table is printed too
    assert summary["tasks"] == {"scored": ["detection", "drivable", "lane"], "skipped": {}}
    assert {"f1_1px", "f1_2px", "f1_5px"} <= set(summary["lane"])
    assert set(summary["det_toolkit"]["overall"]) == {"AP", "AP50", "AP75", "AR100"}
    assert {"recall_occluded", "recall_visible"} <= set(summary["det_occlusion"])


def _partial_copy(labelled_set: Path, tmp_path: Path, keep: set[str]) -> Path:
    """The labelled set with only some of BDD100K's label downloads, as many users have it."""
    root = tmp_path / "partial"
    shutil.copytree(labelled_set, root)
    folders = {"detection": root / "labels/det_20", "drivable": root / "labels/drivable", "lane": root / "labels/lane"}
    for task, folder in folders.items():
        if task not in keep:
            shutil.rmtree(folder)
    return root


def test_eval_detection_only_with_every_det20_category(labelled_set: Path, random_model: Path,
                                                       tmp_path: Path) -> None:
    root = _partial_copy(labelled_set, tmp_path, {"detection"})
    det_json = root / "labels/det_20/det_val.json"
    frames = json.loads(det_json.read_text())
    box = {"x1": 10.0, "y1": 10.0, "x2": 60.0, "y2": 50.0}
    every = ["pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "traffic light",
             "traffic sign", "other person", "other vehicle", "trailer", "person", "bike", "motor"]
    frames[0]["labels"] += [{"id": f"x{i}", "category": c, "box2d": box,
                             "attributes": {"occluded": i % 2 == 0, "truncated": False, "crowd": c == "car"}}
                            for i, c in enumerate(every)]
    det_json.write_text(json.dumps(frames))
    check = _cli("check-data", "--data", str(root), "--split", "val", "--json")
    assert "not BDD100K det_20" not in check.stdout  # every det_20 category and older name is known
    result = _cli("eval", "--data", str(root), "--split", "val", "--model", str(random_model), "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert "scored: detection" in result.stdout
    assert "skipped drivable: " in result.stdout and "labels/drivable/masks/val not found" in result.stdout
    assert "| drivable area" not in result.stdout and "AP (BDD100K toolkit, x100)" in result.stdout


@pytest.mark.parametrize("task", ["drivable", "lane"])
def test_eval_one_mask_kind_only(labelled_set: Path, random_model: Path, tmp_path: Path, task: str) -> None:
    root = _partial_copy(labelled_set, tmp_path, {task})
    result = _cli("eval", "--data", str(root), "--split", "val", "--model", str(random_model), "--limit", "2",
                  "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["tasks"]["scored"] == [task] and set(summary["tasks"]["skipped"]) == {"detection", "drivable",
                                                                                         "lane"} - {task}
    assert task in summary and "det" not in summary and summary["frames"] == 2


def test_unknown_categories_are_named_by_check_data(labelled_set: Path, tmp_path: Path) -> None:
    root = _partial_copy(labelled_set, tmp_path, {"detection", "drivable", "lane"})
    det_json = root / "labels/det_20/det_val.json"
    frames = json.loads(det_json.read_text())
    frames[0]["labels"] += [{"category": "hovercraft", "box2d": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}}] * 2
    det_json.write_text(json.dumps(frames))
    check = _cli("check-data", "--data", str(root), "--split", "val", "--json")
    assert check.returncode == 1
    assert "'hovercraft' x2" in json.loads(check.stdout)["problems"][-1]


def test_saved_predictions_score_as_eval_scored_them(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    predictions, out = tmp_path / "pred.json", tmp_path / "eval.json"
    result = _cli("eval", "--data", str(labelled_set), "--split", "val", "--model", str(random_model), "--json",
                  str(out), "--save-predictions", str(predictions))
    assert result.returncode == 0, result.stderr
    frames = json.loads(predictions.read_text())
    assert len(frames) == 6 and {"name", "labels"} <= set(frames[0])
    assert {"category", "box2d", "score"} <= set(frames[0]["labels"][0])
    scored = _cli("score-det", "--labels", str(labelled_set / "labels/det_20/det_val.json"), "--predictions",
                  str(predictions), "--json")
    assert scored.returncode == 0, scored.stderr
    # boxes and scores are rounded in the file (2 and 5 decimals): the figures agree to that
    expected = json.loads(out.read_text())["det_toolkit"]["overall"]
    for metric, value in json.loads(scored.stdout)["overall"].items():
        assert value == pytest.approx(expected[metric], abs=0.05), metric



def test_saved_predictions_of_a_vehicle_model_keep_its_class_and_score_det_says_why_not(
        labelled_set: Path, tmp_path: Path) -> None:
    """A merged-vehicle model (train --classes vehicle) once saved [] and score-det showed zeros in silence."""
    from mtl_perception.training.export import export_onnx
    from mtl_perception.training.model import build_untrained

    model = tmp_path / "vehicle.onnx"
    export_onnx(build_untrained("mobilenetv2", ("vehicle",)), model, 256, 384, "random weights: a test's")
    predictions = tmp_path / "pred.json"
    result = _cli("eval", "--data", str(labelled_set), "--split", "val", "--model", str(model), "--json", "-",
                  "--save-predictions", str(predictions))
    assert result.returncode == 0, result.stderr
    assert "in the model's classes, vehicle" in result.stderr
    frames = json.loads(predictions.read_text())
    assert len(frames) == 6 and {lb["category"] for f in frames for lb in f["labels"]} == {"vehicle"}
    scored = _cli("score-det", "--labels", str(labelled_set / "labels/det_20/det_val.json"), "--predictions",
                  str(predictions))
    assert scored.returncode == 2 and "no prediction is of a BDD100K det_20 class ('vehicle' x" in scored.stderr

@pytest.mark.parametrize(("storage", "compressed"), [("mcap", False), ("sqlite3", True)])
def test_make_bag_round_trip(labelled_set: Path, tmp_path: Path, storage: str, compressed: bool) -> None:
    bag = tmp_path / "bag"
    args = ["make-bag", "--images", str(_images(labelled_set)), "--out", str(bag), "--storage", storage,
            "--rate", "5"]
    result = _cli(*args, *(["--compressed"] if compressed else []))
    assert result.returncode == 0, result.stderr
    stamps = json.loads((bag / FRAMES_FILE).read_text())
    frames = list(read_image_frames(bag))
    assert len(frames) == len(stamps) == 6
    assert [f.stamp_ns for f in frames] == sorted(stamps.values())
    assert frames[1].stamp_ns - frames[0].stamp_ns == 200_000_000  # 5 Hz
    assert frames[0].image.shape == (288, 512, 3)
    assert frames[0].topic == "/camera/image_raw" + ("/compressed" if compressed else "")
    assert _cli(*args).returncode == 2  # an existing bag is never overwritten


def test_eval_bag_with_labels(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    bag, out = tmp_path / "in", tmp_path / "out"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag)).returncode == 0
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out), "--labels",
                  str(labelled_set), "--split", "val", "--overlays", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 6 and summary["metrics"]["frames"] == 6
    assert {"p50", "p90", "p99"} == set(summary["latency_ms"])
    # readable with rosbags' stock types only: the vision_msgs definitions travel in the bag
    in_stamps = {f.stamp_ns for f in read_image_frames(bag)}
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        # the node's own topic names (perception_node with no namespace), as the summary says
        assert counts == {"/detections": 6, "/drivable_mask": 6, "/lane_mask": 6, "/overlay": 6}
        assert summary["topics"] == ["/detections", "/drivable_mask", "/lane_mask", "/overlay"]
        for connection, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            assert stamp in in_stamps and msg.header.frame_id == "camera"
            assert msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == stamp
            if connection.topic.endswith("_mask"):
                assert (msg.width, msg.height, msg.encoding) == (512, 288, "mono8")
                assert set(np.unique(msg.data)) <= {0, 255}
    # beside the bag's own files, its frames' tracks in BDD100K's box_track layout, one video named after the bag
    tracks = json.loads((out / "tracks.json").read_text())
    assert [f["frameIndex"] for f in tracks] == list(range(6)) and {f["videoName"] for f in tracks} == {"in"}
    assert [f["timestamp"] for f in tracks] == sorted(stamp // 1_000_000 for stamp in in_stamps)


def test_eval_bag_writes_the_ground_outputs(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    """--ground with a synthetic split's labels: each frame's own camera gives a grid and marking points,
    readable with rosbags' stock Humble types and the bag's embedded definitions."""
    bag, out = tmp_path / "in", tmp_path / "out"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag)).returncode == 0
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out), "--labels",
                  str(labelled_set), "--split", "val", "--ground", "--namespace", "cam_front")
    assert result.returncode == 0, result.stderr
    assert "6 drivable grids" in result.stdout
    assert "(topics /cam_front/detections, /cam_front/drivable_mask, /cam_front/lane_mask, /cam_front/drivable_grid, " \
           "/cam_front/lane_marking_points, /cam_front/objects, /cam_front/objects/motion, /cam_front/ego_lane/left, " \
           "/cam_front/ego_lane/right, /cam_front/ego_lane)" in result.stdout
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        # the scene over time, as the node publishes it; mtl_perception_msgs' definitions travel in the bag too
        scene = {t: by_topic[f"/cam_front/{t}"] for t in ("objects", "objects/motion", "ego_lane/left", "ego_lane")}
        assert all(c.msgcount == 6 for c in scene.values())
        for connection, stamp, raw in reader.messages(connections=list(scene.values())):
            msg = reader.deserialize(raw, connection.msgtype)
            assert msg.header.frame_id == "base_link"
            assert msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == stamp
            if connection.msgtype == "mtl_perception_msgs/msg/EgoLane":
                assert msg.valid or msg.reason
        grid, points = by_topic["/cam_front/drivable_grid"], by_topic["/cam_front/lane_marking_points"]
        assert grid.msgtype == "nav_msgs/msg/OccupancyGrid" and grid.msgcount == 6
        assert "MapMetaData info" in grid.msgdef.data  # the definition travels in the bag
        assert points.msgtype == "sensor_msgs/msg/PointCloud2" and points.msgcount == 6
        for connection, stamp, raw in reader.messages(connections=[grid, points]):
            msg = reader.deserialize(raw, connection.msgtype)
            assert msg.header.frame_id == "base_link"
            assert msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == stamp
            if connection is grid:
                assert (msg.info.width, msg.info.height) == (400, 200) and msg.info.resolution == pytest.approx(0.1)
                assert set(np.unique(msg.data).tolist()) <= {-1, 0, 100}
            else:
                assert [f.name for f in msg.fields] == ["x", "y", "z", "marking_id"]
                assert len(msg.data) == msg.width * msg.point_step


def test_eval_bag_ground_without_a_camera_says_what_is_missing(labelled_set: Path, random_model: Path,
                                                               tmp_path: Path) -> None:
    bag = tmp_path / "in"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag)).returncode == 0
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(tmp_path / "out"),
                  "--ground")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no sensor_msgs/CameraInfo message and --camera-pose is not given" in lines[0]


def test_eval_bag_bad_input(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    bag = tmp_path / "in"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag)).returncode == 0

    wrong_topic = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(tmp_path / "o1"),
                       "--topic", "/front/image")
    assert wrong_topic.returncode == 2
    assert "topic /front/image is not an image topic" in wrong_topic.stderr and "/camera/image_raw" in wrong_topic.stderr

    other = tmp_path / "other_labels"
    from mtl_perception.data.synthetic_set import SynthConfig, write_dataset

    write_dataset(SynthConfig(other, train=0, val=2, seed=99, height=96, width=128), progress=False)
    (other / "labels/det_20/det_val.json").write_text(
        (other / "labels/det_20/det_val.json").read_text().replace("synth0099", "other"))
    unmatched = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(tmp_path / "o2"),
                     "--labels", str(other), "--split", "val")
    assert unmatched.returncode == 2 and "match no frame" in unmatched.stderr

    no_images = tmp_path / "strings"
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(no_images, version=8) as writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        writer.write(conn, 1, store.serialize_cdr(store.types["std_msgs/msg/String"](data="hi"), conn.msgtype))
    empty = _cli("eval-bag", "--bag", str(no_images), "--model", str(random_model), "--out", str(tmp_path / "o3"))
    assert empty.returncode == 2 and "no sensor_msgs/Image or CompressedImage topics" in empty.stderr
    assert "/chatter (std_msgs/msg/String)" in empty.stderr


def test_eval_bag_truncated_bag_leaves_no_result(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    bag = tmp_path / "in"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag), "--storage",
                "sqlite3").returncode == 0
    db = next(bag.glob("*.db3"))
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    out = tmp_path / "out"
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out))
    assert result.returncode == 2
    assert "corrupt or truncated" in result.stderr and f"{out} was not written" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial"))  # nothing that passes for a result


def test_make_bag_leaves_nothing_on_a_bad_image_or_a_bad_name(labelled_set: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    shutil.copytree(_images(labelled_set), images)
    (images / "zz_broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "drive"
    result = _cli("make-bag", "--images", str(images), "--out", str(out))
    assert result.returncode == 2 and "zz_broken.jpg is unreadable" in result.stderr and "was not written" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    suffixed = _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(tmp_path / "drive.bag"))
    assert suffixed.returncode == 2 and "must not end in .bag" in suffixed.stderr


def test_interrupted_eval_bag_leaves_no_result(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    bag = tmp_path / "in"
    images = tmp_path / "images"
    images.mkdir()
    for i in range(600):  # jpeg bytes as they are: long enough to replay to be interrupted in the middle
        shutil.copy(next(_images(labelled_set).glob("*.jpg")), images / f"{i:04d}.jpg")
    assert _cli("make-bag", "--images", str(images), "--out", str(bag), "--compressed").returncode == 0
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "mtl_perception.cli", "eval-bag", "--bag", str(bag), "--model",
                                str(random_model), "--out", str(out), "--json"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (tmp_path / ".out.partial").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert process.poll() is None, "eval-bag ended before it could be interrupted: give it more frames"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


def _image_bag(bag: Path, frames: list[tuple[int, str, np.ndarray]],
               mangle: Callable[[int, bytes], bytes] = lambda i, raw: raw) -> None:
    """A bag of 96x128 Image messages on /camera/image_raw, written with rosbags itself: (nanoseconds after
    1 s, encoding, data) per message, whose serialised bytes `mangle(index, raw)` may damage."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    t = store.types
    with Writer(bag, version=8) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i, (nanosec, encoding, data) in enumerate(frames):
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=nanosec),
                                              frame_id="camera")
            msg = t["sensor_msgs/msg/Image"](header=header, height=96, width=128, encoding=encoding, is_bigendian=0,
                                             step=384, data=data)
            writer.write(conn, 1_000_000_000 + nanosec, mangle(i, store.serialize_cdr(msg, conn.msgtype)))


def test_eval_bag_skips_and_counts_an_undecodable_message(random_model: Path, tmp_path: Path) -> None:
    bag, out = tmp_path / "mixed", tmp_path / "out"
    good = np.full((96, 128, 3), 90, np.uint8).reshape(-1)
    _image_bag(bag, [(i, "bgr8", good) for i in range(3)],
               mangle=lambda i, raw: b"\xff\xff\xff\xff" + raw[4:] if i == 1 else raw)
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 2 and summary["bad_frames"]["count"] == 1
    assert "undecodable message" in summary["bad_frames"]["first"][0]["problem"]


def test_bench_json(tmp_path: Path) -> None:
    result = _cli("bench", "--backbones", "mobilenetv2", "--sizes", "256x384", "--runs", "3", "--out",
                  str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (row,) = data["latency"]
    assert set(row) >= {"backbone", "size", "backend", "median_ms", "p90_ms", "fps", "gflops"}
    assert row["median_ms"] > 0 and row["fps"] == pytest.approx(1000 / row["median_ms"])
    assert data["model_card"][0]["backbone"] == "mobilenetv2"
    assert (tmp_path / "latency.png").stat().st_size > 1000 and "| mobilenetv2 | 256x384 |" in \
        (tmp_path / "bench.md").read_text()


def test_bench_scene_prints_each_stages_cost() -> None:
    """bench-scene (issue 32's cost figure): every stage timed over the frames asked for, the total their sum;
    the figures themselves go in docs/benchmarks.md, not into a test."""
    result = _cli("bench-scene", "--objects", "12", "--frames", "15", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    stages = data["ms_per_frame"]
    assert list(stages) == ["tracking", "placing", "velocities", "ego lane", "total"]
    assert all(stages[name]["p50"] > 0 for name in stages) and data["objects"] == 12
    refused = _cli("bench-scene", "--objects", "0")
    assert refused.returncode == 2 and "--objects" in refused.stderr and "Traceback" not in refused.stderr


def test_bench_and_model_card_take_a_model_file(bundled_model: Path, bundled_checkpoint: Path, tmp_path: Path) -> None:
    """--model FILE: an exported model is timed at its own input, and its card gives the parameters its file
    records (no FLOPs: counting them needs the network): the network's count, which the checkpoint the file
    ships with gives too, a little above onnx's count of the initializers, where BatchNorm is folded."""
    import onnx

    result = _cli("bench", "--model", str(bundled_model), "--runs", "3", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["latency"]
    assert (row["backbone"], row["size"], row["gflops"]) == ("mobilenetv2", "384x640", None) and row["median_ms"] > 0
    card = _cli("model-card", "--model", str(bundled_model), "--json")
    assert card.returncode == 0, card.stderr
    (entry,) = json.loads(card.stdout)
    from mtl_perception.training.checkpoint import model_from_checkpoint
    from mtl_perception.training.model import parameter_count

    initializers = sum(int(np.prod(t.dims)) for t in onnx.load(str(bundled_model)).graph.initializer)
    network = parameter_count(model_from_checkpoint(bundled_checkpoint))
    assert entry["params"] == network and 0 < network - initializers < 0.01 * network and entry["gflops"] is None
    assert entry["source"] == str(bundled_model)
    for command in ("bench", "model-card"):
        missing = _cli(command, "--model", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "b")) \
            if command == "bench" else _cli(command, "--model", str(tmp_path / "none.pt"))
        assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_eval_bag_skips_and_counts_bad_frames(random_model: Path, tmp_path: Path) -> None:
    """As the node does: a bad frame is skipped and counted, the replay goes on; the first few are named."""
    bag, out = tmp_path / "mixed", tmp_path / "out"
    good = np.full((96, 128, 3), 90, np.uint8).reshape(-1)
    _image_bag(bag, [(i * 100_000_000, encoding, data) for i, (encoding, data) in
                     enumerate([("bgr8", good), ("yuv422", good), ("bgr8", good[:500]), ("bgr8", good)])])
    result = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 2 and summary["bad_frames"]["count"] == 2
    first = summary["bad_frames"]["first"]
    assert [b["index"] for b in first] == [1, 2] and [b["stamp_ns"] for b in first] == [1_100_000_000, 1_200_000_000]
    assert "'yuv422' is not supported" in first[0]["problem"] and "truncated" in first[1]["problem"]
    table = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(tmp_path / "out2"))
    assert "2 bad frame(s) skipped" in table.stdout and "#1 at 1100000000 ns" in table.stdout


def test_eval_bag_checks_its_input_before_any_output(labelled_set: Path, random_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = _cli("eval-bag", "--bag", str(tmp_path / "nowhere"), "--model", str(random_model), "--out", str(out))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and not out.exists()
    bag = tmp_path / "bag"
    assert _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag)).returncode == 0
    (bag / "metadata.yaml").unlink()
    no_meta = _cli("eval-bag", "--bag", str(bag), "--model", str(random_model), "--out", str(out))
    assert no_meta.returncode == 2 and not out.exists()
    assert f"ros2 bag reindex {bag}" in no_meta.stderr and "Traceback" not in no_meta.stderr
    assert len(no_meta.stderr.strip().splitlines()) == 1
    out.mkdir()  # an earlier result: refused, left alone, and not called partial
    (out / "result.mcap").write_bytes(b"earlier")
    exists = _cli("eval-bag", "--bag", str(tmp_path / "nowhere"), "--model", str(random_model), "--out", str(out))
    assert exists.returncode == 2 and "exists" in exists.stderr and "partial" not in exists.stderr
    assert (out / "result.mcap").read_bytes() == b"earlier"


CAMERA_YAML = """image_width: {w}
image_height: {h}
camera_name: front
camera_matrix:
  rows: 3
  cols: 3
  data: [1000.0, 0.0, {cx}, 0.0, 1000.0, {cy}, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [1000.0, 0.0, {cx}, 0.0, 0.0, 1000.0, {cy}, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_make_bag_records_camera_info_and_the_offered_qos(labelled_set: Path, tmp_path: Path) -> None:
    """A calibration in camera_info_manager's YAML goes beside every frame (so a replay gives drivable_grid),
    and the bag says what QoS its publishers offered, as `ros2 bag record` writes it."""
    import cv2

    from mtl_perception.bags import read_camera_info

    first = next(iter(sorted(_images(labelled_set).glob("*.jpg"))))
    h, w = cv2.imread(str(first)).shape[:2]
    calibration = tmp_path / "front.yaml"
    calibration.write_text(CAMERA_YAML.format(w=w, h=h, cx=w / 2, cy=h / 2))
    bag = tmp_path / "drive"
    result = _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(bag), "--camera-info",
                  str(calibration))
    assert result.returncode == 0, result.stderr
    intrinsics = read_camera_info(bag)
    assert intrinsics is not None and (intrinsics.fx, intrinsics.cx, intrinsics.width) == (1000.0, w / 2, w)
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        topics = {c.topic: c for c in reader.connections}
        assert set(topics) == {"/camera/image_raw", "/camera/camera_info"}
        assert topics["/camera/camera_info"].msgcount == topics["/camera/image_raw"].msgcount
        for connection in topics.values():
            (qos,) = connection.ext.offered_qos_profiles
            assert qos.reliability.name == "RELIABLE" and qos.durability.name == "VOLATILE"
    wrong = tmp_path / "other.yaml"
    wrong.write_text(CAMERA_YAML.format(w=w * 2, h=h * 2, cx=w, cy=h))
    mismatch = _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(tmp_path / "d2"),
                    "--camera-info", str(wrong))
    assert mismatch.returncode == 2 and "is it this camera's?" in mismatch.stderr and not (tmp_path / "d2").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("image_width: 10\n")
    refused = _cli("make-bag", "--images", str(_images(labelled_set)), "--out", str(tmp_path / "d3"),
                   "--camera-info", str(broken))
    assert refused.returncode == 2 and "image_width and image_height are needed" in refused.stderr
