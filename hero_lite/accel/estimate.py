"""`CostEstimator`: the simulator's latency, energy, area and model size of any policy in well under a ms.

    from hero_lite.accel import CostEstimator, load_config, synthetic_workload, uniform_bits
    workload = synthetic_workload(100, 100)
    est = CostEstimator(workload, load_config("edge"))        # ~1.5 s once per workload and config
    bits = uniform_bits(workload, 8)
    est.latency_ms(bits), est.energy_uj(bits), est.area_mm2(bits), est.model_bytes(bits)   # ~0.2 ms

Built from the simulator's own structure (`simulator.py`): the per-tile service of every pipeline
stage and the DRAM line requests of every tile, timed by the same pipeline.

Precompute (once, `frame_profile.profile_frame`): the tiles and the per-tile service of the
stages that do not depend on bits (exact); for every hash level and every packing the bit-widths
2..16, 32 can give, over the real corner indices of the frame in issue order, its grid-SRAM cycles
and words, or its cache cycles, line accesses, misses alone and cross-tile reuse profile (exact per
level); a table of DRAM return times (exact). Numba kernels: `_estimate_kernels.py`.

Per call:
- placement of the levels: `units.place_levels`' rule (the longest coarse-to-fine prefix that fits);
- hash-memory service per tile = max(sum of on-chip levels' SRAM cycles, sum of off-chip levels'
  cache cycles); MLP service per tile from `units.mlp_layer_cycles` (memoised per layer and bits);
- misses per tile of an off-chip level l: its misses alone, plus each of its cross-tile hits that
  the other off-chip levels evict. Approximation (the only one of the faithful mode): between a
  line's two uses g tiles apart, another off-chip level m uses U_m(g) of its n_m lines (the window
  mean), each of them with probability f = U_m(g) / n_m; its lines fill the sets evenly (floor or
  ceil of n_m / n_sets per set, as contiguous line numbers do), independently of the other levels'
  alignment, so its count in the line's set is binomial(n_m / n_sets, f); LRU keeps the line iff k
  plus the other levels' count stays below `ways`. Expected misses are fractional; the DRAM time of
  a tile interpolates the table. The independence of the levels' alignments is the weak point when
  a level has fewer lines than the cache has sets: with a 128 KiB 2-way cache on the server preset,
  the hash misses are 10-30% too high, and 5x too high when every off-chip level fits in the cache
  together (2 bits); the latency there was still exact (the DRAM was not the bottleneck). For the
  presets every off-chip hash level spans several lines per set (hash-line errors < 0.01%).
- latency: the engine's semantics as a tile-level recurrence (exact for given service and lines):
  start[s, k] = max(leave[s, k-1], leave[s-1, k]); end = start + service (the hash stage: the larger
  of its SRAM cycles and its lines' DRAM return time); leave[s, k] = max(end, start[s+1, k-fifo_depth]);
  the hash stage starts after the DRAM preload of the on-chip levels and the MLP weights.
- energy: `costs.energy_breakdown_uj` on the same counts as the simulator (exact except the
  estimated misses and the leakage x estimated latency); area: `costs` on the design's macros
  (exact: constant in 'fixed' mode, from the packed on-chip table words in 'fit' mode);
  model bytes: `workload.model_bytes` (exact).

Faithful vs monotone. With the dense packing of the `word_mod` and `vertex` bank mappings the
simulator is not monotone in the bits: a level's bank conflicts and lines depend on its packing (a
dense level at 16 entries per 32-byte line puts z-neighbours 64 lines apart, in the same one of 64
cache banks: on the server preset, with levels 0-2 at 16 bits and the MLP at 8, level 3 at 8 bits
makes the synthetic frame 11% slower than at 9 bits; non-power-of-two entries per line split the
hash's x-neighbours). With the block mappings (`xor`, `block_mod`: power-of-two slots, bank blocks
that hold whole words and lines at every packing, docs/accelerator.md) the simulator itself is
monotone on the test policies (tests/accel/test_monotone.py), and so is the faithful estimate.
`monotone=False` (default) follows the simulator, non-monotonicities included; over 50 random mixed
policies per preset, on the synthetic frame and the primitives trace, its latency equals
`simulate`'s to the cycle and its energy is within 0.01%. `monotone=True` is monotone by
construction (lowering any point's bits never raises the estimated latency), at a price where the
simulator is not: per tile, every level's SRAM cycles, cache cycles, misses and window lines are
replaced by their least-squares non-decreasing fit over the bit-widths (pool adjacent violators),
the reuse profile is pooled over bit-widths, lines per set are taken at the widest packing, and the
placement is the best of the on-chip prefixes (levels 0..k-1) that fit, instead of the longest one.
Measured (same policies): edge median error < 0.1%, max 5-9%, Spearman 0.99; server median 3-4%,
max 18-24%, Spearman 0.73-0.78.

Speed (2 cores, shared): precompute 1.1-1.6 s for a 100 x 100 frame (35-55k samples); an estimate
0.15-0.2 ms (monotone 0.25-0.5 ms).

`calibrate(bits, report)` rescales later latency and energy estimates by report / estimate at a
policy the simulator has run (a positive factor, so monotonicity is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel import _estimate_kernels as K
from hero_lite.accel import costs, units
from hero_lite.accel.config import AREA_MODES, AccelConfig
from hero_lite.accel.frame_profile import profile_frame
from hero_lite.accel.report import SimReport
from hero_lite.accel.simulator import PIXEL_BYTES
from hero_lite.accel.workload import (FLOAT_BITS, MAX_QUANT_BITS, MIN_BITS, PARAM_BYTES_PER_QUANTIZER, Workload,
                                     check_bits)


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cost of one policy on one frame (`CostEstimator.estimate`).

    total_cycles : frame latency, cycles (calibrated); latency_ms : the same in ms.
    energy_uj : frame energy, uJ (calibrated); area_mm2 : design area, mm^2 (exact).
    model_bytes : packed model size, bytes (exact).
    dram_bytes : DRAM traffic of the frame (preload, estimated hash-line misses, pixel writes), bytes.
    hash_dram_lines : estimated DRAM lines of the hash levels read through the cache.
    levels_on_chip : the hash levels the estimate places in the grid SRAM.
    """

    total_cycles: float
    latency_ms: float
    energy_uj: float
    area_mm2: float
    model_bytes: int
    dram_bytes: float
    hash_dram_lines: float
    levels_on_chip: list[int]


