"""The node's parameters as config/perception_node.schema.json declares them (parameter_schema.py), turned
into rclpy descriptors and validated settings."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from mtl_perception.defaults import node_defaults
from mtl_perception.package_paths import bundled_model
from mtl_perception.parameter_schema import SETTABLE, given_parameters, parameter_properties
from mtl_perception.runtime.backends import BackendOptions
from mtl_perception.runtime.ground import CameraPose, GridSpec
from mtl_perception.runtime.perception import PerceptionConfig
from mtl_perception.runtime.tracking import TrackerSettings


@dataclass(frozen=True)
class ParameterSpec:
    description: str
    choices: tuple[str, ...] = ()
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int] | None = None
    live: bool = False  # settable on the running node (ros2 param set); the rest need a restart
    # a parameter without a default (config/jetson.yaml leaves it out): declared with this type alone (the
    # name of an rclpy Parameter.Type), unset until a params file, -p or ros2 param set gives it a value
    unset_type: str | None = None

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" One of: {', '.join(self.choices)}." if self.choices else "")
        text += (" Settable at run time; takes effect on the next frame." if self.live else
                 " Read-only while the node is configured: set it while unconfigured (from active, `ros2 "
                 "lifecycle set ... deactivate`, then `... cleanup`), and the next configure applies it.")
        # not rclpy's read_only, which would hold in every state: the node refuses it while configured
        descriptor = ParameterDescriptor(description=text, read_only=False)
        if self.float_range is not None:
            descriptor.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                                  to_value=self.float_range[1])]
        if self.int_range is not None:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1])]
        return descriptor


# a parameter without a default is declared with its type alone (rclpy's Parameter.Type name)
UNSET_TYPES = {("array", "number"): "DOUBLE_ARRAY", ("array", "string"): "STRING_ARRAY", ("string", None): "STRING"}


def parameter_spec(prop: dict[str, Any]) -> ParameterSpec:
    """A parameter's declaration as config/perception_node.schema.json writes it."""
    kind = prop["type"]
    bounds = (prop["minimum"], prop["maximum"]) if "minimum" in prop else None
    return ParameterSpec(
        prop["description"], tuple(prop.get("enum", ())),
        float_range=(float(bounds[0]), float(bounds[1])) if bounds and kind == "number" else None,
        int_range=(int(bounds[0]), int(bounds[1])) if bounds and kind == "integer" else None,
        live=bool(prop.get(SETTABLE, False)),
        unset_type=None if "default" in prop else UNSET_TYPES[(kind, prop.get("items", {}).get("type"))])


# every parameter, from the one file that declares them
PARAMETERS: dict[str, ParameterSpec] = {name: parameter_spec(prop) for name, prop in parameter_properties().items()}


def parameter_values(node: Any) -> dict[str, Any]:
    """Every parameter's value on the node; None for one left unset."""
    from rclpy.exceptions import ParameterUninitializedException

    values: dict[str, Any] = {}
    for name in PARAMETERS:
        try:
            values[name] = node.get_parameter(name).value
        except ParameterUninitializedException:
            values[name] = None
    return values


def read_only_refusal(names: list[str], node_name: str, active: bool) -> str:
    """Why start-time parameters cannot be set on a configured node, and how to set them."""
    # cleanup is refused from active (its transitions there are deactivate and shutdown)
    first = f"`ros2 lifecycle set {node_name} deactivate`, then `cleanup`" if active else \
        f"`ros2 lifecycle set {node_name} cleanup`"
    return (f"{', '.join(names)} is read-only while the node is configured: {first}, set it, then `configure` and "
            "`activate` (or restart the node)")


