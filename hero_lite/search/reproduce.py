"""`hero-lite reproduce`: the whole pipeline in miniature, fingerprinted (the check is in `drift.py`).

The miniature (`ReproduceConfig`): regenerate a procedural scene from its seed, train the fp32 model a
fixed number of steps, quantize a fixed policy with PTQ and with QAT, simulate it on both accelerator
presets, and run a short HERO search. Everything is seeded, and every parallel kernel writes disjoint
outputs or reduces in a fixed order, so the same code on the same environment (Python, package
versions, CPU instruction set, thread count) gives bit-identical files: the fingerprint keeps SHA-256
digests of the scene images, the trained parameters and the packed quantized models.

Across environments BLAS kernels and instruction sets (AVX-512 vs AVX2 FMA contraction, other
summation blocking) change float rounding in the last bits; training amplifies that into slightly
different weights, so digests legitimately differ there. The check then compares only the numbers,
within tolerances (`DEFAULT_TOLERANCES`, overridable per key by a TOML or JSON file), and reports
changed discrete outputs (the search's best policy) with the verdict `discrete_across_environments`
('warn' by default, or 'drift').

Fingerprint (JSON): format, config, environment, environment_id, digests {key: hex}, numbers
{key: float}, discrete {key: JSON value}. Keys are dotted: `train.test_psnr`, `sim.edge.latency_ms` ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any, Callable

import h5py
import numpy as np

from hero_lite import __version__
from hero_lite.nerf.config import TrainConfig
from hero_lite.nerf.pipeline import train_run
from hero_lite.runfolder import folder_digest, write_json_atomically
from hero_lite.quant.policy import uniform_policy
from hero_lite.quant.run import quantize_run
from hero_lite.scenes.synth import SCENE_NAMES, make_scene
from hero_lite.search.drift import FORMAT
from hero_lite.search.hero import SearchConfig, hero_search



@dataclass(frozen=True)
class ReproduceConfig:
    """The fixed miniature; defaults take about a minute on 2 cores for `tiny` (JIT cached).

    scene : procedural scene name (regenerated from `scene_seed` at its default size).
    train_steps, train_samples, seed : fp32 training (steps of `train_samples` samples) and run seed.
    hash_bits, mlp_bits : the fixed policy of the PTQ / QAT / simulation stages.
    qat_steps : QAT length of the fixed policy.
    search_episodes, search_qat_steps, search_latency_budget : the short search (budget relative to
        uniform 8-bit; on `edge` the floor of tiny is about 0.7x).
    """

    scene: str = "tiny"
    scene_seed: int = 0
    train_steps: int = 300
    train_samples: int = 1 << 14
    seed: int = 0
    hash_bits: int = 6
    mlp_bits: int = 8
    qat_steps: int = 40
    search_episodes: int = 6
    search_qat_steps: int = 4
    search_latency_budget: str = "0.95x"
    presets: tuple[str, ...] = ("edge", "server")

    def __post_init__(self) -> None:
        if self.scene not in SCENE_NAMES:
            raise ValueError(f"reproduce scene {self.scene!r}; valid: {', '.join(SCENE_NAMES)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# ---------------------------------------------------------------------------- environment and digests


def environment() -> dict:
    """What can change float results: interpreter, package versions, CPU and its features, threads."""
    import h5py as _h5py
    import llvmlite
    import llvmlite.binding as llvm
    import numba
    import scipy

    features = sorted(f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+"))
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "scipy": scipy.__version__,
        "h5py": _h5py.__version__,
        "os": platform.system(),
        "machine": platform.machine(),
        "cpu_name": llvm.get_host_cpu_name(),
        "cpu_features": features,
        "numba_threads": int(numba.get_num_threads()),
        "blas": _blas_name(),
    }


def _blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '?')}"
    except Exception:  # show_config's layout is not a stable API; the name is informative only
        return "unknown"


def environment_id(env: dict) -> str:
    """SHA-256 of the environment (canonical JSON), 16 hex digits."""
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


def h5_datasets_digest(path: str) -> str:
    """SHA-256 over every dataset of an HDF5 file (name, dtype, shape, bytes; sorted by name).

    Attributes are left out: they hold metadata such as absolute paths and timings.
    """
    entries = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: entries.append(name) if isinstance(obj, h5py.Dataset) else None)
        digest = hashlib.sha256()
        for name in sorted(entries):
            data = np.ascontiguousarray(f[name][()])
            digest.update(f"{name}|{data.dtype.str}|{data.shape}\0".encode())
            digest.update(data.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- the miniature


def run_miniature(out_dir: str, config: ReproduceConfig = ReproduceConfig(), bundled_scene: str | None = None,
                  log: Callable[[str], None] = lambda message: None) -> dict:
    """Run the miniature into `out_dir` and return its fingerprint (also written to fingerprint.json).

    bundled_scene : optional folder of the bundled copy of the scene; the fingerprint then records
        whether the regenerated images equal it byte for byte (`discrete["scene.matches_bundled"]`).
    """
    from hero_lite.accel import load_config
    from hero_lite.search.cost import policy_cost
    from hero_lite.search.workload import trace_workload

    start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    digests: dict[str, str] = {}
    numbers: dict[str, float] = {}
    discrete: dict[str, Any] = {}

    log(f"scene: regenerating {config.scene} (seed {config.scene_seed})")
    scene_dir = os.path.join(out_dir, "scene")
    make_scene(config.scene, scene_dir, seed=config.scene_seed)
    digests["scene.files"] = folder_digest(scene_dir)
    if bundled_scene is not None:
        discrete["scene.matches_bundled"] = folder_digest(bundled_scene) == digests["scene.files"]

    log(f"train: {config.train_steps} steps of {config.train_samples} samples")
    train_dir = os.path.join(out_dir, "train")
    metrics = train_run(scene_dir, train_dir, steps=config.train_steps, seed=config.seed,
                        train_config=TrainConfig(samples_per_step=config.train_samples))
    checkpoint = os.path.join(train_dir, "checkpoint.h5")
    digests["train.parameters"] = h5_datasets_digest(checkpoint)
    numbers.update({"train.val_psnr": metrics["val_psnr"], "train.test_psnr": metrics["test_psnr"],
                    "train.occupied_fraction": metrics["occupied_fraction"]})

    def fixed_policy(model_config):
        return uniform_policy(model_config, config.hash_bits, config.mlp_bits)

    for stage, qat_steps in (("ptq", 0), ("qat", config.qat_steps)):
        log(f"{stage}: hash {config.hash_bits} / MLP {config.mlp_bits} bits, {qat_steps} QAT steps")
        packed = os.path.join(out_dir, f"{stage}.h5")
        result = quantize_run(checkpoint, scene_dir, fixed_policy, packed, qat_steps=qat_steps, seed=config.seed)
        digests[f"{stage}.packed_model"] = h5_datasets_digest(packed)
        numbers[f"{stage}.test_psnr"] = result["psnr"]
        numbers[f"{stage}.model_bytes"] = result["model_bytes"]

    log(f"simulate: {', '.join(config.presets)}")
    workloads = trace_workload(checkpoint, scene_dir, views=1)
    from hero_lite.nerf.config import ModelConfig  # the policy depends on the model config only

    policy = fixed_policy(ModelConfig())
    for preset in config.presets:
        cost = policy_cost(workloads, policy, load_config(preset))
        for key in ("latency_ms", "area_mm2", "energy_uj", "cost_efficiency", "model_bytes"):
            numbers[f"sim.{preset}.{key}"] = float(getattr(cost, key))
        numbers[f"sim.{preset}.cycles"] = float(cost.reports[0].total_cycles)

    log(f"search: {config.search_episodes} episodes, latency budget {config.search_latency_budget}")
    search_config = SearchConfig(episodes=config.search_episodes, budgets={"latency_ms": config.search_latency_budget},
                                 qat_steps=config.search_qat_steps, qat_samples=config.train_samples,
                                 final_qat_steps=config.qat_steps, val_views=2, seed=config.seed)
    search_dir = os.path.join(out_dir, "search")
    summary = hero_search(checkpoint, scene_dir, search_dir, search_config)
    digests["search.packed_model"] = h5_datasets_digest(os.path.join(search_dir, "quantized.h5"))
    for key in ("psnr", "latency_ms", "area_mm2", "energy_uj", "model_bytes"):
        numbers[f"search.{key}"] = float(summary[key])
    with open(os.path.join(search_dir, "episodes.jsonl")) as f:
        episodes = [json.loads(line) for line in f if line.strip()]
    for line in episodes:
        numbers[f"search.reward.e{line['episode']:03d}"] = float(line["reward"])
    discrete["search.best_policy"] = summary["policy"]["points"]
    discrete["search.best_episode"] = summary["best_episode"]
    discrete["search.budget_met"] = summary["budget_met"]

    env = environment()
    fingerprint = {
        "format": FORMAT,
        "hero_lite_version": __version__,
        "config": config.to_dict(),
        "environment": env,
        "environment_id": environment_id(env),
        "digests": digests,
        "numbers": numbers,
        "discrete": discrete,
        "seconds": time.perf_counter() - start,
    }
    write_json_atomically(os.path.join(out_dir, "fingerprint.json"), fingerprint)
    return fingerprint
