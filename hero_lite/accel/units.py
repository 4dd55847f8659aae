"""Functional models of the units: how much work each unit does per tile of samples.

The simulator is trace-driven (like SCALE-Sim): this module turns a Workload, bit-widths and an
AccelConfig into per-tile service times and DRAM line requests; `engine.py` then times them.

Ray order: the sampler issues rays in `ray_block` x `ray_block` pixel blocks, blocks in raster
order, rays row-major inside a block (NeuRex-style screen tiling). The samples of those rays, in
that order, are cut into tiles of `tile_samples` samples (the last tile may be shorter).

Per-tile service times (cycles):
- sampler: ceil(sum over the tile's rays of max(march_steps, 1) / steps_per_cycle); a ray belongs
  to the tile holding its first sample (a ray without samples to the tile of the next sample);
- index generation: ceil(n * L / igu_units); interpolation: ceil(n * L / interp_units);
- hash memory: max(grid-SRAM cycles, cache cycles) of the tile (separate arrays working in
  parallel), plus its DRAM line requests (`hash_memory_pass`): level by level, `batch_groups`
  (sample, level) groups at a time, each batch taking as many cycles as the most loaded bank
  (one word or line per bank per cycle; bank = word or line address mod banks, or by bank block
  with the xor and block_mod mappings, `_kernels.hash_memory_kernel`);
- MLP: sum over layers of `mlp_layer_cycles`; VRU: ceil(n / samples_per_cycle).

Packing (no entry straddles a word or a line, `packing`): an entry takes a slot of F * b bits
(b = 32: fp32), or of the next power of two with the block mappings (xor, block_mod);
entries per SRAM word = floor(word_bits / slot) (an entry wider than a word takes
ceil(slot / word_bits) consecutive words); entries per cache line = floor(8 line_bytes / slot)
(powers of two with the block mappings, so packings nest). The longest coarse-to-fine prefix of
levels whose packed tables fit is on chip; the others are read through the cache from DRAM, where
every level has a region at a fixed address. So fewer bits mean more entries per word, per line
and per byte of SRAM, and never fewer levels on chip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel import _kernels as K
from hero_lite.accel.config import BANK_MAPPINGS, AccelConfig, MLPEngineConfig
from hero_lite.accel.engine import STAGES
from hero_lite.accel.workload import FLOAT_BITS, MAX_QUANT_BITS, MIN_BITS, GridGeometry, Workload

ALL_BITS = tuple(range(MIN_BITS, MAX_QUANT_BITS + 1)) + (FLOAT_BITS,)  # every valid bit-width, ascending


def _ceil_div(a, b):
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# MLP engine


def perf_factor(b_a: int, b_w: int, pmax: int = 8, pmin: int = 2) -> int:
    """BitFusion throughput factor floor(pmax / max(b_a, pmin)) * floor(pmax / max(b_w, pmin)).

    BitFusion code (`accelerator.py`); operands wider than pmax run in several passes at pmax
    (see `operand_passes`), so they count as pmax here. Example: (8, 8) -> 1, (4, 4) -> 4,
    (2, 2) -> 16, (3, 8) -> 2 (3 bits cost like 4).
    """
    a = max(min(b_a, pmax), pmin)
    w = max(min(b_w, pmax), pmin)
    return (pmax // a) * (pmax // w)


def operand_passes(b_a: int, b_w: int, mlp: MLPEngineConfig) -> int:
    """Passes over the array for operands wider than the PE handles at once.

    bitfusion and fixed: ceil(b_a / pmax) * ceil(b_w / pmax) (fp32 on 8-bit PEs: 16 passes, as
    BitFusion runs 16-bit operands); bit_serial: ceil(b_a / pmax) * ceil(b_w / pmin) (the weight
    goes through in pmin-bit steps, so cycles grow in proportion to weight bits).
    """
    a = _ceil_div(b_a, mlp.pmax)
    if mlp.pe_mode == "bit_serial":
        return a * _ceil_div(b_w, mlp.pmin)
    return a * _ceil_div(b_w, mlp.pmax)


def effective_rows(b_a: int, b_w: int, mlp: MLPEngineConfig) -> int:
    """R' = R * perf_factor for bitfusion (fused BitBricks act as extra rows along K), else R."""
    if mlp.pe_mode == "bitfusion":
        return mlp.rows * perf_factor(b_a, b_w, mlp.pmax, mlp.pmin)
    return mlp.rows


