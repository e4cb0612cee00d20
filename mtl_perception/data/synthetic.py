"""Synthetic driving scenes, labelled exactly, in BDD100K's own formats.

A scene is a flat road seen by a pinhole camera. It is drawn on a level canvas
(a camera at the same place with zero pitch and roll), where image row y below
the horizon y_h sees the ground at depth z = f * cam_height / (y - y_h), and a
point at lateral offset X metres projects to column cx + f * X / z. The road's
centre line bends as X_c(z) = curvature * z^2 / 2. Every mask and every drawn
pixel comes from the same per-row boundary arrays, so labels agree with the
picture by construction; objects are drawn far to near and their silhouettes
clear the road labels beneath them, so masks show what is visible. The canvas
is then turned into the mounted camera's view (pitched and rolled) by the
rotation's homography, labels with it, and the camera and road are recorded
in metres (data/ground_truth.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, List

import cv2
import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.data import scene_effects as fx
from mtl_perception.data.bdd100k import (
    DRIVABLE_ALTERNATIVE,
    DRIVABLE_BACKGROUND,
    DRIVABLE_DIRECT,
    LANE_BACKGROUND,
    encode_lane,
)
from mtl_perception.data.ground_truth import FrameGround, MarkingTruth
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.runtime.ground import (
    CameraIntrinsics,
    CameraPose,
    camera_matrix,
    ground_to_pixels,
    optical_to_vehicle,
)

LANE_WIDTH_M = 3.6
MARKING_WIDTH_M = 0.15
DASH_M, DASH_PERIOD_M = 3.0, 12.0
STOP_LINE_M = 0.4  # depth of a stop line along the road
CROSSWALK_M, CROSSWALK_STRIPE_M = 3.0, 0.5  # depth of a crosswalk; width of its stripes and gaps
TRANSVERSE_RANGE_M = (6.0, 35.0)  # where stop lines and crosswalks are placed ahead
STOP_LINE_P, CROSSWALK_P = 0.35, 0.3
MIN_VISIBLE_FRACTION = 0.25  # objects hidden more than this are not placed
OCCLUDED_BELOW = 0.97  # visible fraction under which an object is flagged occluded

# name: (width m, height m)
VEHICLE_SIZES = {"car": (1.8, 1.5), "truck": (2.5, 3.4), "bus": (2.55, 3.1)}
VEHICLE_LENGTHS = {"car": 4.5, "truck": 8.0, "bus": 11.0}
TIMES_OF_DAY = ("daytime", "dawn/dusk", "night")
CLEAR_WEATHERS = ("clear", "partly cloudy", "overcast")  # BDD100K's names, as the rest below
SCENES = ("highway", "city street", "residential")
JUNCTION_RANGE_M, JUNCTION_WIDTH_M = (12.0, 45.0), (8.0, 16.0)  # where a crossing road lies, and how wide
SNOW_BURIES = 0.65  # snow cover above which a marking is no longer seen, so no longer labelled


@dataclass
class SceneObject:
    """One labelled object. box: x1, y1, x2, y2 in image pixels (tight, clipped)."""

    category: str
    depth: float
    silhouette: np.ndarray  # bool[H, W], the whole object as if nothing covered it
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    truncated: bool = False
    occluded: bool = False
    visible_fraction: float = 1.0
    attributes: dict[str, str] = field(default_factory=dict)
    # a vehicle's rear (or front) face before clipping, where its details are painted
    geometric_box: tuple[float, float, float, float] | None = None
    side: np.ndarray | None = None  # float[4, 2]: a vehicle's visible side, where the camera sees it at an angle
    facing: str = "rear"  # a vehicle shows the camera its "rear" or its "front" (oncoming)
    parked: bool = False  # beside the road rather than in a lane
    pole: np.ndarray | None = None  # unlabelled support drawn behind signs and lights
    # in a drive (data/drive.py): the object's identity across frames, and the seed of its own colours, so
    # that it looks the same in every frame
    track_id: str | None = None
    paint_seed: int | None = None


@dataclass
class Scene:
    """A rendered frame. drivable: uint8 BDD ids; lane: uint8 BDD bit field; object_ids: int16, -1 = none."""

    image: np.ndarray
    drivable: np.ndarray
    lane: np.ndarray
    object_ids: np.ndarray
    objects: list[SceneObject]
    attributes: dict[str, str]
    ground: FrameGround  # the camera and the road, in metres
    ego: np.ndarray  # bool[H, W]: the ego vehicle's hood or dashboard (neither road nor object)


@dataclass(frozen=True)
class LevelCamera:
    width: int
    height: int
    focal: float
    cx: float
    horizon: float
    cam_height: float

    def depth(self, rows: np.ndarray) -> np.ndarray:
        return self.focal * self.cam_height / (rows - self.horizon)

    def row(self, depth: float) -> float:
        return self.horizon + self.focal * self.cam_height / depth

    def column(self, lateral: np.ndarray | float, depth: np.ndarray | float) -> np.ndarray | float:
        return self.cx + self.focal * lateral / depth


@dataclass(frozen=True)
class Road:
    n_lanes: int
    ego_lane: int
    curvature: float
    ego_offset: float  # lateral position of the camera within the ego lane, metres
    far_depth: float
    two_way: bool
    curb_outer: bool
    yellow_edge: bool
    junction: tuple[float, float] | None = None  # depths between which a road crosses
    travelled: float = 0.0  # metres the ego car has driven (a drive's frames): what is painted on the road moves by it

    def centre(self, depth: np.ndarray | float) -> np.ndarray | float:
        return 0.5 * self.curvature * np.square(depth)

    def boundary(self, k: int, depth: np.ndarray | float) -> np.ndarray | float:
        """Lateral position of lane boundary k (0 = leftmost) at a depth, camera-relative."""
        return self.centre(depth) + (k - self.ego_lane - 0.5) * LANE_WIDTH_M - self.ego_offset

    def lane_centre(self, lane: int, depth: float) -> float:
        return float(self.boundary(lane, depth)) + 0.5 * LANE_WIDTH_M


def _gradient(top: np.ndarray, bottom: np.ndarray, rows: int, width: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(rows, 1), dtype=np.float32)[:, None]
    column = top[None, :] * (1 - t) + bottom[None, :] * t
    return np.broadcast_to(column[:, None, :], (rows, width, 3))


def _draw_background(img: np.ndarray, cam: LevelCamera, rng: np.random.Generator, tod: str, weather: str,
                     textures: bool) -> None:
    h, w = img.shape[:2]
    hz = int(np.clip(round(cam.horizon), 1, h - 1))
    skies = {
        "daytime": ([235, 180, 110], [250, 225, 200]),
        "dawn/dusk": ([140, 90, 110], [120, 170, 250]),
        "night": ([40, 20, 15], [70, 50, 40]),
    }
    top, bottom = (np.array(c, np.float32) + rng.normal(0, 12, 3) for c in skies[tod])
    if weather in ("overcast", "foggy", "rainy", "snowy"):
        grey = np.full(3, 200.0 if tod == "daytime" else 90.0, np.float32)
        top, bottom = 0.3 * top + 0.7 * grey, 0.3 * bottom + 0.7 * grey
    img[:hz] = _gradient(top, bottom, hz, w)
    ground = np.array([90, 110, 100], np.float32) + rng.normal(0, 15, 3)
    img[hz:] = _gradient(ground * 0.8, ground * 1.1, h - hz, w)
    if weather == "partly cloudy":
        for _ in range(rng.integers(2, 6)):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, hz * 0.7)))
            axes = (int(rng.uniform(40, 160) * w / 1280), int(rng.uniform(10, 40) * h / 720))
            cv2.ellipse(img, centre, axes, 0, 0, 360, (235, 235, 235), -1)

    # buildings and trees stand on the horizon, on both sides of where the road goes
    facades = np.zeros((h, w), np.uint8)
    for side in (-1, 1):
        x = cam.cx + side * rng.uniform(0.02, 0.1) * w
        while 0 <= x < w:
            if rng.random() < 0.6:
                bw = rng.uniform(0.04, 0.12) * w
                bh = rng.uniform(0.05, 0.3) * h
                colour = rng.uniform(60, 200, 3)
                x0, x1 = sorted((int(x), int(x + side * bw)))
                y0 = int(hz - bh)
                cv2.rectangle(img, (x0, y0), (x1, hz + 2), colour.tolist(), -1)
                cv2.rectangle(facades, (x0, y0), (x1, hz + 2), 1, -1)
                lit = (40, 200, 240) if tod == "night" else (colour * 0.6).tolist()
                step = max(int(bw / 5), 4)
                for wx in range(x0 + step // 2, x1 - step // 2, step):
                    for wy in range(y0 + step // 2, hz - step, step):
                        if rng.random() < 0.7:
                            cv2.rectangle(img, (wx, wy), (wx + step // 3, wy + step // 3), lit, -1)
                x += side * bw
            else:
                r = rng.uniform(0.015, 0.05) * w
                green = (rng.uniform(20, 60), rng.uniform(90, 160), rng.uniform(30, 80))
                cv2.rectangle(img, (int(x - r / 6), int(hz - r)), (int(x + r / 6), hz + 2), (40, 60, 80), -1)
                if textures:  # a crown of overlapping leaf clusters in several greens
                    for _ in range(12):
                        offset = rng.normal(0, 0.45 * r, 2)
                        leaf = np.clip(np.array(green) * rng.uniform(0.6, 1.3), 0, 255)
                        cv2.circle(img, (int(x + offset[0]), int(hz - 1.3 * r + offset[1])), int(r * rng.uniform(0.3, 0.6)),
                                   leaf.tolist(), -1)
                else:
                    cv2.circle(img, (int(x), int(hz - 1.3 * r)), int(r), green, -1)
                x += side * 1.5 * r
    if textures:
        fx.textured(rng, img, facades > 0, 0.18, cells=12)
        ground_rows = np.zeros((h, w), bool)
        ground_rows[hz:] = True
        fx.textured(rng, img, ground_rows, 0.3, cells=6)


def _road_rows(cam: LevelCamera, road: Road) -> tuple[np.ndarray, np.ndarray]:
    """Rows that show road (below the far limit) and their depths."""
    top = int(np.ceil(cam.row(road.far_depth)))
    rows = np.arange(max(top, 0), cam.height, dtype=np.float64)
    return rows, cam.depth(rows + 0.5)


def _draw_road(img: np.ndarray, drivable: np.ndarray, lane: np.ndarray, cam: LevelCamera, road: Road,
               rng: np.random.Generator, tod: str, textures: bool) -> None:
    rows, depth = _road_rows(cam, road)
    y0 = int(rows[0])
    cols = np.arange(cam.width, dtype=np.float64)[None, :] + 0.5
    bounds = np.stack([cam.column(road.boundary(k, depth), depth) for k in range(road.n_lanes + 1)])

    # shoulders/sidewalks, then asphalt, coloured per row so texture never changes a label
    shoulder = 1.2 * LANE_WIDTH_M * cam.focal / depth
    on_shoulder = (cols >= (bounds[0] - shoulder)[:, None]) & (cols < (bounds[-1] + shoulder)[:, None])
    lane_index = (cols[:, :, None] >= bounds.T[:, None, :]).sum(-1)  # 0 left of road .. n+1 right of it
    on_road = (lane_index >= 1) & (lane_index <= road.n_lanes)
    crossing = np.zeros_like(depth, dtype=bool)
    if road.junction is not None:  # the crossing road runs across the whole view
        crossing = (depth >= road.junction[0]) & (depth < road.junction[1])
        on_road[crossing] = True
        on_shoulder[crossing] = False
    region = img[y0:]
    sidewalk = np.array([150, 155, 160], np.float32) + rng.normal(0, 10, 3)
    region[on_shoulder & ~on_road] = sidewalk
    asphalt = np.array([85, 85, 88], np.float32) + rng.normal(0, 8, 3)
    shade = (0.85 + 0.25 * (rows - y0) / max(cam.height - y0, 1))[:, None, None]
    if textures:
        fx.textured(rng, region, on_shoulder & ~on_road, 0.12, cells=16)
        fx.asphalt(rng, region, on_road, asphalt, shade)
    else:
        texture = rng.normal(0, 4, (*region.shape[:2], 1)).astype(np.float32)
        region[:] = np.where(on_road[..., None], asphalt * shade + texture, region)

    ids = np.full(on_road.shape, DRIVABLE_BACKGROUND, np.uint8)
    ids[on_road] = DRIVABLE_ALTERNATIVE
    ids[lane_index == road.ego_lane + 1] = DRIVABLE_DIRECT
    drivable[y0:] = ids

    half_width = np.maximum(0.5 * MARKING_WIDTH_M * cam.focal / depth, 0.6)
    for k in range(road.n_lanes + 1):
        _draw_marking(region, lane[y0:], cols, bounds[k], half_width, depth, road, k, rng, tod, ~crossing)
    _draw_transverse(region, lane[y0:], cols, bounds, depth, cam, road, rng, tod)


def _draw_transverse(region: np.ndarray, lane: np.ndarray, cols: np.ndarray, bounds: np.ndarray,
                     depth: np.ndarray, cam: LevelCamera, road: Road, rng: np.random.Generator, tod: str) -> None:
    """Markings across the road (BDD100K's "vertical" direction): a stop line across the ego lane, and
    a zebra crosswalk across the whole road, each at a random distance ahead."""
    white = np.array([225, 228, 230], np.float32) * (0.8 if tod == "night" else 1.0)
    if rng.random() < STOP_LINE_P:
        near = rng.uniform(*TRANSVERSE_RANGE_M) - road.travelled
        rows = (depth >= near) & (depth < near + STOP_LINE_M)
        across = (cols >= bounds[road.ego_lane][:, None]) & (cols < bounds[road.ego_lane + 1][:, None])
        paint = rows[:, None] & across
        region[paint] = white
        lane[paint] = encode_lane("single white", vertical=True)
    if rng.random() < CROSSWALK_P:
        near = rng.uniform(*TRANSVERSE_RANGE_M) - road.travelled
        rows = (depth >= near) & (depth < near + CROSSWALK_M)
        # metres across the road from its left edge, so stripes stay parallel to the road on a curve
        lateral = (cols - cam.cx) * depth[:, None] / cam.focal - np.asarray(road.boundary(0, depth))[:, None]
        stripes = np.mod(lateral, 2 * CROSSWALK_STRIPE_M) < CROSSWALK_STRIPE_M
        across = (cols >= bounds[0][:, None]) & (cols < bounds[-1][:, None])
        paint = rows[:, None] & across & stripes
        region[paint] = white
        lane[paint] = encode_lane("crosswalk", vertical=True)


def _marking_kind(road: Road, k: int) -> tuple[str, bool]:
    """Lane boundary k's BDD100K category and whether it is dashed."""
    outer = k in (0, road.n_lanes)
    if outer and road.curb_outer:
        return "road curb", False
    if outer:
        return ("single yellow" if road.yellow_edge and k == 0 else "single white"), False
    if road.two_way and k == road.n_lanes // 2:
        return "double yellow", False
    return "single white", True


def _draw_marking(region: np.ndarray, lane: np.ndarray, cols: np.ndarray, centre: np.ndarray,
                  half_width: np.ndarray, depth: np.ndarray, road: Road, k: int,
                  rng: np.random.Generator, tod: str, rows: np.ndarray) -> None:
    """Lane boundary k as painted, on the given rows (a junction interrupts it)."""
    category, dashed = _marking_kind(road, k)
    colours = {"road curb": [175, 175, 175], "single white": [225, 228, 230], "single yellow": [40, 190, 230],
               "double yellow": [40, 190, 230]}
    colour = np.array(colours[category], np.float32) * (0.8 if tod == "night" and category != "road curb" else 1.0)
    # marking lines, as offsets in marking half-widths from the boundary
    offsets = (-1.6, 1.6) if category == "double yellow" else (0.0,)
    value = encode_lane(category, dashed=dashed)

    visible = rows.copy()
    if dashed:
        phase = rng.uniform(0, DASH_PERIOD_M)
        visible &= np.mod(depth + road.travelled + phase, DASH_PERIOD_M) < DASH_M
    for offset in offsets:
        c = centre + offset * half_width
        paint = (np.abs(cols - c[:, None]) <= half_width[:, None]) & visible[:, None]
        region[paint] = colour
        lane[paint] = value


def _vehicle_silhouette(shape: tuple[int, int], box: tuple[float, float, float, float], kind: str) -> np.ndarray:
    """A rear view filling box exactly: body to both sides, roof at the top, wheels at the bottom."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    mask = np.zeros(shape, np.uint8)

    def rect(u0: float, v0: float, u1: float, v1: float) -> None:
        cv2.rectangle(mask, (round(x1 + u0 * w), round(y1 + v0 * h)),
                      (round(x1 + u1 * w) - 1, round(y1 + v1 * h) - 1), 1, -1)

    if kind == "car":
        roof = np.array([[x1 + 0.16 * w, y1], [x2 - 0.16 * w, y1],
                         [x2 - 0.04 * w, y1 + 0.45 * h], [x1 + 0.04 * w, y1 + 0.45 * h]])
        cv2.fillPoly(mask, [np.round(roof).astype(np.int32)], 1)
        rect(0.0, 0.42, 1.0, 0.9)
    else:
        rect(0.0, 0.0, 1.0, 0.9)
    rect(0.07, 0.85, 0.27, 1.0)
    rect(0.73, 0.85, 0.93, 1.0)
    return mask.astype(bool)


def _paint_vehicle(img: np.ndarray, obj: SceneObject, visible: np.ndarray, box: tuple[float, ...],
                   rng: np.random.Generator, tod: str) -> list[tuple[float, float, str]]:
    """Body, windows, wheels and lights of a vehicle's rear or front face and its visible side; returns its
    lamps as (u, v, "tail" | "head") on the canvas, for the night's lights."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    body = rng.uniform(30, 230, 3)
    img[visible] = body
    dark = np.zeros(img.shape[:2], bool)

    def region(u0: float, v0: float, u1: float, v1: float) -> tuple[slice, slice]:
        return (slice(max(int(y1 + v0 * h), 0), max(int(y1 + v1 * h), 0)),
                slice(max(int(x1 + u0 * w), 0), max(int(x1 + u1 * w), 0)))

    if obj.side is not None:
        _paint_side(img, obj.side, visible, body)
    window = region(0.22, 0.08, 0.78, 0.38) if obj.category == "car" else region(0.08, 0.1, 0.92, 0.35)
    dark[window] = True
    dark[region(0.0, 0.85, 1.0, 1.0)] = True  # wheels and shadow
    img[dark & visible] = (35, 35, 40) if obj.category != "bus" else (60, 50, 40)
    lights = np.zeros_like(dark)
    lights[region(0.03, 0.55, 0.18, 0.66)] = True
    lights[region(0.82, 0.55, 0.97, 0.66)] = True
    front = obj.facing == "front"
    if front:
        colour = (220, 240, 255) if tod == "night" else (200, 210, 215)
    else:
        colour = (40, 40, 255) if tod == "night" else (30, 30, 170)
    img[lights & visible] = colour
    plate = region(0.38, 0.62, 0.62, 0.74)
    img[plate][visible[plate]] = (230, 230, 230)
    kind = "head" if front else "tail"
    return [(x1 + 0.105 * w, y1 + 0.6 * h, kind), (x1 + 0.895 * w, y1 + 0.6 * h, kind)]


def _paint_side(img: np.ndarray, side: np.ndarray, visible: np.ndarray, body: np.ndarray) -> None:
    """A vehicle's side seen at an angle: darker paint, a band of windows, two wheels."""
    def fill(polygon: np.ndarray) -> np.ndarray:
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
        return (mask > 0) & visible

    img[fill(side)] = body * 0.7
    near_bottom, far_bottom, far_top, near_top = side
    img[fill(np.array([near_top + 0.15 * (near_bottom - near_top), far_top + 0.15 * (far_bottom - far_top),
                       far_top + 0.4 * (far_bottom - far_top), near_top + 0.4 * (near_bottom - near_top)]))] = (45, 40, 40)
    for t, top, bottom in ((0.15, near_top, near_bottom), (0.8, far_top, far_bottom)):
        ground = near_bottom + t * (far_bottom - near_bottom)
        radius = max(0.15 * float(np.linalg.norm(bottom - top)), 1.0)
        wheel = np.zeros(img.shape[:2], np.uint8)
        cv2.circle(wheel, (round(ground[0]), round(ground[1] - radius)), round(radius), 1, -1)
        img[(wheel > 0) & visible] = (25, 25, 25)


def person_silhouette(shape: tuple[int, int], foot_x: float, foot_y: float, height: float,
                       rider: bool) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    head_r = max(height * 0.08, 1.0)
    w = height * 0.28
    top = foot_y - height
    cv2.circle(mask, (round(foot_x), round(top + head_r)), round(head_r), 1, -1)
    cv2.rectangle(mask, (round(foot_x - w / 2), round(top + 2 * head_r)),
                  (round(foot_x + w / 2) - 1, round(top + 0.6 * height) - 1), 1, -1)
    if not rider:
        cv2.rectangle(mask, (round(foot_x - w / 2), round(top + 0.6 * height)),
                      (round(foot_x - w / 10) - 1, round(foot_y) - 1), 1, -1)
        cv2.rectangle(mask, (round(foot_x + w / 10), round(top + 0.6 * height)),
                      (round(foot_x + w / 2) - 1, round(foot_y) - 1), 1, -1)
    return mask.astype(bool)


def bicycle_silhouette(shape: tuple[int, int], x: float, ground: float, size: float, motor: bool) -> np.ndarray:
    """Side view: two wheels and a frame; size is the wheelbase in pixels."""
    mask = np.zeros(shape, np.uint8)
    r = max(size * (0.32 if motor else 0.3), 1.0)
    thick = max(round(r * (0.35 if motor else 0.18)), 1)
    for cx in (x - size / 2, x + size / 2):
        cv2.circle(mask, (round(cx), round(ground - r)), round(r), 1, thick)
    frame = np.array([[x - size / 2, ground - r], [x, ground - 2.1 * r], [x + size / 2, ground - r]])
    cv2.polylines(mask, [np.round(frame).astype(np.int32)], False, 1, max(thick, 2))
    if motor:
        cv2.rectangle(mask, (round(x - size / 3), round(ground - 2.3 * r)),
                      (round(x + size / 3), round(ground - 1.2 * r)), 1, -1)
    return mask.astype(bool)


def _box_of(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


def vehicle(cam: LevelCamera, shape: tuple[int, int], kind: str, lateral: float, depth: float,
             facing: str) -> SceneObject:
    """A vehicle as a box on the road, aligned with it: its near face (rear, or front if oncoming) and,
    when it is off to one side, the side the camera sees at an angle."""
    width_m, height_m = VEHICLE_SIZES[kind]
    centre = float(cam.column(lateral, depth))
    half = 0.5 * width_m * cam.focal / depth
    bottom = cam.row(depth)
    box = (centre - half, bottom - height_m * cam.focal / depth, centre + half, bottom)
    silhouette = _vehicle_silhouette(shape, box, kind)
    side = None
    if abs(lateral) > width_m / 2:
        x_side = lateral - float(np.sign(lateral)) * width_m / 2
        far = depth + VEHICLE_LENGTHS[kind]
        side = np.array([[cam.column(x_side, depth), bottom], [cam.column(x_side, far), cam.row(far)],
                         [cam.column(x_side, far), cam.row(far) - height_m * cam.focal / far],
                         [cam.column(x_side, depth), bottom - height_m * cam.focal / depth]], np.float64)
        face = np.zeros(shape, np.uint8)
        cv2.fillPoly(face, [np.round(side).astype(np.int32)], 1)
        silhouette |= face > 0
    return SceneObject(kind, depth, silhouette, geometric_box=box, side=side, facing=facing)


def _parked_rows(cam: LevelCamera, road: Road, rng: np.random.Generator, near: float) -> list[SceneObject]:
    """Cars parked nose to tail beside the road, on one side or both: seen from the side, hiding each other."""
    shape = (cam.height, cam.width)
    out = []
    for side in rng.choice(np.array([[-1, 0], [0, 1], [-1, 1]])).tolist():
        if side == 0:
            continue
        depth = float(rng.uniform(near + 1.0, 15.0))
        for _ in range(int(rng.integers(3, 10))):
            kind = "car" if rng.random() < 0.9 else "truck"
            edge = float(road.boundary(0 if side < 0 else road.n_lanes, depth))
            lateral = edge + side * (0.3 + VEHICLE_SIZES[kind][0] / 2 + rng.uniform(0, 0.3))
            if rng.random() < 0.85:
                parked = vehicle(cam, shape, kind, lateral, depth, str(rng.choice(["rear", "front"])))
                parked.parked = True
                out.append(parked)
            depth += VEHICLE_LENGTHS[kind] + rng.uniform(0.8, 2.5)
    return out


def _street_lamps(cam: LevelCamera, road: Road, rng: np.random.Generator, near: float) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Lamp posts along the road (unlabelled scenery): their mask, and each lamp's (u, v, ground row)."""
    mask = np.zeros((cam.height, cam.width), np.uint8)
    lamps = []
    for side in (-1, 1):
        depth = float(rng.uniform(near + 2.0, 20.0)) - road.travelled
        spacing = float(rng.uniform(20.0, 35.0))
        while depth < 1.0:  # the posts a drive has passed
            depth += spacing
        while depth < min(road.far_depth, 100.0):
            edge = float(road.boundary(0 if side < 0 else road.n_lanes, depth))
            base = edge + side * 1.5
            x, ground = float(cam.column(base, depth)), cam.row(depth)
            top = ground - 7.0 * cam.focal / depth
            px = max(round(0.12 * cam.focal / depth), 1)
            cv2.rectangle(mask, (round(x - px / 2), round(top)), (round(x + px / 2), round(ground)), 1, -1)
            head_x = float(cam.column(base - side * 1.5, depth))
            cv2.line(mask, (round(x), round(top)), (round(head_x), round(top)), 1, px)
            lamps.append((head_x, top + px, ground))
            depth += spacing
    return mask > 0, lamps


def _plan_objects(cam: LevelCamera, road: Road, rng: np.random.Generator, scene: str,
                  randomisation: Randomisation) -> list[SceneObject]:
    """Place vehicles in lanes (oncoming ones face the camera), rows of parked cars, people and
    two-wheelers at the roadside, signs and lights on poles."""
    shape = (cam.height, cam.width)
    objects: list[SceneObject] = []
    near = cam.focal * cam.cam_height / (cam.height - cam.horizon) + 1.0
    n_vehicles = rng.integers(1, 4 + 2 * road.n_lanes)
    for _ in range(n_vehicles):
        kind = str(rng.choice(["car", "car", "car", "truck", "bus"] if scene != "residential" else ["car"] * 5 + ["truck"]))
        lane = int(rng.integers(0, road.n_lanes))
        depth = float(rng.uniform(near + 1.0, min(road.far_depth, 90.0)))
        oncoming = road.two_way and lane < road.n_lanes // 2
        lateral = road.lane_centre(lane, depth) + rng.normal(0, 0.25)
        objects.append(vehicle(cam, shape, kind, lateral, depth, "front" if oncoming else "rear"))
    if rng.random() < randomisation.parked_p:
        objects += _parked_rows(cam, road, rng, near)

    n_people = rng.integers(0, 5 if scene != "highway" else 1)
    for _ in range(n_people):
        depth = float(rng.uniform(near + 1.0, 50.0))
        side = rng.choice([-1, 1])
        edge = road.boundary(0 if side < 0 else road.n_lanes, depth)
        lateral = float(edge) + side * rng.uniform(0.8, 3.0)
        foot_x, foot_y = float(cam.column(lateral, depth)), cam.row(depth)
        roll = rng.random()
        if roll < 0.6:
            sil = person_silhouette(shape, foot_x, foot_y, 1.7 * cam.focal / depth, rider=False)
            objects.append(SceneObject("pedestrian", depth, sil))
        else:
            motor = roll > 0.85
            size = 1.4 * cam.focal / depth
            bike = bicycle_silhouette(shape, foot_x, foot_y, size, motor)
            objects.append(SceneObject("motorcycle" if motor else "bicycle", depth + 0.01, bike))
            rider = person_silhouette(shape, foot_x, foot_y - 0.45 * size, 1.3 * cam.focal / depth, rider=True)
            objects.append(SceneObject("rider", depth, rider & ~bike))

    for _ in range(rng.integers(0, 3)):
        depth = float(rng.uniform(near + 4.0, 60.0))
        side = rng.choice([-1, 1])
        lateral = float(road.boundary(0 if side < 0 else road.n_lanes, depth)) + side * rng.uniform(0.5, 1.5)
        if rng.random() < 0.5:
            objects.append(roadside_sign(cam, lateral, depth))
        else:
            objects.append(roadside_light(cam, lateral, depth, str(rng.choice(["red", "yellow", "green"]))))
    return objects


def roadside_sign(cam: LevelCamera, lateral: float, depth: float) -> SceneObject:
    """A traffic sign on its pole, standing at a lateral offset and depth."""
    shape = (cam.height, cam.width)
    x, ground = float(cam.column(lateral, depth)), cam.row(depth)
    px = max(round(0.08 * cam.focal / depth), 1)
    s = 0.75 * cam.focal / depth
    top = ground - 2.4 * cam.focal / depth
    plate, pole = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cv2.rectangle(plate, (round(x - s / 2), round(top)), (round(x + s / 2) - 1, round(top + s) - 1), 1, -1)
    cv2.rectangle(pole, (round(x - px / 2), round(top + s)), (round(x + px / 2), round(ground)), 1, -1)
    return SceneObject("traffic sign", depth, plate.astype(bool), pole=pole.astype(bool))


def roadside_light(cam: LevelCamera, lateral: float, depth: float, colour: str) -> SceneObject:
    """A traffic light's housing on its pole, showing colour ("red", "yellow" or "green")."""
    shape = (cam.height, cam.width)
    x, ground = float(cam.column(lateral, depth)), cam.row(depth)
    px = max(round(0.08 * cam.focal / depth), 1)
    hw, hh = 0.18 * cam.focal / depth, 0.9 * cam.focal / depth
    top = ground - 4.5 * cam.focal / depth
    housing, pole = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cv2.rectangle(housing, (round(x - hw), round(top)), (round(x + hw) - 1, round(top + hh) - 1), 1, -1)
    cv2.rectangle(pole, (round(x - px / 2), round(top + hh)), (round(x + px / 2), round(ground)), 1, -1)
    return SceneObject("traffic light", depth, housing.astype(bool), attributes={"trafficLightColor": colour},
                       pole=pole.astype(bool))


def _resolve_visibility(objects: list[SceneObject], shape: tuple[int, int]) -> tuple[list[SceneObject], np.ndarray]:
    """Drop objects hidden too much; return the rest (far to near) and the id buffer of visible pixels."""
    objects = sorted(objects, key=lambda o: -o.depth)
    while True:
        ids = np.full(shape, -1, np.int16)
        for i, obj in enumerate(objects):
            ids[obj.silhouette] = i
        kept = []
        for i, obj in enumerate(objects):
            area = int(obj.silhouette.sum())
            obj.visible_fraction = float((ids == i).sum()) / area if area else 0.0
            if area >= 12 and obj.visible_fraction >= MIN_VISIBLE_FRACTION:
                kept.append(obj)
        if len(kept) == len(objects):
            return objects, ids
        objects = kept


def _finalise_labels(objects: list[SceneObject]) -> None:
    for obj in objects:
        box = _box_of(obj.silhouette)
        assert box is not None  # empty silhouettes were dropped after the warp
        obj.box = box
        obj.occluded = obj.visible_fraction < OCCLUDED_BELOW


def _post_process(img: np.ndarray, draws: Draws, look: Look, road: np.ndarray, ground: np.ndarray,
                  ego: np.ndarray, lights: list[fx.Light], horizon: float, randomisation: Randomisation) -> tuple[np.ndarray, np.ndarray]:
    """Light, weather, the ego vehicle and the sensor, on the mounted camera's view; returns the image and
    the snow cover on the road (0 without snow)."""
    rng = draws.frame
    h, w = img.shape[:2]
    gain = {"daytime": 1.0, "dawn/dusk": 0.75, "night": 0.35}[look.tod] * rng.uniform(0.85, 1.15)
    img = img * gain
    if look.tod == "night":  # the ego car's headlights light the road ahead of it
        v, u = np.mgrid[0:h, 0:w].astype(np.float32)
        pool = np.exp(-(((u - w / 2) / (0.35 * w)) ** 2) - (((h - v) / (0.3 * h)) ** 2))
        img *= 1.0 + 2.5 * (pool * ground)[..., None]
    if look.wet:
        fx.wet(img, road, rng)
    fx.draw_lights(img, lights, rng, road.astype(np.float32) if look.wet else None)
    if look.weather == "foggy":
        rows = np.arange(h, dtype=np.float32)
        fog = np.clip(1.0 - np.abs(rows - horizon) / (0.6 * h), 0, 0.75)[:, None, None]
        img = img * (1 - fog) + 200.0 * gain * fog
    if look.ego is not None:
        fx.draw_ego_vehicle(img, ego, draws.ego, look.ego, look.tod == "night")
    cover = np.zeros((h, w), np.float32)
    if look.weather == "rainy":
        fx.rain(img, rng)
    elif look.weather == "snowy":
        cover = fx.snow(img, rng, ground & ~ego, road)
    blur = rng.uniform(*randomisation.motion_blur_px) if rng.random() < randomisation.motion_blur_p else 0.0
    noise = rng.uniform(*randomisation.noise_sd) * (2.0 if look.tod == "night" else 1.0)
    img = fx.sensor(img, rng, blur, noise, randomisation.white_balance)
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out, cover


@dataclass(frozen=True)
class Look:
    """What the frame looks like, drawn before anything is rendered."""

    tod: str
    weather: str
    scene: str
    wet: bool
    ego: str | None  # "hood", "dashboard" or None


def draw_look(rng: np.random.Generator, r: Randomisation) -> Look:
    weights = np.array([r.daytime_weight, r.dusk_weight, r.night_weight], np.float64)
    tod = str(rng.choice(TIMES_OF_DAY, p=weights / weights.sum()))
    roll = rng.random()
    if roll < r.rain_p:
        weather = "rainy"
    elif roll < r.rain_p + r.snow_p:
        weather = "snowy"
    elif roll < r.rain_p + r.snow_p + r.fog_p:
        weather = "foggy"
    else:
        weather = str(rng.choice(CLEAR_WEATHERS, p=[0.5, 0.25, 0.25]))
    scene = str(rng.choice(SCENES))
    wet = weather == "rainy" or (weather != "snowy" and rng.random() < r.wet_p)
    ego_roll = rng.random()
    ego = "hood" if ego_roll < r.hood_p else "dashboard" if ego_roll < r.hood_p + r.dashboard_p else None
    return Look(tod, weather, scene, wet, ego)


def sample_mounting(rng: np.random.Generator, width: int, height: int,
                    randomisation: Randomisation | None = None) -> tuple[CameraIntrinsics, CameraPose]:
    """A camera as a car carries it: centred principal point, some height, pitched down a little, rolled less."""
    r = randomisation or Randomisation()
    focal = width * rng.uniform(*r.focal_fraction)
    intrinsics = CameraIntrinsics(focal, focal, width / 2 + rng.normal(0, width * r.principal_point_sd),
                                  height / 2 + rng.normal(0, height * r.principal_point_sd), width, height)
    roll = float(np.clip(rng.normal(0, r.roll_deg_sd), -r.roll_deg_max, r.roll_deg_max))
    pose = CameraPose(z=float(rng.uniform(*r.mount_height_m)), pitch=math.radians(rng.uniform(*r.pitch_deg)),
                      roll=math.radians(roll))
    return intrinsics, pose


def _level_view(intrinsics: CameraIntrinsics, pose: CameraPose) -> tuple[LevelCamera, np.ndarray]:
    """The level camera at the same place whose canvas covers every ray of the mounted one, and the
    homography from canvas pixels to the mounted camera's pixels (a pure rotation: K R K_level^-1)."""
    mounted_to_level = optical_to_vehicle(CameraPose()).T @ optical_to_vehicle(pose)
    k = camera_matrix(intrinsics)
    w, h = intrinsics.width, intrinsics.height
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
    rays = mounted_to_level @ np.linalg.inv(k) @ corners
    if (rays[2] <= 0).any():
        raise ValueError(f"a camera pitched {np.degrees(pose.pitch):.1f} deg sees behind the level view")
    u, v = intrinsics.fx * rays[0] / rays[2], intrinsics.fx * rays[1] / rays[2]
    pad = 2
    cx, cy = pad - np.floor(u.min()), pad - np.floor(v.min())
    canvas = LevelCamera(int(np.ceil(u.max() + cx)) + pad, int(np.ceil(v.max() + cy)) + pad, intrinsics.fx,
                     float(cx), float(cy), pose.z)
    k_level = np.array([[canvas.focal, 0, canvas.cx], [0, canvas.focal, canvas.horizon], [0, 0, 1]])
    return canvas, k @ mounted_to_level.T @ np.linalg.inv(k_level)


def _warp(array: np.ndarray, homography: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out: np.ndarray = cv2.warpPerspective(array, homography, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return out


def _road_truth(road: Road, intrinsics: CameraIntrinsics, pose: CameraPose) -> FrameGround:
    """The camera, and the road's edges and markings in the vehicle frame: y = -X (X is to the right), x = depth."""
    def curve(k: int) -> tuple[float, float, float]:
        return -float(road.boundary(k, 0.0)), 0.0, -0.5 * road.curvature

    markings = tuple(MarkingTruth(*_marking_kind(road, k), curve(k)) for k in range(road.n_lanes + 1))
    return FrameGround(intrinsics, pose, road.far_depth, curve(0), curve(road.n_lanes), curve(road.ego_lane),
                       curve(road.ego_lane + 1), markings, road.junction)


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _to_view(homography: np.ndarray, u: float, v: float) -> tuple[float, float]:
    x, y, z = homography @ np.array([u, v, 1.0])
    return float(x / z), float(y / z)


def render_scene(rng: np.random.Generator, height: int = 720, width: int = 1280,
                 randomisation: Randomisation | None = None) -> Scene:
    """Render one labelled frame. All randomness comes from rng; randomisation (default: the training
    mix) says what may vary and how often.

    The frame is painted on a level canvas (background, road, street lamps, objects), then warped into the
    mounted camera's view with its labels, cut by the ego vehicle, and finished by the sensor's effects.
    Each painter draws from rng in turn, so the order below is part of what a seed means."""
    randomisation = randomisation or Randomisation()
    look = draw_look(rng, randomisation)
    intrinsics, pose = sample_mounting(rng, width, height, randomisation)
    road = sample_road(rng, randomisation)

    def plan(cam: LevelCamera, road: Road, rng: np.random.Generator) -> list[SceneObject]:
        return _plan_objects(cam, road, rng, look.scene, randomisation)

    return render_view(Draws(rng, rng, rng), look, intrinsics, pose, road, randomisation, plan)


@dataclass(frozen=True)
class Draws:
    """Where a frame's painters draw from. One generator for all three in a single scene; in a drive
    (data/drive.py) the scenery and the ego vehicle are drawn the same in every frame, so they stay put,
    and only the sensor's effects are drawn anew."""

    scenery: np.random.Generator  # sky, buildings, road paint, lamp posts, planned objects
    ego: np.random.Generator  # the ego vehicle's hood or dashboard
    frame: np.random.Generator  # lights, weather, the sensor


# what puts the objects of a frame on the level canvas: (canvas camera, road, generator) -> objects (typing's
# Callable: evaluated at import, collections.abc's is not subscriptable under Python 3.8)
Planner = Callable[[LevelCamera, Road, np.random.Generator], List[SceneObject]]


def render_view(draws: Draws, look: Look, intrinsics: CameraIntrinsics, pose: CameraPose, road: Road,
                randomisation: Randomisation, plan: Planner) -> Scene:
    """Paint the chosen road and objects as the mounted camera sees them (render_scene's steps after
    drawing the look, the camera and the road)."""
    rng = draws.scenery
    width, height = intrinsics.width, intrinsics.height
    cam, homography = _level_view(intrinsics, pose)
    canvas = _Canvas.blank(cam)
    _draw_background(canvas.image, cam, rng, look.tod, look.weather, randomisation.textures)
    _draw_road(canvas.image, canvas.drivable, canvas.lane, cam, road, rng, look.tod, randomisation.textures)
    ground = np.zeros(canvas.shape, np.uint8)
    ground[max(int(np.ceil(cam.horizon)), 0):] = 1
    lamps = _paint_street_lamps(canvas, cam, road, rng, randomisation)
    objects, ids, light_spots = _paint_objects(canvas, cam, plan(cam, road, rng), rng, look,
                                               _visible_canvas(homography, cam, height, width))
    light_spots += [(u, v, "street", g) for u, v, g in lamps if ids[min(max(int(v), 0), cam.height - 1),
                                                                      min(max(int(u), 0), cam.width - 1)] < 0]

    # into the mounted camera's view; labels by nearest neighbour so they keep their values
    size = (width, height)
    image = _warp(canvas.image, homography, size, nearest=False)
    drivable = _warp(canvas.drivable, homography, size, nearest=True)
    lane = _warp(canvas.lane, homography, size, nearest=True)
    ids = _warp(ids, homography, size, nearest=True)
    ground_view = _warp(ground, homography, size, nearest=True).astype(bool)
    # the ego vehicle is neither road nor object, and hides what is behind it as the frame's edge does
    ego = np.zeros((height, width), bool)
    if look.ego is not None:
        ego = fx.ego_vehicle_mask(draws.ego, height, width, look.ego, randomisation.ego_rows)
    kept = _objects_in_view(objects, ids, ego, homography, size)
    covered = (ids >= 0) | ego
    drivable[covered] = DRIVABLE_BACKGROUND
    lane[covered] = LANE_BACKGROUND
    _finalise_labels(kept)

    horizon = float(ground_to_pixels(np.array([[1e9, 0.0, pose.z]]), intrinsics, pose)[0][0, 1])
    lights = _lights(light_spots, homography, look, draws.frame, width) if look.tod != "daytime" else []
    road_view = drivable != DRIVABLE_BACKGROUND
    image, snow_cover = _post_process(image, draws, look, road_view, ground_view & (ids < 0), ego, lights, horizon,
                                      randomisation)
    lane[snow_cover > SNOW_BURIES] = LANE_BACKGROUND  # buried: no one would label it
    attributes = {"weather": look.weather, "timeofday": look.tod, "scene": look.scene}
    truth = _road_truth(road, intrinsics, pose)
    if look.ego is not None:
        truth = replace(truth, ego_edge=_ego_edge(ego))
    return Scene(image, drivable, lane, ids, kept, attributes, truth, ego)


@dataclass
class _Canvas:
    """The level canvas being painted: colours (float BGR) and the two label maps, kept in step."""

    image: np.ndarray
    drivable: np.ndarray
    lane: np.ndarray

    @classmethod
    def blank(cls, cam: LevelCamera) -> _Canvas:
        shape = (cam.height, cam.width)
        return cls(np.zeros((*shape, 3), np.float32), np.full(shape, DRIVABLE_BACKGROUND, np.uint8),
                   np.full(shape, LANE_BACKGROUND, np.uint8))

    @property
    def shape(self) -> tuple[int, int]:
        return self.drivable.shape[0], self.drivable.shape[1]

    def paint_scenery(self, where: np.ndarray, colour: tuple[int, int, int]) -> None:
        """Unlabelled scenery (poles, lamp posts): it hides the road's labels like any object."""
        self.image[where] = colour
        self.drivable[where], self.lane[where] = DRIVABLE_BACKGROUND, LANE_BACKGROUND


def sample_road(rng: np.random.Generator, randomisation: Randomisation) -> Road:
    """The road ahead: lanes, the ego lane, curvature, markings and perhaps a junction."""
    n_lanes = int(rng.integers(1, 5))
    junction = None
    if rng.random() < randomisation.junction_p:
        start = float(rng.uniform(*JUNCTION_RANGE_M))
        junction = (start, start + float(rng.uniform(*JUNCTION_WIDTH_M)))
    return Road(
        n_lanes=n_lanes,
        ego_lane=int(rng.integers(0, n_lanes)),
        curvature=float(rng.choice([0.0, rng.uniform(*randomisation.curvature)])),
        ego_offset=float(rng.uniform(-0.5, 0.5)),
        far_depth=float(rng.uniform(120.0, 250.0)),
        two_way=bool(n_lanes >= 2 and rng.random() < 0.5),
        curb_outer=bool(rng.random() < 0.3),
        yellow_edge=bool(rng.random() < 0.3),
        junction=junction,
    )


def _paint_street_lamps(canvas: _Canvas, cam: LevelCamera, road: Road, rng: np.random.Generator,
                        randomisation: Randomisation) -> list[tuple[float, float, float]]:
    """Lamp posts beside the road (sometimes); their lamps as (u, v, ground row) on the canvas."""
    near = cam.focal * cam.cam_height / (cam.height - cam.horizon) + 1.0
    if rng.random() >= randomisation.street_lamps_p:
        return []
    posts, lamps = _street_lamps(cam, road, rng, near)
    canvas.paint_scenery(posts, (70, 72, 75))
    return lamps


def _visible_canvas(homography: np.ndarray, cam: LevelCamera, height: int, width: int) -> np.ndarray:
    """bool[canvas]: what of the level canvas the mounted camera sees."""
    return cv2.warpPerspective(np.ones((height, width), np.uint8), np.linalg.inv(homography),
                               (cam.width, cam.height), flags=cv2.INTER_NEAREST).astype(bool)


def _paint_objects(canvas: _Canvas, cam: LevelCamera, planned: list[SceneObject], rng: np.random.Generator, look: Look,
                   in_view: np.ndarray) -> tuple[list[SceneObject], np.ndarray, list[tuple[float, float, str, float]]]:
    """Cut the planned objects to the camera's view (cut ones are truncated), settle who hides whom and
    paint each, from its own paint seed where it has one. Returns the objects, the canvas's object ids
    (-1: none) and the light spots their lamps make (canvas u, v, kind, ground row)."""
    for obj in planned:
        obj.truncated = _touches_border(obj.silhouette) or bool((obj.silhouette & ~in_view).any())
        obj.silhouette = obj.silhouette & in_view
    objects, ids = _resolve_visibility(planned, canvas.shape)
    light_spots: list[tuple[float, float, str, float]] = []
    for i, obj in enumerate(objects):
        visible = ids == i
        paint = rng if obj.paint_seed is None else np.random.default_rng(obj.paint_seed)
        if obj.pole is not None:
            canvas.paint_scenery(obj.pole & (ids < 0), (90, 90, 95))
        if obj.geometric_box is not None:
            for u, v, kind in _paint_vehicle(canvas.image, obj, visible, obj.geometric_box, paint, look.tod):
                iu, iv = int(u), int(v)
                if 0 <= iu < cam.width and 0 <= iv < cam.height and ids[iv, iu] == i:
                    light_spots.append((u, v, kind, obj.geometric_box[3]))
        elif obj.category == "traffic light":
            light_spots.append(_paint_traffic_light(canvas.image, obj, visible))
        elif obj.category == "traffic sign":
            canvas.image[visible] = paint.choice([(40, 40, 200), (200, 120, 30), (40, 200, 240)])
        else:
            canvas.image[visible] = paint.uniform(20, 220, 3)
    return objects, ids, light_spots


# a traffic light's lit lamp: its colour (BGR), and where it sits from the housing's top (0) to bottom (1)
TRAFFIC_LIGHT_COLOURS = {"red": (0, 0, 255), "yellow": (0, 200, 255), "green": (80, 255, 0)}
TRAFFIC_LIGHT_LAMP_ROW = {"red": 0.2, "yellow": 0.5, "green": 0.8}


def _paint_traffic_light(image: np.ndarray, obj: SceneObject, visible: np.ndarray) -> tuple[float, float, str, float]:
    """A dark housing with its lit lamp; the lamp as a light spot (u, v, colour, ground row)."""
    image[visible] = (30, 30, 30)
    state = obj.attributes["trafficLightColor"]
    ys, xs = np.nonzero(obj.silhouette)
    cy, cx = ys.min() + TRAFFIC_LIGHT_LAMP_ROW[state] * (ys.max() - ys.min()), xs.mean()
    radius_px = max(int(0.3 * (xs.max() - xs.min())), 1)
    lamp = np.zeros_like(visible, np.uint8)
    cv2.circle(lamp, (int(cx), int(cy)), radius_px, 1, -1)
    image[(lamp > 0) & visible] = TRAFFIC_LIGHT_COLOURS[state]
    return float(cx), float(cy), state, float(ys.max())


def _objects_in_view(objects: list[SceneObject], ids: np.ndarray, ego: np.ndarray, homography: np.ndarray,
                     size: tuple[int, int]) -> list[SceneObject]:
    """The objects in the mounted view, cut by the ego vehicle (which truncates them); slivers the resampling
    or the hood left become unlabelled scenery. Renumbers ids (the view's object ids) in place."""
    ids[ego] = -1
    kept: list[SceneObject] = []
    for i, obj in enumerate(objects):
        silhouette = _warp(obj.silhouette.astype(np.uint8), homography, size, nearest=True).astype(bool)
        obj.truncated |= bool((silhouette & ego).any())
        obj.silhouette = silhouette & ~ego
        area = int(obj.silhouette.sum())
        if area < 4:  # a few pixels: no one would label them
            ids[ids == i] = -1
            continue
        obj.visible_fraction = float((ids == i).sum()) / area
        ids[ids == i] = len(kept)
        kept.append(obj)
    return kept


def _ego_edge(ego: np.ndarray, points: int = 33) -> tuple[tuple[float, float], ...]:
    """The ego vehicle's top edge, sampled across the width: (u, first row it covers)."""
    height, width = ego.shape
    columns = np.linspace(0, width - 1, points).round().astype(int)
    tops = [int(np.argmax(ego[:, c])) if ego[:, c].any() else height for c in columns]
    return tuple((float(c), float(t)) for c, t in zip_strict(columns, tops))


def _lights(spots: list[tuple[float, float, str, float]], homography: np.ndarray, look: Look,
            rng: np.random.Generator, width: int) -> list[fx.Light]:
    """The lit lamps among the canvas's light spots, in the mounted view: at dusk only some are on."""
    colours = {"tail": (40, 40, 255), "head": (220, 240, 255), "street": (120, 200, 255), **TRAFFIC_LIGHT_COLOURS}
    strength = {"tail": 0.8, "head": 1.6, "street": 1.2, "red": 0.9, "yellow": 0.9, "green": 0.9}
    out = []
    for u, v, kind, ground in spots:
        if look.tod == "dawn/dusk" and rng.random() < 0.5:
            continue
        x, y = _to_view(homography, u, v)
        _, ground_y = _to_view(homography, u, ground)
        radius = max(width / 640, 1.0) * (2.5 if kind in ("head", "street") else 1.5)
        out.append(fx.Light(x, y, radius, colours[kind], strength[kind] * rng.uniform(0.7, 1.3), ground_y))
    return out


def frame_record(name: str, scene: Scene) -> dict:
    """The frame's entry of det_SPLIT.json, in BDD100K's detection format."""
    labels = []
    for index, obj in enumerate(scene.objects):
        x1, y1, x2, y2 = obj.box
        attributes: dict[str, object] = {"occluded": obj.occluded, "truncated": obj.truncated}
        attributes.update(obj.attributes)
        labels.append({
            "id": obj.track_id if obj.track_id is not None else str(index),
            "category": obj.category,
            "attributes": attributes,
            "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
        })
    return {"name": name, "attributes": dict(scene.attributes), "labels": labels}
