"""The ament_python package is well formed."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setup_py_constant(name: str) -> str:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py defines no {name}")


def test_package_xml_is_format_3_ament_python() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "mtl_perception"
    assert root.findtext("export/build_type") == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "vision_msgs", "diagnostic_msgs",
            "python3-numpy", "python3-opencv"} <= exec_deps
    assert "python3-pytest" in {e.text for e in root.findall("test_depend")}


def test_versions_match() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.findtext("version") == _setup_py_constant("VERSION")


def test_runtime_extra_never_pulls_torch() -> None:
    extras = _setup_py_constant("EXTRAS")
    for group in ("runtime", "ros"):
        assert not any(req.startswith(("torch", "torchvision")) for req in extras[group]), group
    assert any(req.startswith("torch==") for req in extras["training"])


def test_top_level_layout() -> None:
    for name in ("package.xml", "setup.py", "setup.cfg", "resource/mtl_perception", "mtl_perception",
                 "launch", "config", "models", "test", "Makefile", "README.md", ".ci/run", "docs"):
        assert (REPO / name).exists(), name
    # colcon must not build our fallback vision_msgs beside the apt one
    assert (REPO / "resource/vision_msgs/COLCON_IGNORE").exists()


def test_console_scripts_point_at_callables() -> None:
    import importlib

    source = (REPO / "setup.py").read_text()
    for entry in ("perception_node = {PACKAGE}.ros.node:main", "mtl-perception = {PACKAGE}.cli:main"):
        assert entry in source
    assert callable(importlib.import_module("mtl_perception.cli").main)