def mlp_layer_cycles(n_samples, fan_in: int, fan_out: int, b_a: int, b_w: int, mlp: MLPEngineConfig):
    """Cycles of one layer for a tile of n_samples on the weight-stationary R x C array(s).

    SCALE-Sim first-order model (Samajdar et al., ISPASS 2020), weight-stationary:
    folds = ceil(K / R') * ceil(N / C), each fold = fill + stream + drain = m + 2R + C - 2 cycles
    for m = ceil(n / arrays) samples per array (R is the physical row count; SCALE-Sim v3 counts
    one cycle less per layer). Times `operand_passes`. Zero samples cost nothing.

    Parameters
    ----------
    n_samples : int or (n_tiles,) int64 array of samples per tile.

    Returns
    -------
    int or (n_tiles,) int64, cycles.

    Example: K = N = 64, 16 x 16 array, 8-bit bitfusion, 256 samples: 4 * 4 folds * 302 = 4832.
    """
    rr = effective_rows(b_a, b_w, mlp)
    folds = _ceil_div(fan_in, rr) * _ceil_div(fan_out, mlp.cols)
    per_array = _ceil_div(np.asarray(n_samples, dtype=np.int64), mlp.arrays)
    per_fold = per_array + (2 * mlp.rows + mlp.cols - 2)
    cycles = operand_passes(b_a, b_w, mlp) * folds * per_fold
    cycles = np.where(np.asarray(n_samples) > 0, cycles, 0)
    return int(cycles) if np.ndim(cycles) == 0 else cycles.astype(np.int64)


def mac_energy_pj(b_a: int, b_w: int, mlp: MLPEngineConfig) -> float:
    """Energy of one MAC at 45 nm, pJ: PE energy per cycle / MACs per PE-cycle, times passes.

    bitfusion: 0.459 pJ per cycle of an 8/2 fusion unit (BitFusion synthesis) / perf factor:
    0.46, 0.115, 0.029 pJ at 8/4/2 bits. fixed: one MAC per cycle per pass. bit_serial: one
    step per cycle.
    """
    macs_per_cycle = perf_factor(b_a, b_w, mlp.pmax, mlp.pmin) if mlp.pe_mode == "bitfusion" else 1
    return mlp.pe_pj_per_cycle / macs_per_cycle * operand_passes(b_a, b_w, mlp)


def layer_bits(workload: Workload, bits: dict[str, int]) -> list[tuple[int, int]]:
    """(b_a, b_w) per MLP layer: b_a is the largest bit-width of the layer's input points."""
    return [(max(int(bits[p]) for p in layer.input_points), int(bits[layer.weight_point]))
            for layer in workload.mlp_layers]


# ---------------------------------------------------------------------------------------------
# Level placement and packing


def pow2_floor(v: np.ndarray) -> np.ndarray:
    """Largest power of two <= v, elementwise (0 where v < 1); int64."""
    v = np.asarray(v, dtype=np.int64)
    return np.array([1 << (int(x).bit_length() - 1) if x >= 1 else 0 for x in v.ravel()],
                    dtype=np.int64).reshape(v.shape)


def slot_bits(n_feat: int, level_bits: np.ndarray, pow2_slots: bool) -> np.ndarray:
    """Bits an entry of F features at b bits occupies in memory: F b, or the next power of two
    (`pow2_slots`, the layout of the xor and block_mod bank mappings: 3 bits cost like 4, 5-7 like 8).
    (L,) int64."""
    bits = n_feat * np.asarray(level_bits, dtype=np.int64)
    if not pow2_slots:
        return bits
    return np.array([1 << (int(x) - 1).bit_length() for x in bits.ravel()], dtype=np.int64).reshape(bits.shape)


