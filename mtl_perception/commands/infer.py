"""mtl-perception infer: run a model on images, a folder or a video, without ROS."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtl_perception.commands.common import at_least_one, probability, thread_count
from mtl_perception.runtime.backends import BACKENDS
from mtl_perception.runtime.backends.base import PRECISIONS, BackendOptions
from mtl_perception.runtime.presets import DEPLOYED

if TYPE_CHECKING:
    import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="ONNX model (the contract's)")
    which.add_argument("--compare", type=Path, nargs=2, metavar=("OLD", "NEW"),
                       help="two models side by side on every frame: compare_*.jpg and compare.png (a contact "
                            "sheet, OLD left, NEW right), and each model's detections in compare.json")
    parser.add_argument("--teacher-detector", action="append", default=[], metavar="KIND:PATH[@SIZE]",
                        help="with --compare: a third column, the teachers' pseudo-labels (as `pseudo-label` "
                             "--detector takes them; repeatable)")
    parser.add_argument("--teacher-segmenter", action="append", default=[], metavar="KIND:PATH",
                        help="with --compare: the teachers' segmenter(s) for that column")
    parser.add_argument("--input", type=Path, required=True, help="an image, a folder of images, or a video")
    parser.add_argument("--out", type=Path, required=True, help="folder for overlays and detections.json")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--precision", default=BackendOptions.precision, choices=PRECISIONS)
    parser.add_argument("--threads", type=thread_count, default=0, help="ONNX Runtime CPU threads (0: its default)")
    parser.add_argument("--score-threshold", type=probability, default=DEPLOYED.score_threshold)
    parser.add_argument("--iou-threshold", type=probability, default=DEPLOYED.iou_threshold)
    parser.add_argument("--max-detections", type=at_least_one, default=DEPLOYED.max_detections)


def _frames(source: Path):
    import cv2

    from mtl_perception.runtime.calibration import IMAGE_SUFFIXES

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    elif source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(source))
        if not capture.isOpened():
            raise FileNotFoundError(f"video {source} cannot be opened (corrupt, or an unsupported codec)")
        index = 0
        while True:
            ok, video_frame = capture.read()
            if not ok:
                break
            yield f"{source.stem}_{index:06d}", video_frame
            index += 1
        capture.release()
        return
    elif source.is_file():
        files = [source]
    else:
        raise FileNotFoundError(f"input {source} does not exist")
    for path in files:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            print(f"warning: skipping unreadable image {path}", file=sys.stderr)
            continue
        yield path.stem, frame


def _titled(image: np.ndarray, title: str) -> np.ndarray:
    """A copy of a BGR image with a title bar at the top (model names on comparison tiles)."""
    import cv2

    out = image.copy()
    scale = max(image.shape[1] / 1280, 0.5)
    cv2.rectangle(out, (0, 0), (out.shape[1], round(40 * scale)), (0, 0, 0), -1)
    cv2.putText(out, title, (round(10 * scale), round(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                (255, 255, 255), max(round(2 * scale), 1), cv2.LINE_AA)
    return out


def _compare(args: argparse.Namespace) -> int:
    """Both models on every frame; one tile per model, side by side."""
    import json

    import cv2
    import numpy as np
    from tqdm import tqdm

    from mtl_perception.atomic_io import atomic_write_text
    from mtl_perception.runtime.backends import ModelLoadError
    from mtl_perception.runtime.contract import ModelContractError
    from mtl_perception.runtime.overlay import contact_sheet, detection_labels, draw_overlay
    from mtl_perception.runtime.perception import Perception, PerceptionConfig

    try:
        models = [Perception(PerceptionConfig(path, BackendOptions(args.backend, args.precision, args.threads),
                                              args.score_threshold, args.iou_threshold, args.max_detections))
                  for path in args.compare]
        labeller = _teachers(args)
        args.out.mkdir(parents=True, exist_ok=True)
        tiles: list[np.ndarray] = []
        results: dict[str, dict[str, dict]] = {}
        for name, frame in tqdm(_frames(args.input), desc="compare", unit="frame"):
            pair, results[name] = [], {}
            for role, path, perception in zip(("old", "new"), args.compare, models):
                result = perception.process(frame)
                det = result.detections
                labels = detection_labels(perception.info.class_names, det.class_ids, det.scores)
                drawn = draw_overlay(frame, det.boxes, labels, result.drivable, result.lane)
                pair.append(_titled(drawn, f"{role}: {path.name}"))
                results[name][role] = {"model": str(path), "boxes": det.boxes.round(2).tolist(),
                                       "classes": [perception.class_name(c) for c in det.class_ids.tolist()],
                                       "scores": det.scores.round(4).tolist(),
                                       "drivable_fraction": round(float((result.drivable > 0).mean()), 4),
                                       "lane_fraction": round(float((result.lane > 0).mean()), 4)}
            if labeller is not None:
                drawn, results[name]["teachers"] = _teacher_tile(labeller, frame)
                pair.append(_titled(drawn, f"teachers: {labeller.detection_teachers}"))
            cv2.imwrite(str(args.out / f"compare_{name}.jpg"), np.hstack(pair))
            tiles += pair
    except (FileNotFoundError, ModelLoadError, ModelContractError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not tiles:
        print(f"error: {args.input} gave no frames", file=sys.stderr)
        return 2
    columns = 2 if labeller is None else 3
    cv2.imwrite(str(args.out / "compare.png"), contact_sheet(tiles, columns=columns, tile_width=640))
    atomic_write_text(args.out / "compare.json", json.dumps(results, indent=1))
    what = "two models" if labeller is None else "two models and the teachers"
    print(f"{len(results)} frames, {what} -> {args.out} (compare.png, compare_*.jpg, compare.json)")
    return 0


def _teachers(args: argparse.Namespace) -> Any:
    """The teachers' labeller for the third column, or None when no teacher was given."""
    if not args.teacher_detector and not args.teacher_segmenter:
        return None
    from mtl_perception.data.pseudo_label import Labeller, Thresholds
    from mtl_perception.data.teachers import load_teacher

    return Labeller([load_teacher(t, args.threads or 2) for t in args.teacher_detector],
                    [load_teacher(t, args.threads or 2) for t in args.teacher_segmenter], False, Thresholds())


