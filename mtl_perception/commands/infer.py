"""mtl-perception infer: run a model on images, a folder or a video, without ROS."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_folder, atomic_write_text, write_image
from mtl_perception.bags import load_camera_info_yaml
from mtl_perception.data.bdd100k import DRIVABLE_DIRECT, decode_lane_mask
from mtl_perception.evaluation.toolkit_det import PredictedFrame
from mtl_perception.evaluation.tracking_eval import box_track_frame
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.calibration import IMAGE_SUFFIXES
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ego_lane import EgoLane, LaneBoundary
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GeometryError, GridSpec
from mtl_perception.runtime.overlay import contact_sheet, draw_frame, draw_overlay, draw_result
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.pipeline import CameraGeometry, FramePipeline, FrameResult
from mtl_perception.runtime.presets import deployed_backend, deployed_tracking

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def _frames(source: Path) -> Iterator[tuple[str, str, np.ndarray | None]]:
    """(frame name, overlay file stem, BGR frame or None where it cannot be decoded) for each frame of an
    image, a folder of images or a video. A frame's name is its file's name (as BDD100K names frames);
    two files with one stem (frame.jpg, frame.png) get overlays named after both (frame_jpg, frame_png)."""
    if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        yield from _video_frames(source)
        return
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    elif source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"--input {source} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                             f"({', '.join(VIDEO_SUFFIXES)}), nor a folder of images")
        files = [source]
    else:
        raise FileNotFoundError(f"input {source} does not exist")
    stems = Counter(p.stem for p in files)
    for path in files:
        stem = path.stem if stems[path.stem] == 1 else f"{path.stem}_{path.suffix[1:].lower()}"
        yield path.name, stem, cv2.imread(str(path), cv2.IMREAD_COLOR)


def _video_frames(source: Path) -> Iterator[tuple[str, str, np.ndarray | None]]:
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise FileNotFoundError(f"video {source} cannot be opened (corrupt, or an unsupported codec)")
    try:
        index = 0
        while True:
            ok, video_frame = capture.read()
            if not ok:
                break
            name = f"{source.stem}_{index:06d}"
            yield name, name, video_frame
            index += 1
    finally:
        capture.release()


def _holds_results(out: Path) -> bool:
    return out.is_dir() and any(out.iterdir())


def _titled(image: np.ndarray, title: str) -> np.ndarray:
    """A copy of a BGR image with a title bar at the top (model names on comparison tiles)."""
    out = image.copy()
    scale = max(image.shape[1] / 1280, 0.5)
    cv2.rectangle(out, (0, 0), (out.shape[1], round(40 * scale)), (0, 0, 0), -1)
    cv2.putText(out, title, (round(10 * scale), round(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                (255, 255, 255), max(round(2 * scale), 1), cv2.LINE_AA)
    return out


def _compare(args: argparse.Namespace) -> int:
    """Both models on every frame; one tile per model, side by side."""
    try:
        models = [_pipeline(path, args) for path in args.compare]
        labeller = _teachers(args)
        args.out.mkdir(parents=True, exist_ok=True)
        tiles: list[np.ndarray] = []
        results: dict[str, dict[str, dict]] = {}
        for name, stem, frame in tqdm(_frames(args.input), desc="compare", unit="frame"):
            if frame is None:
                print(f"warning: skipping unreadable image {name}", file=sys.stderr)
                continue
            pair, results[name] = [], {}
            for role, path, pipeline in zip(("old", "new"), args.compare, models):
                result = pipeline.process(frame).outputs
                det = result.detections
                drawn = draw_result(frame, det, pipeline.class_names, result.drivable, result.lane)
                pair.append(_titled(drawn, f"{role}: {path.name}"))
                results[name][role] = {"model": str(path), "boxes": det.boxes.round(2).tolist(),
                                       "classes": [pipeline.class_names[c] for c in det.class_ids.tolist()],
                                       "scores": det.scores.round(4).tolist(),
                                       "drivable_fraction": round(float((result.drivable > 0).mean()), 4),
                                       "lane_fraction": round(float((result.lane > 0).mean()), 4)}
            if labeller is not None:
                drawn, results[name]["teachers"] = _teacher_tile(labeller, frame)
                pair.append(_titled(drawn, f"teachers: {labeller.detection_teachers}"))
            write_image(args.out / f"compare_{stem}.jpg", np.hstack(pair))
            tiles += pair
    except (FileNotFoundError, ModelLoadError, ModelContractError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not tiles:
        print(f"error: {args.input} gave no frames", file=sys.stderr)
        return 2
    columns = 2 if labeller is None else 3
    write_image(args.out / "compare.png", contact_sheet(tiles, columns=columns, tile_width=640))
    atomic_write_text(args.out / "compare.json", json.dumps(results, indent=1))
    what = "two models" if labeller is None else "two models and the teachers"
    print(f"{len(results)} frames, {what} -> {args.out} (compare.png, compare_*.jpg, compare.json)")
    return 0


def _teachers(args: argparse.Namespace) -> Any:
    """The teachers' labeller for the third column, or None when no teacher was given."""
    if not args.teacher_detector and not args.teacher_segmenter:
        return None
    # here, not at the top: the teachers need ensemble-boxes and onnx, which infer on a Jetson does not
    from mtl_perception.data.pseudo_label import Labeller, Thresholds
    from mtl_perception.data.teachers import load_teacher

    return Labeller([load_teacher(t, args.threads or 2, "detector") for t in args.teacher_detector],
                    [load_teacher(t, args.threads or 2, "segmenter") for t in args.teacher_segmenter], False,
                    Thresholds())


