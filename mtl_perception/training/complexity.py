"""Model size and cost, as the paper's Table II reports them. GFLOPs = 2 x multiply-accumulates."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from mtl_perception.training.export import model_info, to_onnx_bytes
from mtl_perception.training.model import MultiTaskNet, build_untrained

# the paper's Table II at 384x640, the budget each backbone must stay under
PAPER_TABLE_II = {
    "mobilenetv2": {"params": 5.4e6, "gflops": 33.8, "size_mb": 24},
    "resnet50": {"params": 27.6e6, "gflops": 162.4, "size_mb": 110},
}


@dataclass(frozen=True)
class ModelCard:
    backbone: str
    params: int
    gflops: float
    macs: float
    onnx_mb: float
    img_size: str

    def as_dict(self) -> dict:
        return asdict(self)


def count_flops(model: MultiTaskNet, height: int, width: int) -> int:
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
    return ModelCard(backbone, sum(p.numel() for p in model.parameters()), flops / 1e9, flops / 2e9,
                     len(onnx_bytes) / 1e6, f"{height}x{width}")
