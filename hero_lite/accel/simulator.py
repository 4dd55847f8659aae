"""`simulate`: one frame of a Workload at given bit-widths on an AccelConfig -> SimReport.

Steps: place and pack the hash levels for the policy's bits (`units.place_levels`); order the rays
in blocks and cut their samples into tiles; the functional pass computes every unit's work per
tile (bank conflicts and cache behaviour over the real index stream); the timing pass
(`engine.run_pipeline`, events per tile and per DRAM request) gives the cycles; area and energy
follow from the counts (`costs.py`).

Sampling (`sample_fraction` f < 1): only the hash-memory functional pass (index generation,
bank conflicts, cache), the expensive part, is sampled; everything else is exact. The frame's
tiles are spatially contiguous groups of rays (consecutive rays of the block order); every k-th
tile, k = round(1 / f), is measured, each after a warm-up pass over the tile before it (not
counted), in frame order with the cache state carried, so a measured tile sees nearly the cache
state it has in the exact frame. A measured tile keeps its work; any other tile gets its sample
count times the per-sample rate (total work / total samples) of the measured tiles within k tiles
of it. The sampler, index-generation, interpolation, MLP and VRU work of every tile is exact (it
follows from the ray and sample counts), and the timing pass runs over all the frame's tiles, so
the frame's temporal structure (e.g. stretches of empty-space marching) is kept. Event counts for
energy are the measured tiles' counts scaled by N / n_measured. The functional pass covers
about 2 f of the samples.
"""

from __future__ import annotations

import numpy as np

from hero_lite.accel import costs, units
from hero_lite.accel.config import AREA_MODES, AccelConfig
from hero_lite.accel.engine import run_pipeline
from hero_lite.accel.report import SimReport
from hero_lite.accel.workload import Workload, check_bits, model_bytes

DEFAULT_SAMPLE_FRACTION = 0.125  # 1 tile in 8; within 5% of exact on the test frames (tests/accel/test_sampling.py)
PIXEL_BYTES = 4  # RGBA8 written per ray by the VRU (counted in bytes and energy, not timed)
UNIT_NAMES = ("sampler", "index_gen", "hash_memory", "dram", "interp", "mlp", "vru")


