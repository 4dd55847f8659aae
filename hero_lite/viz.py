"""Pictures with pillow: PNG output, error maps, labelled image grids and simple charts.

A leaf module (NumPy + pillow only) that any layer above `nerf` may use. Images are float arrays
(H, W, 3) in [0, 1] unless noted; every file is written atomically.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Piecewise-linear heat ramp (black -> purple -> orange -> yellow), like matplotlib's 'inferno'.
_HEAT = np.array([[0.0, 0.0, 0.02], [0.34, 0.06, 0.43], [0.73, 0.21, 0.33], [0.98, 0.55, 0.04], [0.99, 1.0, 0.64]])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> uint8 with rounding (values outside are clipped)."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image(path: str, image: Image.Image) -> None:
    """Save a pillow image as PNG via a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_png(path: str, image: np.ndarray) -> None:
    """Save a (H, W, 3) float image in [0, 1] as an 8-bit PNG."""
    save_image(path, Image.fromarray(to_uint8(image)))


def heat(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to heat-ramp RGB (..., 3) floats."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_HEAT) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_HEAT) - 1)
    frac = (v - lo)[..., None]
    return _HEAT[lo] * (1 - frac) + _HEAT[hi] * frac


def error_map(prediction: np.ndarray, target: np.ndarray, max_error: float = 0.2) -> np.ndarray:
    """Per-pixel mean absolute RGB error mapped to the heat ramp; `max_error` maps to yellow.

    Returns (H, W, 3) float in [0, 1].
    """
    err = np.abs(np.asarray(prediction, np.float64) - np.asarray(target, np.float64)).mean(axis=-1)
    return heat(err / max_error)


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pillow < 10.1 has no size argument
        return ImageFont.load_default()


def labelled_row(images: list[np.ndarray], labels: list[str], scale: int = 1) -> Image.Image:
    """Images side by side with a caption above each; all (H, W, 3) floats of one size."""
    h, w = images[0].shape[:2]
    pad = 18
    canvas = Image.new("RGB", (len(images) * w * scale, h * scale + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (img, label) in enumerate(zip(images, labels)):
        tile = Image.fromarray(to_uint8(img)).resize((w * scale, h * scale), Image.NEAREST)
        canvas.paste(tile, (k * w * scale, pad))
        draw.text((k * w * scale + 3, 2), label, fill="black", font=_font())
    return canvas


def bar_chart(labels: list[str], values: list[float], title: str, value_format: str = "{:g}",
              colors: list[tuple[int, int, int]] | None = None, width: int = 720, bar_height: int = 16) -> Image.Image:
    """Horizontal bar chart, one bar per label, with the value printed at the bar's end."""
    n = len(labels)
    top, left, right = 28, 110, 60
    height = top + n * (bar_height + 4) + 10
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    draw.text((8, 6), title, fill="black", font=font)
    vmax = max([abs(v) for v in values] + [1e-12])
    for k, (label, value) in enumerate(zip(labels, values)):
        y = top + k * (bar_height + 4)
        length = int((width - left - right) * abs(value) / vmax)
        color = colors[k] if colors else (70, 110, 180)
        draw.rectangle([left, y, left + max(length, 1), y + bar_height], fill=color)
        draw.text((8, y + 2), label, fill="black", font=font)
        draw.text((left + length + 4, y + 2), value_format.format(value), fill="black", font=font)
    return canvas
