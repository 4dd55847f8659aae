"""Area and energy models: counts from the simulation times per-unit costs from cited tables.

Sources: BitFusion synthesis (Sharma et al., ISCA 2018; hsharma35/bitfusion
`results/systolic_array_synth.csv`: PE area, energy per cycle, leakage; 45 nm, 500 MHz), CACTI 7
via the BitFusion code's `bitfusion/sram/cacti_sweep.csv` (SRAM area, read/write energy per 32-bit
access and leakage, 45 nm, itrs-hp, one bank), Horowitz, "Computing's energy problem", ISSCC 2014
(45 nm op energies), DRAM pJ/bit from the BitFusion code. On-chip numbers are scaled from 45 nm to
the design's node by `tech.area_scale` and `tech.energy_scale` (Stillmaker & Baas 2017 tables as
in Accelergy's hwcomponents `techscaling.py`, interpolated to 28 nm: inferred); DRAM energy is off
chip and not scaled.

SRAM macros: a memory of S KiB in B banks is B CACTI arrays of S/B KiB each. The CACTI rows are
interpolated log-log; beyond the largest row, area grows linearly with size (mm^2 per KiB of the
largest row) and access energy and leakage follow the last segment's log-log slope (0.64 for
energy from 8 to 16 KiB, near Horowitz's 20 -> 100 pJ from 32 KiB to 1 MiB); below the smallest
row, the first segment's slope. An access reads or writes one 32-bit word of one bank.

Energy (uJ) = MACs x per-MAC energy (`units.mac_energy_pj`) + SRAM accesses x per-access energy
+ DRAM bits x pj_per_bit + per-operation energies of the index-generation, interpolation,
volume-rendering and sampler units + leakage power x latency.
Area (mm^2) = PE array + SRAM macros (grid SRAM, cache data x (1 + tag fraction), weight buffer,
two activation buffers, occupancy bitfield) + index-generation, interpolation, VRU and sampler
logic. FIFOs between units are small registers files and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel.config import AccelConfig, TechConfig


def _loglog(x: float, xs: np.ndarray, ys: np.ndarray, linear_above: bool) -> float:
    lx, ly = np.log(xs), np.log(ys)
    if x <= xs[0]:
        slope = (ly[1] - ly[0]) / (lx[1] - lx[0])
        return float(np.exp(ly[0] + slope * (np.log(x) - lx[0])))
    if x >= xs[-1]:
        if linear_above:
            return float(ys[-1] * x / xs[-1])
        slope = (ly[-1] - ly[-2]) / (lx[-1] - lx[-2])
        return float(np.exp(ly[-1] + slope * (np.log(x) - lx[-1])))
    return float(np.exp(np.interp(np.log(x), lx, ly)))


@dataclass(frozen=True)
class SramCost:
    """One SRAM macro at 45 nm: total area, per-access energies of one bank, total leakage."""

    kib: float
    banks: int
    area_mm2: float
    read_pj: float
    write_pj: float
    leakage_mw: float


def sram_cost(kib: float, banks: int, tech: TechConfig) -> SramCost:
    """CACTI-table cost of `kib` KiB split into `banks` banks (45 nm, before node scaling).

    Example: 16 KiB in one bank: 0.1086 mm^2, 9.98 pJ per read (the table row).
    """
    if kib <= 0:
        return SramCost(0.0, banks, 0.0, 0.0, 0.0, 0.0)
    xs = np.asarray(tech.sram_kib, dtype=np.float64)
    per_bank = kib / banks
    area = banks * _loglog(per_bank, xs, np.asarray(tech.sram_area_mm2), linear_above=True)
    read = _loglog(per_bank, xs, np.asarray(tech.sram_read_pj), linear_above=False)
    write = _loglog(per_bank, xs, np.asarray(tech.sram_write_pj), linear_above=False)
    leak = banks * _loglog(per_bank, xs, np.asarray(tech.sram_leakage_mw), linear_above=True)
    return SramCost(kib, banks, area, read, write, leak)


@dataclass(frozen=True)
class Macros:
    """The SRAM macros of a design (45 nm costs)."""

    grid: SramCost
    cache: SramCost
    weight: SramCost
    act: SramCost  # one of the two activation buffers
    occupancy: SramCost


def design_macros(config: AccelConfig, grid_kib: float, with_cache: bool) -> Macros:
    """SRAM macros; `grid_kib` is the grid SRAM size in use (config size, or the fitted one)."""
    he, tech, mlp = config.hash_engine, config.tech, config.mlp_engine
    cache = sram_cost(config.cache.kib, config.cache.banks, tech) if with_cache else SramCost(0, 1, 0, 0, 0, 0)
    return Macros(grid=sram_cost(grid_kib, he.sram_banks, tech), cache=cache,
                  weight=sram_cost(mlp.weight_buffer_kib, 1, tech), act=sram_cost(mlp.act_buffer_kib, 1, tech),
                  occupancy=sram_cost(config.sampler.occupancy_kib, 1, tech))


def area_breakdown_mm2(config: AccelConfig, macros: Macros) -> dict[str, float]:
    """Area per component at the design's node, mm^2."""
    s = config.tech.area_scale
    mlp, he = config.mlp_engine, config.hash_engine
    return {
        "pe_array": mlp.arrays * mlp.rows * mlp.cols * mlp.pe_area_um2 * 1e-6 * s,
        "grid_sram": macros.grid.area_mm2 * s,
        "cache": macros.cache.area_mm2 * (1.0 + config.cache.tag_area_fraction) * s,
        "weight_buffer": macros.weight.area_mm2 * s,
        "act_buffers": 2 * macros.act.area_mm2 * s,
        "index_gen": he.igu_units * he.igu_area_um2 * 1e-6 * s,
        "interp": he.interp_units * he.interp_area_um2 * 1e-6 * s,
        "vru": config.vru.samples_per_cycle * config.vru.area_um2 * 1e-6 * s,
        "sampler": config.sampler.steps_per_cycle * config.sampler.area_um2 * 1e-6 * s,
        "occupancy_sram": macros.occupancy.area_mm2 * s,
    }


