"""The one home of the defaults perception_node shares with the tools: config/perception_node.schema.json.

Autoware's way: no default is written in code. The node declares its parameters with the schema's defaults,
config/jetson.yaml (the params file the launch file passes, and the template for one's own) holds the same
values and is validated against the schema, and the runtime and the tools take from it what they share with
the node (the deployed detection thresholds, the backend, the precision, ...). Their `--help` names the
value, read only when printed (NodeDefault), so building a parser reads no file. test/test_defaults_once.py
fails when one of the defaults is written again as a literal in the code.
"""

from __future__ import annotations

import argparse
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import Any

from mtl_perception.package_paths import package_share


def node_defaults_file() -> Path:
    return package_share() / "config" / "jetson.yaml"


def node_defaults(path: Path | None = None) -> dict[str, Any]:
    """perception_node's parameter defaults, from its schema; with `path`, the ros__parameters of that params
    file's wildcard section instead."""
    if path is None:
        from mtl_perception.parameter_schema import schema_defaults

        return schema_defaults()
    import yaml

    values = yaml.safe_load(path.read_text())
    return dict(values["/**"]["ros__parameters"])


def node_default(name: str) -> Any:
    """One parameter's default, read from config/jetson.yaml now."""
    return node_defaults()[name]


def from_node_defaults(name: str) -> Any:
    """A dataclass field whose default is the parameter's in config/jetson.yaml, read when an object is made."""
    return field(default_factory=partial(node_default, name))


class NodeDefault:
    """An option's default that is perception_node's parameter `name`: argparse keeps this object, --help
    prints the YAML's value, and resolve_node_defaults puts the value in place before a command runs."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return str(node_default(self.name))

    def __repr__(self) -> str:
        return f"NodeDefault({self.name!r})"


def resolve_node_defaults(args: argparse.Namespace) -> None:
    """Replace every option left at its NodeDefault by the YAML's value (read once)."""
    pending = {key: value for key, value in vars(args).items() if isinstance(value, NodeDefault)}
    if pending:
        defaults = node_defaults()
        for key, value in pending.items():
            setattr(args, key, defaults[value.name])
