"""The TensorRT readiness check against small graphs that break one documented rule each.

The rules are those of onnx-tensorrt's operator tables and changelog per release branch
(8.5-GA, 8.6-GA, 10.x), cited in runtime/trt_readiness.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mtl_perception.runtime.trt_readiness import TRT_VERSIONS, NotReadyError, check_model, require_ready

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "models" / "mtl_mobilenetv2_384x640.onnx"


def _model(nodes: list, inputs: list, outputs: list, opset: int = 17, initializers: tuple = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _image_input(dtype: int = TensorProto.UINT8, shape: tuple = (1, 32, 32, 3)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("images", dtype, list(shape))


def _good(opset: int = 17) -> onnx.ModelProto:
    """The contract's pattern: Cast first, then Transpose; a uint8 mask cast from float."""
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["f"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("ReduceMax", ["t"], ["m"], axes=[1], keepdims=0) if opset < 18 else
             helper.make_node("Relu", ["t"], ["m"]),
             helper.make_node("Cast", ["m"], ["mask"], to=TensorProto.UINT8)]
    out_shape = [1, 32, 32] if opset < 18 else [1, 3, 32, 32]
    return _model(nodes, [_image_input()], [helper.make_tensor_value_info("mask", TensorProto.UINT8, out_shape)],
                  opset)


def _rules_broken(model: onnx.ModelProto) -> dict[str, set[str]]:
    return {version: {v.rule for v in check_model(model, version)} for version in TRT_VERSIONS}


def test_contract_pattern_passes_every_version() -> None:
    assert _rules_broken(_good()) == {v: set() for v in TRT_VERSIONS}


def test_bundled_model_passes_every_version() -> None:
    model = onnx.load(str(BUNDLED))
    for version in TRT_VERSIONS:
        assert check_model(model, version) == [], version


def test_uint8_input_into_anything_but_cast() -> None:
    # the layout the bundled model had before: Transpose on the uint8 input, then Cast
    nodes = [helper.make_node("Transpose", ["images"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Cast", ["t"], ["out"], to=TensorProto.FLOAT)]
    model = _model(nodes, [_image_input()], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 32, 32])])
    violations = check_model(model, "10")
    assert {v.rule for v in violations} == {"uint8"}
    assert any("Transpose reads UINT8 network input 'images'" in str(v) for v in violations)
    assert all("uint8" in rules for rules in _rules_broken(model).values())


def test_cast_to_uint8_from_bool_is_refused_by_8x_only() -> None:
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Greater", ["f", "zero"], ["b"]),
             helper.make_node("Cast", ["b"], ["mask"], to=TensorProto.UINT8)]
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    model = _model(nodes, [_image_input()], [helper.make_tensor_value_info("mask", TensorProto.UINT8, [1, 32, 32, 3])],
                   initializers=(zero,))
    assert _rules_broken(model) == {"8.5": {"uint8"}, "8.6": {"uint8"}, "10": set()}
    assert "from BOOL" in str(check_model(model, "8.5")[0])


def test_uint8_output_not_from_a_cast() -> None:
    nodes = [helper.make_node("Cast", ["images"], ["u"], to=TensorProto.UINT8),
             helper.make_node("Identity", ["u"], ["mask"])]
    model = _model(nodes, [_image_input()], [helper.make_tensor_value_info("mask", TensorProto.UINT8, [1, 32, 32, 3])])
    messages = [str(v) for v in check_model(model, "10")]
    assert any("must come straight from a Cast" in m for m in messages)
    assert any("UINT8 tensor inside the network" in m for m in messages)


def test_opset_ranges() -> None:
    assert _rules_broken(_good(opset=18)) == {"8.5": {"opset"}, "8.6": {"opset"}, "10": set()}
    assert _rules_broken(_good(opset=21)) == {"8.5": {"opset"}, "8.6": {"opset"}, "10": {"opset"}}


def test_unsupported_operators() -> None:
    for op, broken in (("Unique", set(TRT_VERSIONS)), ("LayerNormalization", {"8.5", "8.6"})):
        model = _good()
        model.graph.node.append(helper.make_node(op, ["t"], ["extra"]))
        assert {v for v, rules in _rules_broken(model).items() if "operator" in rules} == broken, op
    custom = _good()
    custom.graph.node.append(helper.make_node("MyPlugin", ["t"], ["extra"], domain="com.example"))
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    assert all("operator" in rules for rules in _rules_broken(custom).values())


