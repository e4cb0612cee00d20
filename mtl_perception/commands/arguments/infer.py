"""The options of mtl-perception infer: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/infer.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import (
    add_backend_arguments,
    at_least_one,
    camera_pose_values,
    probability,
)
from mtl_perception.defaults import NodeDefault
from mtl_perception.runtime.backends.base import PRECISIONS


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
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the overlays, detections.json (BDD100K/scalabel format, as score-det "
                             "reads it), tracks.json (BDD100K's box_track layout: a video at its own rate, a folder "
                             "of images in name order at 10 Hz) and, for a video, overlay.mp4; written whole or not "
                             "at all")
    parser.add_argument("--camera-info", type=Path, metavar="FILE.yaml",
                        help="the camera's calibration (camera_info_manager's YAML); with --camera-pose the road "
                             "users are placed on the ground with their velocities and the ego lane found, as the "
                             "node publishes them, into scene.json, and the overlays draw the ego lane")
    parser.add_argument("--camera-pose", type=camera_pose_values, metavar="X,Y,Z,ROLL,PITCH,YAW",
                        help="with --camera-info: the camera in the vehicle frame (m, rad, REP 103; the node's "
                             "camera_pose)")
    parser.add_argument("--masks", action="store_true",
                        help="also write each frame's drivable and lane masks as PNG (0/255) under masks/")
    parser.add_argument("--overwrite", action="store_true", help="replace the results an existing --out holds")
    add_backend_arguments(parser)
    parser.add_argument("--precision", default=NodeDefault("precision"), choices=PRECISIONS,
                        help="TensorRT's precision (the node's)")
    parser.add_argument("--score-threshold", type=probability, default=NodeDefault("score_threshold"),
                        help="detections scoring less are dropped (the node's)")
    parser.add_argument("--iou-threshold", type=probability, default=NodeDefault("iou_threshold"),
                        help="non-maximum suppression IoU (the node's)")
    parser.add_argument("--max-detections", type=at_least_one, default=NodeDefault("max_detections"),
                        help="most detections kept per frame (the node's)")
