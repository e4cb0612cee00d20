"""The options of mtl-perception pseudo-label: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/pseudo_label.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import at_least_one, thread_count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, action="append", default=[],
                        help="an image (.jpg .jpeg .png .bmp), an image folder, a video (.mp4 .avi .mov .mkv .gif) or "
                             "a rosbag2 bag; repeatable")
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write (BDD100K layout)")
    parser.add_argument("--split", default="train", help="split to write (default: train)")
    parser.add_argument("--detector", action="append", default=[], metavar="KIND:PATH[@SIZE]",
                        help="a detection teacher: yolox:FILE[@SIZE] (any multiple of 32; default 640), "
                             "nanodet:FILE, or contract:FILE (a model of this project); repeatable: fused by WBF")
    parser.add_argument("--segmenter", action="append", default=[], metavar="KIND:PATH",
                        help="a segmentation teacher: twinlite:FILE (TwinLiteNet or TwinLiteNetPlus) or "
                             "contract:FILE; repeatable: probabilities averaged")
    parser.add_argument("--flip", action="store_true", help="test-time flip: a mirrored pass of every teacher")
    parser.add_argument("--box-keep", type=float, default=0.30, help="fused score for a box label (default 0.30)")
    parser.add_argument("--box-ignore", type=float, default=0.10,
                        help="fused score for an ignore region, below --box-keep (default 0.10)")
    parser.add_argument("--wbf-iou", type=float, default=0.55, help="IoU that makes boxes one object (default 0.55)")
    parser.add_argument("--drivable-margin", type=float, default=0.25,
                        help="pixels whose mean drivable probability is within this of 0.5 are ignored (default 0.25)")
    parser.add_argument("--lane-margin", type=float, default=0.25,
                        help="the same for lane lines (default 0.25)")
    parser.add_argument("--every", type=at_least_one, default=1,
                        help="keep every N-th frame of a video or bag (default 1: all; neighbours are near copies)")
    parser.add_argument("--max-frames", type=at_least_one, metavar="N",
                        help="label at most the first N frames of the inputs (after --every; default: all)")
    parser.add_argument("--resize", metavar="WxH",
                        help="resize every frame to WxH first (e.g. 1280x720 for frames stored squashed)")
    parser.add_argument("--shard", default="1/1", metavar="K/N", help="label the K-th of N shares (default 1/1)")
    parser.add_argument("--merge", action="store_true", help="join the N shards of --split into det_SPLIT.json")
    parser.add_argument("--threads", type=thread_count, default=2, help="ONNX Runtime threads per teacher (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace this split's labels if they exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
