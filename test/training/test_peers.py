"""bench --peer: YOLOP's network rebuilt from its published layer table, timed in turn with ours.

The rebuilt network is held to what YOLOP publishes about itself: the parameter count of its paper, the cost
the project's peer table quotes, and the ONNX interface of its own export (export_onnx.py, test_onnx.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from mtl_perception.evaluation.benchmark import time_interleaved
from mtl_perception.training.complexity import count_flops
from mtl_perception.training.peers import build_peer, export_peer


def test_yolop_has_the_published_size_and_cost() -> None:
    model = build_peer("yolop")
    # YOLOP's paper: 7.9 M parameters
    assert 7.85e6 < sum(p.numel() for p in model.parameters()) < 7.95e6
    # 18.5 GFLOPs at 384x640, the figure docs/benchmarks.md's peer table carries
    assert count_flops(model, 384, 640) / 1e9 == pytest.approx(18.5, abs=0.1)


def test_yolop_file_has_yolops_own_interface(tmp_path: Path) -> None:
    path = tmp_path / "yolop.onnx"
    export_peer(build_peer("yolop"), path, 128, 192)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 12  # export_onnx.py's
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == ("images", "tensor(float)", [1, 3, 128, 192])
    det, drivable, lane = session.run(["det_out", "drive_area_seg", "lane_line_seg"],
                                      {"images": np.random.default_rng(0).standard_normal((1, 3, 128, 192),
                                                                                       dtype=np.float32)})
    cells = sum((128 // s) * (192 // s) for s in (8, 16, 32))
    assert det.shape == (1, 3 * cells, 6)  # x, y, w, h, objectness, one class: 3 anchors per cell
    assert drivable.shape == lane.shape == (1, 2, 128, 192)
    assert 0 <= drivable.min() and drivable.max() <= 1 and 0 <= det[..., 4:].min() and det[..., 4:].max() <= 1
    # box centres decoded into the input's pixels: within a cell and a half of the image
    assert -12 <= det[..., 0].min() and det[..., 0].max() <= 192 + 48


def test_rounds_take_each_model_in_turn() -> None:
    order: list[str] = []
    times = time_interleaved({"ours": lambda: order.append("ours"), "peer": lambda: order.append("peer")}, runs=4,
                         warmup=1, max_seconds=60)
    assert order == ["ours", "peer"] * 5  # one warm-up round, then four timed ones, never two of one in a row
    assert [len(t) for t in times.values()] == [4, 4]


def test_bench_peer_prints_how_many_times_faster(bundled_model: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "bench", "--model", str(bundled_model),
                             "--peer", "yolop", "--runs", "3", "--out", str(tmp_path), "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (comparison,) = data["peers"]
    ours, peer = comparison["ours"], comparison["peer"]
    assert (ours["size"], peer["size"], peer["backbone"]) == ("384x640", "384x640", "yolop")
    assert comparison["speedup"] == pytest.approx(peer["median_ms"] / ours["median_ms"])
    # the peer's row names the model it was timed with: with several models the table has one peer row each
    assert [row["backbone"] for row in data["latency"]] == ["mobilenetv2", "yolop (with mobilenetv2)"]
    assert "ours (mobilenetv2)" in (tmp_path / "bench.md").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["--peer", "yolopv9"], "--peer yolopv9: not a peer this benchmark knows; use one of yolop"),
    (["--peer", "yolop", "--backend", "tensorrt"], "--peer runs the peer with ONNX Runtime"),
])
def test_bench_peer_refusals_are_one_line(bundled_model: Path, tmp_path: Path, argv: list[str],
                                          message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "bench", "--model", str(bundled_model),
                             "--out", str(tmp_path), *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
