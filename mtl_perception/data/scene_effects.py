"""What a real camera adds to a synthetic scene: texture, the ego vehicle, lights and glare, weather and
the sensor's own blur, noise and colour. Pixels only: labels are decided in data/synthetic.py (the ego
vehicle's mask is returned for that), so an effect never moves a label.

Images are float32 BGR in 0-255 (values above 255 are light that will clip); all randomness comes from
the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def fractal_noise(rng: np.random.Generator, height: int, width: int, cells: int = 4, octaves: int = 4) -> np.ndarray:
    """float32[height, width] in about [-1, 1]: smooth noise summed over octaves (value noise, upsampled)."""
    out = np.zeros((height, width), np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        small = rng.uniform(-1, 1, (max(n * height // max(width, 1), 2), n)).astype(np.float32)
        out += amplitude * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= 0.5
    return out / total


def asphalt(rng: np.random.Generator, region: np.ndarray, on_road: np.ndarray, base: np.ndarray,
            shade: np.ndarray) -> None:
    """Asphalt in place where on_road: a grey with fractal mottling, darker patches and cracks."""
    h, w = on_road.shape
    mottle = fractal_noise(rng, h, w, cells=6, octaves=5)
    surface = base[None, None, :] * shade * (1.0 + 0.12 * mottle[..., None])
    surface += rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)  # grain
    patches = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 5)):
        x, y = int(rng.uniform(0, w)), int(rng.uniform(h * 0.3, h))
        size = (int(rng.uniform(0.03, 0.15) * w), int(rng.uniform(0.01, 0.06) * h))
        cv2.rectangle(patches, (x, y), (x + size[0], y + size[1]), 1, -1)
    surface[patches > 0] *= rng.uniform(0.75, 1.1)
    cracks = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 8)):
        start = np.array([rng.uniform(0, w), rng.uniform(h * 0.4, h)])
        points = start + np.cumsum(rng.normal(0, 12, (int(rng.integers(3, 9)), 2)), axis=0)
        cv2.polylines(cracks, [points.astype(np.int32)], False, 1, 1)
    surface[cracks > 0] *= 0.55
    region[on_road] = surface[on_road]


def textured(rng: np.random.Generator, region: np.ndarray, mask: np.ndarray, strength: float, cells: int = 8) -> None:
    """Mottle the pixels under mask in place (facades, grass, sidewalks)."""
    h, w = region.shape[:2]
    noise = 1.0 + strength * fractal_noise(rng, h, w, cells=cells, octaves=4)[..., None]
    region[mask] = (region * noise)[mask]


def ego_vehicle_mask(rng: np.random.Generator, height: int, width: int, kind: str,
                     rows: tuple[float, float]) -> np.ndarray:
    """bool[height, width]: the hood (a bulge, lowest at the sides) or the dashboard edge (nearly straight)."""
    cover = rng.uniform(*rows) * height
    u = (np.arange(width, dtype=np.float32) - width * rng.uniform(0.45, 0.55)) / (0.5 * width)
    if kind == "hood":
        top = height - cover * (1.0 - rng.uniform(0.3, 0.8) * np.clip(np.abs(u), 0, 1.2) ** 2)
    else:
        top = height - cover * (1.0 + rng.uniform(-0.05, 0.05) * u)
    return np.arange(height, dtype=np.float32)[:, None] >= top[None, :]


def draw_ego_vehicle(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, kind: str, night: bool) -> None:
    """Paint the hood (body colour, shading, the scene above mirrored and blurred on its paint) or a dark
    dashboard, in place."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    top, h = int(rows[0]), img.shape[0]
    band = h - top
    shade = np.linspace(1.0, 0.55, band, dtype=np.float32)[:, None, None]
    if kind == "hood":
        colour = rng.uniform(20, 230, 3).astype(np.float32) * (0.4 if night else 1.0)
        paint = colour * shade
        # the paint mirrors what is above it, blurred by the curved surface
        above = img[max(top - band, 0):top][::-1]
        mirror = np.zeros((band, img.shape[1], 3), np.float32)
        mirror[:len(above)] = above
        mirror = cv2.GaussianBlur(mirror, (0, 0), rng.uniform(2.0, 6.0))
        surface = paint * np.ones_like(mirror) + rng.uniform(0.15, 0.45) * mirror
    else:
        colour = rng.uniform(15, 50, 3).astype(np.float32)
        surface = colour * shade * np.ones((band, img.shape[1], 1), np.float32)
        surface *= 1.0 + 0.08 * fractal_noise(rng, band, img.shape[1], cells=10)[..., None]
    region = img[top:]
    region[mask[top:]] = surface[mask[top:]]


@dataclass(frozen=True)
class Light:
    """A light source in image pixels: where it is, how big, its BGR colour and brightness (1 = white)."""

    u: float
    v: float
    radius: float
    colour: tuple[float, float, float]
    intensity: float
    ground_v: float | None = None  # the image row of the ground below it, for reflections on a wet road


