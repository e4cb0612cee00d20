"""contract_upgrade rewrites the older exporters' files into what the exporter writes now.

The old files here are built with onnx's helpers in the layouts the exporter wrote before: contract 1 (Conv
with two channels, Resize, Gather 1 and Gather 0, Greater, Cast, Cast; batch 1) and contract 2 before the
stacked resize (a one-channel margin Conv, its own Resize sized from the margin's Shape as the exporter does,
Gather 0, Greater 0, Cast, Cast); ONNX Runtime runs the old and the new file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mtl_perception.training.contract_upgrade import UpgradeError, upgrade

H, W = 32, 64


def _mask_branch(name: str, weight: np.ndarray, bias: np.ndarray) -> tuple[list, list]:
    nodes = [
        helper.make_node("Conv", ["features", f"{name}_w", f"{name}_b"], [f"{name}_logits"]),
        helper.make_node("Resize", [f"{name}_logits", "", "scales"], [f"{name}_up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Gather", [f"{name}_up", "one"], [f"{name}_l1"], axis=1),
        helper.make_node("Gather", [f"{name}_up", "zero"], [f"{name}_l0"], axis=1),
        helper.make_node("Greater", [f"{name}_l1", f"{name}_l0"], [f"{name}_gt"]),
        helper.make_node("Cast", [f"{name}_gt"], [f"{name}_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", [f"{name}_f"], [name], to=TensorProto.UINT8),
    ]
    return nodes, [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]


def _margin_branch(name: str, weight: np.ndarray, bias: np.ndarray) -> tuple[list, list]:
    """Contract 2 before the stacked resize: the margin's size read from its shape, as torch exports it."""
    nodes = [
        helper.make_node("Conv", ["features", f"{name}_w", f"{name}_b"], [f"{name}_margin"]),
        helper.make_node("Shape", [f"{name}_margin"], [f"{name}_shape"]),
        helper.make_node("Slice", [f"{name}_shape", "zero_1d", "two_1d"], [f"{name}_bc"]),
        helper.make_node("Concat", [f"{name}_bc", "hw"], [f"{name}_sizes"], axis=0),
        helper.make_node("Resize", [f"{name}_margin", "", "", f"{name}_sizes"], [f"{name}_up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Gather", [f"{name}_up", "zero"], [f"{name}_m"], axis=1),
        helper.make_node("Greater", [f"{name}_m", "float_zero"], [f"{name}_gt"]),
        helper.make_node("Cast", [f"{name}_gt"], [f"{name}_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", [f"{name}_f"], [name], to=TensorProto.UINT8),
    ]
    return nodes, [numpy_helper.from_array(weight[1:2] - weight[0:1], f"{name}_w"),
                   numpy_helper.from_array(bias[1:2] - bias[0:1], f"{name}_b")]


def _contract_1(path: Path, contract: int = 1) -> Path:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("AveragePool", ["nchw"], ["features"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["features", "flat_shape"], ["flat"]),
             helper.make_node("Transpose", ["flat"], ["boxes"], perm=[0, 2, 1]),
             helper.make_node("Sigmoid", ["boxes"], ["scores"])]
    inits = [numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(np.array([0, 3, -1], np.int64), "flat_shape"),
             numpy_helper.from_array(np.array([0], np.int64), "zero_1d"),
             numpy_helper.from_array(np.array([2], np.int64), "two_1d"),
             numpy_helper.from_array(np.array([H, W], np.int64), "hw"),
             numpy_helper.from_array(np.array(0, np.float32), "float_zero")]
    # class 1 wins where one colour channel exceeds another: about half the pixels of a random frame
    for name, (a, b) in (("drivable", (0, 1)), ("lane", (1, 2))):
        weight = rng.normal(scale=0.001, size=(2, 3, 1, 1)).astype(np.float32)
        weight[1, a] += 0.05
        weight[1, b] -= 0.05
        branch, weights = (_mask_branch if contract == 1 else _margin_branch)(name, weight, np.zeros(2, np.float32))
        nodes += branch
        inits += weights
    anchors = (H // 2) * (W // 2)
    graph = helper.make_graph(
        nodes, "contract1", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, H, W, 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, anchors, 3]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, anchors, 3]),
         helper.make_tensor_value_info("drivable", TensorProto.UINT8, [1, H, W]),
         helper.make_tensor_value_info("lane", TensorProto.UINT8, [1, H, W])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"contract_version": str(contract), "class_names": '["a", "b", "c"]', "input_size": f"{H}x{W}",
                       "pad_value": "114"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def _run(path: Path, images: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": images})


def test_upgrade_keeps_every_output_and_takes_any_batch(tmp_path: Path) -> None:
    old = _contract_1(tmp_path / "old.onnx")
    new = tmp_path / "new.onnx"
    result = subprocess.run([sys.executable, "-m", "mtl_perception.training.contract_upgrade", str(old), str(new)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    proto = onnx.load(str(new))
    assert {p.key: p.value for p in proto.metadata_props}["contract_version"] == "2"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert numpy_helper.to_array(next(i for i in proto.graph.initializer if i.name == "lane_w")).shape == (1, 3, 1, 1)
    _assert_one_resize_for_both_masks(proto)
    frames = np.random.default_rng(1).integers(0, 256, (4, H, W, 3), np.uint8)
    together = _run(new, frames)
    for row in range(4):
        before = _run(old, frames[row:row + 1])
        for name, a, b in zip(("boxes", "scores", "drivable", "lane"), before, together, strict=True):
            if a.dtype == np.uint8:
                assert 0.05 < b[row].mean() < 0.95, name  # the masks hold decisions that can differ
                assert (a[0] == b[row]).mean() >= 0.999, name
            else:
                np.testing.assert_allclose(a[0], b[row], atol=1e-5)


def _assert_one_resize_for_both_masks(proto: onnx.ModelProto) -> None:
    resizes = [node for node in proto.graph.node if node.op_type == "Resize"]
    producer = {name: node for node in proto.graph.node for name in node.output}
    assert len(resizes) == 1 and producer[resizes[0].input[0]].op_type == "Concat"


def test_a_contract_2_file_gets_the_stacked_resize_and_the_same_masks(tmp_path: Path) -> None:
    old = _contract_1(tmp_path / "old.onnx", contract=2)
    proto = upgrade(onnx.load(str(old)))
    _assert_one_resize_for_both_masks(proto)
    onnx.save(proto, str(tmp_path / "new.onnx"))
    frames = np.random.default_rng(2).integers(0, 256, (1, H, W, 3), np.uint8)
    for name, a, b in zip(("boxes", "scores", "drivable", "lane"), _run(old, frames),
                          _run(tmp_path / "new.onnx", frames), strict=True):
        assert 0.05 < b.mean() < 0.95 or a.dtype != np.uint8, name  # the masks hold decisions
        np.testing.assert_array_equal(a, b, err_msg=name)  # per channel the same resize


def test_upgrade_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    proto = onnx.load(str(_contract_1(tmp_path / "old.onnx")))
    twice = upgrade(proto)
    with pytest.raises(UpgradeError, match="stacks its margins already: nothing to rewrite"):
        upgrade(twice)
    result = subprocess.run([sys.executable, "-m", "mtl_perception.training.contract_upgrade",
                             str(tmp_path / "old.onnx"), str(tmp_path / "old.onnx")], capture_output=True, text=True)
    assert result.returncode == 2 and "another path" in result.stderr and "Traceback" not in result.stderr
