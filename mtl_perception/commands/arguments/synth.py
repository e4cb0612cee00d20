"""The options of mtl-perception synth: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/synth.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="dataset root to write (images/, labels/)")
    parser.add_argument("--train", type=int, default=200, help="train frames (default 200)")
    parser.add_argument("--val", type=int, default=50, help="val frames (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    parser.add_argument("--size", default="720x1280", help="frame size HxW (default 720x1280, as BDD100K)")
    parser.add_argument("--workers", type=int, default=1, help="processes to render with (default 1)")
    parser.add_argument("--world", choices=["randomised", "plain"], default="randomised",
                        help="randomised: the training mix of data/randomisation.py (default); plain: the scenes "
                             "as they were before it (to compare models on)")
    parser.add_argument("--drive-frames", type=int, default=0, metavar="N",
                        help="render each split as drives of N consecutive frames (one road, the ego car moving "
                             "along it, road users keeping their track ids; labels/box_track_20/SPLIT/*.json and "
                             "their places in metres in the ground file) instead of unrelated scenes (default 0)")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="a drive's frame rate (default 10)")
    parser.add_argument("--gallery", type=Path, metavar="OUT.png",
                        help="also draw a contact sheet of labelled frames into OUT.png, and one frame per "
                             "randomisation factor (each forced on) into OUT-factors.png")
    parser.add_argument("--gallery-only", action="store_true",
                        help="draw the gallery of the existing set at --out, generate nothing")
    parser.add_argument("--gallery-split", default="train", help="split the gallery shows (default train)")
    parser.add_argument("--overwrite", action="store_true", help="replace the dataset an existing --out holds")