def _teacher_tile(labeller: Any, frame: Any) -> tuple[Any, dict[str, Any]]:
    """The frame with what pseudo-label would write for it: labelled boxes (ignore regions left out) and masks."""
    import numpy as np

    from mtl_perception.data.bdd100k import DRIVABLE_DIRECT, decode_lane_mask
    from mtl_perception.runtime.overlay import draw_overlay

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
    import json

    import cv2
    from tqdm import tqdm

    from mtl_perception.atomic_io import atomic_write_text
    from mtl_perception.runtime.backends import ModelLoadError
    from mtl_perception.runtime.contract import ModelContractError
    from mtl_perception.runtime.overlay import detection_labels, draw_overlay
    from mtl_perception.runtime.perception import Perception, PerceptionConfig

    if args.compare:
        return _compare(args)
    try:
        perception = Perception(PerceptionConfig(
            args.model, BackendOptions(args.backend, args.precision, args.threads),
            args.score_threshold, args.iou_threshold, args.max_detections))
        args.out.mkdir(parents=True, exist_ok=True)
        results = {}
        for name, frame in tqdm(_frames(args.input), desc="infer", unit="frame"):
            result = perception.process(frame)
            det = result.detections
            names = [perception.class_name(c) for c in det.class_ids.tolist()]
            labels = detection_labels(perception.info.class_names, det.class_ids, det.scores)
            cv2.imwrite(str(args.out / f"{name}.jpg"), draw_overlay(frame, det.boxes, labels, result.drivable,
                                                                     result.lane))
            results[name] = {"boxes": det.boxes.round(2).tolist(), "scores": det.scores.round(4).tolist(),
                             "classes": names, "latency_ms": round(result.timings["total"], 2)}
    except (FileNotFoundError, ModelLoadError, ModelContractError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    atomic_write_text(args.out / "detections.json", json.dumps(results, indent=1))
    print(f"{len(results)} frames -> {args.out} (overlays and detections.json)")
    return 0
