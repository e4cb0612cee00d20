"""perception_node's parameters as config/perception_node.schema.json declares them (JSON Schema, as Autoware
declares its nodes' parameters): each one's type, default, range or choices, description, and whether it can
be set on the running node. The node's descriptors, the launch file's arguments, the README's table and the
tools' defaults all come from this file; no ROS import here, so the tools and the Jetson runtime read it too.
Also: reading what a params file or a command line gives the node, as rcl reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtl_perception.package_paths import package_share

SCHEMA_FILE = "perception_node.schema.json"
NODE_NAME = "perception_node"
SETTABLE = "x-settable-at-run-time"  # the schema's own keyword: true where `ros2 param set` takes effect


def schema_path() -> Path:
    return package_share() / "config" / SCHEMA_FILE


def load_schema(path: Path | None = None) -> dict[str, Any]:
    return json.loads((path or schema_path()).read_text())


def parameter_properties(schema: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each parameter's JSON Schema property, in the file's order."""
    schema = load_schema() if schema is None else schema
    return dict(schema["definitions"][NODE_NAME]["properties"])


def schema_defaults(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every parameter's default; a parameter without one (camera_pose) is left out."""
    return {name: prop["default"] for name, prop in parameter_properties(schema).items() if "default" in prop}


def value_range(name: str, schema: dict[str, Any] | None = None) -> tuple[float, float]:
    """A numeric parameter's [minimum, maximum]."""
    prop = parameter_properties(schema)[name]
    return prop["minimum"], prop["maximum"]


def params_file_values(path: Path, namespace: str, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The parameters a params file gives the node, as rcl reads it: the wildcard sections (`/**`, `**`)
    first, then those naming the node (`perception_node`, `/NS/perception_node`, `NS/perception_node`)."""
    content = _load_params_yaml(path.read_text()) or {}
    if not isinstance(content, dict):
        raise ValueError(f"params file {path} is not a YAML mapping of node names to ros__parameters")
    ns = namespace.strip("/")
    full = f"/{ns}/{node_name}" if ns else f"/{node_name}"
    values: dict[str, Any] = {}
    for name in dict.fromkeys(("/**", "**", node_name, full, full.lstrip("/"))):
        section = content.get(name)
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            values.update(section["ros__parameters"])
    return values


def _load_params_yaml(text: str) -> Any:
    """YAML as rcl reads a params file: safe, except that the files launch_ros writes for a node carry
    `!!python/tuple` for the values it was given as tuples, which rcl reads as sequences, and so does this."""
    import yaml

    class ParamsLoader(yaml.SafeLoader):
        pass

    ParamsLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                                 lambda loader, node: loader.construct_sequence(node))
    return yaml.load(text, Loader=ParamsLoader)  # a SafeLoader with one more constructor


def given_parameters(argv: list[str], namespace: str, node_name: str = NODE_NAME) -> set[str]:
    """The parameter names a command line gives the node: `-p NAME:=VALUE` (or `-p NODE:NAME:=VALUE` for this
    node) and every params file's keys, from its --ros-args sections."""
    names: set[str] = set()
    ros, args = False, iter(argv)
    for arg in args:
        if arg == "--ros-args":
            ros = True
        elif arg == "--":
            ros = False
        elif ros and arg in ("-p", "--param"):
            rule = next(args, "").split(":=", 1)[0]
            target, _, name = rule.rpartition(":")
            if target in ("", node_name):
                names.add(name)
        elif ros and arg == "--params-file":
            path = Path(next(args, ""))
            if path.is_file():
                names |= set(params_file_values(path, namespace, node_name))
    return names