def packing(n_feat: int, level_bits: np.ndarray, word_bits: int, line_bytes: int,
            pow2_slots: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries per SRAM word, SRAM words per entry and entries per cache line at each bit-width.

    No entry straddles a word or a line: epw = floor(word_bits / slot), or ceil(slot / word_bits)
    words per entry when an entry is wider than a word; epl = floor(8 line_bytes / slot) (0: no
    entry fits a line). With `pow2_slots` epw and epl are rounded down to powers of two, so the
    packing at b - 1 bits either equals the one at b bits or merges pairs of its words (lines).

    Returns
    -------
    epw, wpe, epl : like level_bits, int64.
    """
    slot = slot_bits(n_feat, level_bits, pow2_slots)
    epw = word_bits // slot
    wpe = np.where(epw >= 1, 1, _ceil_div(slot, word_bits)).astype(np.int64)
    epw = np.maximum(epw, 1).astype(np.int64)
    epl = ((8 * line_bytes) // slot).astype(np.int64)
    if pow2_slots:
        epw, epl = pow2_floor(epw), pow2_floor(epl)
    return epw, wpe, epl


def bank_block_shifts(n_feat: int, word_bits: int, line_bytes: int) -> tuple[int, int]:
    """log2 of the entries of one bank block of the grid SRAM and of the cache (xor, block_mod mappings).

    A block is the word (line) at the narrowest packing (2 bits, power-of-two slots), so at every
    packing a block holds a whole number of words (lines) and a word (line) lies in one block.
    """
    epw, _, epl = packing(n_feat, np.array([MIN_BITS]), word_bits, line_bytes, True)
    return int(np.log2(epw[0])), int(np.log2(max(int(epl[0]), 1)))


def level_regions(grid: GridGeometry, line_bytes: int, pow2_slots: bool) -> np.ndarray:
    """First DRAM line of each level's region, (L,) int64.

    Every level has a region sized for its widest packing (the largest line count over the bit-widths
    whose entry fits a line), at a fixed address: a level's lines (so its cache sets) do not move when
    another level's bits change.
    """
    bits = np.asarray(ALL_BITS, dtype=np.int64)
    _, _, epl = packing(grid.n_feat, bits, 8, line_bytes, pow2_slots)
    epl = epl[epl >= 1]
    region = _ceil_div(grid.sizes.astype(np.int64), int(epl.min())) if epl.size else grid.sizes.astype(np.int64)
    base = np.zeros(grid.n_levels, dtype=np.int64)
    np.cumsum(region[:-1], out=base[1:])
    return base


@dataclass(frozen=True)
class LevelPlacement:
    """Where each hash level lives and how it is packed.

    Attributes
    ----------
    level_bits : (L,) int64, bits per feature of each level (32 = fp32).
    onchip : (L,) bool, level held in the grid SRAM.
    entries_per_word : (L,) int64, entries per SRAM word (1 when an entry spans several words).
    words_per_entry : (L,) int64, SRAM words per entry (1 unless an entry is wider than a word).
    level_words : (L,) int64, SRAM words of each level's packed table.
    entries_per_line : (L,) int64, entries per cache line / DRAM line.
    line_base : (L,) int64, first DRAM line of each level (every level has a DRAM region at a fixed
        address, `level_regions`).
    grid_words_used : int, SRAM words taken by the on-chip levels.
    grid_words : int, SRAM capacity in words.
    """

    level_bits: np.ndarray
    onchip: np.ndarray
    entries_per_word: np.ndarray
    words_per_entry: np.ndarray
    level_words: np.ndarray
    entries_per_line: np.ndarray
    line_base: np.ndarray
    grid_words_used: int
    grid_words: int

    @property
    def levels_on_chip(self) -> list[int]:
        return [int(k) for k in np.flatnonzero(self.onchip)]


def place_levels(grid: GridGeometry, level_bits: np.ndarray, word_bits: int, grid_words: int | None,
                 line_bytes: int, pow2_slots: bool = False) -> LevelPlacement:
    """Pack the levels and place them: the longest coarse-to-fine prefix of levels whose packed
    tables fit goes on chip (levels 0..k-1), the others are read through the cache.

    Lowering any level's bits never shrinks that prefix (a level skipped because it does not fit
    stops the prefix, so a finer level is never put on chip in its place).
    grid_words : SRAM capacity in words; None places every level on chip (area mode 'fit').
    pow2_slots : entries in power-of-two slots (`packing`), the layout of the xor and block_mod mappings.
    """
    level_bits = np.asarray(level_bits, dtype=np.int64)
    epw, wpe, epl = packing(grid.n_feat, level_bits, word_bits, line_bytes, pow2_slots)
    level_words = np.where(wpe == 1, _ceil_div(grid.sizes, epw), grid.sizes * wpe).astype(np.int64)
    onchip = np.zeros(grid.n_levels, dtype=np.bool_)
    used = 0
    for level in range(grid.n_levels):
        if grid_words is not None and used + level_words[level] > grid_words:
            break
        onchip[level] = True
        used += int(level_words[level])
    if np.any(epl < 1):
        raise ValueError(f"cache.line_bytes = {line_bytes} holds no entry of "
                         f"{int(slot_bits(grid.n_feat, level_bits, pow2_slots).max())} bits")
    line_base = level_regions(grid, line_bytes, pow2_slots)
    return LevelPlacement(level_bits=level_bits, onchip=onchip, entries_per_word=epw, words_per_entry=wpe,
                          level_words=level_words, entries_per_line=epl, line_base=line_base,
                          grid_words_used=used, grid_words=used if grid_words is None else int(grid_words))


def grid_words_capacity(config: AccelConfig) -> int:
    """Whole words of the configured grid SRAM."""
    return int(config.hash_engine.grid_sram_kib * 8192) // config.hash_engine.word_bits


# ---------------------------------------------------------------------------------------------
# Ray order and tiles


def ray_issue_order(width: int, height: int, ray_block: int) -> np.ndarray:
    """Ray ids (raster index) in issue order: ray_block x ray_block blocks in raster order, rays
    row-major inside a block (edge blocks are partial).

    Returns
    -------
    (width * height,) int64.
    """
    rows, cols = np.divmod(np.arange(width * height, dtype=np.int64), width)
    blocks_x = _ceil_div(width, ray_block)
    block = (rows // ray_block) * blocks_x + cols // ray_block
    key = (block * ray_block + rows % ray_block) * ray_block + cols % ray_block
    return np.argsort(key, kind="stable").astype(np.int64)


@dataclass(frozen=True)
class Tiles:
    """Samples in issue order, cut into tiles.

    Attributes
    ----------
    sample_order : (n,) int64, sample ids (rows of Workload.positions) in issue order.
    tile_starts : (n_tiles + 1,) int64, offsets into sample_order.
    samples : (n_tiles,) int64, samples per tile.
    rays : (n_tiles,) int64, rays assigned to each tile.
    march_steps : (n_tiles,) int64, sum of max(march steps, 1) of those rays.
    """

    sample_order: np.ndarray
    tile_starts: np.ndarray
    samples: np.ndarray
    rays: np.ndarray
    march_steps: np.ndarray

    @property
    def n_tiles(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.samples.sum())


def build_tiles(workload: Workload, rays: np.ndarray, tile_samples: int) -> Tiles:
    """Tiles of the samples of `rays` (ray ids in issue order); at least one tile.

    Parameters
    ----------
    rays : (n,) int64, the rays to issue, in order.
    """
    spr = workload.samples_per_ray
    counts = spr[rays]
    n = int(counts.sum())
    offsets = np.zeros(spr.shape[0] + 1, dtype=np.int64)
    np.cumsum(spr, out=offsets[1:])
    order = np.empty(n, dtype=np.int64)
    K.sample_order_kernel(np.ascontiguousarray(rays, dtype=np.int64), offsets, order)
    n_tiles = max(1, _ceil_div(n, tile_samples))
    starts = np.minimum(np.arange(n_tiles + 1, dtype=np.int64) * tile_samples, n)
    first = np.cumsum(counts) - counts  # stream offset of each ray's first sample
    tile_of_ray = np.minimum(first // tile_samples, n_tiles - 1)
    steps = np.maximum(workload.march_steps_per_ray[rays], 1)
    return Tiles(sample_order=order, tile_starts=starts, samples=np.diff(starts),
                 rays=np.bincount(tile_of_ray, minlength=n_tiles).astype(np.int64),
                 march_steps=np.bincount(tile_of_ray, weights=steps, minlength=n_tiles).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Hash memory functional pass


@dataclass
class CacheState:
    """State of the set-associative LRU cache (carried across calls, e.g. sampled blocks).

    tags : (n_sets * ways,) int64 line addresses (-1 empty); stamps : (n_sets * ways,) int64 last
    use; clock : (1,) int64.
    """

    n_sets: int
    ways: int
    tags: np.ndarray
    stamps: np.ndarray
    clock: np.ndarray

    @classmethod
    def cold(cls, n_sets: int, ways: int) -> "CacheState":
        return cls(n_sets, ways, np.full(n_sets * ways, -1, np.int64), np.zeros(n_sets * ways, np.int64),
                   np.zeros(1, np.int64))


HASH_COUNT_KEYS = ("grid_groups", "grid_words", "grid_conflict_cycles", "cache_groups", "cache_accesses",
                   "cache_hits", "cache_conflict_cycles")


@dataclass(frozen=True)
class HashMemoryWork:
    """Per-tile work of the hash-memory unit and event counts.

    grid_cycles, cache_cycles, miss_lines : (n_tiles,) int64. counts : dict over all tiles
    (grid_groups, grid_words, grid_conflict_cycles, cache_groups, cache_accesses, cache_hits,
    cache_conflict_cycles). tile_counts : (n_tiles, 7) int64 per-tile counts in that order, or None.
    """

    grid_cycles: np.ndarray
    cache_cycles: np.ndarray
    miss_lines: np.ndarray
    counts: dict
    tile_counts: np.ndarray | None = None

    @property
    def sram_cycles(self) -> np.ndarray:
        """Tile cycles of the hash unit's SRAM side: grid SRAM and cache work in parallel."""
        return np.maximum(self.grid_cycles, self.cache_cycles)


