"""ros2 launch mtl_perception jetson.launch.py [backbone:=mobilenetv2|resnet50] [model_path:=FILE.onnx]
    [image_topic:=/camera/image_raw] [camera_info_topic:=/camera/camera_info] [namespace:=cam_front]
    [params_file:=my.yaml] [use_sim_time:=true] [rviz:=true] [NODE_PARAMETER:=VALUE ...]
    [cameras:=[front,left,right] image_topic:=/{camera}/image_raw]

Starts perception_node with params_file (default config/jetson.yaml), and model_path:= or the package's model
of backbone:= when one is given; optionally RViz with config/mtl_perception.rviz (overlay and both masks).
Every parameter of the node is also a launch argument (precision:=int8, score_threshold:=0.9,
input_transport:=compressed, camera_pose:=[x,y,z,roll,pitch,yaw], ...): given, it overrides params_file;
left out, params_file's value stands (its cameras and model_path included). An argument the launch file does not know is
refused with the list of those it does. Both processes get config/fastdds_large_frames.xml unless a Fast
DDS profile is already set: camera-sized images then cross processes in shared memory. Give the camera
driver the same profile (README).

With named cameras (cameras:=[front,left,right]) one node serves them all, each camera's topics under its
name; image_topic and camera_info_topic then name each camera's topics with {camera} in place of its name
(image_topic:=/{camera}/image_raw remaps front/image to /front/image_raw, ...). Without {camera} the named
cameras keep the node's own topics (<namespace>/front/image, <namespace>/front/camera_info).
"""

from __future__ import annotations

from pathlib import Path

from mtl_perception.package_paths import BUNDLED_BACKBONES, bundled_model
from mtl_perception.parameter_schema import params_file_values
from mtl_perception.runtime.backends.base import PRECISIONS
from mtl_perception.topics import camera_info_beside


def model_to_run(share: Path, backbone: str, model_path: str) -> Path | None:
    """model_path when given (the backbone then only names it), else the package's model of the backbone when
    one is given, else None: the params file's model_path stands, or the node's default (the package's
    MobileNetV2 model). FileNotFoundError naming the file and the fix when it is missing."""
    if model_path:
        model = Path(model_path).expanduser()
        if not model.is_file():
            raise FileNotFoundError(f"model_path {model} does not exist; pass an existing .onnx file")
        return model
    if not backbone:
        return None
    model = bundled_model(backbone, share)
    if not model.is_file():
        raise FileNotFoundError(f"{model} is not installed; build it with `make model-{backbone}` in the source "
                                "tree and rebuild the package (see models/README.md), or pass model_path:=FILE")
    return model


def parse_camera_pose(text: str) -> list[float] | None:
    """camera_pose:=[x,y,z,roll,pitch,yaw] as six floats (six per camera with named cameras, in their order;
    the node checks the count against them); empty: None (params_file's value stays, or none: unset)."""
    text = text.strip()
    if not text:
        return None
    values = [v for v in text.strip("[]").replace(",", " ").split() if v]
    try:
        pose = [float(v) for v in values]
    except ValueError:
        pose = []
    if not pose or len(pose) % 6:
        raise ValueError(f"camera_pose {text!r}: give six numbers [x,y,z,roll,pitch,yaw] (m, rad, REP 103), six "
                         "per camera with named cameras")
    return pose


CAMERA_PLACEHOLDER = "{camera}"


