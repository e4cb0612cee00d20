"""Model size and cost, as the paper's Table II reports them. GFLOPs = 2 x multiply-accumulates."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mtl_perception.training.export import model_info, to_onnx_bytes
from mtl_perception.training.model import PARAMETERS_KEY, MultiTaskNet, build_untrained, parameter_count

# the paper's Table II at 384x640, the budget each backbone must stay under
PAPER_TABLE_II = {
    "mobilenetv2": {"params": 5.4e6, "gflops": 33.8, "size_mb": 24},
    "resnet50": {"params": 27.6e6, "gflops": 162.4, "size_mb": 110},
}


@dataclass(frozen=True)
class ModelCard:
    backbone: str
    params: int
    gflops: float | None  # None: an ONNX file alone, whose cost needs the network to count
    macs: float | None
    onnx_mb: float
    img_size: str
    source: str = ""  # the file measured, where not a built-in backbone

    def as_dict(self) -> dict:
        return asdict(self)


def count_flops(model: nn.Module, height: int, width: int) -> int:
    """FLOPs of one forward pass at batch 1 as torch's FlopCounterMode counts them: 2 per MAC of
    convolutions and matrix products (element-wise work is not counted, as in the paper's tools)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, height, width))
    return int(counter.get_total_flops())


def model_card(backbone: str, height: int = 384, width: int = 640, model: MultiTaskNet | None = None) -> ModelCard:
    if model is None:
        model = build_untrained(backbone)  # weights do not change size or cost
    flops = count_flops(model, height, width)
    onnx_bytes = to_onnx_bytes(model, height, width, model_info(model, height, width, "random weights"))
    return ModelCard(backbone, parameter_count(model), flops / 1e9, flops / 2e9, len(onnx_bytes) / 1e6,
                     f"{height}x{width}")


def onnx_card(path: Path) -> ModelCard:
    """An exported file's card: parameters counted from its initializers, its size and input; no FLOPs
    (counting them needs the network: give the checkpoint instead)."""
    import onnx

    from mtl_perception.runtime.contract import ModelInfo

    model = onnx.load(str(path), load_external_data=False)
    metadata = {p.key: p.value for p in model.metadata_props}
    info = ModelInfo.from_metadata(metadata, str(path))
    # a file exported before the count was recorded: its initializers, BatchNorm folded in (onnx_params_recorded)
    params = int(metadata[PARAMETERS_KEY]) if PARAMETERS_KEY in metadata else \
        sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    return ModelCard(info.backbone, params, None, None, path.stat().st_size / 1e6,
                     f"{info.input_height}x{info.input_width}", str(path))


def onnx_params_recorded(path: Path) -> bool:
    """Whether an exported file records its network's parameter count (export does since 2026-12-06); an
    older file's card counts its initializers, where BatchNorm is folded: a little fewer."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(p.key == PARAMETERS_KEY for p in model.metadata_props)
