"""QuantEnv: HAQ-style environment over the quantization points, with hardware feedback.

One episode walks the points in a fixed order (hash levels coarse to fine, then the MLP in
data-flow order); each step the agent picks the bits of one point. The last step applies the
budget wall (`budget.enforce_budget`, decrements chosen with the fast estimate, the result
confirmed by the event simulation), evaluates quality (short QAT + validation PSNR) and returns
the episode's reward; earlier steps return 0 (HAQ).

Observation of a step, every feature scaled to [0, 1] (one space for every kind of point, the
"unified observation space"):
  0-2  kind one-hot (hash_level, weight, activation)
  3    index of the point in the walk
  4    level resolution (log2, min-max scaled; 0 for MLP points)
  5    table entries (log2, scaled; 0 for MLP points)
  6    dense level flag
  7    stored elements (log2(1 + n), scaled)
  8    lookups (hash) or MACs / values (MLP) per sample (log2(1 + n), scaled)
  9    previous action (1.0 at the first step, as HAQ)
  10   this point's share of the estimated latency under the policy so far (the latency saved
       by moving it from its max to its min bits, over the latency), not-yet-chosen points at
       the reference policy's bits
  11   its share of the estimated DRAM traffic, measured the same way
  12   budget left: 1 - cost / limit of the tightest limit for the policy so far with the
       remaining points at their minimum bits (1 when unconstrained)

Action a in [0, 1] -> bits b = round((b_max - b_min + 1) a + b_min - 0.5), clipped to
[b_min, b_max] (HAQ code `_action_wall`), each integer bit-width getting an equal-width bin. With
`SearchConfig.widths = "hardware"` the bins cover only the widths the accelerator runs without waste
(`baselines.hardware_widths`: 2, 4, 8 on BitFusion PEs; 2, 4, 8, 16 for hash levels stored in
power-of-two slots). A frozen point (`freeze_points`, `SearchConfig.frozen_bits`) has b_min = b_max:
every action gives its bits.

What the agent learns from: the final info carries `executed_actions`, the bin centres of the bits
the wall let through, and the loop stores those in the replay buffer instead of the actions the
actor took (HAQ stores the latter). The wall often lowers a point the agent left high (an
activation to 4 bits, say), and the reward belongs to the bits that were evaluated.

Rewards:
- `psnr` (default): R = lambda (PSNR_q - PSNR_fp32), lambda = 0.1 (HAQ's 0.1 on accuracy points),
  under the hard budget;
- `multi`: R = lambda (PSNR_q - PSNR_fp32) - w_lat log(lat / lat_ref) - w_area log(area / area_ref)
  - w_size log(size / size_ref), reference = the reference policy (uniform 8-bit by default);
  budgets, if any, still apply.
- `max_drop_db` (optional, both kinds): the PSNR drop is capped there, so that the few policies that
  wreck the model (an activation at 2 bits: 10+ dB) do not dominate the critic's regression.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from hero_lite.quant.points import QuantPoint
from hero_lite.quant.policy import QuantPolicy
from hero_lite.search.budget import Budget, enforce_budget

KINDS = ("hash_level", "weight", "activation")
N_OBS = 13


@dataclass(frozen=True)
class RewardConfig:
    """Reward of an episode (see the module docstring)."""

    kind: str = "psnr"
    psnr_weight: float = 0.1
    latency_weight: float = 1.0
    area_weight: float = 0.0
    size_weight: float = 0.0
    max_drop_db: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("psnr", "multi"):
            raise ValueError(f"reward kind {self.kind!r}; valid: psnr, multi")
        if self.max_drop_db is not None and not self.max_drop_db > 0:
            raise ValueError(f"reward max_drop_db = {self.max_drop_db!r}; valid: None or a number > 0")

    def reward(self, psnr_drop_db: float, cost: dict, reference_cost: dict) -> float:
        if self.max_drop_db is not None:
            psnr_drop_db = min(psnr_drop_db, self.max_drop_db)
        value = -self.psnr_weight * psnr_drop_db
        if self.kind == "multi":
            value -= self.latency_weight * math.log(cost["latency_ms"] / reference_cost["latency_ms"])
            value -= self.area_weight * math.log(cost["area_mm2"] / reference_cost["area_mm2"])
            value -= self.size_weight * math.log(cost["model_bytes"] / reference_cost["model_bytes"])
        return float(value)


def action_to_bits(action: float, point: QuantPoint) -> int:
    """HAQ's mapping of a in [0, 1] to one of the point's widths (`QuantPoint.choices`: min_bits..
    max_bits unless the search narrowed them), each width getting an equal-width bin."""
    widths = point.choices()
    index = int(round(len(widths) * float(action) - 0.5))
    return widths[min(max(index, 0), len(widths) - 1)]


def bits_to_action(bits: int, point: QuantPoint) -> float:
    """Centre of the action bin of `bits` (inverse of `action_to_bits`); bits between two widths
    (or 32) take the bin of the narrowest width >= bits (of the widest width)."""
    widths = point.choices()
    index = next((k for k, w in enumerate(widths) if w >= bits), len(widths) - 1)
    return (index + 0.5) / len(widths)


def static_features(points: list[QuantPoint]) -> np.ndarray:
    """(n_points, 9) float64 features 0-8 of the observation, each column in [0, 1]."""
    n = len(points)
    feats = np.zeros((n, 9))
    for k, p in enumerate(points):
        feats[k, KINDS.index(p.kind)] = 1.0
        feats[k, 3] = k / max(n - 1, 1)
        if p.kind == "hash_level" and p.resolution:
            feats[k, 4] = math.log2(p.resolution)
            feats[k, 5] = math.log2(p.shape[0])
            feats[k, 6] = 1.0 if p.dense else 0.0
        feats[k, 7] = math.log2(1 + p.n_elements)
        feats[k, 8] = math.log2(1 + p.per_sample)
    for col in (4, 5, 7, 8):
        column = feats[:, col]
        nonzero = column > 0
        if nonzero.any():
            lo, hi = column[nonzero].min(), column[nonzero].max()
            if hi > lo:
                column[nonzero] = (column[nonzero] - lo) / (hi - lo)
            else:
                column[nonzero] = 1.0
    return feats


class QuantEnv:
    """The HERO environment.

    Parameters
    ----------
    points : the quantization points in walk order.
    evaluator : a PolicyEvaluator (quality, estimate, cost).
    budget : Budget with absolute limits.
    reference_bits : bits of the reference policy (observation defaults, multi-objective reward).
    reward : RewardConfig.
    policy_factory : bits dict -> QuantPolicy.
    """

    def __init__(self, points: list[QuantPoint], evaluator, budget: Budget, reference_bits: dict[str, int],
                 reward: RewardConfig, policy_factory):
        self.points = points
        self.evaluator = evaluator
        self.budget = budget
        self.reference_bits = dict(reference_bits)
        self.reward_config = reward
        self.policy_factory = policy_factory
        self.features = static_features(points)
        self.reference_cost = evaluator.cost(reference_bits)
        self.t = 0
        self.bits: dict[str, int] = {}
        self.prev_action = 1.0

    @property
    def n_obs(self) -> int:
        return N_OBS

    def _hardware_context(self, t: int) -> tuple[float, float, float]:
        point = self.points[t]
        current = dict(self.reference_bits, **self.bits)
        hi = dict(current, **{point.name: max(point.choices())})
        lo = dict(current, **{point.name: point.min_bits})
        est = self.evaluator.estimators[0]
        base_latency = max(est.latency_ms(current), 1e-12)
        latency_share = (est.latency_ms(hi) - est.latency_ms(lo)) / base_latency
        base_dram = max(est.dram_bytes(current), 1.0)
        dram_share = (est.dram_bytes(hi) - est.dram_bytes(lo)) / base_dram
        floor_bits = dict({p.name: p.min_bits for p in self.points}, **self.bits)
        left = self.budget.left(self.evaluator.estimate(floor_bits))
        clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
        return clip(latency_share), clip(dram_share), clip(left)

    def _observation(self, t: int) -> np.ndarray:
        obs = np.empty(N_OBS)
        obs[:9] = self.features[t]
        obs[9] = self.prev_action
        obs[10:13] = self._hardware_context(t)
        return obs

    def reset(self, seed: int) -> np.ndarray:
        """Start an episode (the environment itself draws no random numbers; `seed` is unused)."""
        self.t = 0
        self.bits = {}
        self.prev_action = 1.0
        return self._observation(0)

    def finish(self, raw_bits: dict[str, int]) -> tuple[float, dict]:
        """Budget wall, confirmation by simulation, quality: (reward, info) of a complete policy."""
        wall = enforce_budget(raw_bits, self.points, self.evaluator.estimate, self.budget)
        bits = wall.bits
        decrements = wall.decrements
        cost = self.evaluator.cost(bits)
        rounds = 0
        while not self.budget.met(cost) and rounds < 3:
            # The estimate was optimistic: rescale it by the simulated/estimated ratio and go on.
            ratio = {m: cost[m] / max(wall.estimate[m], 1e-12) for m in self.budget.limits}

            def scaled(b, ratio=ratio):
                est = self.evaluator.estimate(b)
                return {m: est[m] * ratio.get(m, 1.0) for m in est}

            wall = enforce_budget(bits, self.points, scaled, self.budget)
            if wall.bits == bits:
                break
            bits = wall.bits
            decrements += wall.decrements
            cost = self.evaluator.cost(bits)
            rounds += 1
        policy = self.policy_factory(bits)
        quality = self.evaluator.quality(policy)
        drop = self.evaluator.fp32_psnr - quality.psnr
        reward = self.reward_config.reward(drop, cost, self.reference_cost)
        info = {
            "policy": dict(bits),
            "agent_bits": dict(raw_bits),
            "psnr": quality.psnr,
            "psnr_drop": drop,
            "latency_ms": cost["latency_ms"],
            "area_mm2": cost["area_mm2"],
            "energy_uj": cost["energy_uj"],
            "model_bytes": int(cost["model_bytes"]),
            "cost_efficiency": cost["cost_efficiency"],
            "budget_met": self.budget.met(cost),
            "wall_decrements": decrements,
            "executed_actions": [bits_to_action(bits[p.name], p) for p in self.points],
        }
        return reward, info

    def step(self, action: float) -> tuple[np.ndarray, float, bool, dict]:
        point = self.points[self.t]
        self.bits[point.name] = action_to_bits(action, point)
        self.prev_action = float(action)
        self.t += 1
        if self.t < len(self.points):
            return self._observation(self.t), 0.0, False, {}
        reward, info = self.finish(self.bits)
        return np.zeros(N_OBS), reward, True, info


def start_observations(env: QuantEnv, bits: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The observations and actions of an episode that picks `bits`, without finishing it.

    Returns (n_points, n_obs) observations and (n_points,) actions (the centres of the bins of
    `bits`); the last step is not taken, so nothing is evaluated, and the environment is reset.
    """
    actions = np.array([bits_to_action(bits[p.name], p) for p in env.points])
    observations = [env.reset(0)]
    for action in actions[:-1]:
        observations.append(env.step(float(action))[0])
    env.reset(0)
    return np.array(observations), actions


