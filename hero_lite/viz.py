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


_PALETTE = [(70, 110, 180), (220, 120, 40), (80, 160, 90), (190, 60, 70), (140, 100, 180), (120, 120, 120),
            (200, 170, 40), (60, 170, 180)]


def gantt_chart(intervals: dict[str, list[tuple[float, float]]], total: float, title: str, unit: str = "cycles",
                width: int = 900, row_height: int = 22) -> Image.Image:
    """Activity of units over time: one row per unit, a bar per busy interval [start, end).

    Parameters
    ----------
    intervals : unit name -> list of (start, end) in `unit` (e.g. cycles).
    total : the time axis length (the frame's total).
    """
    names = list(intervals)
    left, right, top = 120, 20, 30
    height = top + len(names) * row_height + 30
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    draw.text((8, 6), title, fill="black", font=font)
    span = width - left - right
    total = max(float(total), 1e-12)
    for k, name in enumerate(names):
        y = top + k * row_height
        draw.text((8, y + 4), name, fill="black", font=font)
        draw.rectangle([left, y + 3, left + span, y + row_height - 3], outline=(210, 210, 210))
        color = _PALETTE[k % len(_PALETTE)]
        for start, end in intervals[name]:
            x0 = left + int(span * start / total)
            x1 = max(x0 + 1, left + int(span * end / total))
            draw.rectangle([x0, y + 4, x1, y + row_height - 4], fill=color)
    axis_y = top + len(names) * row_height + 4
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + int(span * frac)
        draw.line([x, axis_y, x, axis_y + 4], fill="black")
        draw.text((max(x - 20, 0), axis_y + 6), f"{total * frac:,.0f}", fill="black", font=font)
    draw.text((8, axis_y + 6), unit, fill="black", font=font)
    return canvas


def scatter_plot(points: list[dict], x_key: str, y_key: str, title: str, x_label: str, y_label: str,
                 label_key: str = "label", width: int = 720, height: int = 480,
                 frontier: list[tuple[float, float]] | None = None) -> Image.Image:
    """Labelled scatter plot (e.g. PSNR against latency), optional frontier polyline.

    Parameters
    ----------
    points : dicts with numeric `x_key`, `y_key` and a `label_key` string; an optional `color`
        (r, g, b) per point.
    """
    left, right, top, bottom = 70, 30, 36, 50
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    draw.text((8, 8), title, fill="black", font=font)
    xs = [float(p[x_key]) for p in points] + [x for x, _ in (frontier or [])]
    ys = [float(p[y_key]) for p in points] + [y for _, y in (frontier or [])]
    if not xs:
        return canvas
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_pad = (x_hi - x_lo) * 0.08 or max(abs(x_hi), 1.0) * 0.1
    y_pad = (y_hi - y_lo) * 0.08 or max(abs(y_hi), 1.0) * 0.1
    x_lo, x_hi, y_lo, y_hi = x_lo - x_pad, x_hi + x_pad, y_lo - y_pad, y_hi + y_pad

    def to_px(x, y):
        px = left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)
        py = height - bottom - (y - y_lo) / (y_hi - y_lo) * (height - top - bottom)
        return px, py

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for frac in (0.0, 0.5, 1.0):
        x = x_lo + frac * (x_hi - x_lo)
        px, _ = to_px(x, y_lo)
        draw.text((px - 15, height - bottom + 4), f"{x:.3g}", fill="black", font=font)
        y = y_lo + frac * (y_hi - y_lo)
        _, py = to_px(x_lo, y)
        draw.text((6, py - 6), f"{y:.3g}", fill="black", font=font)
    draw.text(((width - left) // 2, height - 22), x_label, fill="black", font=font)
    draw.text((6, top - 16), y_label, fill="black", font=font)
    if frontier:
        draw.line([to_px(x, y) for x, y in sorted(frontier)], fill=(160, 160, 160), width=1)
    for k, p in enumerate(points):
        px, py = to_px(float(p[x_key]), float(p[y_key]))
        color = tuple(p.get("color", _PALETTE[k % len(_PALETTE)]))
        draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=color)
        draw.text((px + 6, py - 6), str(p.get(label_key, "")), fill=color, font=font)
    return canvas
