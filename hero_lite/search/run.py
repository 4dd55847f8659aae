"""The main job (`hero-lite run`): search a policy for a trained model and draw the pictures."""

from __future__ import annotations

import json
import os
from typing import Callable

from hero_lite import viz
from hero_lite.accel import load_config, synthetic_workload
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import ModelConfig
from hero_lite.nerf.evaluate import render_view
from hero_lite.quant.export import load_quantized
from hero_lite.quant.points import FLOAT_BITS
from hero_lite.quant.policy import uniform_policy
from hero_lite.runfolder import folder_digest
from hero_lite.scenes import load_scene
from hero_lite.search.budget import Budget, check_reachable
from hero_lite.search.cost import policy_cost
from hero_lite.search.hero import SearchConfig, hero_search, search_points


def draw_pictures(checkpoint: str, quantized: str, scene_dir: str, out_dir: str, policy_bits: dict[str, int],
                  title: str, scene_downscale: int = 1) -> None:
    """`test_view.png` (ground truth, fp32, quantized, error; test view 0 read at 1/scene_downscale)
    and `bits.png` (bits per point)."""
    test = load_scene(scene_dir, "test", scene_downscale)
    fp32, _ = load_checkpoint(checkpoint)
    qmodel, hooks, _ = load_quantized(quantized)
    target = test.rgb((1.0, 1.0, 1.0))[0]
    fp32_image, _ = render_view(fp32, test.poses[0], test.focal, test.height, test.width)
    q_image, _ = render_view(qmodel, test.poses[0], test.focal, test.height, test.width, hooks=hooks)
    scale = max(1, 256 // test.width)
    row = viz.labelled_row([target, fp32_image, q_image, viz.error_map(q_image, target)],
                           ["ground truth", "fp32", "quantized", "|error| (quantized)"], scale=scale)
    viz.save_image(os.path.join(out_dir, "test_view.png"), row)
    names = list(policy_bits)
    colors = [(70, 110, 180) if n.startswith("hash") else (220, 120, 40) if n.startswith("w.") else (80, 160, 90)
              for n in names]
    values = [float(policy_bits[n]) for n in names]
    chart = viz.bar_chart(names, values, title, value_format="{:.0f}", colors=colors)
    viz.save_image(os.path.join(out_dir, "bits.png"), chart)


# A generic frame prices the latency floor within 10 % of a trained model's frame (edge: 0.69x
# against 0.68x on scenes/tiny, 0.69x against 0.74x on primitives; server: 0.75x against 0.69x on both).
GENERIC_FRAME_MARGIN = {"latency_ms": 0.9, "energy_uj": 0.9}


def check_budget_before_training(scene_dir: str, config: SearchConfig, supersample: int = 1) -> None:
    """Raise `BudgetUnreachable` when a budget is out of reach before any model is trained.

    Prices the reference and minimum-bits policies on a generic frame of the scene's size (a
    sphere, `accel.synthetic_workload`; supersample x supersample rays per pixel, the frame of a
    model with that `ModelConfig.supersample`) with the default model. Model size and area do not depend
    on the frame and are checked exactly; latency and energy only when the budget is below 0.9x of
    the generic floor, so that a budget the trained model can meet is never refused here (the
    exact check follows on the trained model, before the search). Points of the 'caq' set and
    full-size pricing (`SearchConfig.full_size`) are checked after training only.
    """
    if config.point_set != "hero" or config.full_size:
        return  # the generic frame has the default model's grid; the exact check after training covers these
    views = load_scene(scene_dir, "val", config.scene_downscale)
    model_config = ModelConfig()
    accel = load_config(config.accel)
    points = search_points(model_config, config, accel)
    width, height = views.width * supersample, views.height * supersample
    workloads = [synthetic_workload(width, height, focal_px=views.focal * supersample)]
    reference = uniform_policy(model_config, config.reference_bits, min(config.reference_bits, 8), "hero")
    reference_cost = policy_cost(workloads, reference, accel, area_mode=config.area_mode).to_dict()
    floor = policy_cost(workloads, {p.name: p.min_bits for p in points}, accel, area_mode=config.area_mode).to_dict()
    check_reachable(Budget.resolve(config.budgets, reference_cost), floor, reference_cost, accel.name,
                    slack=GENERIC_FRAME_MARGIN, frame=f"a generic {width}x{height} frame")


def trained_checkpoint(out_dir: str, scene_dir: str, scene_downscale: int = 1, supersample: int = 1) -> str | None:
    """`out_dir/checkpoint.h5` when a finished training run in `out_dir` was trained on the scene
    as it is now (its files' digest, recorded in `config.json`) at the same `scene_downscale`
    and `supersample` (recorded there too; a folder without the record was trained at 1), None
    when there is no checkpoint. Raises ValueError for a checkpoint trained on another scene, at
    another downscale or supersample, or with no record of its scene."""
    checkpoint = os.path.join(out_dir, "checkpoint.h5")
    if not os.path.exists(checkpoint):
        return None
    config_path = os.path.join(out_dir, "config.json")
    try:
        with open(config_path) as f:
            recorded = json.load(f)
        recorded_digest, recorded_downscale = recorded.get("scene_digest"), recorded.get("scene_downscale", 1)
        recorded_supersample = recorded.get("model", {}).get("supersample", 1)
    except (OSError, ValueError, AttributeError):
        recorded_digest = recorded_downscale = recorded_supersample = None
    if recorded_digest != folder_digest(scene_dir):
        raise ValueError(f"{checkpoint} was not trained on {scene_dir} as it is now (no or another scene digest in "
                         f"{config_path}); use another --out")
    if recorded_downscale != scene_downscale:
        raise ValueError(f"{checkpoint} was trained at --downscale {recorded_downscale}, not {scene_downscale} "
                         f"({config_path}); use the same --downscale or another --out")
    if recorded_supersample != supersample:
        raise ValueError(f"{checkpoint} was trained at --supersample {recorded_supersample}, not {supersample} "
                         f"({config_path}); use the same --supersample or another --out")
    return checkpoint


def main_job(scene_dir: str, out_dir: str, config: SearchConfig, search_progress: Callable | None = None,
             resume: bool = False, final_progress: Callable | None = None) -> dict:
    """Search `out_dir/checkpoint.h5` into `out_dir/search`, then draw the pictures into `out_dir`."""
    checkpoint = os.path.join(out_dir, "checkpoint.h5")
    search_dir = os.path.join(out_dir, "search")
    summary = hero_search(checkpoint, scene_dir, search_dir, config, resume=resume, progress=search_progress,
                          final_progress=final_progress)
    bits = summary["policy"]["points"]
    unquantized = sum(1 for b in bits.values() if b == FLOAT_BITS)
    draw_pictures(checkpoint, os.path.join(search_dir, "quantized.h5"), scene_dir, out_dir, bits,
                  f"bits per point (hash blue, weights orange, activations green; {unquantized} unquantized)",
                  config.scene_downscale)
    return summary
