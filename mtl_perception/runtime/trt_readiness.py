"""Will TensorRT's ONNX parser take this file? A static check per TensorRT version that JetPack ships.

Each rule comes from NVIDIA's documentation of that version's parser (onnx-tensorrt's
`docs/operators.md` and changelog on the release branch) and is cited beside it. The check needs
only the `onnx` package, so it runs where TensorRT cannot (this repository's CI, a laptop) and
`mtl-perception export` runs it on every file it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl_perception.errors import UserFacingError

# onnx.TensorProto element types (plain ints, so this table needs no onnx import)
FLOAT, UINT8, INT8, INT32, INT64, BOOL, FLOAT16, DOUBLE, BFLOAT16 = 1, 2, 3, 6, 7, 9, 10, 11, 16
_TYPE_NAMES = {FLOAT: "FLOAT", UINT8: "UINT8", INT8: "INT8", INT32: "INT32", INT64: "INT64", BOOL: "BOOL",
               FLOAT16: "FLOAT16", DOUBLE: "DOUBLE", BFLOAT16: "BFLOAT16"}

# Operators marked supported ("Y") in onnx-tensorrt's docs/operators.md, release/8.5-GA.
_OPS_8_5 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid
Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike
RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign
Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())
# release/10.x's table adds these to 8.5's (CastLike, LayerNormalization, ... are in the 10.0 table);
# operators its changelog dates after 10.3 (Attention 10.14; RotaryEmbedding, RMSNormalization 10.15)
# are left out, so that what passes here passes on JetPack 6.1's 10.3.
_OPS_10 = _OPS_8_5 | frozenset("""
BlackmanWindow CastLike GroupNormalization HammingWindow HannWindow Hardmax IsInf LayerNormalization Mish
STFT
""".split())


# ONNX operators that each version's parser imports as a TensorRT plugin (libnvinfer_plugin must be there and
# initialised), read from onnx-tensorrt's importers: release/8.5-GA and release/8.6-GA builtin_op_importers.cpp
# (InstanceNormalization as InstanceNormalization_TRT, in 8.6 unless the parser's kNATIVE_INSTANCENORM flag is
# set; RoiAlign as ROIAlign_TRT), 10.1-GA onnxOpImporters.cpp (the newest importer of 10.x read: RoiAlign, and
# ScatterElements with a reduction as the ScatterElements plugin). Ops of other domains go to the plugin
# registry by name in every version.
_PLUGINS_8 = {"InstanceNormalization": "InstanceNormalization_TRT", "RoiAlign": "ROIAlign_TRT"}
_PLUGINS_10 = {"RoiAlign": "ROIAlign_TRT", "ScatterElements": "ScatterElements (with a reduction)"}


@dataclass(frozen=True)
class TensorRTRules:
    """What one TensorRT version's ONNX parser accepts, as far as a static check can tell."""

    version: str
    jetpack: str
    max_opset: int
    operators: frozenset[str]
    int64_io: bool  # INT64 network inputs and outputs (8.x casts INT64 down to INT32 inside only)
    cast_to_uint8_from_float_only: bool  # 8.5's parser: a Cast to UINT8 must start from FLOAT or FLOAT16
    min_opset: int = 1
    plugins: dict[str, str] | None = None  # ONNX op -> the plugin the parser imports it as


RULES: dict[str, TensorRTRules] = {
    # onnx-tensorrt release/8.5-GA docs/operators.md: "TensorRT 8.5 supports operators up to Opset 17";
    # UINT8 network I/O from 8.5 on (Changelog, 8.5 GA)
    "8.5": TensorRTRules("8.5", "JetPack 5.1 (Xavier NX, AGX Xavier, Orin)", 17, _OPS_8_5, int64_io=False,
                         cast_to_uint8_from_float_only=True, plugins=_PLUGINS_8),
    # 8.6's documentation keeps 8.5's opset, type notes and Cast restriction; held to 8.5's operator list
    "8.6": TensorRTRules("8.6", "JetPack 6.0 (Orin)", 17, _OPS_8_5, int64_io=False,
                         cast_to_uint8_from_float_only=True, plugins=_PLUGINS_8),
    # release/10.0 docs/operators.md: "opset 9 to opset 20"; INT64 is a supported type;
    # "UINT8 is only supported as network input or output tensor types"
    "10": TensorRTRules("10", "JetPack 6.1 / 6.2 (Orin), x86 GPUs", 20, _OPS_10, int64_io=True,
                        cast_to_uint8_from_float_only=False, min_opset=9, plugins=_PLUGINS_10),
}
TRT_VERSIONS = tuple(RULES)
# Resize attributes that every version's table lists as supported
_RESIZE_MODES = {"nearest", "linear"}
_RESIZE_COORDINATES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}


