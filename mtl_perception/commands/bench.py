"""mtl-perception bench: the paper's Table II (size, cost) and Table III (latency) on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.commands.common import parse_hw
from mtl_perception.evaluation.benchmark import (
    PeerComparison,
    markdown_table,
    measure,
    measure_against_peer,
    plot_latency,
    speed_ratios,
)
from mtl_perception.runtime.backends import BackendOptions
from mtl_perception.runtime.presets import deployed_backend
from mtl_perception.training.backbone import BACKBONES
from mtl_perception.training.checkpoint import CheckpointError, model_from_checkpoint
from mtl_perception.training.complexity import count_flops, model_card, onnx_card
from mtl_perception.training.export import export_onnx
from mtl_perception.training.model import build_untrained
from mtl_perception.training.peers import PEERS, build_peer, export_peer


class _Timer:
    """Times each model alone, or in turn with the peer at the same size when --peer is given: the peer's row
    joins the latency table, and the comparison the ratio lines."""

    def __init__(self, args: argparse.Namespace, options: BackendOptions, workdir: Path) -> None:
        self.args, self.options, self.workdir = args, options, workdir
        self.comparisons: list[PeerComparison] = []

    def time(self, model: Path, backbone: str, size: str, gflops: float | None) -> list[dict]:
        args = self.args
        if args.peer is None:
            return [measure(model, backbone, size, gflops, self.options, args.runs,
                            max_seconds=args.max_seconds).as_dict()]
        height, width = parse_hw(size)
        peer, peer_path = build_peer(args.peer), self.workdir / f"{args.peer}_{size}.onnx"
        export_peer(peer, peer_path, height, width)  # speed does not depend on the weights
        comparison = measure_against_peer(model, backbone, size, gflops, peer_path, args.peer,
                                          count_flops(peer, height, width) / 1e9, self.options, args.runs,
                                          max_seconds=args.max_seconds)
        self.comparisons.append(comparison)
        # the peer is timed anew beside each of our models: its row names which, so that the table never holds
        # two rows of one name and size (nor a ratio read from the other model's round)
        return [comparison.ours.as_dict(), {**comparison.peer.as_dict(), "backbone": f"{args.peer} (with {backbone})"}]


def run(args: argparse.Namespace) -> int:
    if args.model is not None and not args.model.is_file():
        print(f"error: --model {args.model} not found", file=sys.stderr)
        return 2
    if args.peer is not None and args.peer not in PEERS:
        print(f"error: --peer {args.peer}: not a peer this benchmark knows; use one of {', '.join(PEERS)}",
              file=sys.stderr)
        return 2
    if args.peer is not None and args.backend != "onnxruntime":
        print("error: --peer runs the peer with ONNX Runtime: time ours with --backend onnxruntime too",
              file=sys.stderr)
        return 2
    options = deployed_backend(backend=args.backend, threads=args.threads)
    cards: list[dict] = []
    latency: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        timer = _Timer(args, options, Path(tmp))
        if args.model is not None and args.model.suffix == ".onnx":
            try:
                card = onnx_card(args.model)
                latency += timer.time(args.model, card.backbone, card.img_size, card.gflops)
            except (OSError, ValueError, RuntimeError) as err:  # a missing or foreign file, a contract mismatch
                print(f"error: --model {args.model}: {err}", file=sys.stderr)
                return 2
            cards.append(card.as_dict())
            models: list = []
        elif args.model is not None:
            try:
                network = model_from_checkpoint(args.model)
            except CheckpointError as err:
                print(f"error: --model {args.model}: {err}", file=sys.stderr)
                return 2
            models = [(network.config.backbone, network)]
        else:
            backbones = [b.strip() for b in args.backbones.split(",")] if args.backbones else list(BACKBONES)
            # speed does not depend on the weights; a row names its heads where they are not the bundled model's
            models = [(b if args.seg_head == "stride2" else f"{b}+{args.seg_head}", build_untrained(b, seg_head=args.seg_head))
                      for b in backbones]
        for backbone, model in models:
            cards.append(model_card(backbone, 384, 640, model).as_dict())
            for height, width in tqdm(args.sizes, desc=f"bench {backbone}", unit="size"):
                size = f"{height}x{width}"
                path = Path(tmp) / f"{backbone}_{size}.onnx"
                export_onnx(model, path, height, width, "random weights: benchmark only")
                gflops = count_flops(model, height, width) / 1e9
                latency += timer.time(path, backbone, size, gflops)
    result: dict = {"model_card": cards, "latency": latency}
    if timer.comparisons:
        result["peers"] = [c.as_dict() for c in timer.comparisons]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "bench.json", json.dumps(result, indent=2))
    table = markdown_table(latency)
    ratios = speed_ratios(latency) + [c.line() for c in timer.comparisons]
    atomic_write_text(args.out / "bench.md", table + "\n\n" + "\n".join(f"- {r}" for r in ratios) + "\n")
    plot_latency(latency, args.out / "latency.png")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table)
        for line in ratios:
            print(line)
        print(f"(GFLOPs = 2 x MACs; written to {args.out}/bench.json, bench.md, latency.png)")
    return 0
