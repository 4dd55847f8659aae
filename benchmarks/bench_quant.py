"""Quantization benchmark on scenes/primitives.

    python benchmarks/bench_quant.py [--checkpoint CKPT] [--qat-steps 200] [--quick]

Prints one JSON object:
- ptq_seconds: median wall time of calibrate + quantize + test PSNR on the 20 test views (8-bit
  everywhere), after JIT;
- qat_vs_fp32_throughput: median samples/s of QAT steps (8-bit everywhere) over that of fp32
  training steps, same model and batch size;
- uint8_ptq_drop_db: fp32 test PSNR minus 8-bit PTQ test PSNR;
- table: for hash bits 16/8/6/4/3/2 x MLP bits 8/6/4: model bytes, PTQ PSNR and PSNR after
  `--qat-steps` QAT steps.
Without --checkpoint, an fp32 model is trained first (1200 steps, seed 0) and cached in
runs/bench/primitives/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance, relative, repo_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--scene", default=repo_path("scenes", "primitives"))
    parser.add_argument("--qat-steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="timings and the 8-bit row only")
    args = parser.parse_args()

    import numpy as np

    from hero_lite.nerf.checkpoint import load_checkpoint
    from hero_lite.nerf.config import TrainConfig
    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.nerf.pipeline import train_run
    from hero_lite.nerf.train import Trainer
    from hero_lite.quant.calibrate import calibrate_activations
    from hero_lite.quant.fakequant import FakeQuantHooks
    from hero_lite.quant.policy import uniform_policy
    from hero_lite.quant.run import quantize_model
    from hero_lite.scenes import load_scene

    ckpt = args.checkpoint
    if ckpt is None:
        run_dir = repo_path("runs", "bench", "primitives")
        ckpt = os.path.join(run_dir, "checkpoint.h5")
        if not os.path.exists(ckpt):
            train_run(args.scene, run_dir, steps=1200, seed=0)
    base, _ = load_checkpoint(ckpt)
    train_scene = load_scene(args.scene, "train")
    test_scene = load_scene(args.scene, "test")
    fp32_psnr = evaluate(base, test_scene, with_ssim=False).psnr

    def ptq(policy, seed=0):
        model = base.copy()
        hooks = quantize_model(model, policy, train_scene, np.random.default_rng(seed))
        return model, hooks, evaluate(model, test_scene, hooks=hooks, with_ssim=False).psnr

    eight = uniform_policy(base.config, 8, 8)
    ptq(eight)  # JIT
    times = []
    for _ in range(3):
        start = time.perf_counter()
        _, _, psnr8 = ptq(eight)
        times.append(time.perf_counter() - start)

    def step_rates(hooks_for, n=30):
        model = base.copy()
        hooks = hooks_for(model)
        trainer = Trainer(model, train_scene, TrainConfig(lr=1e-3), np.random.default_rng(1), hooks=hooks,
                          update_occupancy=False)
        for _ in range(5):
            trainer.step(0.0)
        rates = []
        for _ in range(n):
            start = time.perf_counter()
            stats = trainer.step(0.0)
            rates.append(stats.n_samples / (time.perf_counter() - start))
        return statistics.median(rates)

    def qat_hooks(model):
        ranges = calibrate_activations(model, train_scene, np.random.default_rng(2))
        return FakeQuantHooks(model, eight, ranges)

    fp32_rate = step_rates(lambda model: None)
    qat_rate = step_rates(qat_hooks)

    report = {"benchmark": "bench_quant", **provenance(), "checkpoint": relative(ckpt),
              "scene": relative(args.scene), "fp32_psnr": fp32_psnr, "ptq_seconds": statistics.median(times),
              "uint8_ptq_psnr": psnr8, "uint8_ptq_drop_db": fp32_psnr - psnr8,
              "fp32_step_samples_per_s": fp32_rate, "qat_step_samples_per_s": qat_rate,
              "qat_vs_fp32_throughput": qat_rate / fp32_rate}
    rows = []
    grid = [(8, 8)] if args.quick else [(h, m) for h in (16, 8, 6, 4, 3, 2) for m in (8, 6, 4)]
    for hash_bits, mlp_bits in grid:
        policy = uniform_policy(base.config, hash_bits, mlp_bits)
        _, _, ptq_psnr = ptq(policy)
        row = {"hash_bits": hash_bits, "mlp_bits": mlp_bits, "model_bytes": policy.model_bytes(base.config),
               "ptq_psnr": ptq_psnr}
        if args.qat_steps > 0:
            model = base.copy()
            hooks = quantize_model(model, policy, train_scene, np.random.default_rng(0), qat_steps=args.qat_steps)
            row["qat_psnr"] = evaluate(model, test_scene, hooks=hooks, with_ssim=False).psnr
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    report["qat_steps"] = args.qat_steps
    report["table"] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
