"""The import rules of docs/architecture.md, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _loaded_after(import_stmt: str, modules: tuple[str, ...]) -> set[str]:
    code = (
        f"import sys\n{import_stmt}\n"
        f"print(','.join(m for m in {modules!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {m for m in out.stdout.strip().split(",") if m}


@pytest.mark.parametrize(
    ("import_stmt", "forbidden"),
    [
        ("import mtl_perception.runtime.perception", ("torch", "torchvision", "rclpy")),
        ("import mtl_perception.runtime.backends", ("torch", "torchvision", "rclpy", "tensorrt")),
        ("import mtl_perception.ros.node", ("torch", "torchvision")),
        ("import mtl_perception.training.model", ("rclpy",)),
        ("import mtl_perception.data.synthetic", ("torch", "rclpy")),
        ("import mtl_perception.cli; mtl_perception.cli.build_parser()", ("torch", "rclpy")),
        # infer is what a Jetson without ROS runs: no YAML, no ROS interfaces, no onnx
        ("import mtl_perception.cli; mtl_perception.cli.build_parser('infer')",
         ("torch", "rclpy", "rcl_interfaces", "yaml", "onnx")),
        ("import mtl_perception.cli; mtl_perception.cli.build_parser('trt-check')", ("torch", "rclpy", "onnx")),
    ],
)
def test_forbidden_imports(import_stmt: str, forbidden: tuple[str, ...]) -> None:
    assert _loaded_after(import_stmt, forbidden) == set()


def test_training_really_imports_torch() -> None:
    # guards the test above against passing because nothing was imported at all
    assert _loaded_after("import mtl_perception.training.model", ("torch",)) == {"torch"}


def test_ros_folder_is_glue_only() -> None:
    """ros/ holds the node, its conversions and parameters, its TF lookup and the node-process helper: no training,
    no evaluation, no data tools, no commands (they import it, not the other way round)."""
    import ast

    forbidden = ("torch", "torchvision", "mtl_perception.training", "mtl_perception.commands",
                 "mtl_perception.evaluation", "mtl_perception.data")
    for path in sorted((REPO / "mtl_perception" / "ros").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
