"""Calibration of activation ranges over training batches (post-training quantization).

`minmax` keeps the running minimum and maximum of each activation over the batches (CAQ code,
about 100 batches there). `percentile` keeps a random subsample of
each activation's values and takes the [100 - p, p] percentiles, which clips rare outliers.
ReLU, exp and sigmoid outputs are unsigned: their lower bound is 0.
"""

from __future__ import annotations

import numpy as np

from hero_lite.nerf.hooks import ACTIVATION_POINTS, QuantHooks
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.sh import sh_encode
from hero_lite.nerf.train import sample_ray_batch
from hero_lite.scenes import Scene

METHODS = ("minmax", "percentile")


class _RangeRecorder(QuantHooks):
    """Identity hooks that record what flows through every activation point."""

    active = True

    def __init__(self, method: str, rng: np.random.Generator, sample_size: int):
        self.method = method
        self.rng = rng
        self.sample_size = sample_size
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}
        self.samples: dict[str, list[np.ndarray]] = {}

    def activation(self, name: str, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return x
        self.lo[name] = min(self.lo.get(name, np.inf), float(x.min()))
        self.hi[name] = max(self.hi.get(name, -np.inf), float(x.max()))
        if self.method == "percentile":
            flat = x.reshape(-1)
            take = self.rng.integers(0, flat.size, size=min(self.sample_size, flat.size))
            self.samples.setdefault(name, []).append(flat[take].copy())
        return x


def calibrate_activations(model: NGPModel, scene: Scene, rng: np.random.Generator, method: str = "minmax",
                          n_batches: int = 8, rays_per_batch: int = 4096, percentile: float = 99.99,
                          hooks: QuantHooks | None = None) -> dict[str, tuple[float, float]]:
    """Ranges (lo, hi) of every activation point over `n_batches` batches of training rays.

    Parameters
    ----------
    model : NGPModel (fp32, or run through `hooks` if given: ranges then follow the quantized
        upstream layers).
    scene : training views.
    method : 'minmax' or 'percentile'.
    percentile : p for the percentile method (the range is [P_{100-p}, P_p]).

    Returns
    -------
    dict point name -> (lo, hi) floats, for every name in ACTIVATION_POINTS.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r}; valid: {', '.join(METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise ValueError(f"percentile = {percentile}; valid: (50, 100]")
    recorder = _RangeRecorder(method, rng, sample_size=1 << 15)
    chain = _Chain(hooks, recorder) if hooks is not None and hooks.active else recorder
    n_views, h, w = scene.images.shape[:3]
    pixels = np.ascontiguousarray(scene.images.reshape(n_views * h * w, 4), dtype=np.float32)
    for _ in range(n_batches):
        batch = sample_ray_batch(model, scene, pixels, rays_per_batch, rng, 1 << 17)
        model.forward(batch.positions, sh_encode(batch.directions), batch.ray_ids, chain)
    ranges = {}
    for name in ACTIVATION_POINTS:
        if name not in recorder.lo:
            raise ValueError(f"calibration saw no samples for {name}: does the model have occupied cells?")
        if method == "minmax":
            lo, hi = recorder.lo[name], recorder.hi[name]
        else:
            values = np.concatenate(recorder.samples[name])
            lo, hi = (float(v) for v in np.percentile(values, [100.0 - percentile, percentile]))
        ranges[name] = (lo, hi)
    return ranges


class _Chain(QuantHooks):
    """Apply `first` (quantization) and record its output with `recorder`."""

    active = True

    def __init__(self, first: QuantHooks, recorder: _RangeRecorder):
        self.first = first
        self.recorder = recorder

    def table(self, table):
        return self.first.table(table)

    def weight(self, name, weight):
        return self.first.weight(name, weight)

    def activation(self, name, x):
        self.recorder.activation(name, x)
        return self.first.activation(name, x)