def test_int64_io_is_refused_by_8x_only() -> None:
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Shape", ["f"], ["shape"])]
    model = _model(nodes, [_image_input()], [helper.make_tensor_value_info("shape", TensorProto.INT64, [4])])
    assert _rules_broken(model) == {"8.5": {"int64"}, "8.6": {"int64"}, "10": set()}


def _dynamic(model: onnx.ModelProto, axis: int) -> onnx.ModelProto:
    for tensor in (*model.graph.input, *model.graph.output):
        tensor.type.tensor_type.shape.dim[axis].dim_param = "batch" if axis == 0 else "height"
    return model


def test_a_dynamic_batch_passes_every_version() -> None:
    # the contract's batch dimension: the engine's optimisation profile covers it (8.5, 8.6 and 10 alike)
    assert _rules_broken(_dynamic(_good(), 0)) == {"8.5": set(), "8.6": set(), "10": set()}


def test_other_dynamic_dimensions_are_refused() -> None:
    assert all("shape" in rules for rules in _rules_broken(_dynamic(_good(), 1)).values())
    no_batch = _good()
    no_batch.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0  # neither a number nor a name
    assert all("shape" in rules for rules in _rules_broken(no_batch).values())


def test_resize_modes() -> None:
    model = _good()
    model.graph.node.append(helper.make_node("Resize", ["t", "", "scales"], ["up"], mode="cubic"))
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    assert all("resize" in rules for rules in _rules_broken(model).values())


def test_require_ready_names_versions_and_rules() -> None:
    model = _good(opset=18)
    with pytest.raises(NotReadyError, match=r"TensorRT 8\.5 .*\n.*\[opset\] model: opset 18"):
        require_ready(model)
    require_ready(model, ["10"])


def test_export_refuses_a_graph_tensorrt_would_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real export of the real network, with the input normalisation of the earlier bundled model
    (transpose, then cast): export's readiness check stops it before any file is written."""
    import torch

    from mtl_perception.training import export
    from mtl_perception.training.model import InputNormalizer, build_untrained

    class TransposeThenCast(InputNormalizer):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return ((images.permute(0, 3, 1, 2).float() - self.mean) / self.std).flip(1)

    monkeypatch.setattr(export, "InputNormalizer", TransposeThenCast)
    with pytest.raises(NotReadyError, match="Transpose reads UINT8 network input 'images'"):
        export.export_onnx(build_untrained("mobilenetv2"), tmp_path / "bad.onnx", 64, 64, "random weights")
    assert not (tmp_path / "bad.onnx").exists()


def test_trt_check_command(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "trt-check", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=120)

    ok = run(str(BUNDLED))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": ok") == 3
    bad = tmp_path / "opset18.onnx"
    onnx.save(_good(opset=18), str(bad))
    refused = run(str(bad), "--trt", "8.5", "10")
    assert refused.returncode == 1
    assert "TensorRT 8.5" in refused.stdout and "[opset]" in refused.stdout and "TensorRT 10" in refused.stdout
    missing = run(str(tmp_path / "none.onnx"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_plugins_each_parser_would_need() -> None:
    """onnx-tensorrt imports InstanceNormalization (8.x) and RoiAlign (all) as plugins, ScatterElements with a
    reduction as one in 10, and ops of other domains from the plugin registry."""
    from mtl_perception.runtime.trt_readiness import plugin_uses

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["n"], name="norm"),
             helper.make_node("RoiAlign", ["n", "rois", "idx"], ["r"], name="roi"),
             helper.make_node("ScatterElements", ["r", "i", "u"], ["e"], name="scatter", reduction="add"),
             helper.make_node("ScatterElements", ["e", "i", "u"], ["f"], name="plain_scatter"),
             helper.make_node("DCNv2", ["f"], ["y"], name="dcn", domain="mmcv")]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph)
    found = {v: [(p.node, p.plugin) for p in plugin_uses(model, v)] for v in ("8.5", "8.6", "10")}
    assert found["8.5"] == found["8.6"] == [("norm", "InstanceNormalization_TRT"), ("roi", "ROIAlign_TRT"),
                                            ("dcn", "DCNv2 from the plugin registry")]
    assert found["10"] == [("roi", "ROIAlign_TRT"), ("scatter", "ScatterElements (with a reduction)"),
                           ("dcn", "DCNv2 from the plugin registry")]


def test_trt_check_reports_the_workspace_and_plugins(bundled_model: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "trt-check", str(bundled_model),
                             "--workspace-mb", "512"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for version in ("8.5", "8.6", "10"):
        assert f"TensorRT {version}: build asks for a 512 MB workspace; no plugin" in result.stdout