def camera_remappings(cameras: list[str], image_topic: str, camera_info_topic: str) -> list[tuple[str, str]]:
    """Each camera's image, image/compressed and camera_info remapped: the unnamed camera's to image_topic and
    camera_info_topic (empty: beside image_topic); a named camera's where the topics hold {camera}, with its
    name in its place; ValueError for a {camera} pattern without named cameras."""
    named = [camera for camera in cameras if camera]
    if not named:
        if CAMERA_PLACEHOLDER in image_topic + camera_info_topic:
            raise ValueError(f"image_topic:={image_topic} holds {CAMERA_PLACEHOLDER}, but no cameras are named: "
                             "give cameras:=[front,...], or a plain topic")
        return [("image", image_topic), ("image/compressed", f"{image_topic}/compressed"),
                ("camera_info", camera_info_topic or camera_info_beside(image_topic))]
    remaps: list[tuple[str, str]] = []
    for camera in named:
        if CAMERA_PLACEHOLDER in image_topic:
            image = image_topic.replace(CAMERA_PLACEHOLDER, camera)
            remaps += [(f"{camera}/image", image), (f"{camera}/image/compressed", f"{image}/compressed")]
        if CAMERA_PLACEHOLDER in image_topic or CAMERA_PLACEHOLDER in camera_info_topic:
            info = camera_info_topic.replace(CAMERA_PLACEHOLDER, camera) if camera_info_topic else \
                camera_info_beside(image_topic.replace(CAMERA_PLACEHOLDER, camera))
            remaps.append((f"{camera}/camera_info", info))
    return remaps


# config/mtl_perception.rviz's displays of one camera's topics
RVIZ_CAMERA_TOPICS = ("overlay", "drivable_mask", "lane_mask", "lane_markings", "objects/markers", "ego_lane/left",
                      "ego_lane/right")


def rviz_remappings(cameras: list[str]) -> list[tuple[str, str]]:
    """RViz's displays of one camera onto the first named camera's topics (the config names the unnamed
    camera's); its grid display stays on drivable_grid, with named cameras the surround grid of them all."""
    named = [camera for camera in cameras if camera]
    return [(topic, f"{named[0]}/{topic}") for topic in RVIZ_CAMERA_TOPICS] if named else []


def config_files(share: Path) -> dict[str, Path]:
    return {"params": share / "config" / "jetson.yaml", "rviz": share / "config" / "mtl_perception.rviz"}


# launch arguments of the launch file's own; every node parameter is one too (node_parameter_arguments)
OWN_ARGUMENTS = ("backbone", "image_topic", "camera_info_topic", "namespace", "params_file", "use_sim_time", "rviz")


def node_parameter_value(name: str, text: str, default: object) -> object:
    """A launch argument's text as the node parameter's type (that of its params-file default)."""
    if name == "camera_pose":
        return parse_camera_pose(text)
    if isinstance(default, list):  # cameras:=[front,left,right]
        return [item.strip().strip("'\"") for item in text.strip().strip("[]").split(",")]
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{name}:={text}: use true or false")
        return text.lower() == "true"
    if isinstance(default, (int, float)):
        try:
            return type(default)(float(text)) if isinstance(default, int) and float(text).is_integer() else \
                type(default)(text)
        except ValueError:
            raise ValueError(f"{name}:={text}: not a {type(default).__name__}") from None
    return text


def exit_failure(returncode: int, shutting_down: bool) -> str | None:
    """Why `ros2 launch` must fail when perception_node ended with returncode, or None: a node that stopped on
    its own with an error (a parameter it refused at start, a model it could not load, a crash) fails the
    launch; one ended by the launch's own shutdown (Ctrl-C, then SIGTERM) does not."""
    if returncode == 0 or shutting_down:
        return None
    return (f"perception_node stopped with exit code {returncode}: the lines above say why; fix that and "
            "launch again")


def _require_rviz2() -> None:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        raise RuntimeError("rviz:=true, but rviz2 is not installed: sudo apt install ros-$ROS_DISTRO-rviz2, or "
                           "launch with rviz:=false (a headless Jetson) and run RViz on another machine") from None


def _on_node_exit(event, context):
    # an exception here is how launch's own service ends with exit code 1 ("Caught exception in launch")
    reason = exit_failure(event.returncode, context.is_shutdown)
    if reason is not None:
        raise RuntimeError(reason)