def _teacher_tile(labeller: Any, frame: Any) -> tuple[Any, dict[str, Any]]:
    """The frame with what pseudo-label would write for it: labelled boxes (ignore regions left out) and masks."""
    fused, drivable, lane = labeller.label(frame)
    keep = ~fused.ignore
    labels = [f"{c} {s:.2f}" for c, s, k in zip(fused.categories, fused.scores.tolist(), keep.tolist()) if k]
    drawn = draw_overlay(frame, fused.boxes[keep], labels,
                         None if drivable is None else drivable == DRIVABLE_DIRECT,
                         None if lane is None else decode_lane_mask(lane))
    record = {"boxes": np.round(fused.boxes[keep], 2).tolist(), "classes": [c for c, k in zip(fused.categories, keep) if k],
              "scores": np.round(fused.scores[keep], 4).tolist(),
              "drivable_fraction": None if drivable is None else round(float((drivable == DRIVABLE_DIRECT).mean()), 4),
              "lane_fraction": None if lane is None else round(float(decode_lane_mask(lane).mean()), 4)}
    return drawn, record


def run(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    if _holds_results(args.out) and not args.overwrite:
        print(f"error: {args.out} holds earlier results: pass --overwrite to replace them, or pick another --out",
              file=sys.stderr)
        return 2
    try:
        if (args.camera_info is None) != (args.camera_pose is None):
            raise ValueError("--camera-info and --camera-pose go together: the ground outputs need both the "
                             "camera's calibration and where it sits on the car")
        pipeline = _pipeline(args.model, args)
        with atomic_folder(args.out) as staging:
            count, unreadable = _infer_into(staging, pipeline, args)
    except (FileNotFoundError, ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = f"; {unreadable} unreadable frame(s) skipped" if unreadable else ""
    print(f"{count} frames -> {args.out} (overlays and detections.json{skipped})")
    return 0


def _pipeline(model: Path, args: argparse.Namespace) -> FramePipeline:
    """The frame pipeline the node runs, with this command's model and thresholds."""
    backend = deployed_backend(backend=args.backend, precision=args.precision, threads=args.threads)
    perception = Perception(PerceptionConfig(model, backend,
                                             args.score_threshold, args.iou_threshold, args.max_detections))
    return FramePipeline(perception, GridSpec.from_node_defaults(), deployed_tracking())


def _infer_into(out: Path, pipeline: FramePipeline, args: argparse.Namespace) -> tuple[int, int]:
    """Every frame through the model, its results written into out; (frames done, frames unreadable).
    ValueError when no frame could be read: an empty result must not pass for one."""
    frames: list[dict[str, Any]] = []
    tracks: list[dict[str, Any]] = []
    scene: list[dict[str, Any]] = []
    geometry = _geometry(args)
    unreadable = 0
    video = _OverlayVideo(out / "overlay.mp4", args.input) if args.input.suffix.lower() in VIDEO_SUFFIXES else None
    # the frames' stamps, which drive the tracker: a video's own rate, images in name order at SEQUENCE_HZ
    period_ns = round(1e9 / (video.fps if video is not None else SEQUENCE_HZ))
    if args.masks:
        (out / "masks").mkdir()
    for index, (name, stem, frame) in enumerate(tqdm(_frames(args.input), desc="infer", unit="frame")):
        if frame is None:
            print(f"warning: skipping unreadable image {args.input / name if args.input.is_dir() else name}",
                  file=sys.stderr)
            unreadable += 1
            continue
        frame_result = pipeline.process(frame, index * period_ns, geometry)
        result = frame_result.outputs
        det = result.detections
        overlay = draw_frame(frame_result, pipeline.class_names)
        write_image(out / f"{stem}.jpg", overlay)
        if video is not None:
            video.write(overlay)
        if args.masks:
            write_image(out / "masks" / f"{stem}_drivable.png", (result.drivable > 0).astype("uint8") * 255)
            write_image(out / "masks" / f"{stem}_lane.png", (result.lane > 0).astype("uint8") * 255)
        predicted = PredictedFrame(name, det.boxes, det.scores,
                                   tuple(pipeline.class_names[c] for c in det.class_ids.tolist()))
        frames.append({**predicted.to_scalabel(), "attributes": {"latency_ms": round(result.timings["total"], 2)}})
        track_ids = frame_result.tracks.track_ids if frame_result.tracks is not None else np.zeros(0, np.int64)
        tracks.append(box_track_frame(predicted.name, args.input.stem, index, predicted.boxes, predicted.scores,
                                      predicted.categories, track_ids))
        if geometry is not None:
            scene.append(scene_record(predicted.name, index, frame_result, pipeline.class_names))
    if video is not None:
        video.close()
    if not frames:
        raise ValueError(f"no frame of {args.input} could be read ({unreadable} unreadable): nothing was written")
    atomic_write_text(out / "detections.json", json.dumps(frames, indent=1))
    atomic_write_text(out / "tracks.json", json.dumps(tracks, indent=1))
    if geometry is not None:
        atomic_write_text(out / "scene.json", json.dumps(scene, indent=1))
    return len(frames), unreadable


def scene_record(name: str, index: int, result: FrameResult, class_names: tuple[str, ...]) -> dict[str, Any]:
    """One frame of scene.json: its road users on the ground (vehicle frame, m; velocity relative to the car,
    None while the track is young) and its ego lane, as objects, objects/motion and ego_lane carry them."""
    record: dict[str, Any] = {"name": name, "frameIndex": index, "objects": [], "ego_lane": None}
    if result.ground_off is not None:
        record["ground_off"] = result.ground_off
    objects, detections = result.objects, result.detections
    if objects is not None and detections is not None:
        ids = result.tracks.track_ids if result.tracks is not None else np.zeros(len(detections), np.int64)
        velocities = objects.velocities if objects.velocities is not None else np.full((len(objects), 2), np.nan)
        for row, i in enumerate(objects.indices.tolist()):
            vx, vy = velocities[row].tolist()
            record["objects"].append({
                "id": str(int(ids[i])) if ids[i] else "", "category": class_names[int(detections.class_ids[i])],
                "score": round(float(detections.scores[i]), 4),
                "contact_m": [round(v, 3) for v in objects.contacts[row, :2].tolist()],
                "centre_m": [round(v, 3) for v in objects.centres[row].tolist()],
                "size_m": objects.sizes[row].tolist(),
                "velocity_mps": None if np.isnan(vx) else [round(vx, 3), round(vy, 3)]})
    if result.ego_lane is not None:
        record["ego_lane"] = _lane_record(result.ego_lane)
    return record


def _lane_record(lane: EgoLane) -> dict[str, Any]:
    if not lane.valid:
        return {"valid": False, "reason": lane.reason}

    def side(boundary: LaneBoundary | None) -> dict[str, Any] | None:
        return None if boundary is None else {"coefficients": list(boundary.coefficients),
                                              "x_range_m": list(boundary.x_range), "confidence": boundary.confidence}

    return {"valid": True, "offset_m": lane.offset_m, "heading_rad": lane.heading_rad, "curvature": lane.curvature,
            "width_m": lane.width_m, "left": side(lane.left), "right": side(lane.right),
            "left_distance_m": lane.left_distance_m, "right_distance_m": lane.right_distance_m,
            "time_to_left_s": None if lane.time_to_left_s == float("inf") else lane.time_to_left_s,
            "time_to_right_s": None if lane.time_to_right_s == float("inf") else lane.time_to_right_s,
            "departure": lane.departure}


def _geometry(args: argparse.Namespace) -> CameraGeometry | None:
    if args.camera_info is None:
        return None
    calibration = load_camera_info_yaml(args.camera_info)
    try:
        intrinsics = CameraIntrinsics.from_camera_info(tuple(calibration["k"]), calibration["width"],
                                                       calibration["height"])
    except GeometryError as err:
        raise ValueError(f"--camera-info {args.camera_info}: {err}") from None
    return CameraGeometry(intrinsics, CameraPose(*args.camera_pose))


SEQUENCE_HZ = 10.0  # a folder of images is tracked as a sequence in name order at this rate (BDD100K's videos')


class _OverlayVideo:
    """overlay.mp4 at the source video's frame rate (mp4v, as the demo writes its videos)."""
    def __init__(self, path: Path, source: Path) -> None:
        capture = cv2.VideoCapture(str(source))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
        capture.release()
        self.path = path
        self.writer: Any = None  # opened at the first frame, whose size it takes

    def write(self, overlay: np.ndarray) -> None:
        if self.writer is None:
            h, w = overlay.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
        self.writer.write(overlay)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            if not self.path.is_file() or self.path.stat().st_size == 0:
                raise OSError(5, "OpenCV could not write the overlay video (no mp4v encoder?)", str(self.path))
