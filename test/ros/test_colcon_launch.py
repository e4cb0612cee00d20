"""The ROS 2 user's path, for real: `colcon build`, `source install/setup.bash`, `ros2 launch`, and the
`ros2 lifecycle`, `node`, `topic` and `param` verbs against the running node.

The launch, launch_ros and ros2cli wheels come from ../shared/ros2-tooling (built from the public
sources) and colcon from PyPI; `make setup` installs both into .venv. Where neither they nor a ROS 2
installation exist, there is nothing to run this against and the tests say so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from node_harness import Client
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from mtl_perception.data.synthetic import render_scene
from mtl_perception.ros.conversions import camera_info_msg
from mtl_perception.ros.node_process import image_message
from mtl_perception.stamps import to_ns

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
if shutil.which("colcon", path=str(BIN)) is None or shutil.which("ros2", path=str(BIN)) is None:
    pytest.skip(f"colcon and the ros2 command are not installed in {BIN}: make setup installs them from "
                "../shared/ros2-tooling, which this machine does not have", allow_module_level=True)


class Workspace:
    """A colcon workspace holding this package, built as a ROS user builds it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "AMENT_PREFIX_PATH": str(BIN.parent),
                    "CMAKE_PREFIX_PATH": str(BIN.parent), "PYTHONUNBUFFERED": "1"}

    def bash(self, command: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
        """`command` in a shell that has sourced install/setup.bash, as a user's terminal has."""
        result = subprocess.run(["bash", "-c", f"source {self.root}/install/setup.bash && {command}"],
                                capture_output=True, text=True, env=self.env, timeout=timeout, cwd=self.root)
        if check:
            assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result

    def launch(self, *arguments: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["bash", "-c", f"source {self.root}/install/setup.bash && exec ros2 launch mtl_perception "
                           f"jetson.launch.py {' '.join(arguments)}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=self.root,
            start_new_session=True)

    def lifecycle_state(self, node: str) -> str:
        return self.bash(f"ros2 lifecycle get {node}", check=False).stdout.strip()

    def wait_for_state(self, node: str, state: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        current = ""
        while time.monotonic() < deadline:
            current = self.lifecycle_state(node)
            if current.startswith(state):
                return current
            time.sleep(1.0)
        return current


def _environment_of(*command_parts: str) -> dict[str, str]:
    """The environment of the running process whose command line holds every part (from /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if all(any(part in arg for arg in command) for part in command_parts):
                entries = (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                return dict(entry.split("=", 1) for entry in entries if "=" in entry)
        except (OSError, ValueError):  # a process that ended meanwhile, or not a pid folder
            continue
    raise AssertionError(f"no running process with {command_parts} in its command line")


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    """SIGINT, as Ctrl-C in the launch terminal; the exit code and everything it printed."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return process.returncode, output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("ws")
    source = root / "src" / "mtl_perception"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if not name.startswith("test/"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    ws = Workspace(root)
    build = subprocess.run(["colcon", "build", "--packages-select", "mtl_perception"], cwd=root, env=ws.env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    ws.bash("ros2 daemon start")  # a cold daemon answers `ros2 node list` with nothing on a loaded machine
    yield ws
    ws.bash("ros2 daemon stop", check=False)


def test_install_space_holds_what_the_launch_file_needs(workspace: Workspace) -> None:
    share = workspace.root / "install" / "mtl_perception" / "share" / "mtl_perception"
    for name in ("launch/jetson.launch.py", "config/jetson.yaml", "config/mtl_perception.rviz",
                 "config/fastdds_large_frames.xml", "models/mtl_mobilenetv2_384x640.onnx", "package.xml"):
        assert (share / name).is_file(), name
    executables = workspace.bash("ros2 pkg executables mtl_perception").stdout.split()
    assert {"perception_node", "mtl-perception"} <= set(executables)
    prefix = workspace.bash("ros2 pkg prefix mtl_perception").stdout.strip()
    assert Path(prefix) == workspace.root / "install" / "mtl_perception"


def test_ros2_launch_answers_frames_and_takes_ros2_param(workspace: Workspace) -> None:
    scene = render_scene(np.random.default_rng(3), 360, 640)  # a road with cars: real scores
    pose = scene.ground.pose
    launch = workspace.launch("namespace:=cam_front", "image_topic:=/cam_front/camera",
                              f"camera_pose:=[0.0,0.0,{pose.z},{pose.roll},{pose.pitch},0.0]")
    node = "/cam_front/perception_node"
    client = Client("colcon_viewer")
    try:
        state = workspace.wait_for_state(node, "active")
        assert state.startswith("active"), state
        assert node in workspace.bash("ros2 node list").stdout.split()
        topics = set(workspace.bash("ros2 topic list").stdout.split())
        assert {"/cam_front/camera", "/cam_front/detections", "/cam_front/drivable_mask", "/cam_front/lane_mask",
                "/cam_front/label_info", "/cam_front/drivable_grid", "/cam_front/lane_markings",
                "/cam_front/lane_marking_points", "/cam_front/camera_info"} <= topics
        described = workspace.bash(f"ros2 param describe {node} score_threshold").stdout
        assert "Min value: 0.0" in described and "Max value: 1.0" in described and "Settable at run time" in described
        assert "Read-only" in workspace.bash(f"ros2 param describe {node} model_path").stdout

        # frames and camera_info in, detections, both masks and the ground outputs out, from another process
        # as a camera driver would send them
        for topic, msg_type in (("/cam_front/detections", Detection2DArray), ("/cam_front/drivable_mask", Image),
                                ("/cam_front/lane_mask", Image), ("/cam_front/drivable_grid", OccupancyGrid),
                                ("/cam_front/lane_marking_points", PointCloud2)):
            client.listen(msg_type, topic)
        camera = client.node.create_publisher(Image, "/cam_front/camera", 1)
        camera_info = client.node.create_publisher(CameraInfo, "/cam_front/camera_info", 1)
        info = camera_info_msg(Header(frame_id="camera"), scene.ground.intrinsics)
        frame = scene.image

        def answer(stamp: int) -> Detection2DArray:
            msg = image_message(frame, stamp)

            def send() -> None:
                camera_info.publish(info)
                camera.publish(msg)

            assert client.spin_until(lambda: all(any(to_ns(m.header.stamp) == stamp for m in received)
                                                 for received in client.received.values()),
                                     60, each=send), "no answer through ros2 launch"
            return next(d for d in client.received["/cam_front/detections"] if to_ns(d.header.stamp) == stamp)

        assert "Set parameter successful" in workspace.bash(f"ros2 param set {node} score_threshold 0.0").stdout
        every = answer(5_000_000_000)
        mask = next(m for m in client.received["/cam_front/lane_mask"])
        assert (mask.width, mask.height, mask.encoding) == (640, 360, "mono8")
        assert len(every.detections) == 100  # score 0: max_detections of config/jetson.yaml
        grid = next(g for g in client.received["/cam_front/drivable_grid"] if to_ns(g.header.stamp) == 5_000_000_000)
        assert grid.header.frame_id == "base_link" and (grid.info.width, grid.info.height) == (400, 200)
        assert "Set parameter successful" in workspace.bash(f"ros2 param set {node} score_threshold 0.5").stdout
        confident = answer(6_000_000_000)  # the next frame already follows the new threshold
        assert 0 < len(confident.detections) < 100
        assert all(d.results[0].hypothesis.score >= 0.5 for d in confident.detections)
        refused = workspace.bash(f"ros2 param set {node} score_threshold -0.5", check=False)
        assert "Min: 0.0, Max: 1.0" in refused.stdout + refused.stderr
        assert workspace.bash(f"ros2 param get {node} score_threshold").stdout.strip().endswith("0.5")
    finally:
        client.close()
        _, output = _stop(launch)
    assert "process has finished cleanly" in output, output[-3000:]
    assert "Traceback" not in output and "deprecated" not in output, output[-3000:]


def test_ros2_launch_serves_named_cameras_through_one_node(workspace: Workspace) -> None:
    """cameras:=[front,left] with image_topic:=/rig/{camera}/image_raw: one node, each camera's frames from
    its own remapped topic, its answers under its name."""
    launch = workspace.launch("namespace:=cam_rig", "'cameras:=[front,left]'", "'image_topic:=/rig/{camera}/image'")
    node = "/cam_rig/perception_node"
    client = Client("colcon_rig_viewer")
    try:
        assert workspace.wait_for_state(node, "active").startswith("active")
        assert workspace.bash(f"ros2 param get {node} cameras").stdout.strip().endswith("['front', 'left']")
        cameras = ("front", "left")
        for camera in cameras:
            client.listen(Detection2DArray, f"/cam_rig/{camera}/detections")
        publishers = {c: client.node.create_publisher(Image, f"/rig/{c}/image", 1) for c in cameras}
        frame = render_scene(np.random.default_rng(5), 240, 320).image
        stamps = {"front": 7_000_000_000, "left": 7_000_000_001}

        def send() -> None:
            for camera in cameras:
                publishers[camera].publish(image_message(frame, stamps[camera], frame_id=f"{camera}_camera"))

        def answered() -> bool:
            return all(any(to_ns(d.header.stamp) == stamps[c] and d.header.frame_id == f"{c}_camera"
                           for d in client.received[f"/cam_rig/{c}/detections"]) for c in cameras)

        assert client.spin_until(answered, 60, each=send), "no answer for each camera through ros2 launch"
        topics = set(workspace.bash("ros2 topic list").stdout.split())
        assert {"/rig/front/camera_info", "/rig/left/camera_info", "/cam_rig/drivable_grid"} <= topics
    finally:
        client.close()
        _, output = _stop(launch)
    assert output.count("subscribed to") == 2 and "2 cameras (front, left) through one model" in output, output
    assert "Traceback" not in output, output[-3000:]


def test_every_node_parameter_passes_through_ros2_launch(workspace: Workspace, tmp_path: Path) -> None:
    """score_threshold:=, input_transport:=, precision:= reach the node; params_file's values stand otherwise."""
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    max_detections: 7\n")
    launch = workspace.launch("namespace:=cam_args", "score_threshold:=0.9", "input_transport:=compressed",
                              "precision:=fp32", f"params_file:={params}")
    node = "/cam_args/perception_node"
    try:
        assert workspace.wait_for_state(node, "active").startswith("active")
        for name, value in (("score_threshold", "0.9"), ("input_transport", "compressed"), ("precision", "fp32"),
                            ("max_detections", "7"), ("iou_threshold", "0.45"), ("use_sim_time", "False")):
            assert workspace.bash(f"ros2 param get {node} {name}").stdout.strip().endswith(value), name
        # compressed input: the node listens on image_topic's /compressed
        assert "/camera/image_raw/compressed" in workspace.bash("ros2 topic list").stdout.split()
        # the launched node got the package's Fast DDS profile (none was set), under the name this
        # distribution's Fast DDS reads
        environment = _environment_of("perception_node", "__ns:=/cam_args")
        profile = [environment.get(v) for v in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")]
        shipped = workspace.root / "install" / "mtl_perception" / "share" / "mtl_perception" / "config" / \
            "fastdds_large_frames.xml"
        assert [p for p in profile if p] == [str(shipped)], profile
    finally:
        _, output = _stop(launch)
    assert "Traceback" not in output, output[-3000:]


def test_a_params_files_values_take_effect_through_ros2_launch(workspace: Workspace, tmp_path: Path) -> None:
    """Issue 31 item 5: the launch file read cameras from the package's YAML, not the user's params_file (so
    {camera} in a topic was refused), and always passed model_path, which overrode the params file's."""
    model = tmp_path / "my_model.onnx"
    shutil.copy(REPO / "models" / "mtl_mobilenetv2_384x640.onnx", model)
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n"
                      f"    cameras: [front, left]\n    model_path: {model}\n    score_threshold: 0.7\n")
    launch = workspace.launch("namespace:=cam_pf", f"params_file:={params}", "'image_topic:=/pf/{camera}/image'")
    node = "/cam_pf/perception_node"
    try:
        assert workspace.wait_for_state(node, "active").startswith("active")
        got = {name: workspace.bash(f"ros2 param get {node} {name}").stdout.strip()
               for name in ("cameras", "model_path", "score_threshold")}
        assert "front" in got["cameras"] and "left" in got["cameras"], got
        assert got["model_path"].endswith(str(model)) and got["score_threshold"].endswith("0.7"), got
        topics = set(workspace.bash("ros2 topic list").stdout.split())
        assert {"/pf/front/image", "/pf/left/image"} <= topics  # {camera} filled from the params file's cameras
    finally:
        _, output = _stop(launch)
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize(("arguments", "message"), [
    (("rviz:=true",), "rviz2 is not installed: sudo apt install ros-$ROS_DISTRO-rviz2, or launch with rviz:=false"),
    (("scroe_threshold:=0.9",), "unknown launch argument(s) scroe_threshold; valid: "),
])
def test_ros2_launch_refuses_before_anything_starts(workspace: Workspace, arguments: tuple[str, ...],
                                                    message: str) -> None:
    if "rviz" in arguments[0] and workspace.bash("ros2 pkg prefix rviz2", check=False).returncode == 0:
        pytest.skip("rviz2 is installed here: the missing-rviz2 path cannot happen")
    launch = workspace.launch("namespace:=cam_refused", *arguments)
    output, _ = launch.communicate(timeout=60)
    assert launch.returncode != 0 and message in output, output[-3000:]
    assert "Traceback" not in output
    assert "/cam_refused/perception_node" not in workspace.bash("ros2 node list").stdout  # no orphan node


def test_a_node_that_refuses_its_parameters_fails_the_launch(workspace: Workspace) -> None:
    """Issue 34 item 8: the node ended at start, `ros2 launch` exited 0, and the node's line suggested
    `ros2 param describe` on a node that was gone."""
    launch = workspace.launch("namespace:=cam_bad_param", "score_threshold:=1.5")
    output, _ = launch.communicate(timeout=120)
    assert launch.returncode != 0, output[-3000:]
    assert "score_threshold out of range" in output and "perception_node stopped with exit code 1" in output
    assert "ros2 param describe" not in output and "--show-args" in output and "Traceback" not in output


def test_ros2_lifecycle_brings_up_a_node_started_without_autostart(workspace: Workspace) -> None:
    launch = workspace.launch("namespace:=cam_rear", "autostart:=false")
    node = "/cam_rear/perception_node"
    try:
        assert workspace.wait_for_state(node, "unconfigured").startswith("unconfigured")
        assert "Transitioning successful" in workspace.bash(f"ros2 lifecycle set {node} configure").stdout
        assert workspace.lifecycle_state(node).startswith("inactive")
        assert "Transitioning successful" in workspace.bash(f"ros2 lifecycle set {node} activate").stdout
        assert workspace.lifecycle_state(node).startswith("active")
    finally:
        code, output = _stop(launch)
    assert "Traceback" not in output, output[-3000:]
    assert code == 0, output[-3000:]  # Ctrl-C is no failure of the node


def test_the_readmes_colcon_recipe_runs_the_checkouts_code(tmp_path: Path) -> None:
    """Issue 34 item 9: the README's lines (all but the launch, which the tests above run), with the workspace
    in a temporary folder; after them, `import mtl_perception` (as .venv/bin/mtl-perception does) finds the
    checkout, not a copy in install/."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- colcon recipe")[1].split("```bash\n")[1].split("```")[0]
    lines = [line for line in block.splitlines() if not line.startswith("ros2 launch")]
    assert len(lines) == 4 and any("--symlink-install" in line for line in lines)
    script = "\n".join(["set -e", f"cd {REPO}", *lines]).replace("~/mtl_ws", str(tmp_path / "mtl_ws"))
    script += "\npython -c 'import mtl_perception, os; print(os.path.realpath(mtl_perception.__file__))'"
    script += "\nros2 pkg prefix mtl_perception"
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    module, prefix = result.stdout.strip().splitlines()[-2:]
    assert module == str(REPO / "mtl_perception" / "__init__.py")
    assert prefix == str(tmp_path / "mtl_ws" / "install" / "mtl_perception")
    assert not (REPO / "build").exists() and not (REPO / "install").exists()


def test_the_readmes_ros_machine_build_finds_and_builds_the_interface_package(tmp_path: Path) -> None:
    """The README's colcon line for a ROS machine: colcon stops looking inside a package, so its --base-paths name
    resource/ beside src/; mtl_perception_msgs is found there (vision_msgs is not: COLCON_IGNORE), built with
    rosidl before mtl_perception, and imports from the install space."""
    readme = (REPO / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("colcon build --base-paths"))
    build = line.split("&&")[0].strip()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mtl_perception").symlink_to(REPO)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "AMENT_PREFIX_PATH": str(BIN.parent),
           "CMAKE_PREFIX_PATH": str(BIN.parent)}
    result = subprocess.run(["bash", "-c", f"cd {tmp_path} && {build}"], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "install").iterdir() if p.is_dir()) == \
        ["mtl_perception", "mtl_perception_msgs"]
    site = next((tmp_path / "install/mtl_perception_msgs/lib").glob("python3*/site-packages"))
    check = subprocess.run([sys.executable, "-c", "import mtl_perception_msgs.msg as m, sys; "
                            "sys.exit(0 if m.EgoLane.DEPARTURE_RIGHT == 2 and m.__file__.startswith(sys.argv[1]) "
                            "else 1)", str(site)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)})
    assert check.returncode == 0, check.stderr
    assert not (REPO / "build").exists() and not (REPO / "install").exists()
