"""mtl-perception bench-scene: what the scene over time costs per frame on this CPU, beside the model: the
tracker, placing the road users on the ground, their velocities and the ego lane (the frame pipeline's stages
after the masks, runtime/tracking.py, ground_objects.py, object_motion.py, ego_lane.py), with --objects road
users moving through every frame at 10 Hz and four lane markings. The marking extraction from the mask is
timed with the other ground outputs (docs/benchmarks.md, "The ground outputs per frame")."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mtl_perception.runtime.ego_lane import EgoLaneTracker
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose
from mtl_perception.runtime.ground_objects import place_on_ground
from mtl_perception.runtime.lane_markings import GroundMarking
from mtl_perception.runtime.object_motion import ObjectMotion
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.presets import deployed_tracking
from mtl_perception.runtime.realtime import percentiles
from mtl_perception.runtime.tracking import ByteTracker

CAMERA = CameraIntrinsics(1000.0, 1000.0, 640.0, 360.0, 1280, 720)
POSE = CameraPose(0.0, 0.0, 1.5, 0.0, 0.03, 0.0)
STEP_NS = 100_000_000  # 10 Hz
WARM_UP = 20  # frames not timed: the first tracks are being born


def _markings() -> list[GroundMarking]:
    out = []
    for y0 in (5.4, 1.8, -1.8, -5.4):  # three lanes, the car in the middle one, bending gently left
        x = np.arange(5.0, 40.0)
        y = y0 + 0.002 * x * x
        out.append(GroundMarking(np.stack([x, y], 1), (y0, 0.0, 0.002), np.stack([x, y, np.ones_like(x)], 1)))
    return out


def measure(objects: int, frames: int) -> dict[str, dict[str, float]]:
    """Milliseconds per frame, per stage and in total (percentiles over the timed frames)."""
    rng = np.random.default_rng(0)
    start = np.stack([rng.uniform(0, 1200, objects), rng.uniform(380, 650, objects)], axis=1)
    velocity = rng.normal(0, 3, (objects, 2))  # pixels per frame
    size = np.stack([rng.uniform(20, 80, objects), rng.uniform(20, 60, objects)], axis=1)
    names = ["car"] * objects
    markings = _markings()
    tracker, motion, lane = ByteTracker(deployed_tracking()), ObjectMotion(), EgoLaneTracker()
    stages: dict[str, list[float]] = {"tracking": [], "placing": [], "velocities": [], "ego lane": []}
    for frame in range(frames + WARM_UP):
        centres = start + velocity * frame
        boxes = np.concatenate([centres - size / 2, centres + size / 2], axis=1).astype(np.float32)
        detections = Detections(boxes, rng.uniform(0.5, 0.95, objects).astype(np.float32),
                                np.zeros(objects, np.int64))
        stamp = frame * STEP_NS
        t0 = time.perf_counter()
        tracked = tracker.update(detections, stamp)
        t1 = time.perf_counter()
        placed = place_on_ground(boxes, names, CAMERA, POSE, 100.0)
        t2 = time.perf_counter()
        motion.update(tracked.track_ids[placed.indices], placed.contacts[:, :2], stamp)
        t3 = time.perf_counter()
        lane.update(markings, stamp)
        t4 = time.perf_counter()
        if frame >= WARM_UP:
            for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[name].append(1e3 * seconds)
    total = [sum(values) for values in zip(*stages.values())]
    return {**{name: percentiles(values) for name, values in stages.items()}, "total": percentiles(total)}


def run(args: argparse.Namespace) -> int:
    figures = measure(args.objects, args.frames)
    if args.json:
        print(json.dumps({"objects": args.objects, "frames": args.frames, "ms_per_frame": figures}, indent=2))
        return 0
    print(f"the scene over time, {args.objects} road users a frame, {args.frames} frames at 10 Hz (ms per frame)")
    print(f"{'stage':<12}{'p50':>8}{'p90':>8}{'p99':>8}")
    for name, values in figures.items():
        print(f"{name:<12}{values['p50']:>8.3f}{values['p90']:>8.3f}{values['p99']:>8.3f}")
    return 0
