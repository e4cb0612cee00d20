"""The ament_python package is well formed."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _installed_metadata() -> Any:
    """The package's metadata as pip wrote it from setup.py (make setup installs it): what a user's pip
    resolves, not setup.py's text."""
    from importlib.metadata import metadata

    return metadata("mtl_perception")


def _extra(name: str, python: str | None = None) -> list[Requirement]:
    """The installed requirements of one extra: on one Python version where given, else on any JetPack's or
    this machine's."""
    from importlib.metadata import requires

    pythons = (python,) if python else ("3.8", "3.10", "3.11", "3.12")
    requirements = [Requirement(text) for text in requires("mtl_perception") or []]
    return [r for r in requirements if r.marker is not None
            and any(r.marker.evaluate({"extra": name, "python_version": v}) for v in pythons)]


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
    assert root.findtext("version") == _installed_metadata()["Version"]


def test_runtime_extra_never_pulls_torch() -> None:
    for group in ("runtime", "ros"):
        assert not any(r.name in ("torch", "torchvision") for r in _extra(group)), group
    assert any(r.name == "torch" and str(r.specifier).startswith("==") for r in _extra("training"))


def test_top_level_layout() -> None:
    for name in ("package.xml", "setup.py", "setup.cfg", "resource/mtl_perception", "mtl_perception",
                 "launch", "config", "models", "test", "Makefile", "README.md", ".ci/run", "docs"):
        assert (REPO / name).exists(), name
    # colcon must not build our fallback vision_msgs beside the apt one
    assert (REPO / "resource/vision_msgs/COLCON_IGNORE").exists()


def test_console_scripts_point_at_callables() -> None:
    """The entry points as pip installed them (the package's own metadata, not setup.py's text): each loads."""
    from importlib.metadata import distribution

    scripts = {e.name: e for e in distribution("mtl_perception").entry_points if e.group == "console_scripts"}
    assert set(scripts) >= {"perception_node", "mtl-perception"}
    assert scripts["perception_node"].value == "mtl_perception.ros.perception_node:main"
    assert scripts["mtl-perception"].value == "mtl_perception.cli:main"
    assert callable(scripts["mtl-perception"].load())


# Import name -> the package.xml dependency that provides it on a ROS machine. The python3-* keys are
# checked against rosdistro's rosdep/python.yaml and base.yaml; onnxruntime and rosbags have no key
# there (pip), TensorRT and pycuda come with JetPack: the README says how to install each.
ROSDEP_KEYS = {
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "sensor_msgs": "sensor_msgs", "std_msgs": "std_msgs",
    "vision_msgs": "vision_msgs", "diagnostic_msgs": "diagnostic_msgs", "nav_msgs": "nav_msgs", "lifecycle_msgs": "lifecycle_msgs",
    "geometry_msgs": "geometry_msgs", "visualization_msgs": "visualization_msgs",
    "tf2_ros": "tf2_ros_py",  # the Python tf2_ros module comes in the tf2_ros_py package
    "ament_index_python": "ament_index_python", "launch": "launch", "launch_ros": "launch_ros",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib", "scipy": "python3-scipy",
    "mtl_perception_msgs": "mtl_perception_msgs",  # resource/'s interface package, built beside this one
}
NOT_FROM_ROSDEP = {"onnxruntime", "rosbags", "tensorrt", "pycuda", "onnx", "pycocotools", "ensemble_boxes",
                   "motmetrics"}  # motmetrics: eval's tracking figures only (the evaluation extra)
TRAINING_ONLY = {"torch", "torchvision"}  # training/ is never run on the robot


def _third_party_imports(paths: list[Path]) -> set[str]:
    import sys

    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("mtl_perception", "__future__")}


def test_package_xml_declares_what_the_installed_code_imports() -> None:
    installed = [p for p in (REPO / "mtl_perception").rglob("*.py") if "training" not in p.parts]
    imports = _third_party_imports([*installed, *(REPO / "launch").glob("*.py")])
    unmapped = imports - ROSDEP_KEYS.keys() - NOT_FROM_ROSDEP - TRAINING_ONLY
    assert not unmapped, f"add these imports to ROSDEP_KEYS and package.xml: {sorted(unmapped)}"
    root = ET.parse(REPO / "package.xml").getroot()
    declared = {e.text for e in root.findall("exec_depend")}
    missing = {ROSDEP_KEYS[name] for name in imports & ROSDEP_KEYS.keys()} - declared
    assert not missing, f"package.xml lacks exec_depend {sorted(missing)}"
    rviz = [e for e in root.findall("exec_depend") if e.text == "rviz2"]
    assert rviz and rviz[0].get("condition"), "rviz2 is an optional exec dependency (a condition)"


def test_catkin_pkg_validates_package_xml_and_rviz_is_optional() -> None:
    """catkin_pkg is what colcon and rosdep read package.xml with."""
    from catkin_pkg.package import parse_package

    package = parse_package(str(REPO / "package.xml"))
    package.validate()

    def rviz_wanted(environ: dict[str, str]) -> bool:
        rviz = next(d for d in package.exec_depends if d.name == "rviz2")
        return bool(rviz.evaluate_condition(environ))

    assert rviz_wanted({}) and not rviz_wanted({"MTL_PERCEPTION_NO_RVIZ": "1"})
    # LabelInfo and VisionClass first came in vision_msgs 4.1.0; Humble shipped 4.0.0 first
    vision_msgs = next(d for d in package.exec_depends if d.name == "vision_msgs")
    assert vision_msgs.version_gte == "4.1.0"


def _pins(requirements: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


def test_runtime_extra_installs_what_jetpack_pythons_are_tested_with() -> None:
    """pip on JetPack 5 (3.8) and 6 (3.10) resolves the runtime extra to releases that include the ones
    `make test` runs there (.ci/jetson/*.txt): python_requires admits 3.8, and no pin is for newer Pythons."""
    from packaging.specifiers import SpecifierSet

    assert "3.8.18" in SpecifierSet(_installed_metadata()["Requires-Python"])
    for requirements, python in ((".ci/jetson/jetpack5-py38.txt", "3.8"), (".ci/jetson/jetpack6-py310.txt", "3.10")):
        tested = {name.lower(): version for name, version in _pins(REPO / requirements).items()}
        applying = _extra("runtime", python)
        assert applying, f"no runtime requirement applies on Python {python}"
        for requirement in applying:
            name = requirement.name.lower()
            assert name in tested, f"{requirements} does not test {requirement} on Python {python}"
            assert requirement.specifier.contains(tested[name]), f"{requirement} refuses {name} {tested[name]}"
