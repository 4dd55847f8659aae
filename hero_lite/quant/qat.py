"""Quantization-aware training: a short fine-tune with fake quantization in the loop.

Tables and weights keep training in fp32 ("master" copies) while the forward pass sees their
fake-quantized values; gradients flow back through the clipped straight-through estimator
(Bengio et al. 2013). Tensor ranges follow the tensors (dynamic hooks); activation
ranges stay at their calibrated values. The occupancy grid is not updated.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hero_lite.nerf.config import TrainConfig
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.train import StepStats, TrainSummary, train
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.scenes import Scene

QAT_LR = 1e-3  # a tenth of the fp32 rate, like CAQ's QAT (CAQ code `nerf/utils.py`)


def qat_config(lr: float = QAT_LR, samples_per_step: int = 1 << 16) -> TrainConfig:
    """Training config of QAT: the fp32 recipe with a tenth of its learning rate.

    A fine-tune trains a supersampled model with its s x s rays from the first step (no one-ray start).
    """
    return TrainConfig(lr=lr, samples_per_step=samples_per_step, supersample_from=0.0)


def quantization_aware_training(model: NGPModel, scene: Scene, hooks: FakeQuantHooks, steps: int,
                                rng: np.random.Generator, lr: float = QAT_LR, samples_per_step: int = 1 << 16,
                                progress: Callable[[int, StepStats], None] | None = None) -> TrainSummary:
    """Fine-tune `model` in place for `steps` steps through `hooks`, then freeze the hooks.

    Returns the TrainSummary of the fine-tune (0 steps returns immediately, hooks frozen).
    """
    hooks.thaw()
    summary = train(model, scene, qat_config(lr, samples_per_step), rng, steps=steps, hooks=hooks,
                    update_occupancy=False, progress=progress)
    hooks.freeze()
    return summary
