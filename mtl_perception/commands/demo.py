"""mtl-perception demo: a synthetic drive, as a rosbag2, replayed through the real perception_node.

1. makes (once) a 60-frame synthetic drive at 10 Hz (data/drive.py: one road, road users that keep their
   identities) in BDD100K's layout and a rosbag2 of it;
2. starts perception_node in its own process with the bundled model;
3. plays the bag's frames into the node over rclpy, with the camera's camera_info, and records its
   detections with their track IDs, masks, drivable_grid, lane markings, objects and ego lane;
4. scores them against the drive's labels (detection, masks, BDD100K's tracking figures) and its ground truth
   in metres (the masks on the ground, the road users' distances, the ego lane) and writes demo_out/: overlay
   video with track IDs, the ego lane and a bird's-eye inset of the grid and markings, PNG frames, a contact
   sheet and summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from mtl_perception_msgs.msg import EgoLane as EgoLaneMessage
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.bags import (
    CAMERA_INFO,
    IMAGE_TOPIC,
    calibration_of,
    read_image_frames,
    write_image_bag,
)
from mtl_perception.commands.arguments.demo import REPLAY_HZ
from mtl_perception.data.bdd100k import BDD100KSplit, SplitPaths
from mtl_perception.data.ground_truth import FrameGround, ground_json, load_ground_truth
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic_set import SynthConfig, write_dataset
from mtl_perception.evaluation.bag_eval import LabelJoin
from mtl_perception.evaluation.evaluator import Evaluator
from mtl_perception.evaluation.ground_eval import GroundScores
from mtl_perception.evaluation.scene_eval import SceneScores, labelled_boxes, match_by_box
from mtl_perception.evaluation.tracking_eval import box_track_frame, load_track_labels
from mtl_perception.message_layouts import (
    contacts_from_message,
    detections_from_message,
    ego_lane_from_message,
    grid_from_message,
)
from mtl_perception.package_paths import bundled_model, fastdds_profile_environment, real_clip
from mtl_perception.ros.bag_player import BagPlayer, RecordedFrame
from mtl_perception.ros.conversions import image_to_bgr
from mtl_perception.ros.node_process import NodeProcess, spinning, until_answered
from mtl_perception.runtime.backends import ModelLoadError, load_backend
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ego_lane import EgoLane
from mtl_perception.runtime.ground import GridSpec
from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.runtime.overlay import contact_sheet, draw_birdseye, draw_frame, draw_result
from mtl_perception.runtime.perception import Perception, PerceptionConfig, PerceptionResult
from mtl_perception.runtime.pipeline import FramePipeline
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.presets import PEER_EVALUATION, deployed, deployed_backend, deployed_tracking
from mtl_perception.runtime.realtime import percentiles
from mtl_perception.stamps import NS_PER_S, to_ns
from mtl_perception.topics import camera_info_beside, is_perception_diagnostics

DEMO_SEED = 2024
PROBE_FRAMES = 5  # frames sent one at a time to measure the node before the replay
RATE_MARGIN = 1.3  # replay period = this x the slowest probe answer
# the drive's one camera, as mounted on its car (the node's camera_pose)
DEMO_MOUNT = {"focal_fraction": 0.8, "height_m": 1.5, "pitch_deg": 2.0}


@dataclass
class Recording:
    """What the node answered, by input stamp."""
    sent_at: dict[int, float] = field(default_factory=dict)
    detections: dict[int, Any] = field(default_factory=dict)
    drivable: dict[int, np.ndarray] = field(default_factory=dict)
    lane: dict[int, np.ndarray] = field(default_factory=dict)
    grid: dict[int, Any] = field(default_factory=dict)  # nav_msgs/OccupancyGrid
    markers: dict[int, Any] = field(default_factory=dict)  # visualization_msgs/MarkerArray
    objects: dict[int, Any] = field(default_factory=dict)  # vision_msgs/Detection3DArray
    ego_lane: dict[int, Any] = field(default_factory=dict)  # mtl_perception_msgs/EgoLane
    latency_ms: dict[int, float] = field(default_factory=dict)
    diagnostics: dict[str, str] = field(default_factory=dict)

    def complete(self, stamp: int) -> bool:
        return stamp in self.detections and stamp in self.drivable and stamp in self.lane

    def clear(self) -> None:
        """Forget the answers so far (warm-up and probe frames)."""
        for store in (self.sent_at, self.detections, self.drivable, self.lane, self.grid, self.markers,
                      self.objects, self.ego_lane, self.latency_ms):
            store.clear()


def prepare_drive(data: Path, frames: int) -> tuple[Path, Path]:
    """The synthetic drive (val split) and its bag, the camera's camera_info beside every frame; made once,
    reused after."""
    drive, bag = data / "drive", data / f"drive_{frames}_rosbag2"  # no ".bag": that suffix means ROS 1
    paths = SplitPaths(drive, "val")
    # (a drive made before drives were sequences has no tracking labels: it is made again)
    if not ground_json(paths).is_file() or len(list(paths.box_track.glob("*.json"))) != 1:
        print(f"making a {frames}-frame synthetic drive in {drive} (seed {DEMO_SEED}, {REPLAY_HZ:g} Hz)")
        world = Randomisation().fixed_camera(**DEMO_MOUNT)
        write_dataset(SynthConfig(drive, train=0, val=frames, seed=DEMO_SEED, workers=2, randomisation=world,
                                  drive_frames=frames, rate_hz=REPLAY_HZ))
        shutil.rmtree(bag, ignore_errors=True)  # a bag of an older drive would hold other frames
    metadata = bag / "metadata.yaml"
    if not (bag / "frames.json").is_file() or CAMERA_INFO not in metadata.read_text():
        # a bag from before partial names (incomplete), or from before the drive's camera_info was recorded
        shutil.rmtree(bag, ignore_errors=True)
        images = sorted((drive / "images" / "100k" / "val").glob("*.jpg"))[:frames]
        camera = next(iter(load_ground_truth(SplitPaths(drive, "val")).values()))  # one camera for the drive
        write_image_bag(images, bag, rate_hz=REPLAY_HZ, camera_info=calibration_of(camera.intrinsics))
    return drive, bag


@dataclass(frozen=True)
class Replay:
    asked_hz: float
    rate_hz: float  # what the frames were published at
    probe_ms: list[float]  # the node's answers to frames sent one at a time, before the replay
    elapsed_s: float


def sustainable_rate(asked_hz: float, probe_ms: list[float]) -> float:
    """The asked rate, or slower: one frame per RATE_MARGIN x the slowest probe answer, so that a slow
    machine answers every frame (latest-frame-wins would drop the rest) instead of a machine-dependent
    subset of them."""
    slowest_s = max(probe_ms) / 1e3 if probe_ms else 0.0
    return min(asked_hz, 1.0 / (RATE_MARGIN * slowest_s)) if slowest_s > 0 else asked_hz


def _replay(bag: Path, asked_hz: float, recording: Recording) -> Replay:
    """Play the drive's bag into the node (play-bag's player: each frame's camera_info, then its image):
    first until it answers, then probe frames one at a time, then every frame at a rate it sustains,
    collecting the answers in a thread of their own."""
    node = rclpy.create_node("demo_player")

    def on_detections(msg: Detection2DArray) -> None:
        stamp = to_ns(msg.header.stamp)
        if stamp in recording.sent_at:
            recording.detections[stamp] = msg
            recording.latency_ms[stamp] = 1e3 * (time.perf_counter() - recording.sent_at[stamp])

    def on_mask(store: dict[int, np.ndarray]) -> Any:
        # mono8 comes back as grey BGR; one channel is the mask
        return lambda msg: store.__setitem__(to_ns(msg.header.stamp), np.array(image_to_bgr(msg)[..., 0]))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if is_perception_diagnostics(status.name):
                recording.diagnostics = {kv.key: kv.value for kv in status.values}

    node.create_subscription(Detection2DArray, "detections", on_detections, 50)
    node.create_subscription(Image, "drivable_mask", on_mask(recording.drivable), 50)
    node.create_subscription(Image, "lane_mask", on_mask(recording.lane), 50)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    node.create_subscription(OccupancyGrid, "drivable_grid",
                             lambda msg: recording.grid.__setitem__(to_ns(msg.header.stamp), msg), 50)
    node.create_subscription(MarkerArray, "lane_markings",
                             lambda msg: recording.markers.__setitem__(to_ns(msg.markers[0].header.stamp), msg), 50)
    node.create_subscription(Detection3DArray, "objects",
                             lambda msg: recording.objects.__setitem__(to_ns(msg.header.stamp), msg), 50)
    node.create_subscription(EgoLaneMessage, "ego_lane",
                             lambda msg: recording.ego_lane.__setitem__(to_ns(msg.header.stamp), msg), 50)
    # the bag's camera topics onto the node's (image and camera_info in the root namespace)
    player = BagPlayer(node, bag, remap={IMAGE_TOPIC: "/image", camera_info_beside(IMAGE_TOPIC): "/camera_info"})
    frames = player.frames()

    def sent(frame: RecordedFrame) -> None:
        recording.sent_at[frame.stamp_ns] = time.perf_counter()

    def send(frame: RecordedFrame) -> None:
        sent(frame)
        player.publish(frame)

    with spinning(node):
        # discovery, the model's warm-up and the ground lookup tables (built on the first frame with
        # camera_info) happen here, not in the probes
        if not until_answered(lambda: send(frames[0]), lambda: recording.complete(frames[0].stamp_ns)
                              and frames[0].stamp_ns in recording.grid, time.sleep):
            raise RuntimeError("perception_node did not answer within 60 s; see its log above")
        recording.clear()
        probe_ms = [_answer_ms(send, frame, recording) for frame in frames[:PROBE_FRAMES]]
        recording.clear()
        rate = sustainable_rate(asked_hz, probe_ms)
        if rate < asked_hz:
            print(f"the node answers a frame in up to {max(probe_ms):.0f} ms here: replaying at {rate:.1f} Hz "
                  f"instead of {asked_hz:g} Hz, so that every frame is answered")
        start = time.perf_counter()
        player.play(frames=frames, rate_hz=rate, on_publish=sent)
        last = frames[-1].stamp_ns
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not recording.complete(last):
            time.sleep(0.05)
        time.sleep(1.5)  # the last diagnostics and any late masks
        elapsed = time.perf_counter() - start
    node.destroy_node()
    return Replay(asked_hz, rate, probe_ms, elapsed)


def _answer_ms(send: Callable[[Any], None], frame: Any, recording: Recording, timeout_s: float = 30.0) -> float:
    """Send one frame and wait for all of its answers; milliseconds from publish to the last."""
    started = time.perf_counter()
    send(frame)
    deadline = time.monotonic() + timeout_s
    while not recording.complete(frame.stamp_ns):
        if time.monotonic() > deadline:
            raise RuntimeError(f"perception_node did not answer a probe frame within {timeout_s:g} s")
        time.sleep(0.005)
    return 1e3 * (time.perf_counter() - started)


def _write_outputs(out: Path, drive: Path, bag: Path, frames_by_stamp: dict[int, np.ndarray], recording: Recording,
                   class_names: tuple[str, ...], replay: Replay, sent: int) -> dict:

    out.mkdir(parents=True, exist_ok=True)
    labels = LabelJoin.load(bag, drive, "val")
    split: BDD100KSplit = labels.split
    truth = load_ground_truth(split.paths)
    display_threshold = deployed().score_threshold  # boxes drawn in the video: the node's operating point
    evaluator = Evaluator(class_names, display_threshold)
    ground_scores = GroundScores()
    scene = SceneScores()
    track_labels = {Path(f["name"]).name: f for f in load_track_labels(split.paths.box_track)}
    video = None
    tiles: list[np.ndarray] = []
    answered = [s for s in sorted(recording.detections) if recording.complete(s)]
    for index, stamp in enumerate(answered):
        detections = detections_from_message(recording.detections[stamp], class_names)
        result = PerceptionResult(detections, recording.drivable[stamp], recording.lane[stamp],
                                  {"total": recording.latency_ms[stamp]})
        sample = split[labels.by_stamp[stamp]]
        ground = truth[sample.labels.name]
        evaluator.add(result, sample.labels, sample.drivable, sample.lane)
        ground_scores.add(ground, result.drivable, result.lane, sample.labels.boxes)
        track_ids = np.array([int(d.id) if d.id else 0 for d in recording.detections[stamp].detections], np.int64)
        lane = ego_lane_from_message(recording.ego_lane[stamp]) if stamp in recording.ego_lane else None
        _score_scene(scene, track_labels[sample.labels.name], ground, index, detections, track_ids,
                     class_names, recording.objects.get(stamp), lane)
        shown = detections.scores >= display_threshold
        overlay = draw_result(frames_by_stamp[stamp], Detections(detections.boxes[shown], detections.scores[shown],
                                                                  detections.class_ids[shown]),
                              class_names, result.drivable, result.lane, track_ids[shown], lane,
                              (ground.intrinsics, ground.pose))
        if stamp in recording.grid:
            overlay = _with_birdseye(overlay, recording.grid[stamp], recording.markers.get(stamp))
        if video is None:
            h, w = overlay.shape[:2]
            video = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), REPLAY_HZ,
                                    (w, h))
        video.write(overlay)
        if index % max(len(answered) // 6, 1) == 0 and len(tiles) < 6:
            cv2.imwrite(str(out / f"frame_{index:03d}.png"), overlay)
            tiles.append(overlay)
    if video is not None:
        video.release()
    if tiles:
        cv2.imwrite(str(out / "contact_sheet.png"), contact_sheet(tiles, columns=3, tile_width=640))
    scores = evaluator.summary()
    over_time = scene.summary()
    summary = {
        "frames": len(answered),
        "fps": len(answered) / replay.elapsed_s if replay.elapsed_s > 0 else 0.0,
        "latency_ms": percentiles(list(recording.latency_ms.values())),
        "dropped": sent - len(answered),
        "node_dropped": int(recording.diagnostics.get("dropped", "0")),
        "metrics": {"det": scores["det"], "det_all_classes": scores["det_all_classes"],
                    "drivable": scores["drivable"], "lane": scores["lane"]},
        "ground": {"frames_with_grid": sum(1 for s in answered if s in recording.grid),
                   **ground_scores.summary(),
                   "how": "the node's masks on the road through the drive's camera, against its ground truth in "
                          "metres (mtl-perception eval-ground's measures)"},
        "scene": {**over_time,
                  "how": "the node's track IDs scored as BDD100K's box_track (the toolkit's figures), its objects' "
                         "distances and its ego lane against the drive's truth in metres (eval-ground's scene "
                         "measures)"},
        "replay": {"sent": sent, "rate_hz": round(replay.rate_hz, 2), "asked_hz": replay.asked_hz,
                   "probe_ms": [round(v, 1) for v in replay.probe_ms],
                   "rate": "the asked rate, or slower where the node's probe answers show it cannot keep up "
                           f"(period = {RATE_MARGIN} x the slowest probe answer); latency and fps are taken "
                           "at rate_hz",
                   "latency": "image published -> Detection2DArray received",
                   "detections": f"node at score >= {PEER_EVALUATION.score_threshold}, NMS IoU "
                                 f"{PEER_EVALUATION.iou_threshold} (the peers' evaluation settings); "
                                 f"video shows score >= {display_threshold}"},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _score_scene(scene: SceneScores, labelled: dict, ground: FrameGround, index: int, detections: Detections,
                 track_ids: np.ndarray, class_names: tuple[str, ...], objects: Any, lane: EgoLane | None) -> None:
    """One answered frame into the scene scores: its tracks (box_track), its objects' places (each matched to a
    labelled road user through its track's box) and its ego lane."""
    boxes, _, ids = labelled_boxes(labelled)
    scene.add_tracks(labelled, box_track_frame(labelled["name"], labelled["videoName"], index, detections.boxes,
                                               detections.scores, [class_names[int(c)] for c in detections.class_ids],
                                               track_ids))
    if objects is not None:
        matches = match_by_box(detections.boxes, boxes)
        truth_of_track = {str(t): ids[m] for t, m in zip(track_ids.tolist(), matches) if t and m is not None}
        scene.add_placed(ground, [(truth_of_track.get(track), contact)
                                  for track, contact in contacts_from_message(objects).items()])
    scene.add_lane(ground, lane)


