"""Rewrite a model file from this project's older exporters into what `mtl-perception export` writes now,
keeping its weights: `python -m mtl_perception.training.contract_upgrade OLD.onnx NEW.onnx`.

A contract-1 file (before batching) gets all three changes, a contract-2 file from before the stacked
resize the last:
- the batch becomes the named dynamic dimension BATCH_DIM, so one file serves several cameras at once (the
  exporter's graph computes its reshapes from the tensors' shapes, so nothing else depends on the batch);
- each segmentation head's 1x1 classifier gives one channel, class 1's weights minus class 0's, upsampled
  once, and the mask is that channel > 0: the sign of up(l1) - up(l0), computed on half the pixels. The masks
  then differ from the old file's only where the two logits are within float rounding of each other;
- the two heads' margins are stacked and upsampled by one Resize (MultiTaskNet.forward_margins says why);
  per channel the same bilinear resize, so the masks are the old file's.

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
    """What the exporter writes now, from a contract-1 file or a contract-2 file with a resize per mask (a copy;
    the argument is left as it was)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    version = {p.key: p.value for p in model.metadata_props}.get("contract_version")
    if version == "1":
        for output in MASK_OUTPUTS:
            _one_margin_channel(model.graph, output)
    elif version != "2" or _stacked(model.graph):
        raise UpgradeError(f"the file follows model contract {version!r}"
                           f"{' and stacks its margins already' if version == '2' else ''}: nothing to rewrite "
                           "(this upgrade reads contract 1, and contract 2 with a resize per mask)")
    _stack_margins(model.graph)
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


def _margin_branch(producer: dict[str, onnx.NodeProto], output: str) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    """The Gather that takes a mask's margin channel and the Resize it takes it from."""
    node = producer[output]
    while node.op_type in ("Cast", "Greater"):
        node = producer[node.input[0]]
    resize = producer.get(node.input[0])
    if node.op_type != "Gather" or resize is None or resize.op_type != "Resize":
        raise UpgradeError(f"{output!r} does not come from a channel of a Resize: not this project's export")
    return node, resize


def _stacked(graph: onnx.GraphProto) -> bool:
    producer = {name: node for node in graph.node for name in node.output}
    return len({_margin_branch(producer, output)[1].output[0] for output in MASK_OUTPUTS}) == 1


def _stack_margins(graph: onnx.GraphProto) -> None:
    """Margin -> Resize -> Gather 0, per mask, becomes Concat(margins) -> one Resize -> Gather 0 and Gather 1."""
    producer = {name: node for node in graph.node for name in node.output}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    (first_gather, resize), (second_gather, other) = (_margin_branch(producer, output) for output in MASK_OUTPUTS)
    if resize.attribute != other.attribute or list(resize.input[1:3]) != list(other.input[1:3]):
        raise UpgradeError("the two masks are resized differently: they cannot share one Resize")
    stacked = "stacked_margins"
    margin = resize.input[0]
    graph.node.append(onnx.helper.make_node("Concat", [margin, other.input[0]], [stacked], axis=1,
                                            name="stacked_margins/Concat"))
    resize.input[0] = stacked
    if len(resize.input) > 3 and resize.input[3]:  # `sizes`, [B, C, H, W]: C is now 2
        sizes = resize.input[3]
        if sizes in initializers:
            value = numpy_helper.to_array(initializers[sizes]).copy()
            value[1] = 2
            resize.input[3] = f"{sizes}_stacked"
            graph.initializer.append(numpy_helper.from_array(value, resize.input[3]))
        else:  # computed from the margin's shape, as the exporter does: read it from the stack's
            _shape_of(producer, sizes, margin).input[0] = stacked
    for gather, channel in ((first_gather, 0), (second_gather, 1)):
        gather.input[0] = resize.output[0]
        gather.input[1] = f"stacked_margins_channel{channel}"
        graph.initializer.append(numpy_helper.from_array(np.array(channel, np.int64), gather.input[1]))
    _prune_and_sort(graph)


def _shape_of(producer: dict[str, onnx.NodeProto], name: str, tensor: str) -> onnx.NodeProto:
    """The Shape node of `tensor` among the nodes that compute `name`."""
    pending = [name]
    while pending:
        node = producer.get(pending.pop())
        if node is None:
            continue
        if node.op_type == "Shape" and node.input[0] == tensor:
            return node
        pending.extend(node.input)
    raise UpgradeError("the mask's Resize takes its size neither from a constant nor from the margin's shape")


def _prune_and_sort(graph: onnx.GraphProto) -> None:
    """Order the nodes so that each comes after what it reads (ONNX requires it; the new Concat was appended),
    then drop the nodes and initializers nothing reads any more."""
    available = {tensor.name for tensor in (*graph.input, *graph.initializer)} | {""}
    ordered: list[onnx.NodeProto] = []
    pending = list(graph.node)
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise UpgradeError("the rewritten graph has a cycle")
        for node in ready:
            available.update(node.output)
        ordered += ready
        pending = [node for node in pending if node not in ready]
    wanted = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(ordered):
        if any(name in wanted for name in node.output):
            kept.append(node)
            wanted.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in wanted]:
        graph.initializer.remove(tensor)


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
    print(f"wrote {args.new} (model contract {CONTRACT_VERSION}: dynamic batch, one margin channel per mask, "
          "the two margins resized together)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
