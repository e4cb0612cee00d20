"""Models that break the contract, made by editing a real export with the onnx package."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from mtl_perception.runtime.backends import BackendOptions, load_backend
from mtl_perception.runtime.contract import ModelContractError


def test_model_without_contract_metadata(tmp_path: Path, random_model: Path) -> None:
    proto = onnx.load(str(random_model))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelContractError, match=r"lacks metadata class_names.*mtl-perception export"):
        load_backend(bare, BackendOptions(backend="onnxruntime"))


def test_model_breaking_the_contract(tmp_path: Path, random_model: Path) -> None:
    proto = onnx.load(str(random_model))
    proto.graph.output[0].name = "bboxes"
    for node in proto.graph.node:
        node.output[:] = ["bboxes" if o == "boxes" else o for o in node.output]
    renamed = tmp_path / "renamed.onnx"
    onnx.save(proto, str(renamed))
    with pytest.raises(ModelContractError, match="the contract wants input 'images' and outputs boxes"):
        load_backend(renamed, BackendOptions(backend="onnxruntime"))
