"""mtl-perception check-data: find missing, corrupt or inconsistent files in a BDD100K-layout split."""

from __future__ import annotations

import argparse
import json

from mtl_perception.data.check import check_split


def run(args: argparse.Namespace) -> int:
    report = check_split(args.data, args.split, progress=not args.json)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        counts = report.per_image.values()
        print(f"{args.data} [{args.split}]: {report.images} images, "
              f"{sum(c['boxes'] for c in counts)} boxes, "
              f"{sum(c['drivable_px'] > 0 for c in counts)} with drivable area, "
              f"{sum(c['lane_px'] > 0 for c in counts)} with lane markings")
        for problem in report.problems[:50]:
            print(f"problem: {problem}")
        if len(report.problems) > 50:
            print(f"... and {len(report.problems) - 50} more (--json lists all)")
        print("OK" if not report.problems else f"{len(report.problems)} problem(s)")
    return 1 if report.problems else 0
