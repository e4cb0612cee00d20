"""The options of mtl-perception demo: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/demo.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import at_least_one, rate_hz, thread_count

DEMO_FRAMES = 60


REPLAY_HZ = 10.0  # the camera rate asked for; a machine that cannot keep up gets a slower replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled MobileNetV2 model)")
    parser.add_argument("--data", type=Path, default=Path("demo_data"), help="where the synthetic drive is kept")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for the demo's pictures and videos")
    parser.add_argument("--frames", type=at_least_one, default=DEMO_FRAMES, help="frames of the synthetic drive")
    parser.add_argument("--rate", type=rate_hz, default=REPLAY_HZ,
                        help="replay rate in Hz at most; lower where the node cannot keep up (measured first)")
    parser.add_argument("--threads", type=thread_count, default=2, help="ONNX Runtime threads in the node")
