"""What `hero-lite quantize` does, as a library function: calibrate, QAT, evaluate, export."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.evaluate import evaluate
from hero_lite.nerf.model import NGPModel
from hero_lite.quant.calibrate import calibrate_activations
from hero_lite.quant.export import load_quantized, save_quantized
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.points import fp32_bytes
from hero_lite.quant.policy import QuantPolicy
from hero_lite.quant.qat import QAT_LR, quantization_aware_training
from hero_lite.scenes import Scene


def quantize_model(model: NGPModel, policy: QuantPolicy, train_scene: Scene, rng: np.random.Generator,
                   qat_steps: int = 0, calibration: str = "minmax", qat_lr: float = QAT_LR,
                   per_channel: bool = False, progress: Callable | None = None) -> FakeQuantHooks:
    """Calibrate activation ranges, optionally fine-tune (QAT, `model` changes in place), freeze.

    Returns frozen FakeQuantHooks: evaluate with `evaluate(model, views, hooks=...)` or export them.
    """
    ranges = calibrate_activations(model, train_scene, rng, method=calibration)
    hooks = FakeQuantHooks(model, policy, ranges, per_channel=per_channel)
    if qat_steps > 0:
        quantization_aware_training(model, train_scene, hooks, qat_steps, rng, lr=qat_lr, progress=progress)
    return hooks.freeze()


def quantize_run(checkpoint: str, scene_dir: str, policy_source, out_path: str | None, qat_steps: int = 0,
                 calibration: str = "minmax", seed: int = 0, qat_lr: float = QAT_LR, per_channel: bool = False,
                 progress: Callable | None = None, scene_downscale: int = 1) -> dict:
    """Quantize the fp32 `checkpoint` with a policy and report test PSNR and exact model bytes.

    Parameters
    ----------
    policy_source : QuantPolicy, or a callable config -> QuantPolicy (for command-line shorthands).
    out_path : where to write the packed quantized checkpoint (None: do not write).
    scene_downscale : the train and test views are read at 1/scene_downscale of their image size
        (`hero_lite.scenes.load_scene`).

    Returns
    -------
    dict with psnr, ssim, fp32_psnr (dB), model_bytes, fp32_bytes, compression, policy, qat_steps,
    calibration, scene_downscale, seconds.
    """
    from hero_lite.scenes import load_scene

    start = time.perf_counter()
    model, metadata = load_checkpoint(checkpoint)
    if isinstance(policy_source, QuantPolicy):
        policy = QuantPolicy.from_dict(policy_source.to_dict(), model.config)  # rejects another model's policy
    else:
        policy = policy_source(model.config)
    train_scene = load_scene(scene_dir, "train", scene_downscale)
    test_scene = load_scene(scene_dir, "test", scene_downscale)
    rng = np.random.default_rng(seed)
    fp32 = evaluate(model, test_scene, with_ssim=False)
    hooks = quantize_model(model, policy, train_scene, rng, qat_steps=qat_steps, calibration=calibration,
                           qat_lr=qat_lr, per_channel=per_channel, progress=progress)
    result = evaluate(model, test_scene, hooks=hooks)
    if out_path is not None:
        model_bytes = save_quantized(out_path, model, hooks, {"source_checkpoint": checkpoint, "qat_steps": qat_steps,
                                                               "calibration": calibration, "seed": seed})
    else:
        model_bytes = policy.model_bytes(model.config)
    full = fp32_bytes(policy.points(model.config))
    return {
        "psnr": result.psnr,
        "ssim": result.ssim,
        "fp32_psnr": fp32.psnr,
        "psnr_drop": fp32.psnr - result.psnr,
        "model_bytes": int(model_bytes),
        "fp32_bytes": int(full),
        "compression": full / model_bytes,
        "policy": policy.to_dict(),
        "qat_steps": qat_steps,
        "calibration": calibration,
        "scene_downscale": scene_downscale,
        "per_view": result.per_view,
        "seconds": time.perf_counter() - start,
    }


def load_any_checkpoint(path: str):
    """(model, hooks or None, metadata) of an fp32 or a quantized checkpoint."""
    from hero_lite.quant.export import is_quantized_checkpoint

    if is_quantized_checkpoint(path):
        return load_quantized(path)
    model, metadata = load_checkpoint(path)
    return model, None, metadata
