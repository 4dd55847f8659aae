"""How well a renderer with the exact geometry scores against a scene's test images, per rays per pixel.

    python benchmarks/aliasing_ceiling.py scenes/primitives scenes/lattice scenes/wires \
        --samples 1 2 8 --out benchmarks/results/aliasing_ceiling.json

The bundled scenes' images are 2x2 supersampled (hero_lite/scenes/synth.py): each pixel holds the
mean of four rays. A NeRF renders one ray through the pixel centre. This re-renders every test view
of each procedural scene from its analytic primitives with the ground truth's own ray tracer
(hero_lite.scenes._kernels.render_view) at N x N rays per pixel, offsets (k + 0.5) / N, composites
over white as evaluation does, and scores it against the stored test images with hero-lite's PSNR
(mean over views, dB):
- N = 1: a perfect model of the scene rendered as the NeRF renders it, one point-sampled ray per
  pixel: what aliasing alone costs against the test images;
- N = 2: the test images' own sampling (a check: only their 8-bit rounding differs);
- N = 8: how far the 2x2 targets themselves sit from a finer pixel average.
Prints and writes one JSON object: provenance and, per scene and N, the mean and per-view PSNR and
the share of squared error carried by the worst 10 % of pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance


def score_scene(scene_dir: str, samples_list: list[int]) -> dict:
    """Per N: mean and per-view PSNR (dB) of the exact-geometry render against the test images."""
    from hero_lite.nerf.metrics import psnr
    from hero_lite.scenes import synth
    from hero_lite.scenes.blender import load_scene

    name = os.path.basename(os.path.normpath(scene_dir))
    if name not in synth.SCENE_NAMES:
        raise SystemExit(f"error: {scene_dir}: not a procedural scene ({', '.join(synth.SCENE_NAMES)})")
    packed = synth._pack(synth._SPECS[name]())
    test = load_scene(scene_dir, "test")
    targets = test.rgb().astype(np.float64)
    result = {}
    for samples in samples_list:
        per_view, worst_share = [], []
        for k in range(test.n_views):
            rgba = synth._render_rgba(packed, test.poses[k].astype(np.float64), test.focal, test.height, samples)
            alpha = rgba[..., 3:4]
            image = rgba[..., :3] * alpha + (1.0 - alpha)
            per_view.append(psnr(image, targets[k]))
            squared = np.sum((image - targets[k]) ** 2, axis=-1).ravel()
            ordered = np.sort(squared)[::-1]
            worst_share.append(float(ordered[: max(1, ordered.size // 10)].sum() / max(ordered.sum(), 1e-300)))
        result[str(samples)] = {"psnr": float(np.mean(per_view)), "per_view_psnr": per_view,
                                "worst_10pct_pixels_error_share": float(np.mean(worst_share))}
        print(f"{name:12s} {samples}x{samples} rays/pixel: {result[str(samples)]['psnr']:.2f} dB "
              f"(views {min(per_view):.2f}-{max(per_view):.2f}); worst 10 % of pixels carry "
              f"{100 * result[str(samples)]['worst_10pct_pixels_error_share']:.0f} % of the squared error")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", nargs="+", help="procedural scene folders (primitives, lattice, wires, tiny)")
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 2, 8], help="N of N x N rays per pixel")
    parser.add_argument("--out", help="write the JSON result here")
    args = parser.parse_args()
    if any(n < 1 for n in args.samples):
        raise SystemExit("error: --samples must be positive integers")
    result = {**provenance(), "benchmark": "aliasing_ceiling",
              "scenes": {os.path.basename(os.path.normpath(s)): score_scene(s, args.samples) for s in args.scenes}}
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(args.out + ".tmp", args.out)
    print(json.dumps({k: result[k] for k in ("commit", "command")}))


if __name__ == "__main__":
    main()
