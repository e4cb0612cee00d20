"""config/perception_node.schema.json, the one declaration of perception_node's parameters (issue 31 item 3):
the params files validated against it with the jsonschema library (Autoware's CI check), the node's
descriptors, the launch file's arguments and the runtime's own limits made from it."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import jsonschema
import pytest
import yaml

from mtl_perception.parameter_schema import load_schema, parameter_properties, schema_defaults, value_range

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "config" / "perception_node.schema.json")
NODE_PARAMS_FILES = [p for p in sorted((REPO / "config").glob("*.yaml")) if "ros__parameters" in p.read_text()]


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    for name, prop in parameter_properties(SCHEMA).items():
        assert prop.get("description") and prop.get("type"), name
        assert "x-settable-at-run-time" in prop, name
        if "default" in prop:  # every default is a value the schema itself accepts
            jsonschema.validate({"/**": {"ros__parameters": {name: prop["default"]}}}, SCHEMA)


@pytest.mark.parametrize("path", NODE_PARAMS_FILES, ids=lambda p: p.name)
def test_every_params_file_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_jetson_yaml_holds_the_schemas_defaults() -> None:
    """The params file the launch file passes is the schema's defaults, written out with comments."""
    values = yaml.safe_load((REPO / "config" / "jetson.yaml").read_text())["/**"]["ros__parameters"]
    assert values == schema_defaults(SCHEMA)


@pytest.mark.parametrize(("parameters", "message"), [
    ({"score_threshold": 1.5}, "1.5 is greater than the maximum of 1"),
    ({"max_detections": 5000}, "5000 is greater than the maximum of 1000"),
    ({"backend": "cuda"}, "'cuda' is not one of ['auto', 'tensorrt', 'onnxruntime']"),
    ({"score_treshold": 0.5}, "Additional properties are not allowed ('score_treshold' was unexpected)"),
    ({"cameras": "front"}, "'front' is not of type 'array'"),
])
def test_a_wrong_params_file_is_refused(parameters: dict, message: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as err:
        jsonschema.validate({"perception_node": {"ros__parameters": parameters}}, SCHEMA)
    assert message in str(err.value)


def test_the_runtime_accepts_what_the_schema_declares() -> None:
    """Ranges and choices agree everywhere (max_detections was capped at 1000 for the node and uncapped in
    the runtime): the runtime's own constants and checks are held to the schema."""
    from mtl_perception.runtime.backends import BACKENDS
    from mtl_perception.runtime.backends.base import CALIBRATION_ALGORITHMS, MAX_THREADS, PRECISIONS
    from mtl_perception.runtime.perception import PerceptionConfig

    props = parameter_properties(SCHEMA)
    assert tuple(props["backend"]["enum"]) == BACKENDS and tuple(props["precision"]["enum"]) == PRECISIONS
    assert tuple(props["calibration_algorithm"]["enum"]) == CALIBRATION_ALGORITHMS
    assert value_range("threads", SCHEMA) == (0, MAX_THREADS)
    from mtl_perception.runtime.presets import deployed_backend

    low, high = value_range("max_detections", SCHEMA)
    PerceptionConfig(Path("m.onnx"), deployed_backend(), 0.3, 0.45, high)
    for wrong in (low - 1, high + 1):
        with pytest.raises(ValueError, match="max_detections"):
            PerceptionConfig(Path("m.onnx"), deployed_backend(), 0.3, 0.45, wrong)


def test_descriptors_and_launch_arguments_come_from_the_schema() -> None:
    from mtl_perception.ros.parameters import PARAMETERS

    props = parameter_properties(SCHEMA)
    assert list(PARAMETERS) == list(props)
    for name, spec in PARAMETERS.items():
        descriptor = spec.descriptor()
        assert descriptor.description.startswith(props[name]["description"])
        assert spec.live == props[name]["x-settable-at-run-time"]
        if props[name]["type"] == "number":
            assert (descriptor.floating_point_range[0].from_value, descriptor.floating_point_range[0].to_value) == \
                value_range(name, SCHEMA)
        if props[name]["type"] == "integer":
            assert (descriptor.integer_range[0].from_value, descriptor.integer_range[0].to_value) == \
                value_range(name, SCHEMA)
        assert (spec.unset_type is None) == ("default" in props[name])


def test_every_parameter_is_a_launch_argument() -> None:
    pytest.importorskip("launch", reason="the launch package (../shared/ros2-tooling) is not installed here")
    props = parameter_properties(SCHEMA)
    spec = importlib.util.spec_from_file_location("jetson_launch", REPO / "launch" / "jetson.launch.py")
    assert spec is not None and spec.loader is not None
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    declared = {action.name for action in launch.generate_launch_description().entities
                if type(action).__name__ == "DeclareLaunchArgument"}
    assert set(props) <= declared


def test_a_changed_schema_changes_the_node(tmp_path: Path) -> None:
    """Edit the file, and the declarations follow: nothing else holds a copy."""
    from mtl_perception.ros.parameters import parameter_spec

    changed = copy.deepcopy(parameter_properties(SCHEMA)["max_detections"])
    changed["maximum"] = 50
    assert parameter_spec(changed).int_range == (1, 50)
