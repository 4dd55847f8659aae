"""Episode evaluation: the quality and the hardware cost of a policy, cached by policy.

Quality: copy the fp32 model, apply the policy with activation ranges
calibrated once on the fp32 model (min/max ranges do not depend on the bits), a short
quantization-aware fine-tune, then PSNR on a few validation views, optionally at reduced
resolution. Test views are never used here; only the final report sees them.
Cost: the event simulation of the traced frame(s); a fast estimate serves the budget wall.

Each evaluation is a pure function of (policy, seed): the fine-tune's generator is seeded from
both, so a cached result equals a recomputed one and resumed searches reproduce their logs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from hero_lite.accel import AccelConfig, simulate
from hero_lite.accel.estimate import CostEstimator
from hero_lite.accel.workload import Workload
from hero_lite.nerf.evaluate import evaluate
from hero_lite.nerf.model import NGPModel
from hero_lite.quant.calibrate import calibrate_activations
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.policy import QuantPolicy
from hero_lite.quant.qat import quantization_aware_training
from hero_lite.scenes import Scene


def policy_seed(seed: int, policy: QuantPolicy) -> int:
    """A seed derived from the run seed and the policy's bits (stable across processes)."""
    text = f"{seed}:" + ",".join(f"{k}={v}" for k, v in sorted(policy.bits.items()))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def downscale_views(views: Scene, factor: int, count: int) -> Scene:
    """The first `count` views at 1/factor resolution (box filter, premultiplied colour)."""
    from dataclasses import replace

    images = views.images[:count]
    if factor > 1:
        n, h, w = images.shape[:3]
        h2, w2 = h // factor, w // factor
        crop = images[:, : h2 * factor, : w2 * factor]
        alpha = crop[..., 3:4]
        premult = np.concatenate([crop[..., :3] * alpha, alpha], axis=-1)
        pooled = premult.reshape(n, h2, factor, w2, factor, 4).mean(axis=(2, 4))
        a = pooled[..., 3:4]
        rgb = np.where(a > 0, pooled[..., :3] / np.maximum(a, 1e-12), 0.0)
        images = np.concatenate([rgb, a], axis=-1).astype(np.float32)
    return replace(views, images=np.ascontiguousarray(images), poses=views.poses[:count], focal=views.focal / factor)


@dataclass
class Quality:
    """Validation PSNR (dB) of a policy after the short fine-tune."""

    psnr: float
    qat_steps: int


class PolicyEvaluator:
    """Quality and cost of policies for one fp32 model, scene and accelerator.

    Parameters
    ----------
    model : the fp32 NGPModel (never modified).
    train_scene : views for calibration and quantization-aware training.
    val_scene : validation views (already reduced, see `downscale_views`).
    workloads : traced frames for the simulator (one per view).
    accel : AccelConfig; area_mode : 'fixed' | 'fit' | None (the config's).
    qat_steps, qat_samples : length and batch of the per-episode fine-tune.
    seed : run seed.
    """

    def __init__(self, model: NGPModel, train_scene: Scene, val_scene: Scene, workloads: list[Workload],
                 accel: AccelConfig, qat_steps: int, qat_samples: int, seed: int, area_mode: str | None = None,
                 qat_lr: float = 1e-3):
        self.model = model
        self.train_scene = train_scene
        self.val_scene = val_scene
        self.workloads = workloads
        self.accel = accel
        self.area_mode = area_mode
        self.qat_steps = qat_steps
        self.qat_samples = qat_samples
        self.qat_lr = qat_lr
        self.seed = seed
        self.ranges = calibrate_activations(model, train_scene, np.random.default_rng(seed))
        self.fp32_psnr = evaluate(model, val_scene, with_ssim=False).psnr
        self.estimators = [CostEstimator(w, accel, area_mode) for w in workloads]
        self._quality: dict[tuple, Quality] = {}
        self._cost: dict[tuple, dict] = {}

    # ------------------------------------------------------------------ quality

    def quality(self, policy: QuantPolicy) -> Quality:
        key = policy.key()
        if key not in self._quality:
            self._quality[key] = self._measure_quality(policy)
        return self._quality[key]

    def _measure_quality(self, policy: QuantPolicy) -> Quality:
        model = self.model.copy()
        hooks = FakeQuantHooks(model, policy, self.ranges)
        rng = np.random.default_rng(policy_seed(self.seed, policy))
        quantization_aware_training(model, self.train_scene, hooks, self.qat_steps, rng, lr=self.qat_lr,
                                    samples_per_step=self.qat_samples)
        psnr = evaluate(model, self.val_scene, hooks=hooks, with_ssim=False).psnr
        return Quality(psnr=psnr, qat_steps=self.qat_steps)

    # ------------------------------------------------------------------ cost

    def estimate(self, bits: dict[str, int]) -> dict[str, float]:
        """Fast cost estimate (mean over views) for the budget wall."""
        latency = float(np.mean([e.latency_ms(bits) for e in self.estimators]))
        return {
            "latency_ms": latency,
            "area_mm2": float(self.estimators[0].area_mm2(bits)),
            "energy_uj": float(np.mean([e.energy_uj(bits) for e in self.estimators])),
            "model_bytes": float(self.estimators[0].model_bytes(bits)),
        }

    def cost(self, policy: QuantPolicy | dict) -> dict[str, float]:
        """Event-simulated cost (mean over views): latency_ms, area_mm2, energy_uj, model_bytes,
        cost_efficiency, dram_bytes, fps, plus the first view's unit shares."""
        bits = policy.bits if isinstance(policy, QuantPolicy) else dict(policy)
        key = tuple(sorted(bits.items()))
        if key not in self._cost:
            reports = [simulate(w, bits, self.accel, area_mode=self.area_mode) for w in self.workloads]
            latency = float(np.mean([r.latency_ms for r in reports]))
            area = float(reports[0].area_mm2)
            self._cost[key] = {
                "latency_ms": latency,
                "area_mm2": area,
                "energy_uj": float(np.mean([r.energy_uj for r in reports])),
                "model_bytes": float(reports[0].model_bytes),
                "cost_efficiency": 1.0 / (latency * area),
                "fps": 1000.0 / latency,
                "dram_bytes": float(np.mean([r.dram_bytes for r in reports])),
                "unit_shares": reports[0].unit_shares(),
            }
        return self._cost[key]
