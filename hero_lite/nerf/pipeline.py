"""Train-and-evaluate runs: what `hero-lite train` does, as a library function.

A run folder holds `checkpoint.h5` (see `hero_lite.nerf.checkpoint`), `metrics.json` and
`config.json` (the resolved model and training configs). Every file is written atomically.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from hero_lite.nerf.checkpoint import save_checkpoint
from hero_lite.nerf.config import ModelConfig, TrainConfig
from hero_lite.nerf.evaluate import evaluate
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.train import StepStats, train
from hero_lite.runfolder import folder_digest, write_json_atomically
from hero_lite.scenes import Scene, load_scene


def warm_up(model_config: ModelConfig, scene: Scene) -> float:
    """Compile (or load from cache) every training and rendering kernel on a throwaway model.

    Returns the seconds it took, so timed runs do not count JIT time against their budget.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(12345)
    model = NGPModel.create(model_config, scene.aabb, rng)
    config = TrainConfig(samples_per_step=1024, initial_rays=64, occupancy_warmup_steps=1)
    train(model, scene, config, rng, steps=2)
    model.render(*_one_ray(scene))
    return time.perf_counter() - start


def _one_ray(scene: Scene):
    from hero_lite.scenes.cameras import pixel_rays

    return pixel_rays(scene.poses[:1], scene.focal, scene.height, scene.width, np.zeros(1, np.int64),
                      np.full(1, scene.height / 2), np.full(1, scene.width / 2))


def train_run(
    scene_dir: str,
    run_dir: str,
    steps: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    progress: Callable[[int, StepStats], None] | None = None,
    scene_downscale: int = 1,
) -> dict:
    """Train on the scene's train split, evaluate on val and test, write the run folder.

    Every split is read at 1/scene_downscale of its image size (`hero_lite.scenes.load_scene`);
    the factor is recorded in `config.json` and `metrics.json` as "scene_downscale".
    Returns the metrics dict written to `run_dir/metrics.json`: test_psnr, test_ssim, val_psnr
    (dB), steps, train_seconds, samples_per_s, eval_rays_per_s, jit_seconds, ...
    """
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    scene_digest = folder_digest(scene_dir)  # of the files this run reads, before it reads them
    train_scene = load_scene(scene_dir, "train", scene_downscale)
    val_scene = load_scene(scene_dir, "val", scene_downscale)
    test_scene = load_scene(scene_dir, "test", scene_downscale)
    jit_seconds = warm_up(model_config, train_scene)

    rng = np.random.default_rng(seed)
    model = NGPModel.create(model_config, train_scene.aabb, rng)
    summary = train(model, train_scene, train_config, rng, steps=steps, seconds=seconds, progress=progress)
    val = evaluate(model, val_scene, with_ssim=False)
    test = evaluate(model, test_scene)
    metrics = {
        "scene": os.path.abspath(scene_dir),
        "scene_downscale": scene_downscale,
        "seed": seed,
        "budget": {"steps": steps} if steps is not None else {"seconds": seconds},
        "steps": summary.steps,
        "train_seconds": summary.seconds,
        "samples_per_s": summary.samples_per_s,
        "val_psnr": val.psnr,
        "test_psnr": test.psnr,
        "test_ssim": test.ssim,
        "test_per_view": test.per_view,
        "eval_rays_per_s": test.rays_per_s,
        "mean_samples_per_ray": test.mean_samples_per_ray,
        "occupied_fraction": model.occupancy.occupied_fraction(),
        "jit_seconds": jit_seconds,
    }
    os.makedirs(run_dir, exist_ok=True)
    metadata = {k: metrics[k] for k in ("scene", "seed", "steps", "train_seconds", "val_psnr", "test_psnr")}
    metadata["train_config"] = train_config.to_dict()
    save_checkpoint(os.path.join(run_dir, "checkpoint.h5"), model, metadata)
    write_json_atomically(os.path.join(run_dir, "config.json"),
                          {"model": model_config.to_dict(), "train": train_config.to_dict(), "seed": seed,
                           "scene": os.path.abspath(scene_dir), "scene_digest": scene_digest,
                           "scene_downscale": scene_downscale})
    write_json_atomically(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics
