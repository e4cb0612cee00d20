"""Rewrite a contract-1 model file (this project's exporter, before batching) into contract 2, keeping its
weights: `python -m mtl_perception.training.contract_upgrade OLD.onnx NEW.onnx`.

Two changes, both what `mtl-perception export` now writes itself:
- the batch becomes the named dynamic dimension BATCH_DIM, so one file serves several cameras at once (the
  exporter's graph computes its reshapes from the tensors' shapes, so nothing else depends on the batch);
- each segmentation head's 1x1 classifier gives one channel, class 1's weights minus class 0's, upsampled
  once, and the mask is that channel > 0: the sign of up(l1) - up(l0), computed on half the pixels. The masks
  then differ from the old file's only where the two logits are within float rounding of each other.

Only onnx and numpy: it runs where no torch is installed, e.g. to upgrade a model on the Jetson.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from mtl_perception.atomic_io import atomic_write_bytes
from mtl_perception.runtime.contract import BATCH_DIM, CONTRACT_VERSION, INPUT_NAME, OUTPUT_NAMES
from mtl_perception.runtime.trt_readiness import require_ready

MASK_OUTPUTS = ("drivable", "lane")


class UpgradeError(ValueError):
    """A file this upgrade does not know how to rewrite; the message says what differs."""


def upgrade(model: onnx.ModelProto) -> onnx.ModelProto:
    """The contract-2 version of a contract-1 model (a copy; the argument is left as it was)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    version = {p.key: p.value for p in model.metadata_props}.get("contract_version")
    if version != "1":
        raise UpgradeError(f"the file follows model contract {version!r}; this upgrade reads contract 1 only")
    for output in MASK_OUTPUTS:
        _one_margin_channel(model.graph, output)
    for tensor in (*model.graph.input, *model.graph.output):
        if tensor.name in (INPUT_NAME, *OUTPUT_NAMES):
            batch = tensor.type.tensor_type.shape.dim[0]
            batch.Clear()
            batch.dim_param = BATCH_DIM
    del model.graph.value_info[:]  # shapes inferred at batch 1; runtimes infer them again
    for prop in model.metadata_props:
        if prop.key == "contract_version":
            prop.value = CONTRACT_VERSION
    onnx.checker.check_model(model, full_check=True)
    require_ready(model)
    return model


def _one_margin_channel(graph: onnx.GraphProto, output: str) -> None:
    """Classifier Conv (2 channels) -> Resize -> Gather 1, Gather 0 -> Greater -> Cast -> Cast -> output
    becomes Conv (1 channel: the difference) -> Resize -> Gather 0 -> Greater 0 -> Cast -> Cast -> output."""
    producer = {name: node for node in graph.node for name in node.output}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    node = producer[output]
    while node.op_type == "Cast":
        node = producer[node.input[0]]
    if node.op_type != "Greater":
        raise UpgradeError(f"{output!r} does not come from a Greater of two logits ({node.op_type}): not this "
                           "project's contract-1 export")
    class1, class0 = (producer[name] for name in node.input)
    if {class1.op_type, class0.op_type} != {"Gather"} or class1.input[0] != class0.input[0]:
        raise UpgradeError(f"{output!r}: the Greater does not compare two channels of one tensor")
    resize = producer[class1.input[0]]
    conv = producer.get(resize.input[0])
    if resize.op_type != "Resize" or conv is None or conv.op_type != "Conv" or len(conv.input) != 3:
        raise UpgradeError(f"{output!r}: the logits do not come from a 1x1 Conv with a bias, then a Resize")
    weight = numpy_helper.to_array(initializers[conv.input[1]])
    bias = numpy_helper.to_array(initializers[conv.input[2]])
    if weight.shape[0] != 2 or weight.shape[2:] != (1, 1):
        raise UpgradeError(f"{output!r}: the classifier's weights are {weight.shape}, not two 1x1 channels")
    _replace(graph, initializers[conv.input[1]], weight[1:2] - weight[0:1])
    _replace(graph, initializers[conv.input[2]], bias[1:2] - bias[0:1])
    channel = f"{output}_margin_channel"
    zero = f"{output}_margin_zero"
    graph.initializer.extend([numpy_helper.from_array(np.array(0, np.int64), channel),
                              numpy_helper.from_array(np.array(0, weight.dtype), zero)])
    class1.input[1] = channel  # the one channel there is
    node.input[1] = zero  # margin > 0
    graph.node.remove(class0)


def _replace(graph: onnx.GraphProto, tensor: onnx.TensorProto, value: np.ndarray) -> None:
    tensor.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(tensor).dtype), tensor.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtl_perception.training.contract_upgrade",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="a contract-1 ONNX file written by `mtl-perception export`")
    parser.add_argument("new", type=Path, help="where to write the contract-2 file (not over the old one)")
    args = parser.parse_args(argv)
    if args.new.resolve() == args.old.resolve():
        print("error: write the upgraded model to another path; the old file is the only copy of its weights",
              file=sys.stderr)
        return 2
    try:
        model = upgrade(onnx.load(str(args.old)))
    except (UpgradeError, OSError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        print(f"error: {args.old}: {err}", file=sys.stderr)
        return 2
    model.producer_name = "mtl_perception"
    atomic_write_bytes(args.new, model.SerializeToString())
    print(f"wrote {args.new} (model contract {CONTRACT_VERSION}: dynamic batch, one margin channel per mask)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