def leakage_mw(config: AccelConfig, macros: Macros) -> float:
    """Static power at the design's node, mW (PE leakage + SRAM leakage, scaled)."""
    mlp, tech = config.mlp_engine, config.tech
    pe = mlp.arrays * mlp.rows * mlp.cols * mlp.pe_leakage_uw * 1e-3
    sram = (macros.grid.leakage_mw + macros.cache.leakage_mw + macros.weight.leakage_mw + 2 * macros.act.leakage_mw
            + macros.occupancy.leakage_mw)
    return (pe + sram) * tech.energy_scale * tech.leakage_scale


@dataclass(frozen=True)
class EnergyCounts:
    """Event counts of one frame that energy is charged on.

    mac_pj : MAC energy at 45 nm (sum over layers of MACs x per-MAC energy), pJ.
    groups : (sample, level) groups (index generation and interpolation).
    samples, march_steps : composited samples and sampler steps.
    grid_reads, grid_writes : 32-bit grid SRAM accesses (reads by lookups, writes by the preload).
    cache_reads, cache_writes : cache accesses (one word per line read; a fill writes line_bytes/4 words).
    weight_reads, weight_writes : weight-buffer word accesses.
    act_accesses : activation-buffer word accesses.
    dram_bytes : bytes moved over the DRAM channel.
    """

    mac_pj: float
    groups: float
    samples: float
    march_steps: float
    grid_reads: float
    grid_writes: float
    cache_reads: float
    cache_writes: float
    weight_reads: float
    weight_writes: float
    act_accesses: float
    dram_bytes: float


def energy_breakdown_uj(config: AccelConfig, macros: Macros, counts: EnergyCounts,
                        latency_s: float) -> dict[str, float]:
    """Energy per component, uJ (on-chip terms scaled by tech.energy_scale; DRAM not scaled)."""
    e = config.tech.energy_scale * 1e-6  # pJ at 45 nm -> uJ at the node
    he = config.hash_engine
    return {
        "mac": counts.mac_pj * e,
        "grid_sram": (counts.grid_reads * macros.grid.read_pj + counts.grid_writes * macros.grid.write_pj) * e,
        "cache": (counts.cache_reads * macros.cache.read_pj + counts.cache_writes * macros.cache.write_pj) * e,
        "weight_buffer": (counts.weight_reads * macros.weight.read_pj
                          + counts.weight_writes * macros.weight.write_pj) * e,
        "act_buffers": counts.act_accesses * macros.act.read_pj * e,
        "index_gen": counts.groups * he.igu_pj_per_group * e,
        "interp": counts.groups * he.interp_pj_per_group * e,
        "vru": counts.samples * config.vru.pj_per_sample * e,
        "sampler": counts.march_steps * (config.sampler.pj_per_step + macros.occupancy.read_pj) * e,
        "dram": counts.dram_bytes * 8 * config.dram.pj_per_bit * 1e-6,
        "leakage": leakage_mw(config, macros) * 1e-3 * latency_s * 1e6,
    }