def unknown_parameter_warnings(node: Any, argv: list[str]) -> list[str]:
    """A line for each -p NAME:=VALUE or params-file key of the command line (argv) given for this node that it
    does not declare, with the nearest declared name: rclpy keeps such overrides aside, and they would be
    ignored in silence. Read from the command line itself, as rcl reads it: rclpy has no public accessor."""
    given = given_parameters(argv, node.get_namespace(), node.get_name())
    declared = set(node.list_parameters([], 0).names)  # ours and rclpy's own (use_sim_time, ...)
    lines = []
    for name in sorted(given - declared):
        if name.startswith("qos_overrides."):
            continue  # read by rclpy itself when a publisher or subscription is created
        near = difflib.get_close_matches(name, sorted(declared), n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        lines.append(f"parameter {name} is not one of perception_node's and is ignored: {hint}`ros2 param list` on "
                     "the running node lists them")
    return lines


def load_defaults(path: Path | None = None) -> dict[str, Any]:
    """The ros__parameters of config/jetson.yaml (defaults.node_defaults: the one home of the defaults)."""
    return node_defaults(path)


# the cameras parameter's default: one camera without a name, whose topics are image, detections, ... as is
ONE_UNNAMED_CAMERA: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class NodeSettings:
    perception: PerceptionConfig
    input_reliability: str
    input_transport: str
    publish_overlay: bool
    diagnostics_period: float
    max_image_pixels: int
    cameras: tuple[str, ...]  # ONE_UNNAMED_CAMERA, or the named cameras
    # one per camera; None: camera_pose unset (TF's, where tf2_ros is installed; else no drivable_grid)
    camera_poses: tuple[CameraPose | None, ...]
    target_frame: str
    grid: GridSpec
    tracking: TrackerSettings  # each camera's tracker

    @property
    def named_cameras(self) -> bool:
        """Whether the cameras are named (each camera's topics under its name, and a surround grid)."""
        return self.cameras != ONE_UNNAMED_CAMERA


def settings_from(values: dict[str, Any]) -> NodeSettings:
    """Validated settings from parameter values; ValueError names the parameter and the allowed values."""
    for name, spec in PARAMETERS.items():
        if spec.choices and values[name] not in spec.choices:
            raise ValueError(f"parameter {name}={values[name]!r}: use one of {', '.join(spec.choices)}")
    model = Path(values["model_path"]) if values["model_path"] else bundled_model()
    cameras = cameras_from(values["cameras"])
    backend = BackendOptions(max_batch=len(cameras),
        backend=values["backend"], precision=values["precision"], threads=int(values["threads"]),
        engine_cache_dir=Path(values["engine_cache_dir"]) if values["engine_cache_dir"] else None,
        calibration_dir=Path(values["calibration_dir"]) if values["calibration_dir"] else None,
        calibration_algorithm=values["calibration_algorithm"])
    perception = PerceptionConfig(model, backend, float(values["score_threshold"]),
                                  float(values["iou_threshold"]), int(values["max_detections"]))
    poses = camera_poses_from(values.get("camera_pose"), cameras)
    grid = GridSpec.from_parameters(values)
    return NodeSettings(perception, values["input_reliability"], values["input_transport"],
                        bool(values["publish_overlay"]), float(values["diagnostics_period"]),
                        int(values["max_image_pixels"]), cameras, poses,
                        str(values["target_frame"]), grid, tracking_from(values))


# the tracker's settings by parameter name
TRACKING_PARAMETERS = {"track_high_score": "high_score", "track_low_score": "low_score",
                       "track_new_score": "new_track_score", "track_lost_seconds": "lost_seconds"}


def tracking_from(values: dict[str, Any]) -> TrackerSettings:
    """The tracker's settings from the parameters; ValueError (a one-line reason) for thresholds out of order."""
    return TrackerSettings(**{field: float(values[name]) for name, field in TRACKING_PARAMETERS.items()})


CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # one token of a ROS topic name


def cameras_from(value: Any) -> tuple[str, ...]:
    """The cameras parameter as names; ValueError naming what is wrong. An empty list is one unnamed camera,
    as [''] is."""
    # an empty list reaches rclpy as an unset parameter (None): YAML's [] has no element type
    names = tuple(str(v) for v in value or ()) or ONE_UNNAMED_CAMERA
    if names == ONE_UNNAMED_CAMERA:
        return names
    bad = [name for name in names if not CAMERA_NAME.match(name)]
    if bad:
        raise ValueError(f"parameter cameras: {bad[0]!r} is no camera name; use letters, digits and underscores, "
                         "starting with a letter (one unnamed camera is [''], alone)")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter cameras names a camera twice: {list(names)}")
    return names


def camera_poses_from(value: Any, cameras: tuple[str, ...] = ONE_UNNAMED_CAMERA) -> tuple[CameraPose | None, ...]:
    """The camera_pose parameter as one pose per camera (None for each while it is unset); ValueError naming
    what is wrong with a given one."""
    if value is None:
        return (None,) * len(cameras)
    numbers = [float(v) for v in value]
    if len(numbers) != 6 * len(cameras):
        per = "" if cameras == ONE_UNNAMED_CAMERA else f" for each of the {len(cameras)} cameras ({', '.join(cameras)}), in order"
        raise ValueError(f"parameter camera_pose has {len(numbers)} values; give x, y, z, roll, pitch, yaw{per}")
    return tuple(_camera_pose(camera, numbers[6 * i:6 * i + 6]) for i, camera in enumerate(cameras))


# what a camera on a vehicle can be: within POSE_REACH_M of target_frame's origin, up to POSE_MAX_HEIGHT_M
# above the ground, and looking at the ground (a camera pitched up by more than 45 deg sees no road in any
# lens); roll up to a quarter turn (a camera mounted on its side), yaw any heading
POSE_REACH_M = 100.0
POSE_MAX_HEIGHT_M = 50.0
POSE_RANGES: dict[str, tuple[float, float]] = {
    "x": (-POSE_REACH_M, POSE_REACH_M), "y": (-POSE_REACH_M, POSE_REACH_M), "z": (0.0, POSE_MAX_HEIGHT_M),
    "roll": (-math.pi / 2, math.pi / 2), "pitch": (-math.pi / 4, math.pi / 2), "yaw": (-2 * math.pi, 2 * math.pi),
}
POSE_UNITS = {"x": "m", "y": "m", "z": "m", "roll": "rad", "pitch": "rad", "yaw": "rad"}


def _camera_pose(camera: str, pose: list[float]) -> CameraPose:
    where = f"parameter camera_pose (camera {camera}'s)" if camera else "parameter camera_pose"
    for name, number in zip(POSE_RANGES, pose):
        if not math.isfinite(number):
            raise ValueError(f"{where}: {name} is {number}; every value must be a finite number")
    if pose[2] <= 0:
        raise ValueError(f"{where}: z = {pose[2]} puts the camera on or below the ground; z is its "
                         "height above target_frame's ground plane in metres (> 0)")
    for (name, (low, high)), number in zip(POSE_RANGES.items(), pose):
        if not low <= number <= high:
            raise ValueError(f"{where}: {name} = {number:g} {POSE_UNITS[name]} is no camera on a vehicle; {name} "
                             f"must lie in [{low:g}, {high:g}] {POSE_UNITS[name]} (REP 103: x forward, y left, z "
                             "up; positive pitch looks down)")
    return CameraPose(*pose)


LIVE = frozenset(name for name, spec in PARAMETERS.items() if spec.live)


def updated_settings(settings: NodeSettings, changes: dict[str, Any]) -> NodeSettings:
    """settings with new values of live parameters; ValueError (a one-line reason) for an invalid one."""
    if set(changes) - LIVE:
        raise ValueError(f"{', '.join(sorted(set(changes) - LIVE))} cannot change while running: set it at start")
    perception = replace(settings.perception, **{k: v for k, v in changes.items()
                                                  if k not in TRACKING_PARAMETERS and k != "publish_overlay"})
    tracking = replace(settings.tracking, **{TRACKING_PARAMETERS[k]: float(v) for k, v in changes.items()
                                             if k in TRACKING_PARAMETERS})
    return replace(settings, perception=perception, tracking=tracking,
                   publish_overlay=bool(changes.get("publish_overlay", settings.publish_overlay)))


def parameter_table(defaults: dict[str, Any] | None = None) -> str:
    """The README's parameter table (markdown), made from config/perception_node.schema.json, so nothing of it
    is written a second time: `python -m mtl_perception.ros.parameters`."""
    defaults = node_defaults() if defaults is None else defaults
    rows = ["| parameter | default | allowed | at run time | what |", "|---|---|---|---|---|"]
    for name, spec in PARAMETERS.items():
        value = defaults.get(name)
        text = str(value).lower() if isinstance(value, bool) else str(value)  # as YAML and ros2 param write it
        shown = "(unset)" if name not in defaults else f"`{text}`" if value not in ("", []) else "(empty)"
        allowed = " \\| ".join(spec.choices) if spec.choices else \
            f"{spec.float_range[0]:g} to {spec.float_range[1]:g}" if spec.float_range else \
            f"{spec.int_range[0]} to {spec.int_range[1]}" if spec.int_range else ""
        rows.append(f"| `{name}` | {shown} | {allowed} | {'settable' if spec.live else 'at configure'} | "
                    f"{spec.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(parameter_table())
