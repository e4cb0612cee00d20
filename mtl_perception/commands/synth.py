"""mtl-perception synth: a synthetic driving-scene set in BDD100K's layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_perception.commands.common import parse_hw
from mtl_perception.data.bdd100k import DatasetError
from mtl_perception.data.gallery import dataset_gallery, factor_gallery
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic_set import SynthConfig, write_dataset


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        print("error: --out DIR is required", file=sys.stderr)
        return 2
    if not args.gallery_only and not args.overwrite and _holds_data(args.out):
        print(f"error: {args.out} already holds a dataset (images/ or labels/): pass --overwrite to replace it, or "
              "choose another --out", file=sys.stderr)
        return 2
    if args.gallery_only and args.gallery is None:
        print("error: --gallery-only needs --gallery OUT.png", file=sys.stderr)
        return 2
    try:
        if not args.gallery_only:
            height, width = parse_hw(args.size, model_input=False)  # range checked by SynthConfig
            world = Randomisation.plain() if args.world == "plain" else Randomisation()
            config = SynthConfig(args.out, args.train, args.val, args.seed, height, width, args.workers, world,
                                 args.drive_frames, args.rate_hz)
            for paths in write_dataset(config):
                print(f"wrote {paths.split}: {paths.images} and {paths.det_json}")
        if args.gallery:
            print(f"gallery: {dataset_gallery(args.out, args.gallery_split, args.gallery)}")
            factors = args.gallery.with_name(f"{args.gallery.stem}-factors{args.gallery.suffix}")
            print(f"randomisation factors: {factor_gallery(factors, args.seed)}")
    except (ValueError, PermissionError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _holds_data(out: Path) -> bool:
    return any((out / sub).exists() and any((out / sub).iterdir()) for sub in ("images", "labels"))
