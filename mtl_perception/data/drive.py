"""Synthetic drives: consecutive frames of one road, with road users that keep their identity.

A drive fixes what render_scene draws per frame (the look, the camera, the road) and moves through a
world along the road. Positions are road coordinates: s metres along the road from where the ego car
starts, and a lateral offset from one of the lane boundaries; at time t the ego car is at
s = ego_speed * t, and a road user at s_i + speed_i * t is seen at depth s_i + speed_i * t - ego_s with
the road's own bend (the renderer's parabola, the same seen from anywhere along it). So the scenery
stays anchored: dashes, stop lines, crosswalks, lamp posts and a junction move towards the camera as it
drives; other vehicles keep their lanes at their lanes' speeds (faster lanes overtake the ego car,
slower ones are overtaken and leave the view at the bottom, oncoming ones pass), pedestrians and
cyclists walk or ride along the kerb, parked cars and signs stand still, and whoever is nearer hides
whoever is behind.

Each frame's labels carry every object's track id (BDD100K's box_track layout, see track_record) and
its place in metres (data/ground_truth.py ObjectTruth); the ego lane's edges are in the frame's ground
truth as for any synthetic frame.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from mtl_perception.data.ground_truth import ObjectTruth
from mtl_perception.data.randomisation import Randomisation
from mtl_perception.data.synthetic import (
    LANE_WIDTH_M,
    VEHICLE_LENGTHS,
    VEHICLE_SIZES,
    Draws,
    LevelCamera,
    Look,
    Road,
    Scene,
    SceneObject,
    bicycle_silhouette,
    draw_look,
    person_silhouette,
    render_view,
    roadside_light,
    roadside_sign,
    sample_mounting,
    sample_road,
    vehicle,
)
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose

# BDD100K's box_track categories (box_track_20): the classes a drive's tracks are labelled for
TRACK_CATEGORIES = ("pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
EGO_SPEED_MPS = (6.0, 14.0)
LANE_SPEED_SD_MPS = 3.0  # same-direction lanes drive at the ego car's speed, give or take this
VEHICLE_GAP_M = (6.0, 40.0)  # free road between consecutive vehicles of a lane
BEHIND_M = 40.0  # how far behind the start vehicles are placed (faster lanes bring them into view)
AHEAD_M = 110.0  # how far beyond where the drive ends objects are placed
NEAREST_M = 1.0  # nearer than this (or behind the camera) nothing is drawn
FARTHEST_M = 95.0  # farther than this objects are a few pixels: not drawn


@dataclass(frozen=True)
class Actor:
    """One object of the world. Its lateral position at a depth is boundary anchor's plus offset
    (metres, positive to the right), so it follows the road's bend."""

    track_id: str
    category: str
    s: float  # metres along the road at t = 0
    speed: float  # metres per second along the road (negative: towards the ego car)
    anchor: int  # lane boundary index (0 = leftmost)
    offset: float
    paint_seed: int
    facing: str = "rear"
    parked: bool = False
    rider_id: str | None = None  # a bicycle's or motorcycle's rider, labelled apart
    light: str = ""  # a traffic light's colour

    def lateral(self, road: Road, depth: float) -> float:
        return float(road.boundary(self.anchor, depth)) + self.offset


@dataclass(frozen=True)
class DriveSettings:
    frames: int
    rate_hz: float = 10.0

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"a drive needs at least one frame, got {self.frames}")
        if not 0.5 <= self.rate_hz <= 100.0:
            raise ValueError(f"a drive's frame rate must be within 0.5-100 Hz, got {self.rate_hz}")


@dataclass(frozen=True)
class Drive:
    """One drive: everything but the time is fixed here."""

    seed: tuple[int, ...]
    settings: DriveSettings
    look: Look
    intrinsics: CameraIntrinsics
    pose: CameraPose
    road: Road
    ego_speed: float
    actors: tuple[Actor, ...]
    randomisation: Randomisation

    def time(self, index: int) -> float:
        return index / self.settings.rate_hz

    def ego_s(self, index: int) -> float:
        return self.ego_speed * self.time(index)


def plan_drive(seed: tuple[int, ...], settings: DriveSettings, height: int, width: int,
               randomisation: Randomisation) -> Drive:
    """The world of a drive, all drawn from seed: the look, camera and road as render_scene draws them,
    then the ego car's speed and the road users."""
    rng = np.random.default_rng(seed)
    look = draw_look(rng, randomisation)
    intrinsics, pose = sample_mounting(rng, width, height, randomisation)
    road = sample_road(rng, randomisation)
    if road.two_way and road.ego_lane < road.n_lanes // 2:
        # a single frame may show the camera in an oncoming lane; a drive there would meet its traffic head on
        road = replace(road, ego_lane=road.n_lanes - 1 - road.ego_lane)
    ego_speed = float(rng.uniform(*EGO_SPEED_MPS))
    length = ego_speed * (settings.frames - 1) / settings.rate_hz
    actors = _World(rng, road, look.scene, length, ego_speed, randomisation).populate()
    return Drive(tuple(seed), settings, look, intrinsics, pose, road, ego_speed, tuple(actors), randomisation)


