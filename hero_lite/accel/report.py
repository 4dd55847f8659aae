"""SimReport: what one simulated frame costs, JSON with units in the keys."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimReport:
    """Result of `simulate` for one frame.

    Attributes
    ----------
    total_cycles : frame latency in cycles (extrapolated to the frame when `sampled`).
    latency_ms, fps : total_cycles / clock_hz in ms, and its inverse in frames per second.
    clock_hz : accelerator clock.
    units : per unit ('sampler', 'index_gen', 'hash_memory', 'dram', 'interp', 'mlp', 'vru')
        {'busy_cycles', 'stall_cycles', 'idle_cycles'}; they add up to total_cycles.
    hash_dram_wait_cycles : part of the hash-memory stall spent waiting for DRAM.
    mlp_cycles_by_layer : MLP engine cycles per layer (weight point name) over the frame.
    dram_bytes, dram_bytes_by_kind : bytes over the DRAM channel ('grid_preload',
        'weight_preload', 'hash_lines', 'pixel_writes'; pixel writes are counted but not timed).
    dram_lines : line requests (preload included).
    dram_queue : Little's-law quantities of the DRAM request queue (sampled run when sampled):
        mean_outstanding, throughput_lines_per_cycle, mean_time_in_system_cycles.
    onchip_hit_rate : fraction of (sample, level) corner lookups served by the grid SRAM.
    cache_hit_rate : cache hits / cache line accesses (1.0 when nothing went through the cache).
    bank_conflict_cycles : extra cycles over one per group from bank conflicts (grid SRAM + cache),
        bank_conflict_cycles_by_memory splits them.
    energy_uj, energy_breakdown_uj : frame energy and its components.
    area_mm2, area_breakdown_mm2 : design area and its components; area_mode 'fixed' | 'fit';
        grid_sram_kib : grid SRAM size of the design (the fitted size in 'fit' mode).
    cost_efficiency_per_ms_mm2 : 1 / (latency_ms * area_mm2), i.e. FPS per mm^2 / 1000;
        cost_efficiency is the same number. HERO (arXiv 2510.09010) does not publish its formula;
        its cost-efficiency gains (1.29-1.33x) track its latency gains (1.31-1.33x), which this
        one reproduces at fixed area (inferred).
    model_bytes : exact packed model size of the policy.
    levels_on_chip : hash levels held in the grid SRAM.
    n_samples, n_rays, n_tiles : frame work (tiles of the frame, also when sampled).
    n_events : events processed by the timing pass (of the sampled run when sampled).
    sampled, sample_fraction : whether ray blocks were sampled, and the requested fraction (1.0 exact).
    config_name : the AccelConfig name.
    timeline : unit -> list of [start, end) busy intervals in cycles (sampled run when sampled), or None.
    """

    total_cycles: int
    latency_ms: float
    fps: float
    clock_hz: float
    units: dict[str, dict[str, int]]
    hash_dram_wait_cycles: int
    mlp_cycles_by_layer: dict[str, int]
    dram_bytes: int
    dram_bytes_by_kind: dict[str, int]
    dram_lines: int
    dram_queue: dict[str, float]
    onchip_hit_rate: float
    cache_hit_rate: float
    bank_conflict_cycles: int
    bank_conflict_cycles_by_memory: dict[str, int]
    energy_uj: float
    energy_breakdown_uj: dict[str, float]
    area_mm2: float
    area_breakdown_mm2: dict[str, float]
    area_mode: str
    grid_sram_kib: float
    cost_efficiency_per_ms_mm2: float
    model_bytes: int
    levels_on_chip: list[int]
    n_samples: int
    n_rays: int
    n_tiles: int
    n_events: int
    sampled: bool
    sample_fraction: float
    config_name: str
    timeline: dict[str, list[list[int]]] | None = field(default=None)

    @property
    def cost_efficiency(self) -> float:
        """Alias of cost_efficiency_per_ms_mm2 = 1 / (latency_ms * area_mm2)."""
        return self.cost_efficiency_per_ms_mm2

    def unit_shares(self) -> dict[str, float]:
        """Busy cycles of each unit as a fraction of total_cycles."""
        total = max(self.total_cycles, 1)
        return {name: u["busy_cycles"] / total for name, u in self.units.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (includes the `cost_efficiency` alias)."""
        out = dataclasses.asdict(self)
        out["cost_efficiency"] = self.cost_efficiency_per_ms_mm2
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimReport":
        """Inverse of `to_dict` (ignores the `cost_efficiency` alias; rejects unknown keys)."""
        data = dict(data)
        data.pop("cost_efficiency", None)
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"SimReport: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
        missing = [k for k in valid if k not in data and k != "timeline"]
        if missing:
            raise ValueError(f"SimReport: missing key(s) {', '.join(missing)}")
        return cls(**data)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "SimReport":
        return cls.from_dict(json.loads(text))
