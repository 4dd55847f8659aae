"""Trace of one frame's work, as plain arrays: what an accelerator must do to render a view.

The trace comes from the model's own inference rendering (occupancy-grid marching with empty-space
skipping, rounds, early termination at T < 1e-4): for every ray, the samples actually composited
and the marching steps taken, and for every composited sample its position in the unit cube, from
which the hash-grid corner indices of every level follow (`hashgrid.corner_indices`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.nerf.evaluate import view_rays
from hero_lite.nerf.hooks import QuantHooks
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.render import PackedSamples, ray_aabb


@dataclass
class FrameTrace:
    """One frame's work, rays in raster order (row-major, index = row * width + col).

    Attributes
    ----------
    width, height : the frame of rays: pixels times the model's `supersample` s (s x s rays per
        pixel, `evaluate.view_rays`); n_rays = width * height.
    samples_per_ray : (n_rays,) int64, samples composited (after occupancy skipping and early
        termination).
    march_steps_per_ray : (n_rays,) int64, constant-step positions the sampler visited (occupied
        or not) from the box entry until the ray terminated or left the box.
    positions : (n_samples, 3) float32 in [0, 1]^3, the composited samples, ray after ray, front
        to back; n_samples = samples_per_ray.sum().
    image : (height, width, 3) float32, the colour of every ray (white background); with s > 1 a
        pixel is the mean of its s x s block (`evaluate.block_mean`).
    """

    width: int
    height: int
    samples_per_ray: np.ndarray
    march_steps_per_ray: np.ndarray
    positions: np.ndarray
    image: np.ndarray

    @property
    def n_rays(self) -> int:
        return int(self.samples_per_ray.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.positions.shape[0])

    @property
    def ray_offsets(self) -> np.ndarray:
        offsets = np.zeros(self.n_rays + 1, dtype=np.int64)
        np.cumsum(self.samples_per_ray, out=offsets[1:])
        return offsets


def trace_view(model: NGPModel, pose: np.ndarray, focal: float, height: int, width: int,
               hooks: QuantHooks | None = None) -> FrameTrace:
    """Render one view and record its work.

    Parameters
    ----------
    pose : (4, 4) camera-to-world; focal in pixels; height, width in pixels (the trace has
        s * height x s * width rays, s = model.config.supersample).
    hooks : optional quantization hooks (the trace then follows the quantized model).
    """
    supersample = model.config.supersample
    origins, dirs = view_rays(pose, focal, height, width, supersample)
    height, width = height * supersample, width * supersample
    rounds_pos, rounds_t, rounds_ray = [], [], []

    def record(packed: PackedSamples, ray_ids: np.ndarray) -> None:
        rounds_pos.append(packed.positions)
        rounds_t.append(packed.ts)
        rounds_ray.append(ray_ids)

    result = model.render(origins, dirs, background=(1.0, 1.0, 1.0), hooks=hooks, on_samples=record)
    n_rays = origins.shape[0]
    used = result.samples_per_ray
    if rounds_ray:
        ray_ids = np.concatenate(rounds_ray)
        positions = np.concatenate(rounds_pos)
        ts = np.concatenate(rounds_t)
    else:
        ray_ids = np.zeros(0, np.int64)
        positions = np.zeros((0, 3), np.float32)
        ts = np.zeros(0, np.float32)
    # Rounds append in order and keep each ray's samples front to back, so a stable sort by ray
    # gives every ray's samples in marching order; keep the first `used[r]` (the composited ones).
    order = np.argsort(ray_ids, kind="stable")
    evaluated = np.bincount(ray_ids, minlength=n_rays)
    starts = np.zeros(n_rays + 1, dtype=np.int64)
    np.cumsum(evaluated, out=starts[1:])
    rank = np.arange(order.size, dtype=np.int64) - np.repeat(starts[:-1], evaluated)
    keep = order[rank < np.repeat(used, evaluated)]
    positions = np.ascontiguousarray(positions[keep])
    # Marching steps: from the box entry to the last composited sample of a terminated ray, or to
    # the box exit of a ray that ran out of box (constant step dt).
    dt = model.config.render_step_size
    t_near, t_far = ray_aabb(origins, dirs, model.aabb)
    hit = t_near < t_far
    t_stop = np.where(hit, t_far, t_near).astype(np.float64)
    terminated = result.opacity > 1.0 - 1e-4
    last = np.full(n_rays, -1, dtype=np.int64)
    has = used > 0
    last_sorted_index = starts[:-1] + used - 1
    last[has] = order[last_sorted_index[has]]
    t_last = np.where(has, ts[np.maximum(last, 0)] if ts.size else 0.0, t_near)
    t_stop = np.where(terminated & has, t_last + 0.5 * dt, t_stop)
    steps = np.where(hit, np.ceil(np.maximum(t_stop - t_near, 0.0) / dt), 0).astype(np.int64)
    return FrameTrace(width=width, height=height, samples_per_ray=used.astype(np.int64),
                      march_steps_per_ray=steps, positions=positions,
                      image=result.colors.reshape(height, width, 3))