class _World:
    """Draws a drive's road users, numbering them as it goes."""

    def __init__(self, rng: np.random.Generator, road: Road, scene: str, length: float, ego_speed: float,
                 randomisation: Randomisation) -> None:
        self.rng, self.road, self.scene, self.length, self.ego_speed = rng, road, scene, length, ego_speed
        self.randomisation = randomisation
        self.actors: list[Actor] = []
        self._ids = itertools.count(1)  # track ids: "1", "2", ... in the order drawn, riders included

    def next_id(self) -> str:
        return str(next(self._ids))

    def _add(self, category: str, s: float, speed: float, anchor: int, offset: float, **extra: object) -> None:
        self.actors.append(Actor(self.next_id(), category, s, speed, anchor, offset,
                                 int(self.rng.integers(0, 2**31)), **extra))  # type: ignore[arg-type]

    def populate(self) -> list[Actor]:
        for lane in range(self.road.n_lanes):
            self._lane(lane)
        if self.rng.random() < self.randomisation.parked_p:
            self._parked()
        self._kerbside()
        self._signs()
        return self.actors

    def _lane(self, lane: int) -> None:
        road, rng = self.road, self.rng
        oncoming = road.two_way and lane < road.n_lanes // 2
        if oncoming:
            speed = -float(rng.uniform(*EGO_SPEED_MPS))
        else:
            speed = self.ego_speed + abs(float(rng.normal(0, LANE_SPEED_SD_MPS))) * (1 if lane == road.ego_lane else
                                                                                     float(rng.choice([-1, 1])))
            speed = max(speed, 0.0)
        # the ego lane's traffic starts ahead of the camera (it never drives into the car in front)
        s = float(rng.uniform(12.0, 30.0)) if lane == road.ego_lane else -BEHIND_M + float(rng.uniform(0, 15))
        end = self.length + AHEAD_M + (abs(speed) * self.length / max(self.ego_speed, 1.0) if oncoming else 0.0)
        while s < end:
            kind = str(rng.choice(["car", "car", "car", "truck", "bus"] if self.scene != "residential"
                                  else ["car"] * 5 + ["truck"]))
            self._add(kind, s, speed, lane, 0.5 * LANE_WIDTH_M + float(rng.normal(0, 0.2)),
                      facing="front" if oncoming else "rear")
            s += VEHICLE_LENGTHS[kind] + float(rng.uniform(*VEHICLE_GAP_M))

    def _parked(self) -> None:
        rng, road = self.rng, self.road
        for side in (-1, 1):
            if rng.random() < 0.5:
                continue
            s = float(rng.uniform(0.0, 20.0))
            end = s + float(rng.uniform(30.0, self.length + 80.0))
            while s < end:
                kind = "car" if rng.random() < 0.9 else "truck"
                if rng.random() < 0.85:
                    offset = side * (0.3 + VEHICLE_SIZES[kind][0] / 2 + float(rng.uniform(0, 0.3)))
                    self._add(kind, s, 0.0, 0 if side < 0 else road.n_lanes, offset,
                              facing=str(rng.choice(["rear", "front"])), parked=True)
                s += VEHICLE_LENGTHS[kind] + float(rng.uniform(0.8, 2.5))

    def _kerbside(self) -> None:
        rng, road = self.rng, self.road
        count = int(rng.integers(0, 3 if self.scene == "highway" else 9))
        for _ in range(count):
            side = int(rng.choice([-1, 1]))
            anchor = 0 if side < 0 else road.n_lanes
            s = float(rng.uniform(5.0, self.length + 60.0))
            roll = rng.random()
            if roll < 0.6:
                speed = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.8, 1.6)) * float(rng.choice([-1, 1]))
                self._add("pedestrian", s, speed, anchor, side * float(rng.uniform(0.8, 3.0)))
            else:
                rider = self.next_id()
                self._add("motorcycle" if roll > 0.85 else "bicycle", s, float(rng.uniform(2.0, 6.0)), anchor,
                          side * float(rng.uniform(0.6, 1.5)), rider_id=rider)

    def _signs(self) -> None:
        rng, road = self.rng, self.road
        for _ in range(int(rng.integers(0, 4))):
            side = int(rng.choice([-1, 1]))
            s = float(rng.uniform(10.0, self.length + 60.0))
            offset = side * float(rng.uniform(0.5, 1.5))
            light = "" if rng.random() < 0.5 else str(rng.choice(["red", "yellow", "green"]))
            self._add("traffic light" if light else "traffic sign", s, 0.0, 0 if side < 0 else road.n_lanes, offset,
                      light=light)


def _depth(drive: Drive, actor: Actor, index: int) -> float:
    return actor.s + actor.speed * drive.time(index) - drive.ego_s(index)


