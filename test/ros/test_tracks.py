"""Track IDs on real rclpy (issue 32): Detection2D.id carries each box's track, stable while a synthetic car
moves across consecutive frames; a replay of the same stamped frames at another pace gives the same IDs (the
tracker follows the header stamps, not the clock); named cameras track their own boxes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from node_harness import Client
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from mtl_perception.data.synthetic import render_scene
from mtl_perception.ros.node_process import NodeProcess, image_message
from mtl_perception.stamps import to_ns

FRAMES = 8
STEP_NS = 100_000_000  # 10 Hz by the stamps


def _drive() -> list[np.ndarray]:
    """A synthetic road with cars, shifted 6 px to the left each frame: the cars move across the image."""
    image = render_scene(np.random.default_rng(3), 360, 640).image
    return [np.ascontiguousarray(np.roll(image, -6 * i, axis=1)) for i in range(FRAMES)]


def _play(namespace: str, model: Path, cameras: tuple[str, ...] = ("",), pause_s: float = 0.0,
          ) -> dict[str, list[list[str]]]:
    """Each frame to each camera, the next once every camera's answer came (and pause_s more): the IDs of the
    answers, per camera and frame, boxes in the node's order."""
    params = {"model_path": str(model), "threads": 1, "backend": "onnxruntime", "score_threshold": 0.3}
    if cameras != ("",):
        params["cameras"] = "[" + ",".join(cameras) + "]"
    node = NodeProcess(params, namespace=namespace)
    assert node.wait_for("subscribed to"), node.output
    client = Client(f"tracks_{namespace.strip('/')}", namespace=namespace)
    topics = {c: (f"{c}/image" if c else "image", f"{c}/detections" if c else "detections") for c in cameras}
    for _, answers in topics.values():
        client.listen(Detection2DArray, answers)
    publishers = {c: client.node.create_publisher(Image, image, 1) for c, (image, _) in topics.items()}
    ids: dict[str, list[list[str]]] = {c: [] for c in cameras}
    try:
        assert client.spin_until(lambda: all(p.get_subscription_count() > 0 for p in publishers.values()), 20)
        for index, frame in enumerate(_drive()):
            stamp = 50_000_000_000 + index * STEP_NS
            message = image_message(frame, stamp)

            def answered(camera: str, stamp: int = stamp) -> Detection2DArray | None:
                return next((m for m in client.received[topics[camera][1]] if to_ns(m.header.stamp) == stamp), None)

            def send(message: Image = message) -> None:
                for camera, publisher in publishers.items():
                    if answered(camera) is None:
                        publisher.publish(message)

            # sent again until answered (discovery, the model's first run); a resend of the same stamp is the
            # same frame to the tracker only if it was not answered, which is what this waits for
            assert client.spin_until(lambda: all(answered(c) is not None for c in cameras), 60, each=send), \
                node.output[-2000:]
            for camera in cameras:
                ids[camera].append([d.id for d in answered(camera).detections])  # type: ignore[union-attr]
            time.sleep(pause_s)
    finally:
        client.close()
        node.stop()
    assert "Traceback" not in node.output
    return ids


def _assert_stable(frames: list[list[str]]) -> None:
    first = [i for i in frames[0] if i]
    assert first, f"no box had a track in the first frame: {frames}"
    for later in frames[1:]:
        assert set(first) <= set(later), frames  # every car of the first frame keeps its ID
    numbers = [int(i) for frame in frames for i in frame if i]
    assert min(numbers) == 1


def test_ids_are_stable_and_a_replay_at_another_pace_gives_the_same(bundled_model: Path) -> None:
    fast = _play("/cam_track_a", bundled_model)[""]
    _assert_stable(fast)
    slow = _play("/cam_track_b", bundled_model, pause_s=0.4)[""]
    assert slow == fast


def test_named_cameras_track_their_own(bundled_model: Path) -> None:
    ids = _play("/rig_track", bundled_model, cameras=("front", "rear"))
    _assert_stable(ids["front"])
    assert ids["rear"] == ids["front"]  # the same frames, each camera's own tracker: the same IDs


