"""The model contract (docs/architecture.md), all of it: tensor names, element types and shapes, the
input-size rule, and the metadata in every ONNX file. Both backends and the exporter use this module."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from mtl_perception.errors import UserFacingError

# 2: the first dimension of every tensor is the batch, named BATCH_DIM (dynamic) or a number (static).
# 1: the batch was always 1. This runtime reads both.
CONTRACT_VERSION = "2"
READABLE_CONTRACT_VERSIONS = ("1", "2")
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "drivable", "lane")
BATCH_DIM = "batch"  # the name of the dynamic batch dimension in an exported file
# element type of every tensor; shapes: images [B, H, W, 3], boxes [B, A, 4], scores [B, A, C],
# drivable and lane [B, H, W]
DTYPES: dict[str, np.dtype] = {"images": np.dtype(np.uint8), "boxes": np.dtype(np.float32),
                               "scores": np.dtype(np.float32), "drivable": np.dtype(np.uint8),
                               "lane": np.dtype(np.uint8)}
# ONNX's names for those types (ONNX Runtime reports a tensor's type this way)
ONNX_TYPE_NAMES: dict[np.dtype, str] = {np.dtype(np.uint8): "tensor(uint8)", np.dtype(np.float32): "tensor(float)"}
SIZE_MULTIPLE = 32  # the network downsamples 32x: input height and width are multiples of it


class ModelContractError(RuntimeError, UserFacingError):
    """A model file that does not honour the contract; the message names the file and the fix."""


def check_input_size(height: int, width: int) -> None:
    """ValueError unless height and width are positive multiples of SIZE_MULTIPLE."""
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"image size {height}x{width} is not divisible by {SIZE_MULTIPLE} (the network "
                         f"downsamples {SIZE_MULTIPLE}x); use e.g. 256x384, 256x512, 384x640 or 768x1280")


Dim = Union[int, str, None]  # a dimension as runtimes report it: a number, a name, None or -1 where dynamic


def static_batch(shape: Sequence[Dim]) -> int | None:
    """A tensor's batch as a number, or None where the batch is dynamic (ONNX Runtime reports the dimension's
    name or None, TensorRT -1)."""
    first = shape[0] if len(shape) else None
    return first if isinstance(first, int) and first > 0 else None


def check_io(inputs: Mapping[str, tuple[str, Sequence[Dim]]], outputs: Mapping[str, tuple[str, Sequence[Dim]]],
             info: ModelInfo, source: str) -> None:
    """Names, element types and shapes of a model's tensors against the contract and its metadata:
    each tensor as (ONNX type name, shape), the way a runtime reports it. The batch may be dynamic or a
    number, the same in every tensor; every other dimension is fixed."""
    if set(inputs) != {INPUT_NAME} or set(outputs) != set(OUTPUT_NAMES):
        raise ModelContractError(f"{source} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; the "
                                 f"contract wants input {INPUT_NAME!r} and outputs {', '.join(OUTPUT_NAMES)}")
    for name, (dtype, _) in {**inputs, **outputs}.items():
        wanted = ONNX_TYPE_NAMES[DTYPES[name]]
        if dtype != wanted:
            raise ModelContractError(f"{source}: tensor {name!r} is {dtype}, the contract wants {wanted}")
    shape = list(inputs[INPUT_NAME][1])
    expected = [info.input_height, info.input_width, 3]
    if len(shape) != 4 or shape[1:] != expected:
        raise ModelContractError(f"{source}: input shape {shape} does not match its metadata input_size "
                                 f"{info.input_height}x{info.input_width} (expected [batch, {expected[0]}, "
                                 f"{expected[1]}, 3])")
    batch = static_batch(shape)
    if info.contract_version == "1" and batch != 1:
        raise ModelContractError(f"{source}: model contract 1 has batch 1, this file's input is {shape}; "
                                 "re-export it")
    for name, (_, out_shape) in outputs.items():
        if static_batch(out_shape) != batch:
            raise ModelContractError(f"{source}: output {name!r} has batch {out_shape[0] if out_shape else None} "
                                     f"but the input {shape[0]}; re-export it")
    scores_shape = outputs["scores"][1]
    if scores_shape[-1] != len(info.class_names):
        raise ModelContractError(f"{source}: scores have {scores_shape[-1]} classes but the metadata names "
                                 f"{len(info.class_names)}")


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a model, read from its metadata."""

    class_names: tuple[str, ...]
    input_height: int
    input_width: int
    pad_value: int
    backbone: str
    contract_version: str
    trained_on: str

    def to_metadata(self) -> dict[str, str]:
        return {
            "class_names": json.dumps(list(self.class_names)),
            "input_size": f"{self.input_height}x{self.input_width}",
            "pad_value": str(self.pad_value),
            "backbone": self.backbone,
            "contract_version": self.contract_version,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str) -> ModelInfo:
        missing = [k for k in ("class_names", "input_size", "pad_value", "contract_version") if k not in props]
        if missing:
            raise ModelContractError(f"{source} lacks metadata {', '.join(missing)}: it was not exported by "
                                     "`mtl-perception export`; re-export it")
        if props["contract_version"] not in READABLE_CONTRACT_VERSIONS:
            raise ModelContractError(f"{source} follows model contract {props['contract_version']}, this runtime "
                                     f"reads {' and '.join(READABLE_CONTRACT_VERSIONS)}: update mtl_perception "
                                     "or re-export the model with this version")
        try:
            names = tuple(json.loads(props["class_names"]))
            height, width = (int(v) for v in props["input_size"].split("x"))
            pad = int(props["pad_value"])
        except (ValueError, TypeError) as err:
            raise ModelContractError(f"{source} has malformed metadata ({err}); re-export it") from err
        return cls(names, height, width, pad, props.get("backbone", "unknown"), props["contract_version"],
                   props.get("trained_on", "unknown"))
