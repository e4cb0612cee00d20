"""Argument helpers shared by the subcommands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl_perception.runtime.contract import check_input_size


def parse_hw(text: str, model_input: bool = True) -> tuple[int, int]:
    """'384x640' -> (384, 640). A model input size must follow the contract (multiples of 32); any other
    size (a camera's) just has to be positive."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not HxW, e.g. 384x640") from None
    if model_input:
        check_input_size(height, width)
    elif height <= 0 or width <= 0:
        raise ValueError(f"size {text!r}: height and width must be positive")
    return height, width


def report(summary: Mapping[str, Any], table: str, json_target: str | None) -> None:
    """A command's result: JSON on stdout for `--json` alone (`-`), else the table, and with `--json FILE`
    the JSON written to FILE too (atomically)."""
    import json

    from mtl_perception.atomic_io import atomic_write_text

    if json_target == "-":
        print(json.dumps(summary, indent=2))
        return
    print(table)
    if json_target:
        atomic_write_text(Path(json_target), json.dumps(summary, indent=2))
