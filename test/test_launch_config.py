"""What can be checked of the launch file and config without launch_ros (not installable here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from mtl_perception.package_paths import fastdds_profile_environment
from mtl_perception.ros.parameters import PARAMETERS, load_defaults, settings_from

REPO = Path(__file__).resolve().parents[1]


def _launch_module():
    spec = importlib.util.spec_from_file_location("jetson_launch", REPO / "launch" / "jetson.launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_yaml_keys_are_exactly_the_declared_parameters() -> None:
    raw = yaml.safe_load((REPO / "config" / "jetson.yaml").read_text())
    assert list(raw) == ["/**"]
    unset = {name for name, spec in PARAMETERS.items() if spec.unset_type is not None}
    assert unset == {"camera_pose"}  # the one parameter without a default: unset until given
    assert set(raw["/**"]["ros__parameters"]) == set(PARAMETERS) - unset


def test_yaml_defaults_are_valid() -> None:
    defaults = load_defaults(REPO / "config" / "jetson.yaml")
    for name, spec in PARAMETERS.items():
        if spec.unset_type is not None:
            continue
        value = defaults[name]
        if spec.choices:
            assert value in spec.choices, name
        if spec.float_range:
            assert isinstance(value, float) and spec.float_range[0] <= value <= spec.float_range[1], name
        if spec.int_range:
            assert isinstance(value, int) and spec.int_range[0] <= value <= spec.int_range[1], name
        assert spec.descriptor().description, name
    settings = settings_from(defaults)
    assert settings.perception.model_path == REPO / "models" / "mtl_mobilenetv2_384x640.onnx"
    # the tools' presets are the node's: read from its schema (test_defaults_once.py: no copy in the code)
    from mtl_perception.runtime.presets import deployed, deployed_backend

    assert (defaults["score_threshold"], defaults["iou_threshold"], defaults["max_detections"]) == \
        (deployed().score_threshold, deployed().iou_threshold, deployed().max_detections) == \
        (settings.perception.score_threshold, settings.perception.iou_threshold, settings.perception.max_detections)
    plain = deployed_backend()
    assert (defaults["backend"], defaults["precision"], defaults["threads"]) == \
        (plain.backend, plain.precision, plain.threads)
    assert deployed_backend(threads=3).threads == 3 and deployed_backend(threads=3).precision == plain.precision


def test_launch_file_loads_without_launch_installed() -> None:
    """launch and launch_ros are imported inside generate_launch_description, not at module level: loading the
    file in a fresh interpreter imports neither (what the tests of its helpers need where they are absent)."""
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('jetson_launch', {str(REPO / 'launch' / 'jetson.launch.py')!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "assert callable(module.generate_launch_description)\n"
            "print(','.join(m for m in ('launch', 'launch_ros') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert loaded == ""


def test_launch_arguments_resolve_to_existing_files() -> None:
    module = _launch_module()
    assert module.BUNDLED_BACKBONES == ("mobilenetv2", "resnet50")
    model = module.bundled_model("mobilenetv2", REPO)  # the default backbone's model is bundled
    assert model.is_file(), f"{model} is missing: the launch file's default would fail"
    for path in module.config_files(REPO).values():
        assert path.is_file(), path


def test_shipped_fastdds_profile_unless_one_is_set() -> None:
    # what the launch file, the demo and bench-node give their processes
    profile = str(REPO / "config" / "fastdds_large_frames.xml")
    # one variable, the one this distribution's Fast DDS reads: no deprecation warning on Kilted
    assert fastdds_profile_environment({}, REPO) == {"FASTDDS_DEFAULT_PROFILES_FILE": profile}
    assert fastdds_profile_environment({"ROS_DISTRO": "kilted"}, REPO) == {"FASTDDS_DEFAULT_PROFILES_FILE": profile}
    for distro in ("humble", "jazzy"):  # Fast DDS 2.x reads only the old name
        assert fastdds_profile_environment({"ROS_DISTRO": distro}, REPO) == {"FASTRTPS_DEFAULT_PROFILES_FILE": profile}
    assert fastdds_profile_environment({"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, REPO) == {}
    # that `ros2 launch` gives it to the node is checked on the launched process (test_colcon_launch.py)
    # a segment for several 1280x720 bgr8 frames at once
    segment = ET.parse(profile).getroot().find(".//{http://www.eprosima.com}segment_size")
    assert segment is not None and int(segment.text or 0) >= 1280 * 720 * 3 * 4


def test_resnet50_model_has_a_documented_recipe() -> None:
    """ResNet50 is not bundled (no CPU time to train it here): its path must be what `make model-resnet50`
    writes, and models/README.md must say so."""
    model = _launch_module().bundled_model("resnet50", REPO)
    assert model == REPO / "models" / "mtl_resnet50_384x640.onnx"
    recipe = subprocess.run(["make", "-n", "model-resnet50"], cwd=REPO, capture_output=True, text=True).stdout
    assert "--backbone resnet50" in recipe and "--out models/mtl_resnet50_384x640.onnx" in recipe
    assert "make model-resnet50" in (REPO / "models" / "README.md").read_text()


def test_launch_rejects_unknown_backbone() -> None:
    with pytest.raises(ValueError, match="use one of mobilenetv2, resnet50"):
        _launch_module().bundled_model("vgg", REPO)


def test_setup_installs_launch_config_and_models() -> None:
    """What setup.py would install under share/ (setuptools runs it, stopping before any command): the launch
    file, every config file, the bundled model and its card."""
    code = ("import json, os, setuptools\n"
            "from distutils.core import run_setup\n"
            "dist = run_setup('setup.py', stop_after='init')\n"
            "print(json.dumps({d: list(f) for d, f in dist.data_files}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True).stdout
    files = json.loads(out.strip().splitlines()[-1])
    share = "share/mtl_perception"
    assert "launch/jetson.launch.py" in files[f"{share}/launch"]
    assert {"config/jetson.yaml", "config/fastdds_large_frames.xml"} <= set(files[f"{share}/config"])
    assert any(f.endswith(".rviz") for f in files[f"{share}/config"])
    assert {"models/mtl_mobilenetv2_384x640.onnx", "models/README.md"} <= set(files[f"{share}/models"])
    assert files["share/ament_index/resource_index/packages"] == ["resource/mtl_perception"]


def test_launch_model_path_wins_over_the_backbones_file(tmp_path: Path) -> None:
    module = _launch_module()
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"x")
    # resnet50's file is not bundled: with model_path given it is never looked for
    assert module.model_to_run(REPO, "resnet50", str(mine)) == mine
    assert module.model_to_run(REPO, "mobilenetv2", "") == REPO / "models" / "mtl_mobilenetv2_384x640.onnx"
    with pytest.raises(FileNotFoundError, match=r"model_path .*nope\.onnx does not exist"):
        module.model_to_run(REPO, "mobilenetv2", str(tmp_path / "nope.onnx"))
    with pytest.raises(FileNotFoundError, match="make model-resnet50"):
        module.model_to_run(REPO, "resnet50", "")
    # neither given: nothing is passed, so a params file's model_path stands (issue 31 item 5)
    assert module.model_to_run(REPO, "", "") is None


def test_a_params_files_values_are_read_as_rcl_reads_them(tmp_path: Path) -> None:
    """The launch file reads cameras from the user's params file (it read the package's): the wildcard
    sections, then the node's own by name, with or without its namespace."""
    module = _launch_module()
    params = tmp_path / "mine.yaml"
    params.write_text("/**:\n  ros__parameters:\n    cameras: [a]\n    score_threshold: 0.2\n"
                      "/rig/perception_node:\n  ros__parameters:\n    cameras: [front, left]\n"
                      "other_node:\n  ros__parameters:\n    cameras: [nope]\n")
    assert module.params_file_values(params, "rig") == {"cameras": ["front", "left"], "score_threshold": 0.2}
    assert module.params_file_values(params, "") == {"cameras": ["a"], "score_threshold": 0.2}
    assert module.params_file_values(REPO / "config" / "jetson.yaml", "")["cameras"] == [""]
    # the params files launch_ros writes for a node hold tuples as !!python/tuple, which rcl reads as sequences
    written = tmp_path / "launch_params.yaml"
    written.write_text("/cam/perception_node:\n  ros__parameters:\n    camera_pose: !!python/tuple\n    - 0.0\n"
                       "    - 1.5\n")
    assert module.params_file_values(written, "/cam") == {"camera_pose": [0.0, 1.5]}