def hash_memory_pass(workload: Workload, placement: LevelPlacement, config: AccelConfig, tiles: Tiles,
                     cache: CacheState) -> HashMemoryWork:
    """Bank conflicts and cache behaviour over the real index stream, tile by tile (`cache` is updated)."""
    grid = workload.grid
    n_tiles = tiles.n_tiles
    grid_cycles = np.zeros(n_tiles, np.int64)
    cache_cycles = np.zeros(n_tiles, np.int64)
    miss_lines = np.zeros(n_tiles, np.int64)
    counters = np.zeros((n_tiles, K.N_COUNTERS), np.int64)
    he = config.hash_engine
    sram_shift, line_shift = bank_block_shifts(grid.n_feat, he.word_bits, config.cache.line_bytes)
    K.hash_memory_kernel(
        np.ascontiguousarray(workload.positions, dtype=np.float32), tiles.sample_order, tiles.tile_starts,
        np.ascontiguousarray(grid.scales, dtype=np.float32), np.ascontiguousarray(grid.resolutions, dtype=np.int64),
        np.ascontiguousarray(grid.sizes, dtype=np.int64), np.ascontiguousarray(grid.hashed, dtype=np.bool_),
        placement.onchip, placement.entries_per_word, placement.words_per_entry, he.sram_banks,
        mapping_code(he.bank_mapping), he.batch_groups, placement.entries_per_line, placement.line_base, cache.n_sets,
        cache.ways, config.cache.banks, sram_shift, line_shift, cache.tags, cache.stamps, cache.clock, grid_cycles,
        cache_cycles, miss_lines, counters)
    return HashMemoryWork(grid_cycles, cache_cycles, miss_lines, count_dict(counters.sum(axis=0)), counters)


