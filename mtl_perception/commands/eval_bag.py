"""mtl-perception eval-bag: replay a bag through the runtime offline; write results as a bag."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from mtl_perception.bags import BagError, count_image_messages, read_camera_info
from mtl_perception.data.bdd100k import DatasetError
from mtl_perception.data.ground_truth import ground_json, load_ground_truth
from mtl_perception.evaluation.bag_eval import GroundOutput, LabelJoin, evaluate_bag
from mtl_perception.evaluation.evaluator import format_summary
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import CameraPose, GridSpec
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.presets import PEER_EVALUATION, deployed, deployed_backend


def _ground_output(args: argparse.Namespace, labels: LabelJoin | None) -> GroundOutput:
    """The camera for --ground: a synthetic split's per-frame truth, else the bag's camera_info and
    --camera-pose; ValueError saying what is missing."""
    if labels is not None and ground_json(labels.split.paths).is_file():
        truth = load_ground_truth(labels.split.paths)
        frames = labels.split.frames
        by_stamp = {stamp: truth[frames[index].name] for stamp, index in labels.by_stamp.items()}
        return GroundOutput(args.target_frame, GridSpec.from_node_defaults(), by_stamp=by_stamp)
    intrinsics = read_camera_info(args.bag)
    if intrinsics is None or args.camera_pose is None:
        missing = " and ".join(([] if intrinsics else [f"{args.bag} has no sensor_msgs/CameraInfo message"])
                               + ([] if args.camera_pose else ["--camera-pose is not given"]))
        raise ValueError(f"--ground needs the camera: {missing} (or pass --labels of a synthetic split)")
    return GroundOutput(args.target_frame, GridSpec.from_node_defaults(),
                        camera=(intrinsics, CameraPose(*args.camera_pose)))


def run(args: argparse.Namespace) -> int:
    if args.out.exists():  # someone's earlier result, complete or not: never touched, never called partial
        print(f"error: {args.out} exists; rosbag2 writes a new folder: remove it or pick another --out",
              file=sys.stderr)
        return 2
    try:
        # every input is checked before the output bag is created: a failed start leaves nothing behind
        count_image_messages(args.bag, args.topic)
        labels = LabelJoin.load(args.bag, args.labels, args.split) if args.labels else None
        settings = PEER_EVALUATION if labels else replace(deployed(), score_threshold=args.score_threshold)
        perception = Perception(PerceptionConfig.with_settings(
            args.model, deployed_backend(backend=args.backend, threads=args.threads), settings))
        ground = _ground_output(args, labels) if args.ground else None
        summary = evaluate_bag(args.bag, perception, args.out, args.topic, labels, args.overlays, args.storage,
                               progress=not args.json, ground=ground,
                               namespace=f"/{args.namespace.strip('/')}" if args.namespace.strip("/") else "")
    except (BagError, DatasetError, ModelLoadError, ModelContractError, ValueError, FileExistsError) as err:
        print(f"error: {err}" + ("" if args.out.exists() else f"; {args.out} was not written"), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    lat = summary["latency_ms"]
    if "drivable_grids" in summary:
        print(f"{summary['drivable_grids']} drivable grids with their lane markings -> {args.out}")
    print(f"{summary['frames']} frames -> {args.out} (topics {', '.join(summary['topics'])}); latency p50 "
          f"{lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms")
    bad = summary["bad_frames"]
    if bad["count"]:
        shown = "; ".join(f"#{b['index']} at {b['stamp_ns']} ns: {b['problem']}" for b in bad["first"])
        print(f"{bad['count']} bad frame(s) skipped, as the node skips them: {shown}")
    if "metrics" in summary:
        print(format_summary(summary["metrics"]))
    return 0
