"""Glue: the hardware cost of a policy, from the simulator, averaged over traced views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel import AccelConfig, SimReport, simulate
from hero_lite.accel.workload import Workload
from hero_lite.quant.policy import QuantPolicy

# SimReport numbers averaged over views (the rest are per frame and shown per view).
AVERAGED_KEYS = ("latency_ms", "fps", "energy_uj", "dram_bytes", "total_cycles", "onchip_hit_rate", "cache_hit_rate")


@dataclass
class PolicyCost:
    """Hardware cost of one policy: per-view reports and their mean.

    latency_ms (ms), energy_uj (uJ), area_mm2 (mm^2), cost_efficiency = 1 / (latency_ms x area_mm2),
    model_bytes (bytes), fps; `reports` one SimReport per traced view.
    """

    latency_ms: float
    energy_uj: float
    area_mm2: float
    cost_efficiency: float
    model_bytes: int
    fps: float
    dram_bytes: float
    reports: list[SimReport]

    def to_dict(self, with_reports: bool = False) -> dict:
        out = {"latency_ms": self.latency_ms, "fps": self.fps, "energy_uj": self.energy_uj, "area_mm2": self.area_mm2,
               "cost_efficiency": self.cost_efficiency, "model_bytes": self.model_bytes, "dram_bytes": self.dram_bytes}
        if with_reports:
            out["views"] = [r.to_dict() for r in self.reports]
        return out


def policy_cost(workloads: list[Workload], policy: QuantPolicy | dict, config: AccelConfig, area_mode: str | None = None,
                sample_fraction: float | None = None, timeline: bool = False) -> PolicyCost:
    """Simulate every workload (one per view, cold caches each) and average the frame numbers."""
    bits = policy.bits if isinstance(policy, QuantPolicy) else dict(policy)
    reports = [simulate(w, bits, config, area_mode=area_mode, sample_fraction=sample_fraction, timeline=timeline)
               for w in workloads]
    latency = float(np.mean([r.latency_ms for r in reports]))
    area = float(reports[0].area_mm2)
    return PolicyCost(
        latency_ms=latency,
        energy_uj=float(np.mean([r.energy_uj for r in reports])),
        area_mm2=area,
        cost_efficiency=1.0 / (latency * area),
        model_bytes=int(reports[0].model_bytes),
        fps=1000.0 / latency,
        dram_bytes=float(np.mean([r.dram_bytes for r in reports])),
        reports=reports,
    )