class CostEstimator:
    """Fast estimate of `simulate(workload, bits, config, area_mode)` for arbitrary bits (module docstring).

    Parameters
    ----------
    workload : the frame (as for `simulate`).
    config : the accelerator.
    area_mode : 'fixed' or 'fit' (default config.area_mode), as for `simulate`.
    monotone : False (default) follows the simulator closely, including its non-monotonicities;
        True is monotone by construction in every point's bits (lowering bits never raises the
        estimated latency), less accurate where the simulator is not monotone.

    The precompute profiles every hash level at every packing of the bit-widths 2..16 and 32
    (~1-1.6 s for a 100 x 100 frame on 2 cores); each estimate then takes ~0.2 ms (monotone:
    ~0.3-0.5 ms). Numbers and methods: module docstring.
    """

    def __init__(self, workload: Workload, config: AccelConfig, area_mode: str | None = None,
                 monotone: bool = False):
        workload.validate()
        area_mode = config.area_mode if area_mode is None else area_mode
        if area_mode not in AREA_MODES:
            raise ValueError(f"area_mode = {area_mode!r}; valid: {', '.join(AREA_MODES)}")
        if not isinstance(monotone, bool):
            raise TypeError(f"monotone = {monotone!r}; valid: True or False")
        self.workload, self.config, self.area_mode, self.monotone = workload, config, area_mode, monotone
        self._profile = profile_frame(workload, config, area_mode, monotone)
        self._mlp_memo: dict = {}
        self._area_memo: dict = {}
        self._memo_key = None
        self._memo_value: CostEstimate | None = None
        self._latency_scale = 1.0
        self._energy_scale = 1.0
        self._march_steps = float(np.maximum(workload.march_steps_per_ray, 1).sum())
        self._names = workload.point_names
        self._stored = [(name, int(n)) for name, n in workload.stored_points.items()]
        self._layers = [(layer.weight_point, layer.input_points, layer.fan_in * layer.fan_out)
                        for layer in workload.mlp_layers]

    # -- per call ------------------------------------------------------------------------------

    def placement(self, bits: dict[str, int]) -> list[int]:
        """Hash levels the estimate puts on chip (the simulator's rule; monotone mode: the best prefix)."""
        return self.estimate(bits).levels_on_chip

    def _placement(self, bi: np.ndarray) -> np.ndarray:
        """The simulator's placement (`units.place_levels`: the longest prefix that fits), (1, L) bool."""
        return self._prefixes(bi)[-1:]

    def _prefixes(self, bi: np.ndarray) -> np.ndarray:
        """Every on-chip prefix (levels 0..k-1) that fits, (n_prefixes, L) bool (monotone mode)."""
        L = bi.size
        cap = self._profile.capacity_words
        if cap is None:
            return np.ones((1, L), np.bool_)
        used = np.cumsum(self._profile.level_words[np.arange(L), bi])
        n = 1 + int(np.searchsorted(used, cap, side="right"))
        return np.arange(L)[None, :] < np.arange(n)[:, None]

    def _layer_terms(self, k: int, b_a: int, b_w: int) -> tuple:
        key = (k, b_a, b_w)
        got = self._mlp_memo.get(key)
        if got is None:
            layer, mlp = self.workload.mlp_layers[k], self.config.mlp_engine
            tiles = self._profile.tiles
            n = tiles.n_samples
            cycles = units.mlp_layer_cycles(tiles.samples, layer.fan_in, layer.fan_out, b_a, b_w, mlp)
            passes = units.operand_passes(b_a, b_w, mlp)
            got = (cycles, n * layer.fan_in * layer.fan_out * units.mac_energy_pj(b_a, b_w, mlp),
                   tiles.n_tiles * mlp.arrays * passes * -(-layer.fan_in * layer.fan_out * b_w // 32),
                   2 * n * -(-layer.fan_in * b_a // 32))
            self._mlp_memo[key] = got
        return got

    def _macros(self, used_words: int) -> tuple:
        got = self._area_memo.get(used_words)
        if got is None:
            he = self.config.hash_engine
            fit = self.area_mode == "fit"
            grid_kib = used_words * he.word_bits / 8192 if fit else he.grid_sram_kib
            macros = costs.design_macros(self.config, grid_kib, with_cache=not fit)
            got = (macros, float(sum(costs.area_breakdown_mm2(self.config, macros).values())))
            self._area_memo[used_words] = got
        return got

    def estimate(self, bits: dict[str, int]) -> CostEstimate:
        """Every estimated number of one policy (the last policy's result is memoised)."""
        w = self.workload
        key = self._check(bits)
        if key == self._memo_key and self._memo_value is not None:
            return self._memo_value
        level_bits = np.array([int(bits[name]) for name in w.level_points], np.int64)
        prof = self._profile
        bi = prof.bit_index[level_bits]
        if np.any(prof.entries_per_line[bi] < 1):
            raise ValueError(f"cache.line_bytes = {self.config.cache.line_bytes} holds no entry of "
                             f"{int(w.grid.n_feat * level_bits.max())} bits")
        service = prof.service.copy()
        mac_pj = weight_reads = act_words = 0.0
        w_bytes = 0
        for k, (weight_point, input_points, n_weights) in enumerate(self._layers):
            b_w = int(bits[weight_point])
            b_a = max(int(bits[p]) for p in input_points)
            w_bytes += 4 * n_weights if b_w == FLOAT_BITS else -(-n_weights * b_w // 8)
            cycles, e_mac, reads, acts = self._layer_terms(k, b_a, b_w)
            service[4] += cycles
            mac_pj += e_mac
            weight_reads += reads
            act_words += acts
        line = self.config.cache.line_bytes
        he = self.config.hash_engine
        weight_lines = -(-w_bytes // line)
        placements = self._prefixes(bi) if self.monotone else self._placement(bi)
        out = np.zeros((placements.shape[0], 5))
        K.evaluate_kernel(bi, placements, prof.grid_cycles, prof.grid_words, prof.cache_cycles, prof.cache_accesses,
                          prof.miss_lo, prof.miss_hi, prof.window, prof.reuse_p, prof.level_words, prof.level_lines,
                          service, prof.dram_table, weight_lines, he.word_bits, line, self.config.fifo_depth,
                          self.config.cache.n_sets, self.config.cache.ways, out)
        best = int(np.argmin(out[:, 0]))
        cycles, hash_lines, words_read, accesses, used = out[best]
        used = int(used)
        macros, area = self._macros(used)
        grid_lines = -(-(used * he.word_bits // 8) // line)
        latency_s = cycles / self.config.clock_hz
        n = float(prof.tiles.n_samples)
        word32 = -(-he.word_bits // 32)
        dram_bytes = (grid_lines + weight_lines + hash_lines) * line + w.n_rays * PIXEL_BYTES
        counts = costs.EnergyCounts(
            mac_pj=mac_pj, groups=n * w.grid.n_levels, samples=n, march_steps=self._march_steps,
            grid_reads=words_read * word32, grid_writes=float(used * word32), cache_reads=accesses,
            cache_writes=hash_lines * line / 4.0, weight_reads=weight_reads, weight_writes=w_bytes / 4.0,
            act_accesses=act_words, dram_bytes=dram_bytes)
        energy = float(sum(costs.energy_breakdown_uj(self.config, macros, counts, latency_s).values()))
        cycles *= self._latency_scale
        result = CostEstimate(total_cycles=float(cycles), latency_ms=float(cycles / self.config.clock_hz * 1e3),
                              energy_uj=energy * self._energy_scale, area_mm2=area, model_bytes=self._model_bytes(bits),
                              dram_bytes=float(dram_bytes), hash_dram_lines=float(hash_lines),
                              levels_on_chip=[int(v) for v in np.flatnonzero(placements[best])])
        self._memo_key, self._memo_value = key, result
        return result

    def _check(self, bits: dict[str, int]) -> tuple:
        """The policy's bits in point order; ValueError (from `check_bits`) if one is missing or invalid."""
        try:
            key = tuple(bits[name] for name in self._names)
            ok = all(type(b) is int and (MIN_BITS <= b <= MAX_QUANT_BITS or b == FLOAT_BITS) for b in key)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            check_bits(self.workload, bits)  # raises, naming the point
            key = tuple(int(bits[name]) for name in self._names)  # numpy integers pass check_bits
        return key

    def _model_bytes(self, bits: dict[str, int]) -> int:
        total = sum(4 * n if bits[name] == FLOAT_BITS else -(-n * int(bits[name]) // 8) + PARAM_BYTES_PER_QUANTIZER
                    for name, n in self._stored)
        return total + PARAM_BYTES_PER_QUANTIZER * sum(bits[name] != FLOAT_BITS
                                                       for name in self.workload.activation_points)

    def latency_ms(self, bits: dict[str, int]) -> float:
        """Estimated frame latency, ms."""
        return self.estimate(bits).latency_ms

    def energy_uj(self, bits: dict[str, int]) -> float:
        """Estimated frame energy, uJ."""
        return self.estimate(bits).energy_uj

    def dram_bytes(self, bits: dict[str, int]) -> float:
        """Estimated DRAM traffic of the frame, bytes (SimReport.dram_bytes)."""
        return self.estimate(bits).dram_bytes

    def area_mm2(self, bits: dict[str, int]) -> float:
        """Design area, mm^2: exact (a constant in 'fixed' mode; in 'fit' mode from the packed on-chip
        words of the placement, which in monotone mode is the chosen prefix)."""
        return self.estimate(bits).area_mm2

    def model_bytes(self, bits: dict[str, int]) -> int:
        """Packed model size, bytes (exact: `workload.model_bytes`)."""
        self._check(bits)
        return self._model_bytes(bits)

    def calibrate(self, bits: dict[str, int], report: SimReport) -> None:
        """Scale later latency and energy estimates by report / estimate at `bits`.

        `report` must be `simulate(workload, bits, config, area_mode)` of this estimator's workload,
        config and area mode (sampled reports are accepted). A new call replaces the previous scale.
        """
        if not isinstance(report, SimReport):
            raise TypeError(f"report must be a SimReport, got {type(report).__name__}")
        n_samples = self._profile.tiles.n_samples
        if report.config_name != self.config.name or report.area_mode != self.area_mode or \
                report.n_samples != n_samples or report.n_rays != self.workload.n_rays:
            raise ValueError(f"report of config {report.config_name!r}, area_mode {report.area_mode!r}, "
                             f"{report.n_samples} samples does not match the estimator's config "
                             f"{self.config.name!r}, area_mode {self.area_mode!r}, {n_samples} samples")
        self._latency_scale = self._energy_scale = 1.0
        self._memo_key = None
        raw = self.estimate(bits)
        self._latency_scale = report.total_cycles / raw.total_cycles if raw.total_cycles > 0 else 1.0
        self._energy_scale = report.energy_uj / raw.energy_uj if raw.energy_uj > 0 else 1.0
        self._memo_key = None