def draw_lights(img: np.ndarray, lights: list[Light], rng: np.random.Generator, wet_road: np.ndarray | None) -> None:
    """Lamps, their glare (a wide bloom and a faint horizontal streak) and, where wet_road is given,
    their reflections: vertical smears on the road below each light."""
    if not lights:
        return
    h, w = img.shape[:2]
    glow = np.zeros((h, w, 3), np.float32)
    reflection = np.zeros((h, w, 3), np.float32)
    for light in lights:
        centre = (round(light.u), round(light.v))
        colour = np.array(light.colour, np.float32) * light.intensity
        cv2.circle(glow, centre, max(round(light.radius), 1), colour.tolist(), -1, cv2.LINE_AA)
        if wet_road is not None and light.ground_v is not None and light.ground_v < h:
            x0, x1 = round(light.u - light.radius), round(light.u + light.radius)
            y0 = max(round(light.ground_v), 0)
            y1 = min(round(light.ground_v + (h - light.ground_v) * rng.uniform(0.3, 0.9)), h)
            if x1 > 0 and x0 < w and y1 > y0:
                fade = np.linspace(0.6, 0.0, y1 - y0, dtype=np.float32)[:, None, None]
                reflection[y0:y1, max(x0, 0):min(x1, w)] += colour * fade
    bloom = cv2.GaussianBlur(glow, (0, 0), max(w / 120, 2.0)) * 2.0 + cv2.GaussianBlur(glow, (0, 0), w / 30) * 3.0
    streak = cv2.blur(glow, (max(w // 8, 3), 1)) * 0.6
    img += glow * 2.0 + bloom + streak
    if wet_road is not None:
        img += cv2.GaussianBlur(reflection, (0, 0), max(w / 300, 1.0)) * wet_road[..., None]


def wet(img: np.ndarray, road: np.ndarray, rng: np.random.Generator) -> None:
    """A wet road: darker, and mirroring a little of the scene above the horizon."""
    img[road] *= rng.uniform(0.55, 0.8)


def rain(img: np.ndarray, rng: np.random.Generator) -> None:
    """Falling streaks, drops on the glass (blurred discs) and the grey veil of rain, in place."""
    h, w = img.shape[:2]
    veil = rng.uniform(0.1, 0.3)
    img[:] = img * (1 - veil) + veil * img.mean()
    streaks = np.zeros((h, w), np.float32)
    slant = rng.uniform(-0.3, 0.3)
    length = rng.uniform(0.02, 0.06) * h
    for _ in range(int(rng.uniform(300, 1200) * w / 1280)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        cv2.line(streaks, (int(x), int(y)), (int(x + slant * length), int(y + length)), 1.0, 1, cv2.LINE_AA)
    img += cv2.GaussianBlur(streaks, (0, 0), 0.8)[..., None] * rng.uniform(40, 90)
    blurred = cv2.GaussianBlur(img, (0, 0), max(w / 200, 2.0))
    drops = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(5, 40))):
        cv2.circle(drops, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(0.005, 0.02) * w), 1, -1)
    img[drops > 0] = blurred[drops > 0] * 1.1


def snow(img: np.ndarray, rng: np.random.Generator, ground: np.ndarray, road: np.ndarray) -> np.ndarray:
    """Snow on the roadsides, a patchy cover on the road (markings show through where it is thin) and
    falling flakes, in place. Returns the cover on the road, float32[H, W] in 0-1, so that labels of
    markings buried under it can go."""
    h, w = img.shape[:2]
    white = np.array([235, 235, 240], np.float32) * rng.uniform(0.8, 1.0)
    img[ground & ~road] = img[ground & ~road] * 0.15 + white * 0.85
    cover = np.clip(0.5 + 0.8 * fractal_noise(rng, h, w, cells=5, octaves=4), 0, 1) * rng.uniform(0.3, 0.8)
    img[road] = img[road] * (1 - cover[road, None]) + white * cover[road, None]
    flakes = np.zeros((h, w), np.float32)
    for _ in range(int(rng.uniform(300, 1500) * w / 1280)):
        cv2.circle(flakes, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.choice([1, 1, 2, 3])), 1.0, -1)
    soft = cv2.GaussianBlur(flakes, (0, 0), 0.7)[..., None]
    img[:] = img * (1 - soft) + white * soft
    img *= 1.0 + rng.uniform(0.0, 0.15)  # overcast snow light is bright and flat
    return np.where(road, cover, 0.0).astype(np.float32)


def sensor(img: np.ndarray, rng: np.random.Generator, blur_px: float, noise_sd: float,
           white_balance: float) -> np.ndarray:
    """Motion blur along a random direction (blur_px long, 0 for none), white balance gains, noise."""
    if blur_px >= 2:
        size = round(blur_px) | 1
        kernel = np.zeros((size, size), np.float32)
        angle = rng.uniform(-0.3, 0.3) + (np.pi / 2 if rng.random() < 0.3 else 0.0)  # mostly sideways
        c = size // 2
        dx, dy = np.cos(angle) * c, np.sin(angle) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
    if white_balance > 0:
        img = img * rng.uniform(1 - white_balance, 1 + white_balance, 3).astype(np.float32)
    out: np.ndarray = img + rng.normal(0, noise_sd, img.shape).astype(np.float32)
    return out
