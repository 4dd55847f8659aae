"""The baselines HERO is compared with, on the same model, evaluation and simulator.

- `fp32`: every point unquantized (32 bits).
- `uniformK` / `uniformK-ptq`: K bits everywhere (hash levels and MLP), with / without the final QAT.
- `caq`: CAQ-like learned bit-widths on CAQ's 15-point set (`quant.learned.learn_bit_widths`: soft bits,
  the mean-bit penalty, MGL or MDL; CAQ paper, ECCV 2024).
- `caq_snapped`: CAQ-like's learned bits snapped to widths the accelerator runs without waste
  (`snap_to_hardware`): what a hardware-aware engineer would do with CAQ's policy by hand.
- `heuristic`: a three-rule hand policy on HERO's point set (`heuristic.heuristic_policy`), its MLP
  widths snapped to the accelerator like caq_snapped's (`heuristic_snapped_policy`: on PEs with a
  16-bit activation operand its activations run at 16; on BitFusion PEs nothing changes).
- `haq`: the same DDPG and episode loop as HERO, but the budget and the observation use HAQ's
  hardware-agnostic proxies (HAQ, CVPR 2019, when no hardware model is at hand): BitOps per sample in
  the latency slot of the budget and the exact model size; no simulator feedback in the observation.
- `random`: uniform random actions through the same environment, budget wall and evaluation, with the
  same episode count as the agent.

Every method's final policy then gets the same final QAT and test-view report (`hero.final_report`).
"""

from __future__ import annotations

import numpy as np

from hero_lite.quant.learned import BitLearningConfig, learn_bit_widths
from hero_lite.quant.points import FLOAT_BITS, QuantPoint, quant_points
from hero_lite.quant.policy import QuantPolicy, model_signature, uniform_policy
from hero_lite.search.budget import Budget
from hero_lite.search.env import QuantEnv, policy_factory_for
from hero_lite.search.hero import SearchConfig, SearchSetup
from hero_lite.search.heuristic import heuristic_snapped_bits
from hero_lite.search.widths import snap_to_hardware

COORDINATE_BITS = 32  # CAQ's c: interpolation weights and positions stay at 32 bits
LAYER_INPUTS = {  # weight point -> (input activation point, input features) in data-flow order
    "w.density0": (("act.encoding", 32),),
    "w.density1": (("act.density_hidden", 64),),
    "w.color0": (("act.density_out", 16), ("act.sh", 16)),
    "w.color1": (("act.color_hidden0", 64),),
    "w.color2": (("act.color_hidden1", 64),),
}


def bitops_per_sample(bits: dict[str, int], points: list[QuantPoint]) -> float:
    """Multiplication bit-operations per sample (CAQ code `quantization/quan_analysis.py`, `calBitOps_CAQ`).

    Hash interpolation per level: F (12 c^2 + 8 c h) with c = 32 coordinate bits, h the level's bits;
    each MLP layer: fan_in x fan_out x b_weight x b_input, the input split by its activation points.
    """
    c = COORDINATE_BITS
    by_name = {p.name: p for p in points}
    total = 0.0
    for p in points:
        if p.kind == "hash_level":
            features = p.shape[1]
            total += len(p.levels) * features * (12 * c * c + 8 * c * bits[p.name])
    for layer, inputs in LAYER_INPUTS.items():
        fan_out = by_name[layer].shape[1]
        for activation, width in inputs:
            total += width * fan_out * bits[layer] * bits[activation]
    return float(total)


def fixed_policy(setup: SearchSetup, point_set: str, bits: int | None) -> QuantPolicy:
    """Uniform `bits` everywhere (hash levels included), or every point unquantized for None."""
    config = setup.model.config
    if bits is None:
        policy = uniform_policy(config, 8, 8, point_set)
        return QuantPolicy(point_set, {k: FLOAT_BITS for k in policy.bits}, dict(policy.model))
    return uniform_policy(config, bits, bits, point_set)


# ---------------------------------------------------------------------------- HAQ-like


class _ProxyEstimator:
    """The estimator interface QuantEnv's observation reads, without hardware feedback (HAQ)."""

    def latency_ms(self, bits):
        return 1.0

    def dram_bytes(self, bits):
        return 1.0


