"""A synthetic bit-allocation environment with closed-form quality and cost, and its exact optimum.

Points i = 0..n-1 each get b_i bits in [2, 8]. Quantization noise of a uniform quantizer has variance
proportional to 4^-b (range^2 / (12 * 4^b)), so the distortion of a policy is

    D(b) = D_floor + sum_i s_i 4^-b_i        (s_i: sensitivity of point i; D_floor: unquantized error)

and the reward is the PSNR change against the unquantized model, as hero-lite's default reward:

    R(b) = 10 log10(D_floor / D(b))  dB  (<= 0; 0 = no loss).

Cost: sum_i c_i b_i with integer c_i (like element counts times bits), budget B. The budget is
enforced HAQ-style at the end of an episode (HAQ `_final_action_wall`, k-means mode): while over
budget, sweep the points from last to first, lowering each by one bit (not below 2), stopping as soon
as the budget holds. Any policy under budget is kept as is, so the exact optimum (dynamic programming
over the integer cost, `optimal_policy`) is reachable. Like `hero_lite.search.QuantEnv`, the final
info reports the bits that ran as `executed_actions` (bin centres), which the loop stores in replay.

Observation of step i (all features in [0, 1]): i / (n - 1), the point's log-sensitivity and cost
min-max scaled over the points, and the previous action (1.0 before the first step, as HAQ).
"""

from __future__ import annotations

import math

import numpy as np

MIN_BITS, MAX_BITS = 2, 8


def action_to_bits(action: float) -> int:
    """HAQ's rounding (`_action_wall`): each integer bit gets an equal-width bin of [0, 1]."""
    bits = round((MAX_BITS - MIN_BITS + 1) * action + MIN_BITS - 0.5)
    return int(min(max(bits, MIN_BITS), MAX_BITS))


def bits_to_action(bits: int) -> float:
    """The centre of the action bin that `action_to_bits` maps to `bits`."""
    return (bits - MIN_BITS + 0.5) / (MAX_BITS - MIN_BITS + 1)


def enforce_budget(bits: np.ndarray, costs: np.ndarray, budget: int) -> np.ndarray:
    """Lower bits last point first, one bit per point per sweep, until sum(costs * bits) <= budget."""
    bits = bits.copy()
    while int(costs @ bits) > budget and np.any(bits > MIN_BITS):
        for i in range(len(bits) - 1, -1, -1):
            if bits[i] > MIN_BITS:
                bits[i] -= 1
                if int(costs @ bits) <= budget:
                    break
    return bits


class SyntheticQuantEnv:
    """The environment of the module docstring; `reset(seed)` ignores the seed (deterministic)."""

    def __init__(self, n_points: int = 20, budget_ratio: float = 0.5, seed: int = 0, budget_feature: bool = True,
                 reward_scale: float = 1.0, floor_bits: float = MAX_BITS):
        rng = np.random.default_rng(seed)
        self.n_points = n_points
        self.sensitivities = 10.0 ** rng.uniform(-1.5, 1.5, n_points)
        self.costs = rng.integers(1, 9, n_points)
        self.budget = int(budget_ratio * MAX_BITS * self.costs.sum())
        self.floor = float(self.sensitivities.sum() * 4.0**-floor_bits)
        log_s = np.log(self.sensitivities)
        features = np.stack([np.arange(n_points) / (n_points - 1),
                             (log_s - log_s.min()) / (log_s.max() - log_s.min()),
                             (self.costs - self.costs.min()) / max(self.costs.max() - self.costs.min(), 1)], axis=1)
        self.features = features
        self.budget_feature = budget_feature
        self.reward_scale = reward_scale
        self.n_obs = features.shape[1] + 1 + int(budget_feature)
        self._step = 0
        self._actions: list[float] = []

    def reward(self, bits: np.ndarray) -> float:
        distortion = self.floor + float(self.sensitivities @ 4.0 ** -np.asarray(bits, dtype=np.float64))
        return self.reward_scale * 10.0 * math.log10(self.floor / distortion)

    def _obs(self, previous_action: float) -> np.ndarray:
        row = self.features[min(self._step, self.n_points - 1)]
        if self.budget_feature:
            used = sum(int(c) * action_to_bits(a) for c, a in zip(self.costs, self._actions))
            row = np.append(row, max(self.budget - used, 0) / self.budget)
        return np.append(row, previous_action)

    def reset(self, seed: int) -> np.ndarray:
        self._step = 0
        self._actions = []
        return self._obs(1.0)

    def step(self, action: float):
        self._actions.append(float(action))
        self._step += 1
        obs = self._obs(float(action))
        if self._step < self.n_points:
            return obs, 0.0, False, {}
        raw_bits = np.array([action_to_bits(a) for a in self._actions])
        bits = enforce_budget(raw_bits, self.costs, self.budget)
        cost = int(self.costs @ bits)
        info = {"bits": bits.tolist(), "cost": cost, "budget": self.budget, "budget_met": cost <= self.budget,
                "executed_actions": [bits_to_action(int(b)) for b in bits]}
        return obs, self.reward(bits), True, info

    def policy_reward(self, actions) -> tuple[float, np.ndarray]:
        """(reward, bits after the budget wall) of a list of actions, without stepping."""
        bits = enforce_budget(np.array([action_to_bits(a) for a in actions]), self.costs, self.budget)
        return self.reward(bits), bits


def optimal_policy(env: SyntheticQuantEnv) -> tuple[float, np.ndarray]:
    """Exact optimum by dynamic programming over the integer cost: minimise sum s_i 4^-b_i subject to
    sum c_i b_i <= budget (R is decreasing in that sum). Returns (reward, bits (n_points,) int64)."""
    budget = env.budget
    best = np.full(budget + 1, np.inf)  # best[c]: least distortion of points so far with cost exactly c
    best[0] = 0.0
    choices = []
    for s, c in zip(env.sensitivities, env.costs):
        new = np.full(budget + 1, np.inf)
        choice = np.zeros(budget + 1, dtype=np.int64)
        for b in range(MIN_BITS, MAX_BITS + 1):
            shift = int(c) * b
            if shift > budget:
                break
            candidate = best[:budget + 1 - shift] + s * 4.0**-b
            better = candidate < new[shift:]
            new[shift:][better] = candidate[better]
            choice[shift:][better] = b
        best = new
        choices.append(choice)
    cost = int(np.argmin(best))
    bits = np.zeros(env.n_points, dtype=np.int64)
    for i in range(env.n_points - 1, -1, -1):
        bits[i] = choices[i][cost]
        cost -= int(env.costs[i]) * int(bits[i])
    return env.reward(bits), bits


def worst_reward(env: SyntheticQuantEnv) -> float:
    """Reward of the all-minimum-bits policy, the lowest any policy can get."""
    return env.reward(np.full(env.n_points, MIN_BITS))


def random_search_best(env: SyntheticQuantEnv, episodes: int, rng: np.random.Generator) -> float:
    """Best reward of `episodes` policies with U(0, 1) actions (after the budget wall)."""
    return max(env.policy_reward(rng.random(env.n_points))[0] for _ in range(episodes))