def freeze_points(points: list[QuantPoint], frozen_bits: dict[str, int], point_set: str = "hero") -> list[QuantPoint]:
    """`points` with each frozen point's bit range narrowed to its frozen bits (min_bits = max_bits).

    frozen_bits : point name or kind ('hash_level', 'weight', 'activation') -> bits; a name overrides
        its kind. A narrowed point keeps its place in the walk, so the observation is unchanged but
        for its hardware shares (0: nothing to gain); every action maps to its bits, the budget wall
        cannot lower it, and the cheapest policy (min_bits everywhere) holds it at its bits.
    Raises ValueError naming an unknown key or bits the point does not allow.
    """
    names = {p.name for p in points}
    for key in frozen_bits:
        if key not in names and key not in KINDS:
            raise ValueError(f"search frozen_bits: unknown point {key!r}; valid: a point of the '{point_set}' set "
                             f"({points[0].name} ... {points[-1].name}) or a kind ({', '.join(KINDS)})")
    frozen = []
    for p in points:
        bits = frozen_bits.get(p.name, frozen_bits.get(p.kind))
        if bits is None:
            frozen.append(p)
            continue
        if not p.allows(bits):
            raise ValueError(f"search frozen_bits: {p.name} = {bits!r} bits; valid: {p.min_bits}-{p.max_bits} or 32")
        frozen.append(dataclasses.replace(p, min_bits=bits, max_bits=bits, widths=()))
    return frozen


def policy_factory_for(point_set: str, signature: dict, fixed: dict[str, int] | None = None):
    """bits -> QuantPolicy, adding points the walk does not visit at fixed bits (e.g. 32)."""

    def make(bits: dict[str, int]) -> QuantPolicy:
        return QuantPolicy(point_set, dict(fixed or {}, **bits), dict(signature))

    return make

