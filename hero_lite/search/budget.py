"""Hardware budgets and their enforcement (HAQ's budget wall, HAQ code `_final_action_wall`).

A budget limits any of latency (ms), area (mm^2), energy (uJ) and model size (bytes), absolutely
("1.5") or relative to a reference policy ("0.6x": 0.6 times the reference's cost, HAQ's
`preserve_ratio`). At the end of an episode `enforce_budget` lowers bits until an estimated cost
meets every limit; the search then confirms the policy with the event simulation.

HAQ's wall walks the layers from last to first, lowering one bit at a time, and stops as soon as
the cost fits. Here the walk is the same, with one change: each point is lowered to the closest
bit-width below its current one that lowers a violated metric under the estimate, and left as it
is if no lower bit-width does; when no single point can lower it (two units tie as the
bottleneck), one plain HAQ sweep lowers every point that does not get worse by one bit. Hardware costs are step functions of the bits (BitFusion runs 5-7
bits like 8, 3 like 4), so a one-bit decrement often buys nothing, and lowering a point that
does not limit the violated metric (an MLP bit while the frame waits on DRAM) only costs quality.
For the same reason a sweep only lowers the points whose step saves at least `min_saving_share`
of the largest saving any single point offers on a violated metric (default one half): under a
size budget a bit of a 64x64 weight matrix saves 512 bytes against 8 kB for a bit of a hashed
level, and taking it as well would cost quality for nothing the budget needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from hero_lite.quant.points import FLOAT_BITS, QuantPoint

METRICS = ("latency_ms", "area_mm2", "energy_uj", "model_bytes")
METRIC_OPTIONS = {"latency": "latency_ms", "area": "area_mm2", "energy": "energy_uj", "size": "model_bytes"}


def parse_limit(text: str | float) -> tuple[float, bool]:
    """'0.6x' -> (0.6, True) (relative to the reference); '2.5' -> (2.5, False) (absolute)."""
    raw = str(text).strip().lower()
    relative = raw.endswith("x")
    number = raw[:-1] if relative else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"budget {text!r}: expected a number (absolute) or a number followed by x (relative)") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"budget {text!r}: must be a finite number > 0")
    return value, relative


@dataclass(frozen=True)
class Budget:
    """Absolute limits per metric (None = unconstrained) and the specification they came from."""

    limits: dict
    spec: dict

    @classmethod
    def resolve(cls, spec: dict[str, str], reference_cost: dict[str, float] | None) -> "Budget":
        """Turn {'latency_ms': '0.6x', 'model_bytes': '400000'} into absolute limits.

        reference_cost : cost of the reference policy (needed for relative limits).
        """
        limits = {}
        for metric, text in spec.items():
            if metric not in METRICS:
                raise ValueError(f"budget metric {metric!r}; valid: {', '.join(METRICS)}")
            if text is None:
                continue
            value, relative = parse_limit(text)
            if relative:
                if reference_cost is None:
                    raise ValueError(f"relative budget {text!r} needs a reference policy")
                value *= float(reference_cost[metric])
            limits[metric] = value
        return cls(limits=limits, spec={k: str(v) for k, v in spec.items() if v is not None})

    def violations(self, cost: dict[str, float]) -> dict[str, float]:
        """Metric -> cost / limit for every metric over its limit."""
        return {m: cost[m] / lim for m, lim in self.limits.items() if cost[m] > lim * (1 + 1e-9)}

    def met(self, cost: dict[str, float]) -> bool:
        return not self.violations(cost)

    def left(self, cost: dict[str, float]) -> float:
        """Fraction of the tightest limit still free, in [0, 1] (1 when unconstrained)."""
        if not self.limits:
            return 1.0
        return min(max(0.0, 1.0 - cost[m] / lim) for m, lim in self.limits.items())

    def to_dict(self) -> dict:
        return {"spec": dict(self.spec), "limits": dict(self.limits)}


UNITS = {"latency_ms": "ms", "area_mm2": "mm^2", "energy_uj": "uJ", "model_bytes": "bytes"}


class BudgetUnreachable(ValueError):
    """Even the cheapest policy (every point at its minimum bits) misses a budget."""


def check_reachable(budget: Budget, floor_cost: dict[str, float], reference_cost: dict[str, float],
                    accel_name: str, slack: dict[str, float] | None = None, frame: str = "the cost frame") -> None:
    """Raise `BudgetUnreachable` naming each limit that `floor_cost` (every point at its minimum
    bits, the cheapest policy the budget wall can reach) misses, the floor on `accel_name` and the
    fraction of the reference's cost from which a budget becomes reachable.

    slack : metric -> factor; a limit on that metric is refused only below factor x floor (for a
        floor priced on an approximate frame).
    frame : the frame both costs were priced on, named in the message.
    """
    slack = slack or {}
    option = {metric: name for name, metric in METRIC_OPTIONS.items()}
    missed = []
    for metric, limit in budget.limits.items():
        floor = floor_cost[metric]
        if limit >= slack.get(metric, 1.0) * floor * (1 - 1e-9):
            continue
        unit = UNITS[metric]
        fraction = math.ceil(1000 * floor / reference_cost[metric]) / 1000  # rounded up: reachable
        missed.append(f"{option[metric]} budget {budget.spec[metric]} ({limit:.4g} {unit}) is out of reach on "
                      f"{accel_name}: every point at its minimum bits still costs {floor:.4g} {unit} on {frame}, "
                      f"{'about ' if metric in slack else ''}{fraction:.3f}x of the reference policy's; give a "
                      f"budget of at least that")
    if missed:
        raise BudgetUnreachable("; ".join(missed))


@dataclass
class WallResult:
    """Outcome of `enforce_budget`: the bits, decrements made, and whether the estimate fits."""

    bits: dict
    decrements: int
    met: bool
    estimate: dict


def _lower_steps(point: QuantPoint, bits: int) -> list[int]:
    """The point's widths (`QuantPoint.choices`) below `bits`, in descending order: 32 (unquantized)
    continues at the widest."""
    top = max(point.choices()) if bits == FLOAT_BITS else bits - 1
    return [w for w in reversed(point.choices()) if w <= top]


def _useful_step(point: QuantPoint, bits: dict, cost: dict, over: dict, estimate: Callable[[dict], dict]):
    """(lower bits, trial cost) of the closest lower bit-width of `point` that lowers a violated
    metric, or None."""
    for lower in _lower_steps(point, bits[point.name]):
        trial_cost = estimate(dict(bits, **{point.name: lower}))
        if any(trial_cost[m] < cost[m] * (1 - 1e-9) for m in over):
            return lower, trial_cost
    return None


def _worth_lowering(points: list[QuantPoint], bits: dict, cost: dict, over: dict, estimate, share: float) -> set:
    """Names of the points whose useful step saves >= share x the largest single-point saving on
    some violated metric."""
    savings = {}
    for point in points:
        step = _useful_step(point, bits, cost, over, estimate)
        if step is not None:
            savings[point.name] = {m: cost[m] - step[1][m] for m in over}
    best = {m: max((s[m] for s in savings.values()), default=0.0) for m in over}
    return {name for name, s in savings.items() if any(best[m] > 0 and s[m] >= share * best[m] for m in over)}


def enforce_budget(bits: dict[str, int], points: list[QuantPoint], estimate: Callable[[dict], dict],
                   budget: Budget, max_sweeps: int = 256, min_saving_share: float = 0.5) -> WallResult:
    """Lower bits, last point first, until `estimate(bits)` meets `budget` (a pure function).

    Parameters
    ----------
    bits : point name -> bits (not modified).
    points : the points in walk order (the episode order); the wall walks them backwards.
    estimate : bits -> dict with every metric of the budget.
    min_saving_share : a sweep lowers only the points whose step saves at least this share of the
        largest single-point saving on a violated metric (0: every point that saves anything).

    Returns
    -------
    WallResult; `decrements` counts the bits removed in all.
    """
    bits = dict(bits)
    cost = estimate(bits)
    decrements = 0
    for _ in range(max_sweeps):
        over = budget.violations(cost)
        if not over:
            return WallResult(bits, decrements, True, cost)
        progress = False
        worth = _worth_lowering(points, bits, cost, over, estimate, min_saving_share)
        for point in reversed(points):
            if point.name not in worth:
                continue
            current = bits[point.name]
            step = _useful_step(point, bits, cost, over, estimate)
            if step is not None:
                lower, trial_cost = step
                decrements += (max(point.choices()) if current == FLOAT_BITS else current) - lower + (current == FLOAT_BITS)
                bits, cost = dict(bits, **{point.name: lower}), trial_cost
                progress = True
            over = budget.violations(cost)
            if not over:
                return WallResult(bits, decrements, True, cost)
        if not progress:
            # No single move lowers a violated metric: two units tie as the bottleneck. Fall back
            # to HAQ's plain sweep (one width down on every point that does not get worse), then retry.
            # Every plain sweep removes bits, so this ends.
            changed = False
            for point in reversed(points):
                steps = _lower_steps(point, bits[point.name])
                if not steps:
                    continue
                trial = dict(bits, **{point.name: steps[0]})
                trial_cost = estimate(trial)
                if all(trial_cost[m] <= cost[m] * (1 + 1e-9) for m in over):
                    current = bits[point.name]
                    decrements += (max(point.choices()) if current == FLOAT_BITS else current) - steps[0] + (current == FLOAT_BITS)
                    bits, cost = trial, trial_cost
                    changed = True
            if not changed:
                break
    return WallResult(bits, decrements, budget.met(cost), cost)
