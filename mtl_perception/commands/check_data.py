"""mtl-perception check-data: find missing, corrupt or inconsistent files in a BDD100K-layout split."""

from __future__ import annotations

import argparse
import json

from mtl_perception.data.check import check_split, splits_in


def run(args: argparse.Namespace) -> int:
    # without --split, every split the root holds: pseudo-label writes train, a val split is made apart
    splits = [args.split] if args.split else splits_in(args.data) or ["train", "val"]
    reports = {split: check_split(args.data, split, progress=not args.json) for split in splits}
    if args.json:
        shown = reports[args.split].as_dict() if args.split else {s: r.as_dict() for s, r in reports.items()}
        print(json.dumps(shown, indent=1))
    else:
        for split, report in reports.items():
            counts = report.per_image.values()
            print(f"{args.data} [{split}]: {report.images} images, {sum(c['boxes'] for c in counts)} boxes and "
                  f"{sum(c['ignore_regions'] for c in counts)} ignore regions, "
                  f"{sum(c['drivable_px'] > 0 for c in counts)} with drivable area, "
                  f"{sum(c['lane_px'] > 0 for c in counts)} with lane markings")
            for problem in report.problems[:50]:
                print(f"problem: [{split}] {problem}")
            if len(report.problems) > 50:
                print(f"... and {len(report.problems) - 50} more (--json lists all)")
        problems = sum(len(r.problems) for r in reports.values())
        print("OK" if not problems else f"{problems} problem(s)")
    return 1 if any(r.problems for r in reports.values()) else 0
