"""Models that break the contract, made by editing a real export with the onnx package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from mtl_perception.runtime.backends import load_backend
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.presets import deployed, deployed_backend


def test_model_without_contract_metadata(tmp_path: Path, random_model: Path) -> None:
    proto = onnx.load(str(random_model))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelContractError, match=r"lacks metadata class_names.*mtl-perception export"):
        load_backend(bare, deployed_backend(backend="onnxruntime"))


def test_model_breaking_the_contract(tmp_path: Path, random_model: Path) -> None:
    proto = onnx.load(str(random_model))
    proto.graph.output[0].name = "bboxes"
    for node in proto.graph.node:
        node.output[:] = ["bboxes" if o == "boxes" else o for o in node.output]
    renamed = tmp_path / "renamed.onnx"
    onnx.save(proto, str(renamed))
    with pytest.raises(ModelContractError, match="the contract wants input 'images' and outputs boxes"):
        load_backend(renamed, deployed_backend(backend="onnxruntime"))


def _as_contract_1(model: Path, out: Path) -> Path:
    """The file as contract 1 wrote it: batch fixed at 1 in every tensor and contract_version "1" (the graph's
    reshapes follow the tensors' shapes, so the weights and operators are what a contract-1 export had)."""
    proto = onnx.load(str(model))
    for tensor in (*proto.graph.input, *proto.graph.output):
        batch = tensor.type.tensor_type.shape.dim[0]
        batch.Clear()
        batch.dim_value = 1
    for prop in proto.metadata_props:
        if prop.key == "contract_version":
            prop.value = "1"
    onnx.save(proto, str(out))
    return out


def test_a_batch_1_file_still_loads_and_serves_several_cameras(tmp_path: Path, bundled_model: Path) -> None:
    old = _as_contract_1(bundled_model, tmp_path / "contract1.onnx")
    backend = load_backend(old, deployed_backend(backend="onnxruntime"))
    assert (backend.static_batch, backend.max_batch) == (1, 1)
    pinned = load_backend(bundled_model, deployed_backend(backend="onnxruntime"))  # max_batch 1: planned static
    assert (pinned.static_batch, pinned.max_batch) == (1, 1)
    new = Perception(PerceptionConfig.with_settings(bundled_model, deployed_backend(backend="onnxruntime", max_batch=3), deployed()))
    assert (new.backend.static_batch, new.backend.max_batch) == (None, None)  # any batch
    frames = [np.random.default_rng(seed).integers(0, 256, (360, 640, 3), np.uint8) for seed in range(3)]
    one_at_a_time = Perception(PerceptionConfig.with_settings(old, deployed_backend(), deployed()), backend).infer_batch(frames)  # three runs of batch 1
    together = new.infer_batch(frames)  # one run of batch 3
    for before, after in zip(one_at_a_time, together):
        assert before.letterbox == after.letterbox
        for name in ("drivable", "lane"):
            assert (before.outputs[name] == after.outputs[name]).mean() >= 0.9999, name
        np.testing.assert_allclose(before.outputs["scores"], after.outputs["scores"], atol=1e-4)


def test_a_contract_1_file_with_another_batch_is_refused(tmp_path: Path, bundled_model: Path) -> None:
    old = _as_contract_1(bundled_model, tmp_path / "contract1.onnx")
    proto = onnx.load(str(old))
    for tensor in (*proto.graph.input, *proto.graph.output):
        tensor.type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(proto, str(old))
    with pytest.raises(ModelContractError, match="model contract 1 has batch 1"):
        load_backend(old, deployed_backend(backend="onnxruntime"))


def test_a_newer_contract_names_both_fixes(tmp_path: Path, bundled_model: Path) -> None:
    proto = onnx.load(str(bundled_model))
    for prop in proto.metadata_props:
        if prop.key == "contract_version":
            prop.value = "3"
    newer = tmp_path / "newer.onnx"
    onnx.save(proto, str(newer))
    with pytest.raises(ModelContractError, match="follows model contract 3, this runtime reads 1 and 2: update"):
        load_backend(newer, deployed_backend(backend="onnxruntime"))


def test_a_static_batch_above_1_pads_its_spare_rows(tmp_path: Path, bundled_model: Path) -> None:
    proto = onnx.load(str(bundled_model))
    for tensor in (*proto.graph.input, *proto.graph.output):
        batch = tensor.type.tensor_type.shape.dim[0]
        batch.Clear()
        batch.dim_value = 2
    static2 = tmp_path / "static2.onnx"
    onnx.save(proto, str(static2))
    perception = Perception(PerceptionConfig.with_settings(static2, deployed_backend(backend="onnxruntime", max_batch=3), deployed()))
    assert perception.backend.static_batch == 2
    frames = [np.random.default_rng(seed).integers(0, 256, (384, 640, 3), np.uint8) for seed in range(3)]
    results = perception.infer_batch(frames)  # runs of 2 and 2 (one padded row)
    assert len(results) == 3 and all(r.outputs["drivable"].shape == (1, 384, 640) for r in results)
