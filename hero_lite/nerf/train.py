"""Training of the NGP model on a Blender-format scene, forward and backward by hand.

One step (instant-ngp / nerfacc recipe: NGP paper section 4, instant-ngp `testbed_nerf.cu`):
1. occupancy update on the instant-ngp schedule (all cells for the first 256 steps, which cull
   none; cells the training views see through are carved at the start), see `occupancy`;
2. random pixels of random training views, one ray through each pixel centre (or the mean of
   s x s rays through sub-pixel centres, `ModelConfig.supersample`, from progress
   `TrainConfig.supersample_from` on), jittered constant-step
   marching with empty-space skipping, packed samples;
3. the density of every sample, then the whole network on the live samples only, those before each
   ray's early termination (instant-ngp's compaction; the others have no effect on the colour or
   the gradients, and are 55-75 % of the samples on a trained scene), compositing over a random
   background per pixel (the target is composited over the same colour, which forces zero density
   where the background shows);
4. Huber (or MSE) loss, backward, Adam with skip-zero-gradient hash rows;
5. the ray count is rescaled so the next step marches about `samples_per_step` samples.

Schedules are defined by progress in [0, 1]: step / steps for step-budgeted runs (bit-reproducible
for a seed) or elapsed / seconds for time-budgeted runs (stop on the clock, not reproducible).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hero_lite.nerf.config import TrainConfig
from hero_lite.nerf.hooks import QuantHooks
from hero_lite.nerf.metrics import mse_to_psnr
from hero_lite.nerf.model import ForwardPass, NGPModel
from hero_lite.nerf.occupancy import carve_empty_cells, update_interval
from hero_lite.nerf.optim import Adam
from hero_lite.nerf.render import (TRANSMITTANCE_EPS, composite, composite_backward, live_samples_in_rounds,
                                   march_rays, ray_aabb)
from hero_lite.nerf.sh import sh_encode
from hero_lite.scenes import Scene
from hero_lite.scenes.cameras import pixel_rays


def learning_rate(config: TrainConfig, progress: float) -> float:
    """lr * factor^(number of decay points passed); progress in [0, 1]."""
    n_passed = sum(1 for p in config.lr_decay_at if progress >= p)
    return config.lr * config.lr_decay_factor**n_passed


def loss_and_grad(pred: np.ndarray, target: np.ndarray, kind: str, delta: float) -> tuple[float, np.ndarray]:
    """Mean loss over rays and channels and its gradient.

    Huber (tcnn/nerfacc smooth-L1 form): 0.5 d^2 / delta for |d| <= delta, |d| - 0.5 delta otherwise,
    scaled by delta so small errors cost 0.5 d^2 like MSE / 2; MSE: d^2.

    Parameters
    ----------
    pred, target : (n_rays, 3) float32.

    Returns
    -------
    loss (float), grad (n_rays, 3) float32 = dloss/dpred.
    """
    diff = pred - target
    count = diff.size
    if kind == "mse":
        return float(np.mean(diff * diff)), (2.0 / count * diff).astype(np.float32)
    absd = np.abs(diff)
    small = absd <= delta
    loss = np.where(small, 0.5 * diff * diff, delta * (absd - 0.5 * delta))
    grad = np.where(small, diff, delta * np.sign(diff)) / count
    return float(loss.mean()), grad.astype(np.float32)


@dataclass
class RayBatch:
    """Random training pixels, their rays and their packed samples.

    Every pixel has `rays_per_pixel` consecutive rays (ModelConfig.supersample squared).

    Attributes
    ----------
    directions : (n_rays, 3) float32 unit directions.
    target_rgba : (n_pixels, 4) float32 ground-truth pixels (straight alpha).
    ray_offsets : (n_rays + 1,) int64; positions : (n_samples, 3) float32 unit cube;
    ray_ids : (n_samples,) int64.
    rays_per_pixel : int.
    """

    directions: np.ndarray
    target_rgba: np.ndarray
    ray_offsets: np.ndarray
    positions: np.ndarray
    ray_ids: np.ndarray
    rays_per_pixel: int = 1

    @property
    def n_rays(self) -> int:
        return int(self.directions.shape[0])

    @property
    def n_pixels(self) -> int:
        return int(self.target_rgba.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.ray_offsets[-1])


def subpixel_offsets(supersample: int) -> np.ndarray:
    """(s * s, 2) float64 (row, col) offsets inside a pixel: the centres (k + 0.5) / s of an s x s grid.

    Row-major, so a pixel's rays are the pixel centres of the s-times-larger camera in raster order.
    """
    centres = (np.arange(supersample) + 0.5) / supersample
    rows, cols = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def sample_ray_batch(model: NGPModel, scene: Scene, pixels: np.ndarray, n_rays: int, rng: np.random.Generator,
                     max_samples: int, supersample: int | None = None) -> RayBatch:
    """Random pixels of random views, s x s rays each, jittered marching with occupancy skipping.

    Parameters
    ----------
    pixels : (n_views * H * W, 4) float32, the scene's images flattened.
    n_rays : rays wanted; n_rays // s^2 pixels (at least one).
    max_samples : keep whole pixels up to this many samples, so a bad ray-count guess cannot blow memory.
    supersample : s, rays per pixel along each axis; None takes model.config.supersample.
    """
    dt = model.config.step_size
    if supersample is None:
        supersample = model.config.supersample
    rays_per_pixel = supersample**2
    n_pixels = max(n_rays // rays_per_pixel, 1)
    n_views, height, width = scene.images.shape[:3]
    pix = rng.integers(0, n_views * height * width, size=n_pixels, dtype=np.int64)
    view = pix // (height * width)
    rem = pix % (height * width)
    rows, cols = rem // width, rem % width
    subpixel = subpixel_offsets(supersample)  # [[0.5, 0.5]]: the pixel centre
    origins, dirs = pixel_rays(scene.poses, scene.focal, height, width, np.repeat(view, rays_per_pixel),
                               (rows[:, None] + subpixel[None, :, 0]).ravel(),
                               (cols[:, None] + subpixel[None, :, 1]).ravel())
    n_rays = n_pixels * rays_per_pixel
    t_near, t_far = ray_aabb(origins, dirs, model.aabb)
    t_start = (t_near + rng.random(n_rays, dtype=np.float32) * np.float32(dt)).astype(np.float32)
    packed = march_rays(origins, dirs, t_start, t_far, dt, model.aabb, model.occupancy.bitfield)
    offsets = packed.ray_offsets
    if packed.n_samples > max_samples:
        n_rays = int(np.searchsorted(offsets, max_samples, side="right") - 1)
        n_pixels = max(n_rays // rays_per_pixel, 1)
        n_rays = n_pixels * rays_per_pixel
        offsets = offsets[: n_rays + 1]
    n_samples = int(offsets[-1])
    ray_ids = np.repeat(np.arange(n_rays, dtype=np.int64), np.diff(offsets))
    return RayBatch(directions=dirs[:n_rays], target_rgba=pixels[pix[:n_pixels]], ray_offsets=offsets,
                    positions=packed.positions[:n_samples], ray_ids=ray_ids, rays_per_pixel=rays_per_pixel)


def pixel_means(ray_values: np.ndarray, rays_per_pixel: int) -> np.ndarray:
    """(n_pixels * k, C) per-ray values -> (n_pixels, C) means over each pixel's k consecutive rays."""
    if rays_per_pixel == 1:
        return ray_values
    n_pixels = ray_values.shape[0] // rays_per_pixel
    return ray_values.reshape(n_pixels, rays_per_pixel, -1).mean(axis=1, dtype=ray_values.dtype)


