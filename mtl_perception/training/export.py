"""ONNX export following the model contract, with a parity check against PyTorch."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from mtl_perception.atomic_io import atomic_write_bytes
from mtl_perception.runtime.contract import (
    BATCH_DIM,
    CONTRACT_VERSION,
    INPUT_NAME,
    OUTPUT_NAMES,
    ModelInfo,
    check_input_size,
)
from mtl_perception.runtime.letterbox import DEFAULT_PAD_VALUE
from mtl_perception.runtime.trt_readiness import require_ready
from mtl_perception.training.model import PARAMETERS_KEY, InputNormalizer, MultiTaskNet, parameter_count

OPSET = 17
log = logging.getLogger(__name__)


class ContractModule(nn.Module):
    """The network behind the contract: uint8 BGR NHWC in; boxes, scores and 0/1 uint8 masks out."""

    def __init__(self, model: MultiTaskNet) -> None:
        super().__init__()
        self.normalize = InputNormalizer(model.config.normalization)
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Outputs in OUTPUT_NAMES order (the exporter names them so): boxes, scores, drivable, lane."""
        outputs = self.model.forward_margins(self.normalize(images))
        boxes, scores = self.model.decode(outputs)
        return boxes, scores, _mask(cast(Tensor, outputs["drivable"])), _mask(cast(Tensor, outputs["lane"]))


def _mask(margin: Tensor) -> Tensor:
    """[B, 1, H, W] margins (class 1's logit minus class 0's) -> uint8 [B, H, W], 1 where class 1 wins, as
    the argmax of the two logits does (a tie goes to class 0). Cast to uint8 through float: TensorRT 8.5 and
    8.6 cast to UINT8 only from a float type."""
    return (margin[:, 0] > 0).to(torch.float32).to(torch.uint8)


def model_info(model: MultiTaskNet, height: int, width: int, trained_on: str) -> ModelInfo:
    return ModelInfo(model.config.class_names, height, width, DEFAULT_PAD_VALUE, model.config.backbone,
                     CONTRACT_VERSION, trained_on)


def to_onnx_bytes(model: MultiTaskNet, height: int, width: int, info: ModelInfo) -> bytes:
    check_input_size(height, width)
    module = ContractModule(model).eval()
    dummy = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "model.onnx"
        # the TorchScript exporter: it takes this static, control-flow-free graph as is and needs
        # no onnxscript; the dynamo exporter adds nothing for it
        # the batch is a named dynamic dimension (contract 2): one file serves one camera or several, and
        # TensorRT builds the profile the node needs (docs/architecture.md says why not a static batch)
        torch.onnx.export(module, (dummy,), str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          opset_version=OPSET, dynamo=False, do_constant_folding=True,
                          dynamic_axes={name: {0: BATCH_DIM} for name in (INPUT_NAME, *OUTPUT_NAMES)})
        proto = onnx.load(str(path))
        _fix_output_shapes(proto, [tuple(t.shape) for t in module(dummy)])
    del proto.metadata_props[:]
    for key, value in {**info.to_metadata(), PARAMETERS_KEY: str(parameter_count(model))}.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "mtl_perception"
    onnx.checker.check_model(proto, full_check=True)
    require_ready(proto)  # a file the Jetson's TensorRT refuses must not leave the training machine
    return proto.SerializeToString()


def _fix_output_shapes(proto: onnx.ModelProto, shapes: list[tuple[int, ...]]) -> None:
    """Every output dimension but the batch as a number. With a dynamic batch the exporter traces the graph's
    shape arithmetic and names the outputs' other dimensions symbolically, though they follow from the fixed
    input size; the contract (and TensorRT's static check) wants them fixed."""
    for output, shape in zip(proto.graph.output, shapes, strict=True):
        for dim, size in zip(output.type.tensor_type.shape.dim[1:], shape[1:], strict=True):
            dim.Clear()
            dim.dim_value = size


def export_onnx(model: MultiTaskNet, out: Path, height: int, width: int, trained_on: str) -> ModelInfo:
    """Write the contract ONNX file atomically and return its metadata."""
    info = model_info(model, height, width, trained_on)
    atomic_write_bytes(out, to_onnx_bytes(model, height, width, info))
    return info


@dataclass(frozen=True)
class Parity:
    boxes_max_abs: float
    scores_max_abs: float
    drivable_equal: float
    lane_equal: float

    @property
    def ok(self) -> bool:
        return (self.boxes_max_abs <= 1e-3 and self.scores_max_abs <= 1e-3
                and self.drivable_equal >= 0.999 and self.lane_equal >= 0.999)


def check_parity(model: MultiTaskNet, onnx_path: Path, image: np.ndarray) -> Parity:
    """Run ONNX Runtime and PyTorch on one uint8 [H, W, 3] input and compare the outputs.

    Boxes are compared where the score is meaningful (> 0.001): far below it a box's
    coordinates carry no information and float noise is all that differs.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_out = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {INPUT_NAME: image[None]}), strict=True))
    with torch.no_grad():
        module_out = ContractModule(model).eval()(torch.from_numpy(image[None]))
    torch_out = {name: t.numpy() for name, t in zip(OUTPUT_NAMES, module_out, strict=True)}
    live = torch_out["scores"].max(axis=-1) > 1e-3
    box_diff = np.abs(ort_out["boxes"] - torch_out["boxes"])[live]
    return Parity(
        boxes_max_abs=float(box_diff.max()) if box_diff.size else 0.0,
        scores_max_abs=float(np.abs(ort_out["scores"] - torch_out["scores"]).max()),
        drivable_equal=float((ort_out["drivable"] == torch_out["drivable"]).mean()),
        lane_equal=float((ort_out["lane"] == torch_out["lane"]).mean()),
    )