@dataclass(frozen=True)
class Violation:
    rule: str  # short name: opset, operator, uint8, int64, shape, resize
    where: str  # node or tensor name
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.message}"


def check_model(model: Any, version: str) -> list[Violation]:
    """Every rule of TensorRT `version` ("8.5", "8.6", "10") that an onnx.ModelProto breaks."""
    import onnx

    rules = RULES[version]
    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except onnx.shape_inference.InferenceError:
        graph = model.graph  # e.g. a plugin op ONNX cannot type: the type rules then see what the file declares
    types = _element_types(graph)
    violations = _opset(model, rules) + _operators(graph, rules) + _static_shapes(graph)
    violations += _uint8(graph, types, rules) + _int64_io(graph, rules) + _resize(graph)
    return violations


def check_file(path: Path, versions: Iterable[str] = TRT_VERSIONS) -> dict[str, list[Violation]]:
    """Violations per TensorRT version for an ONNX file (weights are not loaded)."""
    try:
        import onnx
    except ImportError as err:
        raise ImportError("the TensorRT readiness check needs the onnx package: pip install onnx") from err
    model = onnx.load(str(path), load_external_data=False)
    return {version: check_model(model, version) for version in versions}


def _element_types(graph: Any) -> dict[str, int]:
    types = {t.name: t.type.tensor_type.elem_type for t in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _opset(model: Any, rules: TensorRTRules) -> list[Violation]:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if rules.min_opset <= opset <= rules.max_opset:
        return []
    return [Violation("opset", "model", f"opset {opset}; TensorRT {rules.version} parses opset "
                                        f"{rules.min_opset} to {rules.max_opset}: re-export with that opset")]


def _operators(graph: Any, rules: TensorRTRules) -> list[Violation]:
    return [Violation("operator", node.name or node.op_type,
                      f"{node.domain + '.' if node.domain else ''}{node.op_type} is not supported by TensorRT "
                      f"{rules.version}'s ONNX parser; express it with supported operators or a plugin")
            for node in graph.node if node.domain not in ("", "ai.onnx") or node.op_type not in rules.operators]


def _static_shapes(graph: Any) -> list[Violation]:
    """Every dimension fixed but the batch, which may be a named dynamic dimension (the engine's optimisation
    profile covers it: 8.5, 8.6 and 10 alike). A dynamic height or width would need a profile over image
    sizes, which the contract's one input size rules out."""
    out = []
    for tensor in (*graph.input, *graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if not dims or any(d.dim_param or d.dim_value <= 0 for d in dims[1:]) or not (
                dims[0].dim_param or dims[0].dim_value > 0):
            shape = [d.dim_param or d.dim_value for d in dims]
            out.append(Violation("shape", tensor.name, f"shape {shape} is dynamic beyond the batch; the contract "
                                                      "fixes every dimension but the first (export at one size)"))
    return out


def _uint8(graph: Any, types: dict[str, int], rules: TensorRTRules) -> list[Violation]:
    """UINT8 exists only at the network's edges: an input goes straight into a Cast, an output comes
    straight out of one, and (8.5, 8.6) that Cast starts from a float type."""
    out = []
    inputs = {t.name for t in graph.input}
    outputs = {t.name for t in graph.output}
    producers = {name: node for node in graph.node for name in node.output}
    for node in graph.node:
        for name in node.input:
            if name and types.get(name) == UINT8 and node.op_type != "Cast":
                where = "network input" if name in inputs else "tensor"
                out.append(Violation("uint8", node.name or node.op_type,
                                     f"{node.op_type} reads UINT8 {where} {name!r}; TensorRT takes UINT8 only "
                                     "into a Cast: cast to float first"))
        for name in node.output:
            if types.get(name) == UINT8 and name not in outputs:
                out.append(Violation("uint8", node.name or node.op_type,
                                     f"{name!r} is a UINT8 tensor inside the network; TensorRT has UINT8 only "
                                     "for network inputs and outputs"))
    for name in outputs:
        if types.get(name) != UINT8:
            continue
        node = producers.get(name)
        if node is None or node.op_type != "Cast":
            out.append(Violation("uint8", name, "a UINT8 network output must come straight from a Cast"))
        elif rules.cast_to_uint8_from_float_only and types.get(node.input[0]) not in (FLOAT, FLOAT16):
            source = _TYPE_NAMES.get(types.get(node.input[0], 0), "an unknown type")
            out.append(Violation("uint8", node.name or name,
                                 f"output {name!r} is a Cast to UINT8 from {source}; TensorRT {rules.version} "
                                 "casts to UINT8 only from FLOAT or FLOAT16: cast to float first"))
    return out


def _int64_io(graph: Any, rules: TensorRTRules) -> list[Violation]:
    if rules.int64_io:
        return []
    return [Violation("int64", t.name, f"INT64 network {kind}; TensorRT {rules.version} casts INT64 to INT32 "
                                       "inside the network only: use INT32")
            for kind, tensors in (("input", graph.input), ("output", graph.output)) for t in tensors
            if t.type.tensor_type.elem_type == INT64]


def _resize(graph: Any) -> list[Violation]:
    out = []
    for node in graph.node:
        if node.op_type != "Resize":
            continue
        attrs = {a.name: a.s.decode() for a in node.attribute if a.s}
        mode = attrs.get("mode", "nearest")
        coords = attrs.get("coordinate_transformation_mode", "half_pixel")
        if mode not in _RESIZE_MODES or coords not in _RESIZE_COORDINATES:
            out.append(Violation("resize", node.name or "Resize",
                                 f"Resize mode {mode!r} with {coords!r} coordinates; TensorRT supports modes "
                                 f"{sorted(_RESIZE_MODES)} and coordinates {sorted(_RESIZE_COORDINATES)}"))
    return out


@dataclass(frozen=True)
class PluginUse:
    node: str
    op_type: str
    plugin: str


def plugin_uses(model: Any, version: str) -> list[PluginUse]:
    """The nodes TensorRT `version`'s parser would import as plugins (none for this project's models)."""
    table = RULES[version].plugins or {}
    out = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            out.append(PluginUse(node.name or node.op_type, f"{node.domain}.{node.op_type}",
                                 f"{node.op_type} from the plugin registry"))
        elif node.op_type in table and (node.op_type != "ScatterElements" or
                                        any(a.name == "reduction" and a.s not in (b"", b"none") for a in node.attribute)):
            out.append(PluginUse(node.name or node.op_type, node.op_type, table[node.op_type]))
    return out


@dataclass(frozen=True)
class BuildNeeds:
    """What a build on one JetPack asks of the device, known before the build."""

    version: str
    workspace_mb: int  # the builder's workspace memory pool limit
    plugins: list[PluginUse]

    def __str__(self) -> str:
        plugins = "no plugin" if not self.plugins else "plugins " + ", ".join(
            f"{p.plugin} (node {p.node})" for p in self.plugins) + ": libnvinfer_plugin must be installed and loaded"
        return f"build asks for a {self.workspace_mb} MB workspace; {plugins}"


def build_needs(path: Path, workspace_mb: int, versions: Iterable[str] = TRT_VERSIONS) -> dict[str, BuildNeeds]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {v: BuildNeeds(v, workspace_mb, plugin_uses(model, v)) for v in versions}


class NotReadyError(ValueError, UserFacingError):
    """A model that some TensorRT version that JetPack ships would refuse; the message lists why."""


def require_ready(model: Any, versions: Iterable[str] = TRT_VERSIONS) -> None:
    """Raise NotReadyError unless every TensorRT version in `versions` would take the onnx.ModelProto."""
    results = {version: check_model(model, version) for version in versions}
    if any(results.values()):
        raise NotReadyError("the model breaks TensorRT's ONNX rules:\n" + summary(results))


def summary(results: dict[str, list[Violation]]) -> str:
    """One line per version: 'TensorRT 8.5 (JetPack 5.1 ...): ok' or the count and each violation."""
    lines = []
    for version, violations in results.items():
        head = f"TensorRT {version} ({RULES[version].jetpack}): "
        lines.append(head + ("ok" if not violations else f"{len(violations)} problem(s)"))
        lines += [f"  {v}" for v in violations]
    return "\n".join(lines)
