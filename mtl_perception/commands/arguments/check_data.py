"""The options of mtl-perception check-data: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/check_data.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset root (images/, labels/)")
    parser.add_argument("--split", help="the split to check, e.g. train or val (default: every split the root holds)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
