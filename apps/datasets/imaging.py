"""Image measurements shared by feature analysis, auto-grouping and data processing (numpy on Pillow images).

Frozen definitions (spec §8.4 leaves them to us):
brightness = mean of sqrt(0.241 R² + 0.691 G² + 0.068 B²) (0–255); saturation = mean HSV S (0–1);
clarity = variance of the 4-neighbour Laplacian of the grey image; colourfulness =
Hasler–Süsstrunk σ_rgyb + 0.3 μ_rgyb. Images are measured at most 512 px on the long side so
a 25 MB photo costs the same as a thumbnail; clarity is therefore comparable within a dataset.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

MEASURE_SIDE = 512


def load_rgb(data: bytes, max_side: int = MEASURE_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """(float RGB array at most `max_side` px, original (width, height))."""
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
        im = im.convert("RGB")
        if max(size) > max_side:
            im.thumbnail((max_side, max_side))
        return np.asarray(im, dtype=np.float64), size


def brightness(rgb: np.ndarray) -> float:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(np.sqrt(0.241 * r * r + 0.691 * g * g + 0.068 * b * b).mean()) if rgb.size else 0.0


def saturation(rgb: np.ndarray) -> float:
    if not rgb.size:
        return 0.0
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    sat = np.where(high > 0, (high - low) / np.where(high > 0, high, 1), 0)
    return float(sat.mean())


def clarity(rgb: np.ndarray) -> float:
    if rgb.shape[0] < 3 or rgb.shape[1] < 3:
        return 0.0
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    lap = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1])
    return float(lap.var())


def colorfulness(rgb: np.ndarray) -> float:
    if not rgb.size:
        return 0.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def dhash(data: bytes, size: int = 8) -> int:
    """64-bit difference hash: near-identical pictures differ in few bits."""
    with Image.open(io.BytesIO(data)) as im:
        grey = np.asarray(im.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)