def mapping_code(bank_mapping: str) -> int:
    """The kernels' code (`_kernels.MAP_*`) of a `hash_engine.bank_mapping` value."""
    return BANK_MAPPINGS.index(bank_mapping)


def uses_pow2_slots(config: AccelConfig) -> bool:
    """Entries in power-of-two slots: the layout the block mappings (xor, block_mod) need (their blocks nest)."""
    return config.hash_engine.bank_mapping in ("xor", "block_mod")


def count_dict(totals: np.ndarray) -> dict:
    """Name the 7 hash-memory counters (order of HASH_COUNT_KEYS)."""
    return {key: int(v) for key, v in zip(HASH_COUNT_KEYS, totals)}


def corner_indices(positions: np.ndarray, grid: GridGeometry, level: int) -> np.ndarray:
    """Entry indices of the 8 corners of each point at one level, as the index-generation units
    compute them (tcnn conventions; see `_kernels.corner_indices_into`).

    Returns
    -------
    (n, 8) int64 in [0, sizes[level]).
    """
    positions = np.ascontiguousarray(positions, dtype=np.float32)
    out = np.empty((positions.shape[0], 8), np.int64)
    K.corner_indices_kernel(positions, np.float32(grid.scales[level]), int(grid.resolutions[level]),
                            int(grid.sizes[level]), bool(grid.hashed[level]), out)
    return out


# ---------------------------------------------------------------------------------------------
# Per-tile service times


def compute_service(workload: Workload, layer_bits_list: list[tuple[int, int]], config: AccelConfig,
                    tiles: Tiles) -> np.ndarray:
    """Service cycles of every stage except the hash memory (row 2 left at 0), (6, n_tiles) int64,
    rows in the order of `engine.STAGES`."""
    n = tiles.samples
    L = workload.grid.n_levels
    he = config.hash_engine
    service = np.zeros((len(STAGES), tiles.n_tiles), np.int64)
    service[0] = _ceil_div(tiles.march_steps, config.sampler.steps_per_cycle)
    service[1] = _ceil_div(n * L, he.igu_units)
    service[3] = _ceil_div(n * L, he.interp_units)
    for layer, (b_a, b_w) in zip(workload.mlp_layers, layer_bits_list):
        service[4] += mlp_layer_cycles(n, layer.fan_in, layer.fan_out, b_a, b_w, config.mlp_engine)
    service[5] = _ceil_div(n, config.vru.samples_per_cycle)
    return service


def weight_bytes(workload: Workload, bits: dict[str, int]) -> int:
    """Bytes of the packed MLP weights (ceil(n b / 8), or 4 n at fp32) loaded at frame start."""
    total = 0
    for layer in workload.mlp_layers:
        b = int(bits[layer.weight_point])
        n = layer.fan_in * layer.fan_out
        total += 4 * n if b == FLOAT_BITS else _ceil_div(n * b, 8)
    return total
