"""The options of mtl-perception bench-scene: what building the parser (--help included) imports of the
command, so it holds only what the options need; mtl_perception/commands/bench_scene.py, which does the work,
is imported when the command runs."""

from __future__ import annotations

import argparse

from mtl_perception.commands.common import at_least_one


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--objects", type=at_least_one, default=50, help="road users in every frame (default 50)")
    parser.add_argument("--frames", type=at_least_one, default=300, help="frames timed, at 10 Hz (default 300)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