class ProxyEvaluator:
    """Quality from the real evaluator; cost from HAQ's proxies: 'latency_ms' holds BitOps per sample,
    'energy_uj' the same BitOps, 'area_mm2' 1, 'model_bytes' the exact packed size."""

    def __init__(self, evaluator, points: list[QuantPoint]):
        self.evaluator = evaluator
        self.points = points
        self.estimators = [_ProxyEstimator()]
        self.fp32_psnr = evaluator.fp32_psnr

    def quality(self, policy):
        return self.evaluator.quality(policy)

    def estimate(self, bits: dict[str, int]) -> dict[str, float]:
        ops = bitops_per_sample(bits, self.points)
        return {"latency_ms": ops, "area_mm2": 1.0, "energy_uj": ops,
                "model_bytes": float(self.evaluator.estimators[0].model_bytes(bits))}

    def cost(self, policy) -> dict[str, float]:
        bits = policy.bits if isinstance(policy, QuantPolicy) else dict(policy)
        cost = self.estimate(bits)
        cost["cost_efficiency"] = 1.0 / cost["latency_ms"]
        return cost


class ProxyQuantEnv(QuantEnv):
    """QuantEnv without simulator features: latency and DRAM shares are 0 (HAQ's observation has none)."""

    def _hardware_context(self, t: int) -> tuple[float, float, float]:
        floor_bits = dict({p.name: p.min_bits for p in self.points}, **self.bits)
        left = self.budget.left(self.evaluator.estimate(floor_bits))
        return 0.0, 0.0, float(min(max(left, 0.0), 1.0))


def haq_environment(setup: SearchSetup, config: SearchConfig) -> QuantEnv:
    """HAQ-like environment: the search's budget ratios applied to BitOps (latency, energy) and size."""
    proxy = ProxyEvaluator(setup.evaluator, setup.points)
    reference_cost = proxy.cost(setup.reference)
    spec = {}
    for metric, text in config.budgets.items():
        if metric in ("latency_ms", "energy_uj", "model_bytes"):
            spec[metric] = text if str(text).endswith("x") else f"{float(text) / setup.evaluator.cost(setup.reference)[metric]}x"
    budget = Budget.resolve(spec, reference_cost)
    signature = model_signature(setup.model.config)
    return ProxyQuantEnv(setup.points, proxy, budget, setup.reference.bits, config.reward_config(),
                         policy_factory_for(config.point_set, signature))


# ---------------------------------------------------------------------------- random search


def random_search(env: QuantEnv, episodes: int, seed: int, progress=None) -> list[dict]:
    """`episodes` episodes of U(0, 1) actions through `env`; returns one info dict per episode
    (with 'episode' and 'reward')."""
    rng = np.random.default_rng(seed)
    log = []
    for episode in range(episodes):
        env.reset(episode)
        done = False
        while not done:
            _, reward, done, info = env.step(float(rng.random()))
        log.append({"episode": episode, "reward": reward, **info})
        if progress is not None:
            progress(episode, log[-1])
    return log


# ---------------------------------------------------------------------------- CAQ-like


def caq_policy(setup: SearchSetup, config: BitLearningConfig, seed: int, progress=None) -> tuple[QuantPolicy, dict]:
    """Learn CAQ bit-widths on a copy of the fp32 model; returns (policy on the caq set, info)."""
    model = setup.model.copy()
    result = learn_bit_widths(model, setup.train_scene, setup.evaluator.ranges, config, np.random.default_rng(seed),
                              point_set="caq", progress=progress)
    info = {"loss_fp": result.loss_fp, "loss_metric": result.loss_metric,
            "final_loss": float(np.mean(result.losses[-max(1, len(result.losses) // 10):])),
            "soft_bits": {n: float(b) for n, b in zip(result.names, result.soft_trace[-1])},
            "mean_bits": float(np.mean([b for b in result.policy.bits.values() if b != FLOAT_BITS]))}
    return result.policy, info


# ---------------------------------------------------------------------------- hardware snapping


def snapped_policy(setup: SearchSetup, policy: QuantPolicy) -> QuantPolicy:
    """`policy` (either point set) snapped to the search's accelerator (`snap_to_hardware`)."""
    points = quant_points(setup.model.config, policy.point_set)
    return QuantPolicy(policy.point_set, snap_to_hardware(policy.bits, points, setup.accel), dict(policy.model))


def heuristic_snapped_policy(setup: SearchSetup) -> QuantPolicy:
    """`heuristic_policy` snapped to the search's accelerator (`heuristic.heuristic_snapped_bits`)."""
    config = setup.model.config
    return QuantPolicy("hero", heuristic_snapped_bits(config, setup.accel), model_signature(config))


def caq_snapped_policy(setup: SearchSetup, caq: QuantPolicy) -> QuantPolicy:
    """CAQ-like's learned policy `caq` (caq set) snapped to the search's accelerator (`snap_to_hardware`)."""
    return snapped_policy(setup, caq)
