"""mtl-perception model-card: params, GFLOPs, MACs and ONNX size per backbone (the paper's Table II)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from mtl_perception.commands.common import parse_hw
from mtl_perception.training.backbone import BACKBONES
from mtl_perception.training.checkpoint import model_from_checkpoint
from mtl_perception.training.complexity import PAPER_TABLE_II, model_card, onnx_card, onnx_params_recorded


def format_table(cards: list[dict]) -> str:
    lines = ["| backbone | params (M) | GFLOPs | GMACs | ONNX (MB) | paper params / GFLOPs / MB |",
             "|---|---|---|---|---|---|"]
    for c in cards:
        p = PAPER_TABLE_II.get(c["backbone"], {})
        gflops, macs = ("n/a", "n/a") if c["gflops"] is None else (f"{c['gflops']:.1f}", f"{c['macs']:.1f}")
        name = f"{c['backbone']} ({Path(c['source']).name})" if c.get("source") else c["backbone"]
        lines.append(f"| {name} | {c['params'] / 1e6:.2f} | {gflops} | {macs} | "
                     f"{c['onnx_mb']:.1f} | {p.get('params', 0) / 1e6:.1f} / {p.get('gflops', 0):.1f} / "
                     f"{p.get('size_mb', 0)} |")
    lines.append(f"\nat {cards[0]['img_size']}, batch 1; GFLOPs = 2 x multiply-accumulates (GMACs).")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    height, width = parse_hw(args.img_size)
    if args.model is not None:
        try:
            cards = [model_file_card(args.model, height, width).as_dict()]
        except (OSError, ValueError, RuntimeError) as err:  # CheckpointError, ModelContractError, onnx's errors
            print(f"error: --model {args.model}: {err}", file=sys.stderr)
            return 2
    else:
        names = args.backbones.split(",") if args.backbones else list(BACKBONES)
        cards = [model_card(b.strip(), height, width).as_dict() for b in names]
    print(json.dumps(cards, indent=2) if args.json else format_table(cards))
    if not args.json and args.model is not None and args.model.suffix == ".onnx" and \
            not onnx_params_recorded(args.model):
        print("(params: this file's initializers, BatchNorm folded into the convolutions: a file exported before "
              "the network's own count was recorded; the network counts a little more)")
    return 0


def model_file_card(path: Path, height: int, width: int):  # -> ModelCard (torch is imported lazily)
    """The card of a checkpoint (its network, at height x width) or of an ONNX file (at its own input)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if path.suffix == ".onnx":
        return onnx_card(path)

    model = model_from_checkpoint(path)
    return dataclasses.replace(model_card(model.config.backbone, height, width, model), source=str(path))
