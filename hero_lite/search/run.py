"""The main job (`hero-lite run`): search a policy for a trained model and draw the pictures."""

from __future__ import annotations

import os
from typing import Callable

from hero_lite import viz
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.evaluate import render_view
from hero_lite.quant.export import load_quantized
from hero_lite.quant.points import FLOAT_BITS
from hero_lite.scenes import load_scene
from hero_lite.search.hero import SearchConfig, hero_search


def draw_pictures(checkpoint: str, quantized: str, scene_dir: str, out_dir: str, policy_bits: dict[str, int],
                  title: str) -> None:
    """`test_view.png` (ground truth, fp32, quantized, error) and `bits.png` (bits per point)."""
    test = load_scene(scene_dir, "test")
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
                  f"bits per point (hash blue, weights orange, activations green; {unquantized} unquantized)")
    return summary
