"""The options of mtl-perception eval-bag: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/eval_bag.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.bags import STORAGES, default_storage
from mtl_perception.commands.common import (
    add_backend_arguments,
    add_split_argument,
    camera_pose_values,
    probability,
)
from mtl_perception.defaults import NodeDefault


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, required=True, help="input rosbag2 (sqlite3 or mcap)")
    parser.add_argument("--model", type=Path, required=True, help="ONNX model (the contract's)")
    parser.add_argument("--out", type=Path, required=True, help="output bag folder to create")
    parser.add_argument("--topic", help="image topic (default: every image topic)")
    parser.add_argument("--labels", type=Path, help="BDD100K-layout root whose labels to score against")
    add_split_argument(parser)
    parser.add_argument("--overlays", action="store_true", help="also write overlay images")
    parser.add_argument("--namespace", default="", metavar="NS",
                        help="write the outputs under NS, as a node launched with namespace:=NS publishes them "
                             "(default: /detections, /drivable_mask, /lane_mask, ...)")

    parser.add_argument("--storage", choices=STORAGES, default=default_storage(),
                        help="rosbag2 storage (default: %(default)s; mcap needs rosbags 0.10+, Python 3.10+)")
    add_backend_arguments(parser)
    parser.add_argument("--score-threshold", type=probability, default=NodeDefault("score_threshold"),
                        help="for the output bag (the node's); with --labels, the peers' evaluation "
                             "settings are used instead")
    parser.add_argument("--ground", action="store_true",
                        help="also write drivable_grid (nav_msgs/OccupancyGrid) and lane_marking_points "
                             "(sensor_msgs/PointCloud2), as the node publishes them; needs the camera: the "
                             "bag's camera_info and --camera-pose, or --labels of a synthetic split")
    parser.add_argument("--camera-pose", type=camera_pose_values, metavar="X,Y,Z,ROLL,PITCH,YAW",
                        help="the camera in --target-frame (m, rad, REP 103; the node's camera_pose)")
    parser.add_argument("--target-frame", default=NodeDefault("target_frame"),
                        help="frame of the grid (the node's target_frame)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