def _with_birdseye(overlay: np.ndarray, grid: Any, markers: Any) -> np.ndarray:
    """The frame with the node's drivable_grid and lane markings, seen from above, in its top right corner."""
    occupancy, spec = grid_from_message(grid)
    lines = [] if markers is None else [m for m in markers.markers if m.points]
    markings = [GroundMarking(np.array([[p.x, p.y] for p in m.points]), (0.0, 0.0, 0.0)) for m in lines]
    inset = draw_birdseye(occupancy, spec, markings, height=overlay.shape[0] // 2)
    out = overlay.copy()
    h, w = inset.shape[:2]
    out[:h, -w:] = inset
    return out


def run(args: argparse.Namespace) -> int:
    model = args.model or bundled_model()
    try:
        class_names = load_backend(model, deployed_backend(backend="onnxruntime", threads=1)).info.class_names
    except (ModelLoadError, ModelContractError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    drive, bag = prepare_drive(args.data, args.frames)
    frames = [f for f in read_image_frames(bag) if f.image is not None]  # the drive is written here: all decode
    camera = next(iter(load_ground_truth(SplitPaths(drive, "val")).values()))  # one camera for the whole drive
    pose = camera.pose
    # for this process and the node: its own domain, and 1280x720 frames over shared memory
    os.environ.setdefault("ROS_DOMAIN_ID", str(40 + os.getpid() % 50))
    os.environ.update(fastdds_profile_environment(os.environ))
    node = NodeProcess({"model_path": model, "backend": "onnxruntime", "threads": args.threads,
                        "score_threshold": PEER_EVALUATION.score_threshold,
                        "iou_threshold": PEER_EVALUATION.iou_threshold,
                        "max_detections": PEER_EVALUATION.max_detections, "diagnostics_period": 0.5,
                        "camera_pose": [pose.x, pose.y, pose.z, pose.roll, pose.pitch, pose.yaw]},
                       capture=False)  # its log goes to the console
    recording = Recording()
    rclpy.init()
    try:
        print(f"replaying {bag} ({args.frames} frames, at most {args.rate:g} Hz) through perception_node")
        replay = _replay(bag, args.rate, recording)
    finally:
        rclpy.try_shutdown()
        node.stop(timeout=20)
    summary = _write_outputs(args.out, drive, bag, {f.stamp_ns: f.image for f in frames if f.image is not None}, recording, class_names,
                             replay, args.frames)
    summary["real_clip"] = write_real_overlay(model, real_clip(), args.out, args.threads)
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    m = summary["metrics"]
    print(f"\n{summary['frames']}/{args.frames} frames answered, {summary['dropped']} dropped at "
          f"{replay.rate_hz:.1f} Hz; latency p50 {summary['latency_ms']['p50']:.0f} ms, "
          f"p90 {summary['latency_ms']['p90']:.0f} ms (publish -> detections)")
    print(f"detection mAP@0.5 {m['det']['map50']:.3f} (vehicle) / {m['det_all_classes']['map50']:.3f} "
          f"(10 classes)   drivable mIoU {m['drivable']['miou']:.3f}   lane IoU {m['lane']['iou']:.3f}")
    g = summary["ground"]
    print(f"on the ground ({g['frames_with_grid']} grids): drivable IoU 5-30 m median {g['iou_median']}, lane "
          f"lateral error at 20 m median {g['lateral_error_20m_median']} m (recall {g['marking_recall_20m']})")
    t, d, lane = summary["scene"].get("tracking", {}), summary["scene"], summary["scene"]["ego_lane"]
    print(f"over time: tracks mIDF1 {t.get('mIDF1', 0):.1f} / IDF1 {t.get('IDF1', 0):.1f} (BDD100K box_track), "
          f"{t.get('IDSw_per_100_frames', 0):.1f} ID switches per 100 frames; road users placed within "
          f"{_percent(d['distance_relative_error_5_40m_median'])} of their distance (median, 5-40 m); ego lane found "
          f"in {_percent(lane['found'])} of the frames, its boundaries within {lane['boundary_error_20m_median']} m "
          "at 20 m (median)")
    r = summary["real_clip"]
    print(f"real clip ({r['clip']}, {r['frames']} frames): {r['vehicles_per_frame']:.1f} vehicles per frame at the "
          f"node's threshold, drivable area on {100 * r['drivable_fraction']:.0f}% of the frame, "
          f"{r['latency_ms_p50']:.0f} ms per frame")
    print(f"wrote {args.out}/overlay.mp4, real_overlay.mp4, contact_sheet.png, frame_*.png and summary.json")
    return 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def write_real_overlay(model: Path, clip: Path, out: Path, threads: int) -> dict[str, Any]:
    """The node's pipeline (runtime/pipeline.py, at the node's default thresholds) on every frame of a real
    clip: out/real_overlay.mp4, and what it found."""
    perception = Perception(PerceptionConfig.with_settings(model, deployed_backend(backend="onnxruntime",
                                                                                   threads=threads), deployed()))
    pipeline = FramePipeline(perception, GridSpec.from_node_defaults(), deployed_tracking())
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise FileNotFoundError(f"the demo's real clip {clip} cannot be opened")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    overlays: list[np.ndarray] = []
    vehicles, drivable, latency = 0, [], []
    vehicle_ids = [i for i, name in enumerate(perception.info.class_names) if name in ("car", "truck", "bus", "vehicle")]
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        through = pipeline.process(frame, stamp_ns=round(len(overlays) * NS_PER_S / fps))
        result = through.outputs
        det = result.detections
        overlays.append(draw_frame(through, pipeline.class_names))
        vehicles += int(np.isin(det.class_ids, vehicle_ids).sum())
        drivable.append(float((result.drivable > 0).mean()))
        latency.append(result.timings["total"])
    capture.release()
    perception.close()
    if not overlays:
        raise ValueError(f"the demo's real clip {clip} has no frame that decodes")

    # written under a partial name, then renamed: OpenCV picks the container by the name's suffix, so
    # atomic_io's .tmp names do not serve
    partial = out / ".real_overlay.partial.mp4"
    h, w = overlays[0].shape[:2]
    video = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for overlay in overlays:
        video.write(overlay)
    video.release()
    if not partial.is_file() or partial.stat().st_size == 0:
        raise OSError(f"OpenCV could not write {out / 'real_overlay.mp4'} (no mp4v encoder?)")
    os.replace(partial, out / "real_overlay.mp4")
    return {"clip": clip.name, "frames": len(overlays), "vehicles_per_frame": vehicles / len(overlays),
            "drivable_fraction": round(float(np.mean(drivable)), 4),
            "latency_ms_p50": round(float(np.median(latency)), 1)}
