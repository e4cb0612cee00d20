"""mtl-perception make-bag: a rosbag2 of an image folder, with the image name -> stamp map beside it."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from mtl_perception.bags import FRAMES_FILE, load_camera_info_yaml, write_image_bag
from mtl_perception.runtime.calibration import IMAGE_SUFFIXES


def run(args: argparse.Namespace) -> int:
    if not args.images.is_dir():
        print(f"error: image folder {args.images} does not exist", file=sys.stderr)
        return 2
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    try:
        calibration = load_camera_info_yaml(args.camera_info) if args.camera_info else None
        stamps = write_image_bag(images, args.out, args.topic, args.storage, args.compressed, args.rate,
                                 args.frame_id, progress=lambda it: tqdm(it, total=len(images), desc="make-bag"),
                                 camera_info=calibration)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}" + ("" if args.out.exists() else f"; {args.out} was not written"), file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(stamps)} frames on {args.topic}{'/compressed' if args.compressed else ''} "
          f"at {args.rate:g} Hz ({args.storage}); name -> stamp in {args.out / FRAMES_FILE}")
    return 0