def _node_actions(context):
    import os

    from ament_index_python.packages import get_package_share_directory
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from mtl_perception.package_paths import fastdds_profile_environment
    from mtl_perception.ros.parameters import PARAMETERS, load_defaults

    def argument(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    known = set(OWN_ARGUMENTS) | set(PARAMETERS)
    unknown = sorted(set(context.launch_configurations) - known)
    if unknown:
        raise RuntimeError(f"unknown launch argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    rviz = argument("rviz").lower() in ("true", "1")
    if rviz:
        _require_rviz2()  # before anything starts: no node is left running when RViz cannot be
    share = Path(get_package_share_directory("mtl_perception"))
    files = config_files(share)
    params_file = Path(argument("params_file") or files["params"]).expanduser()
    if not params_file.is_file():
        raise FileNotFoundError(f"params_file {params_file} does not exist; pass a YAML file of perception_node "
                                "parameters (config/jetson.yaml is the template)")
    defaults = load_defaults(files["params"])  # the package's: each argument gets its parameter's type
    overrides: dict[str, object] = {}
    for name in PARAMETERS:
        text = argument(name)
        if text and name != "model_path":
            value = node_parameter_value(name, text, defaults.get(name))
            if value is not None:
                overrides[name] = value
    if "precision" in overrides and overrides["precision"] not in PRECISIONS:
        raise ValueError(f"precision {overrides['precision']!r}: use one of {', '.join(PRECISIONS)}")
    # the model: model_path:= or backbone:= when given; else the params file's model_path stands (or the node's
    # default, the package's MobileNetV2 model)
    model = model_to_run(share, argument("backbone"), argument("model_path"))
    if model is not None:
        overrides["model_path"] = str(model)
    overrides["use_sim_time"] = argument("use_sim_time").lower() in ("true", "1")
    if rviz and "publish_overlay" not in overrides:
        overrides["publish_overlay"] = True  # RViz has no 2D detection display: the overlay shows the boxes
    namespace = argument("namespace")
    # the cameras the node will have: the command line's, else the user's params file's, else the package's
    given = params_file_values(params_file, namespace)
    cameras = overrides.get("cameras", given.get("cameras", defaults.get("cameras", [""]))) or [""]
    remappings = camera_remappings([str(c) for c in cameras], argument("image_topic"), argument("camera_info_topic"))
    environment = fastdds_profile_environment(os.environ, share)
    node = Node(
        package="mtl_perception",
        executable="perception_node",
        namespace=namespace,
        parameters=[str(params_file), overrides],
        remappings=remappings,
        output="screen",
        emulate_tty=True,
        additional_env=environment,
    )
    actions = [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_on_node_exit))]
    if rviz:  # in the node's namespace, so the display's relative topics find its outputs
        actions.append(Node(package="rviz2", executable="rviz2", namespace=namespace,
                            arguments=["-d", str(files["rviz"])], remappings=rviz_remappings(list(cameras)),
                            output="log", additional_env=environment))
    return actions


def generate_launch_description():
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription
    from mtl_perception.ros.parameters import PARAMETERS

    own = [
        DeclareLaunchArgument("backbone", default_value="", choices=["", *BUNDLED_BACKBONES],
                              description="mobilenetv2 (fast) or resnet50 (accurate): the package's model of it "
                                          "runs unless model_path is given; empty: params_file's model_path, or "
                                          "the package's mobilenetv2 model"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image); /compressed is used for jpeg input; "
                                          "with named cameras, {camera} stands for each one's name"),
        DeclareLaunchArgument("camera_info_topic", default_value="",
                              description="sensor_msgs/CameraInfo for drivable_grid; empty: beside image_topic; "
                                          "with named cameras, {camera} stands for each one's name"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace for the node and its outputs, one per camera"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="perception_node's parameters (YAML); empty: config/jetson.yaml"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="use /clock (replayed bags with --clock)"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                              description="start RViz with the overlay and masks (needs rviz2)"),
    ]
    # every node parameter, empty by default: params_file's value stands unless one is given here
    parameters = [DeclareLaunchArgument(name, default_value="",
                                        description=f"{spec.description} Empty: params_file's value.")
                  for name, spec in PARAMETERS.items()]
    return LaunchDescription([*own, *parameters, OpaqueFunction(function=_node_actions)])
