"""Domain randomisation of the synthetic scenes: what varies, how often and over what range.

A real road is meant to be one more variation of the synthetic world (Tobin et al. 2017; Tremblay et
al. 2018: detectors trained on randomised synthetic scenes, then tested on real data). Every factor
below is drawn from the frame's own seeded generator, is on in the default training mix, and can be
turned off (probability 0) or forced (probability 1): `synth --gallery` shows each one forced.
`Randomisation.plain()` is the world of 2026-11-24's scenes (flat shading, straight or gently curved
roads, daylight-heavy, no ego vehicle), kept to compare against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Randomisation:
    # the ego vehicle: a hood at the bottom of the frame (reflecting the scene), or a dashboard edge
    hood_p: float = 0.45
    dashboard_p: float = 0.15
    ego_rows: tuple[float, float] = (0.05, 0.22)  # how much of the frame's height it covers, at the centre
    # light: times of day are drawn with these weights; night brings headlights, tail lights, street
    # lights, their glare and, on a wet road, their reflections
    daytime_weight: float = 0.55
    dusk_weight: float = 0.15
    night_weight: float = 0.30
    wet_p: float = 0.35  # a wet road (reflections), besides rain
    # weather: falling rain (streaks, drops on the glass, a dark wet road) and snow (flakes, white
    # roadsides, a partly covered road: markings under thin snow keep their labels)
    rain_p: float = 0.15
    snow_p: float = 0.12
    fog_p: float = 0.08
    # textures: fractal asphalt with cracks and patches, facades, grass and tree crowns
    textures: bool = True
    # scene layout
    parked_p: float = 0.5  # rows of parked cars along one or both sides, seen from the side
    street_lamps_p: float = 0.7  # lamp posts along the road (lit at night and, half of them, at dusk)
    junction_p: float = 0.25  # a crossing road ahead (alternative drivable area)
    curvature: tuple[float, float] = (-8e-3, 8e-3)  # 1/m; half the roads are straight
    # the camera: focal length as a fraction of the width (horizontal FOV about 53-84 deg), height,
    # pitch (down) and roll
    focal_fraction: tuple[float, float] = (0.55, 1.0)
    mount_height_m: tuple[float, float] = (1.2, 2.0)
    pitch_deg: tuple[float, float] = (-1.0, 6.0)
    roll_deg_sd: float = 1.5
    roll_deg_max: float = 4.0
    principal_point_sd: float = 0.01  # the principal point's offset from the centre, a fraction of the size

    def fixed_camera(self, focal_fraction: float = 0.8, height_m: float = 1.5, pitch_deg: float = 2.0) -> Randomisation:
        """This mix seen by one camera, mounted once: what a drive (the demo's) is, rather than a set of
        photographs from many cars."""
        return replace(self, focal_fraction=(focal_fraction, focal_fraction), mount_height_m=(height_m, height_m),
                       pitch_deg=(pitch_deg, pitch_deg), roll_deg_sd=0.0, principal_point_sd=0.0)
    # the sensor: motion blur, noise, white balance
    motion_blur_p: float = 0.3
    motion_blur_px: tuple[float, float] = (3.0, 15.0)
    noise_sd: tuple[float, float] = (1.0, 8.0)  # grey levels; night doubles it
    white_balance: float = 0.1  # per-channel gain within 1 +- this

    def __post_init__(self) -> None:
        for name in ("hood_p", "dashboard_p", "wet_p", "rain_p", "snow_p", "fog_p", "parked_p", "street_lamps_p",
                     "junction_p", "motion_blur_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"randomisation {name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.hood_p + self.dashboard_p > 1.0 or self.rain_p + self.snow_p > 1.0:
            raise ValueError("hood_p + dashboard_p and rain_p + snow_p must each be at most 1")

    @classmethod
    def plain(cls) -> Randomisation:
        """The scenes as they were before randomisation: no ego vehicle, no weather beyond fog, flat shading."""
        return cls(hood_p=0.0, dashboard_p=0.0, daytime_weight=0.6, dusk_weight=0.2, night_weight=0.2, wet_p=0.0,
                   rain_p=0.0, snow_p=0.0, fog_p=0.1, textures=False, parked_p=0.0, street_lamps_p=0.0, junction_p=0.0,
                   curvature=(-4e-3, 4e-3), focal_fraction=(0.72, 0.9), mount_height_m=(1.3, 1.7),
                   pitch_deg=(0.0, 4.5), roll_deg_sd=1.0, roll_deg_max=3.0, motion_blur_p=0.0,
                   noise_sd=(1.0, 6.0), white_balance=0.0)

    def forcing(self, factor: str) -> Randomisation:
        """This mix with one factor of FACTORS always on: what `synth --gallery` shows it with."""
        if factor not in FACTORS:
            raise ValueError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")
        return replace(self, **FACTORS[factor])  # type: ignore[arg-type]  # FACTORS' values match the fields


# factor -> the settings that force it on
FACTORS: dict[str, dict[str, object]] = {
    "hood": {"hood_p": 1.0, "dashboard_p": 0.0},
    "dashboard": {"hood_p": 0.0, "dashboard_p": 1.0},
    "night": {"daytime_weight": 0.0, "dusk_weight": 0.0, "night_weight": 1.0},
    "wet road": {"wet_p": 1.0, "rain_p": 0.0, "snow_p": 0.0},
    "rain": {"rain_p": 1.0, "snow_p": 0.0},
    "snow": {"rain_p": 0.0, "snow_p": 1.0},
    "parked cars": {"parked_p": 1.0},
    "street lamps at dusk": {"street_lamps_p": 1.0, "daytime_weight": 0.0, "dusk_weight": 1.0, "night_weight": 0.0},
    "junction": {"junction_p": 1.0, "daytime_weight": 1.0, "dusk_weight": 0.0, "night_weight": 0.0},
    "curve": {"curvature": (6e-3, 8e-3)},
    "wide lens, high mount": {"focal_fraction": (0.55, 0.6), "mount_height_m": (1.9, 2.0)},
    "pitch and roll": {"pitch_deg": (5.5, 6.0), "roll_deg_sd": 4.0},
    "motion blur": {"motion_blur_p": 1.0, "motion_blur_px": (12.0, 15.0)},
}
