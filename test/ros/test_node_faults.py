"""What a fault battery found misleading on the node (issue 34 items 1, 2, 4, 6, 7), reproduced on real rclpy:
each fault is named in /diagnostics and in the log, with the camera it concerns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from node_harness import Client, scene
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from mtl_perception.ros.conversions import camera_info_msg
from mtl_perception.ros.node_process import NodeProcess, image_message
from mtl_perception.runtime.ground import CameraIntrinsics
from mtl_perception.topics import is_perception_diagnostics


def _start(namespace: str, model: Path, extra_args: tuple[str, ...] = (), **params: object) -> NodeProcess:
    node = NodeProcess({"model_path": str(model), "threads": 1, "backend": "onnxruntime", "diagnostics_period": 0.5,
                        **params}, namespace=namespace, extra_args=extra_args)
    assert node.wait_for("subscribed to"), node.output
    return node


def _status(client: Client, namespace: str) -> DiagnosticStatus | None:
    for array in reversed(client.received.get("/diagnostics", [])):
        for status in array.status:
            if is_perception_diagnostics(status.name, f"{namespace}/perception_node"):
                return status
    return None


def _client(namespace: str) -> Client:
    client = Client(f"faults_{namespace.strip('/')}", namespace=namespace)
    client.listen(DiagnosticArray, "/diagnostics")
    return client


def test_an_empty_cameras_list_in_a_params_file_is_one_unnamed_camera(bundled_model: Path, tmp_path: Path) -> None:
    """Item 1: `cameras: []` ended configure with "unexpected TypeError: 'NoneType' object is not iterable"."""
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    cameras: []\n")
    node = _start("/cam_empty", bundled_model, extra_args=("--params-file", str(params)))
    try:
        assert "subscribed to /cam_empty/image " in node.output
    finally:
        node.stop()
    assert "cannot configure" not in node.output and "TypeError" not in node.output


def test_a_silent_camera_and_a_camera_without_its_grid_are_named(bundled_model: Path) -> None:
    """Items 2 and 4: a named camera that never published left /diagnostics at 'ok'; a camera_info of another
    size took the camera's grid away with a log line that did not name the camera, and 'ok'."""
    node = _start("/rig_faults", bundled_model, cameras="[front,rear]",
                  camera_pose="[0.0,0.0,1.5,0.0,0.1,0.0,0.0,0.0,1.5,0.0,0.1,3.14]")
    client = _client("/rig_faults")
    try:
        front = client.node.create_publisher(Image, "front/image", 1)
        info = client.node.create_publisher(CameraInfo, "front/camera_info", 1)
        wrong = camera_info_msg(Header(frame_id="front_camera"), CameraIntrinsics(500.0, 500.0, 640.0, 360.0, 1280, 720))
        frame = scene(480, 640)
        stamp = [80_000_000_000]

        def tick() -> None:
            stamp[0] += 100_000_000
            info.publish(wrong)
            front.publish(image_message(frame, stamp[0], frame_id="front_camera"))
            time.sleep(0.1)

        def both_named() -> bool:
            status = _status(client, "/rig_faults")
            return status is not None and "camera rear:" in status.message and "camera front:" in status.message

        assert client.spin_until(both_named, 30, each=tick), (_status(client, "/rig_faults"), node.output[-2000:])
        status = _status(client, "/rig_faults")
        assert status is not None and status.level == DiagnosticStatus.WARN
        assert "camera rear: no frame since the node subscribed" in status.message
        assert "(listening on /rig_faults/rear/image)" in status.message
        assert "camera front: no drivable_grid or lane markings: drivable_grid skipped: camera_info is 1280x720, " \
               "the frames 640x480" in status.message
        assert "stopped" not in status.message  # front is answered all along
    finally:
        client.close()
        node.stop()
    assert "camera front: drivable_grid skipped: camera_info is 1280x720" in node.output


def test_raw_frames_to_a_node_listening_for_compressed_ones_are_pointed_at(bundled_model: Path) -> None:
    """Item 6: with one unnamed camera /diagnostics said "camera  stopped"; a node set to compressed input that
    gets raw frames showed only that."""
    node = _start("/cam_transport", bundled_model, input_transport="compressed")
    client = _client("/cam_transport")
    try:
        raw = client.node.create_publisher(Image, "image", 1)
        frame = scene(120, 160)

        def pointed_at() -> bool:
            status = _status(client, "/cam_transport")
            return status is not None and "input_transport:=raw" in status.message

        assert client.spin_until(pointed_at, 20, each=lambda: raw.publish(image_message(frame, 1))), \
            _status(client, "/cam_transport")
        status = _status(client, "/cam_transport")
        assert status is not None and status.level == DiagnosticStatus.WARN
        assert status.message == ("the camera on /cam_transport/image/compressed: no frame since the node subscribed "
                                  f"{status.message.split('subscribed ')[1].split(' s ago')[0]} s ago (listening on "
                                  "/cam_transport/image/compressed); frames arrive on /cam_transport/image: set "
                                  "input_transport:=raw")
    finally:
        client.close()
        node.stop()


@pytest.mark.parametrize("state", ["active", "inactive"])
def test_a_start_time_parameter_refusal_says_how_from_the_state_the_node_is_in(bundled_model: Path,
                                                                                state: str) -> None:
    """Item 7: from active the refusal said "cleanup, set it, then configure", and cleanup is refused there."""
    namespace = f"/cam_refusal_{state}"
    node = _start(namespace, bundled_model)
    client = Client(f"refusal_{state}", namespace=namespace)
    try:
        if state == "inactive":
            from lifecycle_msgs.msg import Transition
            from lifecycle_msgs.srv import ChangeState

            change = client.node.create_client(ChangeState, "perception_node/change_state")
            assert change.wait_for_service(timeout_sec=10)
            future = change.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
            assert client.spin_until(future.done, 10) and future.result().success
        setter = client.node.create_client(SetParameters, "perception_node/set_parameters")
        assert setter.wait_for_service(timeout_sec=10)
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="/elsewhere.onnx")
        future = setter.call_async(SetParameters.Request(parameters=[ParameterMsg(name="model_path", value=value)]))
        assert client.spin_until(future.done, 10)
        (result,) = future.result().results
        assert not result.successful
        if state == "active":
            assert f"`ros2 lifecycle set {namespace}/perception_node deactivate`, then `cleanup`" in result.reason
        else:
            assert f"`ros2 lifecycle set {namespace}/perception_node cleanup`, set it" in result.reason
            assert "deactivate" not in result.reason
    finally:
        client.close()
        node.stop()
