"""An Instant-NGP-style NeRF in NumPy + Numba: hash grid, SH-4 directions, bias-free MLPs, occupancy
grid, ray marching and volume rendering, with every forward and backward pass written by hand.

    from hero_lite.nerf import ModelConfig, NGPModel, TrainConfig, evaluate, train
    model = NGPModel.create(ModelConfig(), train_scene.aabb, rng)
    train(model, train_scene, TrainConfig(), rng, steps=2000)
    evaluate(model, test_scene).psnr          # dB, white background

Imports `hero_lite.scenes` only. Quantization reaches the model through `QuantHooks` (hooks.py),
which `hero_lite.quant` implements, so this layer never imports `quant`.
"""

from hero_lite.nerf.checkpoint import load_checkpoint, save_checkpoint
from hero_lite.nerf.config import HashGridConfig, ModelConfig, TrainConfig
from hero_lite.nerf.evaluate import Evaluation, evaluate, render_view
from hero_lite.nerf.hooks import QuantHooks
from hero_lite.nerf.metrics import psnr, ssim
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.occupancy import OccupancyGrid
from hero_lite.nerf.pipeline import train_run
from hero_lite.nerf.render import RenderResult, march_rays, render_rays
from hero_lite.nerf.trace import FrameTrace, trace_view
from hero_lite.nerf.train import TrainSummary, train

__all__ = [
    "Evaluation",
    "FrameTrace",
    "HashGridConfig",
    "ModelConfig",
    "NGPModel",
    "OccupancyGrid",
    "QuantHooks",
    "RenderResult",
    "TrainConfig",
    "TrainSummary",
    "evaluate",
    "load_checkpoint",
    "march_rays",
    "psnr",
    "render_rays",
    "render_view",
    "save_checkpoint",
    "ssim",
    "trace_view",
    "train",
    "train_run",
]