def _objects(drive: Drive, index: int, cam: LevelCamera, road: Road) -> list[SceneObject]:
    """The actors as the frame's objects on the level canvas, each with its track id and paint seed."""
    shape = (cam.height, cam.width)
    out: list[SceneObject] = []
    for actor in drive.actors:
        depth = _depth(drive, actor, index)
        if not NEAREST_M <= depth <= min(FARTHEST_M, road.far_depth):
            continue
        lateral = actor.lateral(road, depth)
        foot_x, foot_y = float(cam.column(lateral, depth)), cam.row(depth)
        made: list[SceneObject] = []
        if actor.category in VEHICLE_SIZES:
            obj = vehicle(cam, shape, actor.category, lateral, depth, actor.facing)
            obj.parked = actor.parked
            made.append(obj)
        elif actor.category == "pedestrian":
            made.append(SceneObject("pedestrian", depth,
                                    person_silhouette(shape, foot_x, foot_y, 1.7 * cam.focal / depth, rider=False)))
        elif actor.category in ("bicycle", "motorcycle"):
            size = 1.4 * cam.focal / depth
            bike = bicycle_silhouette(shape, foot_x, foot_y, size, actor.category == "motorcycle")
            made.append(SceneObject(actor.category, depth + 0.01, bike))
            rider = person_silhouette(shape, foot_x, foot_y - 0.45 * size, 1.3 * cam.focal / depth, rider=True)
            made.append(replace(SceneObject("rider", depth, rider & ~bike), track_id=actor.rider_id))
        elif actor.category == "traffic light":
            made.append(roadside_light(cam, lateral, depth, actor.light))
        else:
            made.append(roadside_sign(cam, lateral, depth))
        for obj in made:
            obj.track_id = obj.track_id or actor.track_id
            obj.paint_seed = actor.paint_seed + (1 if obj.category == "rider" else 0)
        out += made
    return out


def _truth(drive: Drive, index: int, scene: Scene) -> tuple[ObjectTruth, ...]:
    """The place in metres of each labelled road user of the frame (vehicle frame: x ahead, y left)."""
    by_id = {a.track_id: a for a in drive.actors}
    by_id.update({a.rider_id: a for a in drive.actors if a.rider_id is not None})
    dt = 0.5 / drive.settings.rate_hz

    def place(actor: Actor, t_index: float, ahead: float) -> np.ndarray:
        depth = actor.s + actor.speed * t_index / drive.settings.rate_hz - drive.ego_speed * t_index / drive.settings.rate_hz
        return np.array([depth + ahead, -actor.lateral(drive.road, depth)])

    out = []
    for obj in scene.objects:
        if obj.category not in TRACK_CATEGORIES or obj.track_id is None:
            continue
        actor = by_id[obj.track_id]
        half = 0.5 * VEHICLE_LENGTHS.get(obj.category, 0.0)
        contact, centre = place(actor, index, 0.0), place(actor, index, half)
        step = dt * drive.settings.rate_hz
        velocity = (place(actor, index + step, 0.0) - place(actor, index - step, 0.0)) / (2 * dt)
        out.append(ObjectTruth(obj.track_id, obj.category, (float(contact[0]), float(contact[1])),
                               (float(centre[0]), float(centre[1])), (float(velocity[0]), float(velocity[1]))))
    return tuple(out)


def render_drive_frame(drive: Drive, index: int) -> Scene:
    """Frame index of the drive: the scenery and the ego vehicle drawn as in every other frame, the road
    moved by what the ego car has driven, the sensor's effects drawn anew."""
    travelled = drive.ego_s(index)
    junction = drive.road.junction
    if junction is not None:
        junction = (junction[0] - travelled, junction[1] - travelled) if junction[1] > travelled else None
    road = replace(drive.road, travelled=travelled, junction=junction)
    draws = Draws(np.random.default_rng([*drive.seed, 1]), np.random.default_rng([*drive.seed, 2]),
                  np.random.default_rng([*drive.seed, 3, index]))
    scene = render_view(draws, drive.look, drive.intrinsics, drive.pose, road, drive.randomisation, lambda cam, road, _rng: _objects(drive, index, cam, road))
    scene.ground = replace(scene.ground, objects=_truth(drive, index, scene))
    return scene


def track_record(name: str, video: str, index: int, timestamp_ms: int, scene: Scene) -> dict:
    """The frame's entry in a box_track file (scalabel's Frame: name, videoName, frameIndex, timestamp
    in ms, labels with their track id), holding only BDD100K's tracking categories."""
    labels = []
    for obj in scene.objects:
        if obj.category not in TRACK_CATEGORIES or obj.track_id is None:
            continue
        x1, y1, x2, y2 = obj.box
        labels.append({"id": obj.track_id, "category": obj.category,
                       "attributes": {"occluded": obj.occluded, "truncated": obj.truncated, "crowd": False},
                       "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}})
    return {"name": name, "videoName": video, "frameIndex": index, "timestamp": timestamp_ms,
            "attributes": dict(scene.attributes), "labels": labels}