def test_tracked_road_users_are_placed_on_the_ground(bundled_model: Path) -> None:
    """objects (vision_msgs/Detection3DArray): in target_frame with the frame's stamp, each object's id its
    box's track ID, its class a road user's with that class's size, ahead of the car on the ground."""
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection3DArray

    from mtl_perception.ros.conversions import camera_info_msg
    from mtl_perception.runtime.ground_objects import CLASS_SIZES

    scene = render_scene(np.random.default_rng(3), 360, 640)
    pose = scene.ground.pose
    node = NodeProcess({"model_path": str(bundled_model), "threads": 1, "backend": "onnxruntime",
                        "score_threshold": 0.3, "camera_pose": f"[0.0,0.0,{pose.z},{pose.roll},{pose.pitch},0.0]"},
                       namespace="/cam_objects")
    assert node.wait_for("subscribed to"), node.output
    client = Client("objects_viewer", namespace="/cam_objects")
    client.listen(Detection2DArray, "detections")
    client.listen(Detection3DArray, "objects")
    camera = client.node.create_publisher(Image, "image", 1)
    info = client.node.create_publisher(CameraInfo, "camera_info", 1)
    frames = _drive()
    try:
        for index in range(3):
            stamp = 70_000_000_000 + index * STEP_NS
            message = image_message(frames[index], stamp)

            def placed(stamp: int = stamp) -> bool:
                return any(to_ns(m.header.stamp) == stamp for m in client.received["objects"])

            def send(message: Image = message) -> None:
                info.publish(camera_info_msg(Header(frame_id="camera"), scene.ground.intrinsics))
                camera.publish(message)

            assert client.spin_until(placed, 60, each=send), node.output[-2000:]
        last = 70_000_000_000 + 2 * STEP_NS
        objects = next(m for m in client.received["objects"] if to_ns(m.header.stamp) == last)
        boxes = next(m for m in client.received["detections"] if to_ns(m.header.stamp) == last)
    finally:
        client.close()
        node.stop()
    assert objects.header.frame_id == "base_link" and objects.detections
    tracked = {d.id for d in boxes.detections if d.id}
    assert tracked and {o.id for o in objects.detections if o.id} <= tracked
    for placed_object in objects.detections:
        name = placed_object.results[0].hypothesis.class_id
        size = placed_object.bbox.size
        assert name in CLASS_SIZES and (size.x, size.y, size.z) == pytest.approx(CLASS_SIZES[name])
        centre = placed_object.bbox.center.position
        assert 0 < centre.x <= 45 and centre.z == pytest.approx(size.z / 2)
    assert "Traceback" not in node.output


def test_ego_lane_and_motion_in_target_frame_with_the_input_stamp(bundled_model: Path) -> None:
    """A synthetic drive through the node: ego_lane (mtl_perception_msgs/EgoLane), ego_lane/left and right
    (nav_msgs/Path) and objects/motion in target_frame with each input's stamp; a lane either valid with both
    boundaries or invalid with its reason and empty paths; velocities once tracks are old enough; and a last frame
    without any marking (a grey picture) gives an invalid lane, not the previous one."""
    from mtl_perception_msgs.msg import EgoLane, ObjectMotionArray
    from nav_msgs.msg import Path as PathMsg
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection3DArray
    from visualization_msgs.msg import MarkerArray

    from mtl_perception.data.drive import DriveSettings, plan_drive, render_drive_frame
    from mtl_perception.data.randomisation import Randomisation
    from mtl_perception.ros.conversions import camera_info_msg

    drive = plan_drive((5, 1), DriveSettings(FRAMES), 360, 640, Randomisation().fixed_camera())
    scenes = [render_drive_frame(drive, i) for i in range(FRAMES)]
    frames = [s.image for s in scenes] + [np.full_like(scenes[0].image, 90)]
    pose, intrinsics = scenes[0].ground.pose, scenes[0].ground.intrinsics
    node = NodeProcess({"model_path": str(bundled_model), "threads": 1, "backend": "onnxruntime",
                        "score_threshold": 0.3, "camera_pose": f"[0.0,0.0,{pose.z},{pose.roll},{pose.pitch},0.0]"},
                       namespace="/cam_lane")
    assert node.wait_for("subscribed to"), node.output
    client = Client("lane_viewer", namespace="/cam_lane")
    topics = {"ego_lane": EgoLane, "ego_lane/left": PathMsg, "ego_lane/right": PathMsg,
              "objects": Detection3DArray, "objects/motion": ObjectMotionArray}
    for topic, kind in topics.items():
        client.listen(kind, topic)
    client.listen(MarkerArray, "objects/markers")  # RViz's view of objects: drawn while someone listens
    camera = client.node.create_publisher(Image, "image", 1)
    info = client.node.create_publisher(CameraInfo, "camera_info", 1)
    stamps = [90_000_000_000 + i * STEP_NS for i in range(len(frames))]

    def answer(topic: str, stamp: int) -> object:
        return next((m for m in client.received[topic] if to_ns(m.header.stamp) == stamp), None)

    try:
        for frame, stamp in zip(frames, stamps):
            message = image_message(frame, stamp)

            def send(message: Image = message) -> None:
                info.publish(camera_info_msg(Header(frame_id="camera"), intrinsics))
                camera.publish(message)

            assert client.spin_until(lambda stamp=stamp: all(answer(t, stamp) for t in topics), 60, each=send), \
                node.output[-2000:]
    finally:
        client.close()
        node.stop()
    assert "Traceback" not in node.output
    known = 0
    for stamp in stamps:
        lane, left, right = (answer(t, stamp) for t in ("ego_lane", "ego_lane/left", "ego_lane/right"))
        objects, motion = answer("objects", stamp), answer("objects/motion", stamp)
        for message in (lane, left, right, objects, motion):
            assert message.header.frame_id == "base_link"  # type: ignore[attr-defined]
        if lane.valid:  # type: ignore[attr-defined]
            assert lane.reason == "" and left.poses and right.poses  # type: ignore[attr-defined]
            assert left.poses[0].pose.position.y > right.poses[0].pose.position.y  # type: ignore[attr-defined]
            assert 2.4 <= lane.width <= 5.0  # type: ignore[attr-defined]
        else:
            assert lane.reason and not left.poses and not right.poses  # type: ignore[attr-defined]
        assert [m.id for m in motion.objects] == [d.id for d in objects.detections]  # type: ignore[attr-defined]
        known += sum(m.velocity_known for m in motion.objects)  # type: ignore[attr-defined]
    grey = answer("ego_lane", stamps[-1])
    assert not grey.valid and "no lane marking" in grey.reason  # type: ignore[attr-defined]
    assert any(answer("ego_lane", s).valid for s in stamps[:-1])  # type: ignore[attr-defined]
    assert known > 0  # tracks older than 0.3 s carry a velocity
    drawn = [m for m in client.received["objects/markers"] if len(m.markers) > 1]
    assert drawn, "no objects/markers for RViz"
    for markers in drawn:  # each drawn as its objects message (a frame sent twice is answered twice: either)
        labels = [m.text for m in markers.markers if m.type == m.TEXT_VIEW_FACING]
        same_stamp = [m for m in client.received["objects"] if m.header.stamp == markers.markers[0].header.stamp]
        assert any(len(labels) == len(o.detections) and {label.split()[0] for label in labels if label.startswith("#")}
                   == {f"#{d.id}" for d in o.detections if d.id} for o in same_stamp), (labels, same_stamp)