def pixel_loss_and_grad(ray_colors: np.ndarray, target: np.ndarray, rays_per_pixel: int, kind: str,
                        delta: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss of pixel colours that are means of k rays each, and its gradient per ray.

    Parameters
    ----------
    ray_colors : (n_pixels * k, 3) float32, a pixel's k rays consecutive; target : (n_pixels, 3).

    Returns
    -------
    loss (float), pixel_colors (n_pixels, 3), grad (n_pixels * k, 3) float32 = dloss/dray_colors.
    """
    pixel_colors = pixel_means(ray_colors, rays_per_pixel)
    loss, grad_pixels = loss_and_grad(pixel_colors, target, kind, delta)
    if rays_per_pixel == 1:
        return loss, pixel_colors, grad_pixels
    # d(mean of k rays)/d(ray) = 1/k
    return loss, pixel_colors, np.repeat(grad_pixels / np.float32(rays_per_pixel), rays_per_pixel, axis=0)


@dataclass
class BatchForward:
    """One batch through the model: the marched batch, its live part, the forward pass and the loss.

    Attributes
    ----------
    marched : RayBatch of every marched sample.
    evaluated : (n_evaluated,) int64 the marched samples whose density was computed (the live ones
        and those of the density round in which their ray terminated; `live_samples_in_rounds`);
        evaluated_positions : (n_evaluated, 3) float32 their unit-cube positions, and
        evaluated_sigmas : (n_evaluated,) float32 their densities, 1/world unit.
    live : RayBatch of the samples before each ray's early termination (same rays and pixels).
    fwd : ForwardPass of the live samples.
    ray_backgrounds, ray_colors : (n_rays, 3) float32, the colour behind each ray and the composited
        colour; pixel_colors, target : (n_pixels, 3) float32 (the ray arrays when a pixel has one ray);
        loss : float; grad_ray_colors : (n_rays, 3) float32.
    """

    marched: RayBatch
    evaluated: np.ndarray
    evaluated_positions: np.ndarray
    evaluated_sigmas: np.ndarray
    live: RayBatch
    fwd: ForwardPass
    ray_backgrounds: np.ndarray
    ray_colors: np.ndarray
    pixel_colors: np.ndarray
    target: np.ndarray
    loss: float
    grad_ray_colors: np.ndarray


@dataclass
class StepStats:
    """What one training step did: loss, batch PSNR (dB), rays, marched samples, learning rate, and
    the samples that went through the whole network (`n_live_samples`, the rest had terminated)."""

    loss: float
    psnr: float
    n_rays: int
    n_samples: int
    lr: float
    n_live_samples: int = 0


class Trainer:
    """Runs training steps of `model` on the training views of `scene`.

    Parameters
    ----------
    model : NGPModel, updated in place.
    scene : Scene with the training views (RGBA, straight alpha).
    config : TrainConfig.
    rng : the only source of randomness (pixels, jitter, backgrounds, occupancy samples).
    hooks : optional QuantHooks (quantization-aware training); `None` trains in fp32.
    update_occupancy : whether to run occupancy updates (off for quantization-aware fine-tuning).
    """

    def __init__(self, model: NGPModel, scene: Scene, config: TrainConfig, rng: np.random.Generator,
                 hooks: QuantHooks | None = None, update_occupancy: bool = True):
        self.model = model
        self.scene = scene
        self.config = config
        self.rng = rng
        self.hooks = hooks
        self.update_occupancy = update_occupancy
        n, h, w = scene.images.shape[:3]
        self.pixels = np.ascontiguousarray(scene.images.reshape(n * h * w, 4), dtype=np.float32)
        self.grads: dict[str, np.ndarray] = {"hash_table": np.zeros_like(model.params["hash_table"])}
        self.optimizer = Adam(model.params, sparse=("hash_table",), beta1=config.adam_beta1, beta2=config.adam_beta2,
                              eps=config.adam_eps, weight_decay=config.weight_decay)
        self.n_rays = config.initial_rays
        self.step_index = 0
        self.hull = None
        if update_occupancy and config.occupancy_carve:
            self.hull = carve_empty_cells(scene.images[..., 3], scene.poses, scene.focal, model.aabb,
                                          model.occupancy.res)
            model.occupancy.bitfield = model.occupancy.bitfield & self.hull

    def _occupancy_step(self) -> None:
        step = self.step_index
        if not self.update_occupancy or step % update_interval(step) != 0:
            return
        cfg = self.config
        self.model.occupancy.update(
            lambda pts: self.model.density(pts, self.hooks), self.rng, self.model.config.step_size,
            all_cells=step < cfg.occupancy_warmup_steps, decay=cfg.occupancy_decay, threshold=cfg.occupancy_threshold,
            mask=self.hull,
        )

    def _forward_batch(self, supersample: int | None = None) -> BatchForward:
        """Sample a batch (s x s rays per pixel, None: the model's s) and run the forward pass.

        Densities are computed first, in rounds along the rays until each ray terminates
        (`live_samples_in_rounds`); only the samples before each ray's early termination go through
        the whole network, with the hash features already computed. The colours and gradients are
        those of the full batch: the other samples contribute nothing to either.
        """
        cfg = self.config
        model = self.model
        rng = self.rng
        ws = model.workspace
        batch = sample_ray_batch(model, self.scene, self.pixels, self.n_rays, rng, 2 * cfg.samples_per_step,
                                 supersample)
        k = batch.rays_per_pixel
        width = model.config.encoding_width
        # positions and hash features of the evaluated samples, in evaluation order
        evaluated_positions = ws.get("evaluated_positions", batch.n_samples, 3)
        evaluated_features = ws.get("evaluated_features", batch.n_samples, width)
        n_evaluated = 0

        def density_of(samples):
            nonlocal n_evaluated
            rows = slice(n_evaluated, n_evaluated + samples.shape[0])
            n_evaluated = rows.stop
            positions = np.take(batch.positions, samples, axis=0, out=evaluated_positions[rows])
            return model.density(positions, self.hooks, features_out=evaluated_features[rows])

        found = live_samples_in_rounds(density_of, batch.ray_offsets, model.config.step_size, TRANSMITTANCE_EPS)
        index = found.index
        live = RayBatch(directions=batch.directions, target_rgba=batch.target_rgba, ray_offsets=found.live_offsets,
                        positions=batch.positions[index], ray_ids=batch.ray_ids[index], rays_per_pixel=k)
        live_features = np.take(evaluated_features, found.live_rows, axis=0,
                                out=ws.get("live_features", live.n_samples, width))
        sh = sh_encode(batch.directions)
        fwd = model.forward(live.positions, sh, live.ray_ids, self.hooks, features=live_features)
        # One background per pixel, shared by its rays: the pixel mean composites over it too.
        if cfg.random_background:
            bg = rng.random((batch.n_pixels, 3), dtype=np.float32)
        else:
            bg = np.ones((batch.n_pixels, 3), dtype=np.float32)
        ray_bg = bg if k == 1 else np.repeat(bg, k, axis=0)
        ray_colors, _ = composite(fwd.sigmas, fwd.rgbs, model.config.step_size, live.ray_offsets, ray_bg,
                                  TRANSMITTANCE_EPS)
        alpha = batch.target_rgba[:, 3:4]
        target = batch.target_rgba[:, :3] * alpha + bg * (1.0 - alpha)
        loss, pixel_colors, grad_rays = pixel_loss_and_grad(ray_colors, target, k, cfg.loss, cfg.huber_delta)
        return BatchForward(marched=batch, evaluated=found.evaluated, evaluated_positions=evaluated_positions[:n_evaluated],
                            evaluated_sigmas=found.evaluated_sigmas, live=live, fwd=fwd,
                            ray_backgrounds=ray_bg, ray_colors=ray_colors,
                            pixel_colors=pixel_colors, target=target, loss=loss, grad_ray_colors=grad_rays)

    def mean_loss(self, batches: int) -> float:
        """Mean training loss of the current model over `batches` fresh batches, without updating it."""
        return float(np.mean([self._forward_batch().loss for _ in range(batches)]))

    def step(self, progress: float) -> StepStats:
        """One optimisation step at schedule progress `progress` in [0, 1]."""
        cfg = self.config
        model = self.model
        self._occupancy_step()

        # One ray per pixel before `supersample_from` (see TrainConfig), then the model's s x s rays.
        supersample = model.config.supersample if progress >= cfg.supersample_from else 1
        out = self._forward_batch(supersample)
        fwd = out.fwd
        n_rays, n_samples = out.marched.n_rays, out.marched.n_samples
        grad_sigmas, grad_rgbs = composite_backward(fwd.sigmas, fwd.rgbs, model.config.step_size, out.live.ray_offsets,
                                                    out.ray_colors, out.grad_ray_colors, TRANSMITTANCE_EPS)
        if self.update_occupancy and cfg.occupancy_splat:
            model.occupancy.splat(out.evaluated_positions, out.evaluated_sigmas, model.config.step_size)
        model.backward(fwd, grad_sigmas, grad_rgbs, self.grads, self.hooks)
        lr = learning_rate(cfg, progress)
        self.optimizer.step(self.grads, lr)

        # Rescale the ray count toward the sample budget (instant-ngp), in multiples of 128. The budget
        # counts marched samples: counting only the live ones (as instant-ngp's compacted batch does)
        # took 2-3x the rays per step and lost 0.4-0.8 dB after 120 s on lattice and primitives (measured).
        measured = max(n_samples / max(n_rays, 1), 1.0)
        wanted = int(cfg.samples_per_step / measured)
        self.n_rays = int(min(max(128, wanted // 128 * 128), cfg.max_rays))
        self.step_index += 1
        mse = float(np.mean((out.pixel_colors - out.target) ** 2))
        return StepStats(loss=out.loss, psnr=mse_to_psnr(mse), n_rays=n_rays, n_samples=n_samples, lr=lr,
                         n_live_samples=out.live.n_samples)


@dataclass
class TrainSummary:
    """Totals of a training run: steps, seconds, marched samples, the last step's stats, and the
    live samples (those that went through the network)."""

    steps: int
    seconds: float
    samples: int
    samples_per_s: float
    last: StepStats | None
    live_samples: int = 0


def train(
    model: NGPModel,
    scene: Scene,
    config: TrainConfig,
    rng: np.random.Generator,
    steps: int | None = None,
    seconds: float | None = None,
    hooks: QuantHooks | None = None,
    update_occupancy: bool = True,
    progress: Callable[[int, StepStats], None] | None = None,
) -> TrainSummary:
    """Train for `steps` steps (reproducible) or for `seconds` of wall clock.

    Exactly one of `steps` and `seconds` must be given. `progress(step, stats)` is called after
    every step.
    """
    if (steps is None) == (seconds is None):
        raise ValueError("give exactly one of steps and seconds")
    if steps is not None and steps < 0:
        raise ValueError(f"steps = {steps}; valid: >= 0")
    if seconds is not None and not seconds > 0:
        raise ValueError(f"seconds = {seconds}; valid: > 0")
    trainer = Trainer(model, scene, config, rng, hooks=hooks, update_occupancy=update_occupancy)
    start = time.perf_counter()
    total_samples = 0
    total_live = 0
    last = None
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        if steps is not None:
            if step >= steps:
                break
            frac = step / max(steps, 1)
        else:
            if elapsed >= seconds:
                break
            frac = elapsed / seconds
        last = trainer.step(frac)
        total_samples += last.n_samples
        total_live += last.n_live_samples
        step += 1
        if progress is not None:
            progress(step, last)
    seconds_used = time.perf_counter() - start
    return TrainSummary(steps=step, seconds=seconds_used, samples=total_samples,
                        samples_per_s=total_samples / max(seconds_used, 1e-9), last=last, live_samples=total_live)