def test_camera_info_sits_beside_the_image_topic_and_the_pose_parses() -> None:
    launch = _launch_module()
    assert launch.camera_info_beside("/camera/image_raw") == "/camera/camera_info"  # image_transport's pairing
    assert launch.camera_info_beside("/cam_front/camera") == "/cam_front/camera_info"
    assert launch.parse_camera_pose("") is None
    assert launch.parse_camera_pose("[0.0, 0, 1.5,0,0.05,0]") == [0.0, 0.0, 1.5, 0.0, 0.05, 0.0]
    with pytest.raises(ValueError, match=r"six numbers \[x,y,z,roll,pitch,yaw\]"):
        launch.parse_camera_pose("[1.5, 0.05]")
    assert len(launch.parse_camera_pose("[" + ",".join(["0", "0", "1.5", "0", "0.05", "0"] * 3) + "]")) == 18


def test_named_cameras_are_remapped_through_the_camera_placeholder() -> None:
    launch = _launch_module()
    assert launch.camera_remappings([""], "/camera/image_raw", "") == [
        ("image", "/camera/image_raw"), ("image/compressed", "/camera/image_raw/compressed"),
        ("camera_info", "/camera/camera_info")]
    assert launch.camera_remappings(["front", "left"], "/rig/{camera}/image_raw", "") == [
        ("front/image", "/rig/front/image_raw"), ("front/image/compressed", "/rig/front/image_raw/compressed"),
        ("front/camera_info", "/rig/front/camera_info"),
        ("left/image", "/rig/left/image_raw"), ("left/image/compressed", "/rig/left/image_raw/compressed"),
        ("left/camera_info", "/rig/left/camera_info")]
    # camera_info elsewhere; and without {camera}, named cameras keep the node's own topics
    assert launch.camera_remappings(["front"], "/{camera}/image", "/calib/{camera}")[-1] == \
        ("front/camera_info", "/calib/front")
    assert launch.camera_remappings(["front", "left"], "/camera/image_raw", "") == []
    with pytest.raises(ValueError, match="no cameras are named"):
        launch.camera_remappings([""], "/{camera}/image_raw", "")


