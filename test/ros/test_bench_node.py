"""bench-node runs the real node and pairs its answers with the node's own inference time.

Only that the figures exist and hang together is checked here: their values belong to the
machine, and speed targets live in the benchmark's printout, not in tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path


def _bench_node(*args: str) -> subprocess.CompletedProcess[str]:
    # the session's private ROS domain (conftest): a fixed one could hold another process's node
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "bench-node", *args], capture_output=True,
                          text=True, timeout=300)


def test_bench_node_reports_overhead_against_in_node_inference(random_model: Path) -> None:
    result = _bench_node("--model", str(random_model), "--rates", "4", "--seconds", "2", "--repeats", "2",
                         "--frames", "240x320", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    plays = report["end_to_end"]
    assert len(plays) == 2 and all(p["frame"] == "320x240" and p["rate_hz"] == 4 for p in plays)
    for play in plays:
        assert play["sent"] >= 7 and 0 < play["answered"] <= play["sent"]
        assert play["p50_ms"] <= play["p90_ms"] <= play["p99_ms"]
        assert 0 < play["node_inference_p50_ms"] < play["p50_ms"]  # inference is part of the round trip
    (overhead,) = report["overhead"]
    assert len(overhead["per_play_ms"]) == 2 and math.isfinite(overhead["overhead_ms"])
    assert overhead["target_ms"] >= 5.0 and report["fastdds_profile"].endswith("fastdds_large_frames.xml")
    assert report["camera_publishes"] == "serialized frames"
    ground, = report["ground"]  # the grid and markings' per-frame cost at the camera size played
    assert ground["frame"] == "320x240" and 0 < ground["grid_p50_ms"] and 0 < ground["markings_p50_ms"]
    assert ground["tables_built_once_ms"] > ground["grid_p50_ms"]


def test_bench_node_refuses_plays_longer_than_the_statistics_window() -> None:
    result = _bench_node("--seconds", "9")
    assert result.returncode == 2 and "argument --seconds: 9: at most 7.5 s" in result.stderr


def test_bench_node_publishes_message_objects_through_the_player(random_model: Path) -> None:
    """--publish-objects: the same bag played as rclpy message objects (a Python camera driver); answered."""
    result = _bench_node("--model", str(random_model), "--rates", "4", "--seconds", "2", "--repeats", "1",
                         "--frames", "120x160", "--publish-objects", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["camera_publishes"] == "message objects"
    (play,) = report["end_to_end"]
    assert play["frame"] == "160x120" and 0 < play["answered"] <= play["sent"]


def test_bench_node_compares_one_node_for_several_cameras_with_a_node_each(random_model: Path) -> None:
    result = _bench_node("--model", str(random_model), "--cameras", "1,2", "--rates", "4", "--seconds", "2",
                         "--frames", "120x160", "--threads", "1", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert [(r["cameras"], r["layout"]) for r in rows] == [(1, "one node"), (1, "separate nodes"),
                                                           (2, "one node"), (2, "separate nodes")]
    for row in rows:
        assert len(row["per_camera"]) == row["cameras"] and row["sent_per_camera"] >= 7
        assert all(0 < c["answered"] <= row["sent_per_camera"] and 0 < c["p50_ms"] <= c["p90_ms"]
                   for c in row["per_camera"])
        assert row["answered"] == sum(c["answered"] for c in row["per_camera"])
        assert row["nodes_rss_mb"] > 0
    # two nodes hold two copies of the model and the runtime, one node one
    assert rows[3]["nodes_rss_mb"] > rows[2]["nodes_rss_mb"]


def test_a_model_the_node_cannot_run_is_refused_before_any_node_starts(tmp_path: Path) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    for model, message in ((tmp_path / "missing.onnx", "not found"), (text, "could not be loaded")):
        for extra in ((), ("--cameras", "2")):
            result = _bench_node("--model", str(model), *extra)
            assert result.returncode == 2 and f"error: --model {model}: " in result.stderr, result.stderr
            assert message in result.stderr and result.stderr.count("\n") == 1 and not result.stdout