def test_named_cameras_publish_their_objects_and_ego_lane(bundled_model: Path) -> None:
    """With cameras [front, rear] each camera's objects, objects/motion and ego lane come under its name, in
    target_frame with its frame's stamp (each camera its own tracker and ego lane)."""
    from mtl_perception_msgs.msg import EgoLane, ObjectMotionArray
    from nav_msgs.msg import Path as PathMsg
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection3DArray

    from mtl_perception.data.drive import DriveSettings, plan_drive, render_drive_frame
    from mtl_perception.data.randomisation import Randomisation
    from mtl_perception.ros.conversions import camera_info_msg

    drive = plan_drive((5, 1), DriveSettings(3), 360, 640, Randomisation().fixed_camera())
    scenes = [render_drive_frame(drive, i) for i in range(3)]
    pose, intrinsics = scenes[0].ground.pose, scenes[0].ground.intrinsics
    cameras = ("front", "rear")
    one = f"0.0,0.0,{pose.z},{pose.roll},{pose.pitch},0.0"  # both cameras where the drive's camera was
    node = NodeProcess({"model_path": str(bundled_model), "threads": 1, "backend": "onnxruntime", "cameras": "[front,rear]",
                        "score_threshold": 0.3, "camera_pose": f"[{one},{one}]"}, namespace="/rig_lane")
    assert node.wait_for("subscribed to"), node.output
    client = Client("rig_lane_viewer", namespace="/rig_lane")
    kinds = {"objects": Detection3DArray, "objects/motion": ObjectMotionArray, "ego_lane": EgoLane,
             "ego_lane/left": PathMsg}
    for camera in cameras:
        for topic, kind in kinds.items():
            client.listen(kind, f"{camera}/{topic}")
    images = {c: client.node.create_publisher(Image, f"{c}/image", 1) for c in cameras}
    infos = {c: client.node.create_publisher(CameraInfo, f"{c}/camera_info", 1) for c in cameras}
    stamps = [95_000_000_000 + i * STEP_NS for i in range(3)]

    def answered(camera: str, stamp: int) -> bool:
        return all(any(to_ns(m.header.stamp) == stamp for m in client.received[f"{camera}/{t}"]) for t in kinds)

    try:
        for scene, stamp in zip(scenes, stamps):
            message = image_message(scene.image, stamp)

            def send(message: Image = message, stamp: int = stamp) -> None:
                for camera in cameras:
                    if not answered(camera, stamp):
                        infos[camera].publish(camera_info_msg(Header(frame_id=f"{camera}_camera"), intrinsics))
                        images[camera].publish(message)

            assert client.spin_until(lambda stamp=stamp: all(answered(c, stamp) for c in cameras), 60, each=send), \
                node.output[-2000:]
    finally:
        client.close()
        node.stop()
    assert "Traceback" not in node.output
    for camera in cameras:
        for topic in kinds:
            messages = client.received[f"{camera}/{topic}"]
            assert {to_ns(m.header.stamp) for m in messages} >= set(stamps)
            assert all(m.header.frame_id == "base_link" for m in messages)
