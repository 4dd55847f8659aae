"""Training benchmark: throughput, PSNR after fixed wall-clock budgets, JIT time, peak memory.

    python benchmarks/bench_train.py                     # everything (about 25 minutes on 2 cores)
    python benchmarks/bench_train.py --throughput-only   # samples/s and eval rays/s (about 1 minute)
    python benchmarks/bench_train.py --scene scenes/wires --budgets 120 --set occupancy_threshold=0
    python benchmarks/bench_train.py --scene scenes/lattice --budgets 120,480 --model-set supersample=2

Prints one JSON object. Each measurement runs in a child process, so JIT caches, peak RSS and
thread pools are those of a fresh `hero-lite train`.
- samples_per_s: marched samples per second, median over 40 timed training steps of 2^16 samples
  (default config), after 300 steps so the occupancy grid has converged; steps with an occupancy
  update are included in the mean (`samples_per_s_mean`) but not in the median;
  `live_samples_per_s` counts only the samples before each ray's early termination, the ones that
  go through the whole network (the same in the budget runs);
- psnr_after_s: test PSNR on scenes/primitives after S seconds of training (JIT excluded), per seed
  and mean over seeds;
- jit_cold_s / jit_cached_s: compile time of every training and rendering kernel with an empty
  Numba cache, then with the cache warm;
- peak_rss_mb: the largest peak resident memory of any child.
`--set KEY=VALUE` (repeatable) overrides a TrainConfig key in every child, e.g.
`occupancy_threshold=0` to train and render without culling empty space; `--model-set KEY=VALUE`
overrides a ModelConfig key, e.g. `supersample=2` for 2x2 rays per pixel in training and evaluation
(`eval_rays_per_s` and `eval_mean_samples_per_ray` then count every ray, four per pixel; training
uses one ray per pixel for the first `supersample_from` of the budget, `--set supersample_from=0`
for 2x2 rays from the start).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, provenance, relative, repo_path, run_child  # noqa: E402


def _parsed(overrides: list[str]) -> dict:
    """KEY=VALUE strings -> {KEY: VALUE parsed as JSON (0, 0.5, true)}."""
    values = {}
    for item in overrides:
        key, _, text = item.partition("=")
        values[key] = json.loads(text)
    return values


def train_config(overrides: list[str]):
    """TrainConfig with KEY=VALUE overrides."""
    from hero_lite.nerf.config import TrainConfig

    return TrainConfig(**_parsed(overrides))


def model_config(overrides: list[str]):
    """ModelConfig with KEY=VALUE overrides."""
    from hero_lite.nerf.config import ModelConfig

    return ModelConfig(**_parsed(overrides))


def child_throughput(scene_dir: str, overrides: list[str], model_overrides: list[str]) -> dict:
    import numpy as np

    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.nerf.model import NGPModel
    from hero_lite.nerf.pipeline import warm_up
    from hero_lite.nerf.train import Trainer
    from hero_lite.scenes import load_scene

    scene = load_scene(scene_dir, "train")
    test = load_scene(scene_dir, "test")
    config = model_config(model_overrides)
    warm_up(config, scene)
    rng = np.random.default_rng(0)
    model = NGPModel.create(config, scene.aabb, rng)
    trainer = Trainer(model, scene, train_config(overrides), rng)
    for _ in range(300):
        trainer.step(0.0)
    rates, live_rates = [], []
    for _ in range(40):
        start = time.perf_counter()
        stats = trainer.step(0.0)
        seconds = time.perf_counter() - start
        rates.append(stats.n_samples / seconds)
        live_rates.append(stats.n_live_samples / seconds)
    evaluation = evaluate(model, test, with_ssim=False)
    return {
        "samples_per_s": statistics.median(rates),
        "samples_per_s_mean": len(rates) / sum(1 / r for r in rates),
        "live_samples_per_s": statistics.median(live_rates),
        "eval_rays_per_s": evaluation.rays_per_s,
        "eval_mean_samples_per_ray": evaluation.mean_samples_per_ray,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_budget(scene_dir: str, seconds: float, seed: int, overrides: list[str], model_overrides: list[str]) -> dict:
    import numpy as np

    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.nerf.model import NGPModel
    from hero_lite.nerf.pipeline import warm_up
    from hero_lite.nerf.train import train
    from hero_lite.scenes import load_scene

    scene = load_scene(scene_dir, "train")
    test = load_scene(scene_dir, "test")
    config = model_config(model_overrides)
    warm_up(config, scene)
    rng = np.random.default_rng(seed)
    model = NGPModel.create(config, scene.aabb, rng)
    summary = train(model, scene, train_config(overrides), rng, seconds=seconds)
    evaluation = evaluate(model, test, with_ssim=False)
    return {"seconds": seconds, "seed": seed, "steps": summary.steps, "samples_per_s": summary.samples_per_s,
            "live_samples_per_s": summary.live_samples / summary.seconds,
            "test_psnr": evaluation.psnr, "eval_rays_per_s": evaluation.rays_per_s,
            "eval_mean_samples_per_ray": evaluation.mean_samples_per_ray,
            "occupied_fraction": model.occupancy.occupied_fraction(),
            "peak_rss_mb": peak_rss_mb()}


def child_jit(scene_dir: str) -> dict:
    start = time.perf_counter()
    from hero_lite.nerf.config import ModelConfig
    from hero_lite.nerf.pipeline import warm_up
    from hero_lite.scenes import load_scene

    scene = load_scene(scene_dir, "train")
    warm_up(ModelConfig(), scene)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput-only", action="store_true", help="only samples/s and eval rays/s")
    parser.add_argument("--scene", default=repo_path("scenes", "primitives"))
    parser.add_argument("--budgets", default="60,120,300", help="comma-separated training budgets, seconds")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds per budget")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig key in every run (repeatable)")
    parser.add_argument("--model-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a ModelConfig key in every run (repeatable)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind = args.child[0]
        if kind == "throughput":
            result = child_throughput(args.scene, args.set, args.model_set)
        elif kind == "budget":
            result = child_budget(args.scene, float(args.child[1]), int(args.child[2]), args.set, args.model_set)
        else:
            result = child_jit(args.scene)
        print(json.dumps(result))
        return

    me = os.path.abspath(__file__)
    report = {"benchmark": "bench_train", **provenance(), "scene": relative(args.scene),
              "config": "default ModelConfig / TrainConfig (L16 F2 T2^15, 2^16 samples per step)",
              "train_overrides": args.set, "model_overrides": args.model_set}
    overrides = [arg for item in args.set for arg in ("--set", item)]
    overrides += [arg for item in args.model_set for arg in ("--model-set", item)]
    throughput = run_child([me, "--scene", args.scene, *overrides, "--child", "throughput"])
    report.update({k: throughput[k] for k in ("samples_per_s", "samples_per_s_mean", "live_samples_per_s",
                                              "eval_rays_per_s", "eval_mean_samples_per_ray")})
    rss = [throughput["peak_rss_mb"]]
    if not args.throughput_only:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            cold = run_child([me, "--scene", args.scene, "--child", "jit"], env=env)
            cached = run_child([me, "--scene", args.scene, "--child", "jit"], env=env)
        report["jit_cold_s"] = cold["seconds"]
        report["jit_cached_s"] = cached["seconds"]
        psnr = {}
        for budget in [float(b) for b in args.budgets.split(",")]:
            runs = [run_child([me, "--scene", args.scene, *overrides, "--child", "budget", str(budget), seed])
                    for seed in args.seeds.split(",")]
            rss += [r["peak_rss_mb"] for r in runs]
            psnr[f"{budget:g}"] = {"mean": statistics.mean(r["test_psnr"] for r in runs), "runs": runs}
        report["psnr_after_s"] = psnr
    report["peak_rss_mb"] = max(rss)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