def sampled_tiles(n_tiles: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Measured and warm-up tiles: every k-th tile, k = max(1, round(1 / fraction)), from tile k // 2
    (the middle tile if there are fewer), each warmed up by the tile before it.

    Returns
    -------
    measured, warm : (n_tiles,) bool.
    """
    k = max(1, int(round(1.0 / fraction)))
    index = np.arange(n_tiles)
    measured = index % k == k // 2
    if not measured.any():
        measured[n_tiles // 2] = True
    warm = np.zeros(n_tiles, dtype=np.bool_)
    warm[:-1] = measured[1:]
    warm &= ~measured
    return measured, warm


def sampled_hash_work(workload: Workload, placement: units.LevelPlacement, config: AccelConfig,
                      full: units.Tiles, fraction: float, cache: units.CacheState) -> units.HashMemoryWork:
    """Hash-memory work of every frame tile, estimated from measured tiles (module docstring).

    `full` must carry the frame's sample order. The functional pass runs over each measured tile
    preceded by its warm-up tile (counts discarded), in frame order, the cache state carried, so a
    measured tile starts from nearly the cache state it has in the exact frame. A measured tile
    keeps its own work; any other tile gets its sample count times the per-sample rate of the
    measured tiles within k tiles of it (their total work / total samples).
    Counts for energy are the measured tiles' totals scaled by N / n_measured.
    """
    measured, warm = sampled_tiles(full.n_tiles, fraction)
    chosen = np.flatnonzero(measured | warm)
    starts, stops = full.tile_starts[chosen], full.tile_starts[chosen + 1]
    lengths = stops - starts
    tile_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    order = np.concatenate([full.sample_order[a:b] for a, b in zip(starts, stops)] + [full.sample_order[:0]])
    tiles = units.Tiles(sample_order=np.ascontiguousarray(order, dtype=np.int64), tile_starts=tile_starts,
                        samples=lengths.astype(np.int64), rays=np.zeros(chosen.size, np.int64),
                        march_steps=np.zeros(chosen.size, np.int64))
    hw = units.hash_memory_pass(workload, placement, config, tiles, cache)
    is_measured = measured[chosen]
    ids = chosen[is_measured]
    n = full.samples[ids].astype(np.float64)
    n_measured = n.sum()
    k = max(1, int(round(1.0 / fraction)))
    index = np.arange(full.n_tiles)
    lo = np.searchsorted(ids, index - k, side="left")
    hi = np.searchsorted(ids, index + k, side="right")
    nearest = np.clip(np.searchsorted(ids, index), 0, ids.size - 1)
    empty = hi <= lo
    lo = np.where(empty, nearest, lo)
    hi = np.where(empty, nearest + 1, hi)
    cum_n = np.concatenate([[0.0], np.cumsum(n)])
    m_full = full.samples.astype(np.float64)

    def spread(per_tile: np.ndarray) -> np.ndarray:
        """Measured tiles' own work; elsewhere the windowed per-sample rate times the tile's samples."""
        work = per_tile[is_measured].astype(np.float64)
        cum_w = np.concatenate([[0.0], np.cumsum(work)])
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.nan_to_num((cum_w[hi] - cum_w[lo]) / (cum_n[hi] - cum_n[lo]))
        est = rate * m_full
        est[ids] = work
        return np.diff(np.round(np.concatenate([[0.0], np.cumsum(est)]))).astype(np.int64)

    scale = full.n_samples / n_measured if n_measured else 0.0
    counts = {key: value * scale for key, value in units.count_dict(hw.tile_counts[is_measured].sum(axis=0)).items()}
    return units.HashMemoryWork(spread(hw.grid_cycles), spread(hw.cache_cycles), spread(hw.miss_lines), counts)


def _level_bits(workload: Workload, bits: dict[str, int]) -> np.ndarray:
    return np.array([int(bits[name]) for name in workload.level_points], dtype=np.int64)


def simulate(workload: Workload, bits: dict[str, int], config: AccelConfig, area_mode: str | None = None,
             sample_fraction: float | None = None, timeline: bool = False) -> SimReport:
    """Simulate one frame (cold caches).

    Parameters
    ----------
    workload : the frame's work (plain arrays).
    bits : bit-width of every point name of the workload (2..16, or 32 = fp32).
    config : the accelerator.
    area_mode : 'fixed' (the config's SRAM sizes) or 'fit' (grid SRAM sized to hold every level's
        packed table, no cache); default config.area_mode.
    sample_fraction : None or >= 1 for the exact frame; else about this fraction of the tiles goes
        through the hash-memory functional pass (module docstring); `DEFAULT_SAMPLE_FRACTION` is
        the tested default.
    timeline : include per-unit busy intervals (cycles) for a Gantt chart.

    Returns
    -------
    SimReport.
    """
    workload.validate()
    check_bits(workload, bits)
    area_mode = config.area_mode if area_mode is None else area_mode
    if area_mode not in AREA_MODES:
        raise ValueError(f"area_mode = {area_mode!r}; valid: {', '.join(AREA_MODES)}")
    if sample_fraction is not None and not (isinstance(sample_fraction, (int, float)) and sample_fraction > 0):
        raise ValueError(f"sample_fraction = {sample_fraction!r}; valid: None or a number in (0, 1]")
    sampled = sample_fraction is not None and sample_fraction < 1.0
    fit = area_mode == "fit"
    he, cache_cfg, dram = config.hash_engine, config.cache, config.dram
    S = config.tile_samples

    placement = units.place_levels(workload.grid, _level_bits(workload, bits), he.word_bits,
                                   None if fit else units.grid_words_capacity(config), cache_cfg.line_bytes,
                                   units.uses_pow2_slots(config))
    lbits = units.layer_bits(workload, bits)
    ray_order = units.ray_issue_order(workload.width, workload.height, config.ray_block)
    full = units.build_tiles(workload, ray_order, S)
    service = units.compute_service(workload, lbits, config, full)
    cache = units.CacheState.cold(cache_cfg.n_sets, cache_cfg.ways)
    if sampled:
        hw = sampled_hash_work(workload, placement, config, full, sample_fraction, cache)
    else:
        hw = units.hash_memory_pass(workload, placement, config, full, cache)
    service[units.STAGES.index("hash_memory")] = hw.sram_cycles

    grid_bytes = placement.grid_words_used * he.word_bits // 8
    w_bytes = units.weight_bytes(workload, bits)
    line = cache_cfg.line_bytes
    grid_lines = -(-grid_bytes // line)
    weight_lines = -(-w_bytes // line)
    pr = run_pipeline(service, hw.miss_lines, grid_lines + weight_lines, config.fifo_depth,
                      dram.bw_milli_bytes_per_cycle, line, dram.latency_cycles, dram.queue_depth, timeline=timeline)
    total = pr.total_cycles
    n_full = full.n_samples
    hash_lines = int(hw.miss_lines.sum())
    dram_lines = grid_lines + weight_lines + hash_lines
    counts = hw.counts

    unit_report = {}
    for s, name in enumerate(units.STAGES):
        b, st = int(pr.busy_cycles[s]), int(pr.stall_cycles[s])
        unit_report[name] = {"busy_cycles": b, "stall_cycles": st, "idle_cycles": total - b - st}
    unit_report["dram"] = {"busy_cycles": pr.dram_busy_cycles, "stall_cycles": 0,
                           "idle_cycles": total - pr.dram_busy_cycles}
    unit_report = {name: unit_report[name] for name in UNIT_NAMES}

    mlp_by_layer = {}
    mac_pj = 0.0
    weight_reads = 0.0
    act_words = 0.0
    for layer, (b_a, b_w) in zip(workload.mlp_layers, lbits):
        mlp_by_layer[layer.weight_point] = int(units.mlp_layer_cycles(full.samples, layer.fan_in, layer.fan_out,
                                                                      b_a, b_w, config.mlp_engine).sum())
        mac_pj += n_full * layer.fan_in * layer.fan_out * units.mac_energy_pj(b_a, b_w, config.mlp_engine)
        passes = units.operand_passes(b_a, b_w, config.mlp_engine)
        weight_reads += full.n_tiles * config.mlp_engine.arrays * passes * -(-layer.fan_in * layer.fan_out * b_w // 32)
        act_words += 2 * n_full * -(-layer.fan_in * b_a // 32)

    grid_kib = placement.grid_words_used * he.word_bits / 8192 if fit else he.grid_sram_kib
    macros = costs.design_macros(config, grid_kib, with_cache=not fit)
    area = costs.area_breakdown_mm2(config, macros)
    area_mm2 = float(sum(area.values()))
    latency_s = total / config.clock_hz
    word32 = -(-he.word_bits // 32)
    dram_by_kind = {"grid_preload": grid_lines * line, "weight_preload": weight_lines * line,
                    "hash_lines": hash_lines * line, "pixel_writes": workload.n_rays * PIXEL_BYTES}
    dram_bytes = int(sum(dram_by_kind.values()))
    ecounts = costs.EnergyCounts(
        mac_pj=mac_pj, groups=float(n_full * workload.grid.n_levels), samples=float(n_full),
        march_steps=float(np.maximum(workload.march_steps_per_ray, 1).sum()),
        grid_reads=counts["grid_words"] * word32, grid_writes=float(placement.grid_words_used * word32),
        cache_reads=counts["cache_accesses"], cache_writes=hash_lines * line / 4.0,
        weight_reads=weight_reads, weight_writes=w_bytes / 4.0, act_accesses=act_words, dram_bytes=float(dram_bytes))
    energy = costs.energy_breakdown_uj(config, macros, ecounts, latency_s)

    groups = counts["grid_groups"] + counts["cache_groups"]
    latency_ms = latency_s * 1e3
    completed = max(pr.dram_lines, 1)
    span = max(pr.total_cycles, 1)
    iv = None
    if timeline and pr.intervals is not None:
        iv = {name: pr.intervals[name].tolist() for name in UNIT_NAMES}
    return SimReport(
        total_cycles=total,
        latency_ms=latency_ms,
        fps=1e3 / latency_ms if latency_ms > 0 else float("inf"),
        clock_hz=float(config.clock_hz),
        units=unit_report,
        hash_dram_wait_cycles=pr.dram_wait_cycles,
        mlp_cycles_by_layer=mlp_by_layer,
        dram_bytes=dram_bytes,
        dram_bytes_by_kind=dram_by_kind,
        dram_lines=dram_lines,
        dram_queue={"mean_outstanding": pr.dram_outstanding_area / span,
                    "throughput_lines_per_cycle": pr.dram_lines / span,
                    "mean_time_in_system_cycles": pr.dram_sojourn_cycles / completed if pr.dram_lines else 0.0},
        onchip_hit_rate=counts["grid_groups"] / groups if groups else 1.0,
        cache_hit_rate=counts["cache_hits"] / counts["cache_accesses"] if counts["cache_accesses"] else 1.0,
        bank_conflict_cycles=int(round(counts["grid_conflict_cycles"] + counts["cache_conflict_cycles"])),
        bank_conflict_cycles_by_memory={"grid_sram": int(round(counts["grid_conflict_cycles"])),
                                        "cache": int(round(counts["cache_conflict_cycles"]))},
        energy_uj=float(sum(energy.values())),
        energy_breakdown_uj=energy,
        area_mm2=area_mm2,
        area_breakdown_mm2=area,
        area_mode=area_mode,
        grid_sram_kib=float(grid_kib),
        cost_efficiency_per_ms_mm2=1.0 / (latency_ms * area_mm2) if latency_ms > 0 else float("inf"),
        model_bytes=model_bytes(workload, bits),
        levels_on_chip=placement.levels_on_chip,
        n_samples=n_full,
        n_rays=workload.n_rays,
        n_tiles=full.n_tiles,
        n_events=pr.n_events,
        sampled=sampled,
        sample_fraction=float(sample_fraction) if sampled else 1.0,
        config_name=config.name,
        timeline=iv,
    )
