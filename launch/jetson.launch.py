"""ros2 launch mtl_perception jetson.launch.py [backbone:=mobilenetv2|resnet50] [model_path:=FILE.onnx]
    [precision:=fp16|fp32|int8] [image_topic:=/camera/image_raw] [camera_info_topic:=/camera/camera_info]
    [camera_pose:=[x,y,z,roll,pitch,yaw]] [namespace:=cam_front] [autostart:=true] [rviz:=true]

Starts perception_node with config/jetson.yaml and model_path, or the package's model for the
chosen backbone when no model_path is given; optionally RViz with config/mtl_perception.rviz (overlay and both masks). Both get
config/fastdds_large_frames.xml unless a Fast DDS profile is already set: camera-sized images
then cross processes in shared memory. Give the camera driver the same profile (README).
"""

from __future__ import annotations

from pathlib import Path

from mtl_perception.package_paths import BUNDLED_BACKBONES, bundled_model
from mtl_perception.runtime.backends.base import PRECISIONS


def model_to_run(share: Path, backbone: str, model_path: str) -> Path:
    """model_path when given (the backbone then only names it), else the package's model of the backbone;
    FileNotFoundError naming the file and the fix when it is missing."""
    if model_path:
        model = Path(model_path).expanduser()
        if not model.is_file():
            raise FileNotFoundError(f"model_path {model} does not exist; pass an existing .onnx file")
        return model
    model = bundled_model(backbone, share)
    if not model.is_file():
        raise FileNotFoundError(f"{model} is not installed; build it with `make model-{backbone}` in the source "
                                "tree and rebuild the package (see models/README.md), or pass model_path:=FILE")
    return model


def camera_info_beside(image_topic: str) -> str:
    """The camera_info topic a driver publishes beside an image topic: /camera/image_raw -> /camera/camera_info."""
    parent = image_topic.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/camera_info"


def parse_camera_pose(text: str) -> list[float] | None:
    """camera_pose:=[x,y,z,roll,pitch,yaw] as six floats; empty: None (config/jetson.yaml's value stays)."""
    text = text.strip()
    if not text:
        return None
    values = [v for v in text.strip("[]").replace(",", " ").split() if v]
    try:
        pose = [float(v) for v in values]
    except ValueError:
        pose = []
    if len(pose) != 6:
        raise ValueError(f"camera_pose {text!r}: give six numbers [x,y,z,roll,pitch,yaw] (m, rad, REP 103)")
    return pose


def config_files(share: Path) -> dict[str, Path]:
    return {"params": share / "config" / "jetson.yaml", "rviz": share / "config" / "mtl_perception.rviz"}


def _node_actions(context):
    import os

    from ament_index_python.packages import get_package_share_directory
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from mtl_perception.package_paths import fastdds_profile_environment

    share = Path(get_package_share_directory("mtl_perception"))
    backbone = LaunchConfiguration("backbone").perform(context)
    precision = LaunchConfiguration("precision").perform(context)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    image_topic = LaunchConfiguration("image_topic").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    rviz = LaunchConfiguration("rviz").perform(context).lower() in ("true", "1")
    files = config_files(share)
    model = model_to_run(share, backbone, LaunchConfiguration("model_path").perform(context))
    overrides = {"model_path": str(model), "precision": precision,
                 "autostart": LaunchConfiguration("autostart").perform(context).lower() in ("true", "1")}
    pose = parse_camera_pose(LaunchConfiguration("camera_pose").perform(context))
    if pose is not None:
        overrides["camera_pose"] = pose
    camera_info = LaunchConfiguration("camera_info_topic").perform(context) or camera_info_beside(image_topic)
    if rviz:
        overrides["publish_overlay"] = True  # RViz has no 2D detection display: the overlay shows the boxes
    environment = fastdds_profile_environment(os.environ, share)
    actions = [Node(
        package="mtl_perception",
        executable="perception_node",
        namespace=namespace,
        parameters=[str(files["params"]), overrides],
        remappings=[("image", image_topic), ("image/compressed", f"{image_topic}/compressed"),
                    ("camera_info", camera_info)],
        output="screen",
        emulate_tty=True,
        additional_env=environment,
    )]
    if rviz:  # in the node's namespace, so the display's relative topics find its outputs
        actions.append(Node(package="rviz2", executable="rviz2", namespace=namespace,
                            arguments=["-d", str(files["rviz"])], output="log", additional_env=environment))
    return actions


def generate_launch_description():
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    return LaunchDescription([
        DeclareLaunchArgument("backbone", default_value="mobilenetv2", choices=list(BUNDLED_BACKBONES),
                              description="mobilenetv2 (fast) or resnet50 (accurate)"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="an ONNX model; empty: the package's model of the backbone"),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="configure and activate at start; false: wait for ros2 lifecycle set"),
        DeclareLaunchArgument("precision", default_value="fp16", choices=list(PRECISIONS),
                              description="TensorRT engine precision"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image); /compressed is used for jpeg input"),
        DeclareLaunchArgument("camera_info_topic", default_value="",
                              description="sensor_msgs/CameraInfo for drivable_grid; empty: beside image_topic"),
        DeclareLaunchArgument("camera_pose", default_value="",
                              description="[x,y,z,roll,pitch,yaw] of the camera in base_link (m, rad, REP 103); "
                                          "empty: config/jetson.yaml's, or TF where tf2_ros is installed"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace for the node and its outputs, one per camera"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with the overlay and masks"),
        OpaqueFunction(function=_node_actions),
    ])
