"""Evaluation: render held-out views and score them (PSNR, SSIM) on a white background."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hero_lite.nerf.hooks import QuantHooks
from hero_lite.nerf.metrics import psnr, ssim
from hero_lite.nerf.model import NGPModel
from hero_lite.scenes import Scene
from hero_lite.scenes.cameras import camera_rays

WHITE = (1.0, 1.0, 1.0)


def view_rays(pose: np.ndarray, focal: float, height: int, width: int, supersample: int = 1):
    """The rays a model renders a camera with: s x s per pixel, at the sub-pixel centres.

    They are the pixel centres of the same camera at s times the resolution (focal s * focal), in
    its raster order, so a frame of rays is an ordinary (s * height, s * width) frame.

    Returns
    -------
    origins, directions : (s * height * s * width, 3) float32.
    """
    return camera_rays(pose, focal * supersample, height * supersample, width * supersample)


def block_mean(image: np.ndarray, supersample: int) -> np.ndarray:
    """(s * height, s * width, C) -> (height, width, C) float32, the mean of every s x s block."""
    if supersample == 1:
        return image
    h, w, c = image.shape[0] // supersample, image.shape[1] // supersample, image.shape[2]
    return image.reshape(h, supersample, w, supersample, c).mean(axis=(1, 3), dtype=np.float32)


def render_view(model: NGPModel, pose: np.ndarray, focal: float, height: int, width: int,
                background=WHITE, hooks: QuantHooks | None = None, on_samples=None):
    """Render one camera, each pixel the mean of the model's s x s rays (`ModelConfig.supersample`).

    Parameters
    ----------
    pose : (4, 4) camera-to-world; focal in pixels; height, width in pixels.

    Returns
    -------
    image : (height, width, 3) float32 in [0, 1]; samples_per_ray : (s^2 * height * width,) int64,
    rays in the raster order of `view_rays`.
    """
    supersample = model.config.supersample
    origins, dirs = view_rays(pose, focal, height, width, supersample)
    result = model.render(origins, dirs, background=background, hooks=hooks, on_samples=on_samples)
    image = result.colors.reshape(height * supersample, width * supersample, 3)
    return block_mean(image, supersample), result.samples_per_ray


@dataclass
class Evaluation:
    """Scores of a set of views: mean PSNR (dB) and SSIM, per-view values, rays per second.

    Rays and samples per ray count every ray: a model with `supersample` s renders s^2 per pixel.
    """

    psnr: float
    ssim: float
    per_view: list[dict]
    rays_per_s: float
    mean_samples_per_ray: float

    def to_dict(self) -> dict:
        return {"psnr": self.psnr, "ssim": self.ssim, "per_view": self.per_view, "rays_per_s": self.rays_per_s,
                "mean_samples_per_ray": self.mean_samples_per_ray}


def evaluate(model: NGPModel, scene: Scene, hooks: QuantHooks | None = None, max_views: int | None = None,
             with_ssim: bool = True, progress: Callable[[int], None] | None = None,
             keep_images: list | None = None) -> Evaluation:
    """Render the views of `scene` on white and compare with the ground truth composited on white.

    `max_views` keeps the first views only; rendered images are appended to `keep_images` if given.
    """
    import time

    n = scene.n_views if max_views is None else min(max_views, scene.n_views)
    targets = scene.rgb(WHITE)
    per_view = []
    rays = 0
    samples = 0
    seconds = 0.0
    for k in range(n):
        start = time.perf_counter()
        image, spr = render_view(model, scene.poses[k], scene.focal, scene.height, scene.width, hooks=hooks)
        seconds += time.perf_counter() - start
        rays += spr.size
        samples += int(spr.sum())
        entry = {"view": k, "psnr": psnr(image, targets[k])}
        if with_ssim:
            entry["ssim"] = ssim(image, targets[k])
        per_view.append(entry)
        if keep_images is not None:
            keep_images.append(image)
        if progress is not None:
            progress(1)
    return Evaluation(
        psnr=float(np.mean([v["psnr"] for v in per_view])),
        ssim=float(np.mean([v["ssim"] for v in per_view])) if with_ssim else float("nan"),
        per_view=per_view,
        rays_per_s=rays / max(seconds, 1e-9),
        mean_samples_per_ray=samples / max(rays, 1),
    )