def test_rviz_shows_the_first_named_cameras_images_and_the_surround_grid() -> None:
    launch = _launch_module()
    displayed = (REPO / "config" / "mtl_perception.rviz").read_text()
    # the remapped names are the ones the shipped RViz config displays, and its grid is the unprefixed one
    assert all(f"Value: {topic}\n" in displayed for topic in launch.RVIZ_CAMERA_TOPICS)
    assert "Value: drivable_grid\n" in displayed
    assert launch.rviz_remappings([""]) == []
    assert launch.rviz_remappings(["front", "left"]) == [("overlay", "front/overlay"),
                                                         ("drivable_mask", "front/drivable_mask"),
                                                         ("lane_mask", "front/lane_mask"),
                                                         ("lane_markings", "front/lane_markings"),
                                                         ("objects/markers", "front/objects/markers"),
                                                         ("ego_lane/left", "front/ego_lane/left"),
                                                         ("ego_lane/right", "front/ego_lane/right")]


def test_launch_arguments_take_each_parameters_type() -> None:
    module = _launch_module()
    assert module.node_parameter_value("score_threshold", "0.9", 0.3) == 0.9
    assert module.node_parameter_value("score_threshold", "1", 0.3) == 1.0
    assert isinstance(module.node_parameter_value("max_detections", "50", 100), int)
    assert module.node_parameter_value("autostart", "False", True) is False
    assert module.node_parameter_value("input_transport", "compressed", "raw") == "compressed"
    assert module.node_parameter_value("camera_pose", "[0,0,1.5,0,0.05,0]", []) == [0.0, 0.0, 1.5, 0.0, 0.05, 0.0]
    assert module.node_parameter_value("cameras", "[front, left,'right']", [""]) == ["front", "left", "right"]
    with pytest.raises(ValueError, match="max_detections:=many: not a int"):
        module.node_parameter_value("max_detections", "many", 100)
    with pytest.raises(ValueError, match="use true or false"):
        module.node_parameter_value("publish_overlay", "yes", False)


@pytest.mark.parametrize("value", [None, [], [""]])
def test_an_empty_cameras_list_is_one_unnamed_camera(value: object) -> None:
    """Issue 34 item 1: `cameras: []` in a params file reaches the node as an unset parameter (None), and
    configure ended in "'NoneType' object is not iterable"."""
    from mtl_perception.ros.parameters import ONE_UNNAMED_CAMERA

    settings = settings_from({**load_defaults(REPO / "config" / "jetson.yaml"), "cameras": value})
    assert settings.cameras == ONE_UNNAMED_CAMERA and not settings.named_cameras


@pytest.mark.parametrize(("pose", "message"), [
    ([0, 0, 1.5, 0, -1.5, 0], "pitch = -1.5 rad is no camera on a vehicle; pitch must lie in [-0.785398, 1.5708]"),
    ([1e300, 0, 1.5, 0, 0.1, 0], "x = 1e+300 m is no camera on a vehicle; x must lie in [-100, 100] m"),
    ([0, 0, 80, 0, 0.1, 0], "z = 80 m is no camera on a vehicle"),
    ([0, 0, 1.5, 2.0, 0.1, 0], "roll = 2 rad is no camera on a vehicle"),
])
def test_an_absurd_camera_pose_is_refused_at_start(pose: list[float], message: str) -> None:
    """Issue 34 item 4: pitch -1.5 rad and x = 1e300 were accepted, and the grid was lost in silence."""
    from mtl_perception.ros.parameters import camera_poses_from

    with pytest.raises(ValueError, match="parameter camera_pose") as err:
        camera_poses_from(pose)
    assert message in str(err.value)
    with pytest.raises(ValueError, match=r"camera_pose \(camera rear's\)"):
        camera_poses_from([0, 0, 1.5, 0, 0.1, 0, *pose], ("front", "rear"))
    assert camera_poses_from([0.5, -0.2, 1.4, 0.0, 0.12, 3.14])[0] is not None  # a rear camera, as mounted
