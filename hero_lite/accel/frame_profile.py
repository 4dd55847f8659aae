"""The precompute of `CostEstimator`: one frame's hash levels profiled at every packing of the bits.

`profile_frame(workload, config, area_mode, monotone)` runs once per (workload, config, area mode,
mode) and returns a `FrameProfile` of plain arrays; `estimate.py` combines them per policy.

What is profiled:
- The tiles, and the per-tile service of the sampler, index generation, interpolation and VRU
  (they do not depend on bits): exact, `units.compute_service`.
- For every hash level and every packing its bit-widths 2..16, 32 can give (entries per SRAM word,
  entries per cache line), over the real corner indices of the frame in issue order:
  - on chip: grid-SRAM cycles (max bank load per batch) and words read per tile;
  - off chip: cache cycles (max bank load over the distinct lines of a batch), line accesses, and
    the level's behaviour alone in the LRU cache: misses per tile, and every hit on a line last used
    g >= 1 tiles earlier, by (bucket of g, k = lines of the level used in the same set since);
    from the gaps between a line's uses, U(g) = the mean distinct lines the level uses in g tiles.
  Banking is per level (a batch holds one level) and rotating the line numbers by a level's DRAM
  offset permutes the banks and the sets, so both numbers are exact per level, independent of the
  other levels.
- A table of DRAM return times: cycles from a tile's start to the return of its last of n lines
  (FIFO channel, `queue_depth` outstanding, the engine's rounding), exact.

In monotone mode the per-tile tables are replaced by their least-squares non-decreasing fit over
the bit-widths (pool adjacent violators), the reuse profile is pooled over bit-widths and lines per
set are taken at the widest packing (`estimate.py` explains why).

Numba kernels: `_estimate_kernels.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel import _estimate_kernels as K
from hero_lite.accel import units
from hero_lite.accel.config import AccelConfig
from hero_lite.accel.workload import FLOAT_BITS, MAX_QUANT_BITS, MIN_BITS, Workload

BIT_VALUES = tuple(range(MIN_BITS, MAX_QUANT_BITS + 1)) + (FLOAT_BITS,)  # every valid bit-width, ascending
N_EXACT_GAPS = 16  # tile gaps 1..15 get a bucket each; longer gaps share buckets growing by 1.5x


def gap_buckets(n_tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of the tile gap g between two uses of a cache line.

    g = 1..15 each alone, then [16, 24), [24, 36), [36, 54), ... until n_tiles is covered.

    Returns
    -------
    bucket_of_gap : (n_tiles + 1,) int64, bucket of gap g (entry 0, the same tile, is -1).
    representative : (n_buckets,) float64, the gap a bucket stands for (geometric middle of its range).
    """
    edges = list(range(1, N_EXACT_GAPS + 1))
    while edges[-1] <= n_tiles:
        edges.append(edges[-1] + edges[-1] // 2)
    edges_arr = np.asarray(edges, np.int64)
    bucket = np.searchsorted(edges_arr, np.arange(n_tiles + 1), side="right") - 1
    bucket[0] = -1
    lo = edges_arr[:-1]
    hi = np.maximum(np.minimum(edges_arr[1:] - 1, n_tiles), lo)
    return bucket.astype(np.int64), np.sqrt(lo * hi).astype(np.float64)


def divider(divisor: int, max_numerator: int) -> int:
    """Multiplier m with (a * m) >> 32 == a // divisor for 0 <= a <= max_numerator, or 0 (divide).

    m = ceil(2^32 / d) is exact while (max_numerator + 1) * d <= 2^32 (Granlund-Montgomery).
    """
    if (max_numerator + 1) * divisor > 1 << 32:
        return 0
    return -(-(1 << 32) // divisor)


def pow2_mask(modulus: int) -> int:
    """modulus - 1 if a power of two (a % m == a & mask), else -1."""
    return modulus - 1 if modulus & (modulus - 1) == 0 else -1


def window_lines(gap_hist: np.ndarray, n_used: int, n_tiles: int, g: np.ndarray) -> np.ndarray:
    """Mean number of distinct lines used in a window of g consecutive tiles (g rounded, >= 1).

    A window misses a line iff it lies inside one of the line's gaps (runs of tiles without a use),
    and a gap of L tiles holds max(0, L - g + 1) of the n_tiles - g + 1 windows, so
    U(g) = n_used - sum_L gap_hist[L] * max(0, L - g + 1) / (n_tiles - g + 1); U(g) = n_used for
    g >= n_tiles. Example: one line used in tile 2 of 5 (gaps 2 and 2): U(1) = 1 - (2 + 2) / 5 = 0.2.

    Returns
    -------
    (g.size,) float64.
    """
    lengths = np.arange(gap_hist.size, dtype=np.float64)
    out = np.empty(g.size)
    for j, gj in enumerate(np.maximum(np.rint(g), 1.0)):
        if gj >= n_tiles:
            out[j] = n_used
        else:
            out[j] = n_used - float((gap_hist * np.maximum(0.0, lengths - gj + 1)).sum()) / (n_tiles - gj + 1)
    return out


def isotonic_over_bits(table: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit along axis 1 (the bit-widths) of a (L, n_bits, ...) table."""
    moved = np.moveaxis(table, 1, -1)
    flat = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=np.float64)
    out = np.empty_like(flat)
    K.isotonic_kernel(flat, out)
    return np.moveaxis(out.reshape(moved.shape), -1, 1).copy()


@dataclass(frozen=True)
class FrameProfile:
    """Everything `CostEstimator` needs from one frame, indexed by hash level and bit index.

    The bit index of a bit-width b is `bit_index[b]` (position of b in BIT_VALUES, n_bits of them).

    Attributes
    ----------
    tiles : units.Tiles of the frame (issue order).
    service : (6, n_tiles) int64, per-tile service cycles of the stages that do not depend on bits
        (rows 2, hash memory, and 4, MLP, are 0).
    bit_index : (FLOAT_BITS + 1,) int64, bit-width -> bit index (-1 for invalid widths).
    entries_per_line : (n_bits,) int64, entries per cache line at each bit-width (0: none fits).
    level_lines : (L, n_bits) float64, DRAM lines of each level's packed table.
    level_words : (L, n_bits) int64, grid-SRAM words of each level's packed table.
    capacity_words : grid-SRAM capacity in words, or None (area mode 'fit': every level on chip).
    grid_cycles, grid_words : (L, n_bits, n_tiles) float64, grid-SRAM cycles and words read per tile
        with the level on chip.
    cache_cycles, cache_accesses : (L, n_bits, n_tiles) float64, cache cycles and line accesses per
        tile with the level off chip.
    miss_lo, miss_hi : (L, n_bits, n_tiles) float64, misses per tile of the level alone in the cache,
        and the same plus every cross-tile hit (all of them evicted).
    window : (L, n_bits, n_buckets) float64, U(g): mean distinct lines the level uses in g tiles,
        at the representative gap of each bucket.
    reuse_p : (L, n_bits, n_buckets, ways) float64, distribution of the level's cross-tile hits over
        (gap bucket, LRU depth k).
    dram_table : (n_max + 1,) int64, cycles from a tile's start to the return of its last of n lines.
    """

    tiles: units.Tiles
    service: np.ndarray
    bit_index: np.ndarray
    entries_per_line: np.ndarray
    level_lines: np.ndarray
    level_words: np.ndarray
    capacity_words: int | None
    grid_cycles: np.ndarray
    grid_words: np.ndarray
    cache_cycles: np.ndarray
    cache_accesses: np.ndarray
    miss_lo: np.ndarray
    miss_hi: np.ndarray
    window: np.ndarray
    reuse_p: np.ndarray
    dram_table: np.ndarray


def profile_frame(workload: Workload, config: AccelConfig, area_mode: str, monotone: bool) -> FrameProfile:
    """Profile every hash level of the frame at every packing (module docstring).

    Parameters
    ----------
    workload : the frame (validated by the caller).
    config : the accelerator.
    area_mode : 'fixed' (grid SRAM of the config; levels on or off chip) or 'fit' (all on chip).
    monotone : profile for the monotone estimate (isotonic tables, any level may be off chip).
    """
    he, cc = config.hash_engine, config.cache
    grid = workload.grid
    fit = area_mode == "fit"
    cap = None if fit else units.grid_words_capacity(config)
    order = units.ray_issue_order(workload.width, workload.height, config.ray_block)
    tiles = units.build_tiles(workload, order, config.tile_samples)
    T, L, nb = tiles.n_tiles, grid.n_levels, len(BIT_VALUES)
    service = units.compute_service(workload, [], config, tiles)
    bit_values = np.asarray(BIT_VALUES, np.int64)
    bit_index = np.full(FLOAT_BITS + 1, -1, np.int64)
    bit_index[bit_values] = np.arange(nb)

    # packings of each bit-width (as units.place_levels)
    epw, wpe, epl = units.packing(grid.n_feat, bit_values, he.word_bits, cc.line_bytes, units.uses_pow2_slots(config))
    blocks = units.uses_pow2_slots(config)  # xor and block_mod: banks by bank block
    xor_fold = he.bank_mapping == "xor"
    sram_shift, line_shift = units.bank_block_shifts(grid.n_feat, he.word_bits, cc.line_bytes) if blocks else (-1, -1)
    level_lines = (-(-grid.sizes.astype(np.int64)[:, None] // np.maximum(epl, 1)[None, :])
                   ).astype(np.float64)  # DRAM lines of each level's packed table
    sizes = grid.sizes.astype(np.int64)
    level_words = np.where(wpe[None, :] == 1, -(-sizes[:, None] // epw[None, :]),
                           sizes[:, None] * wpe[None, :]).astype(np.int64)
    on_possible = np.ones(L, bool) if fit else level_words.min(axis=1) <= cap
    if fit:
        off_possible = np.zeros(L, bool)
    elif monotone:  # the prefixes put any level off chip
        off_possible = np.ones(L, bool)
    else:  # prefix: a level is surely on chip if it fits after every coarser one at fp32
        off_possible = np.cumsum(level_words.max(axis=1)) > cap

    bucket_of_gap, gap_rep = gap_buckets(T)
    G, W = gap_rep.size, cc.ways
    grid_cyc = np.zeros((L, nb, T))
    grid_words = np.zeros((L, nb, T))
    cache_cyc = np.zeros((L, nb, T))
    cache_acc = np.zeros((L, nb, T))
    miss_lo = np.zeros((L, nb, T))
    miss_hi = np.zeros((L, nb, T))
    window = np.zeros((L, nb, G))
    reuse = np.zeros((L, nb, G, W))
    positions = np.ascontiguousarray(workload.positions[tiles.sample_order], dtype=np.float32)
    starts = tiles.tile_starts
    n_per_tile = np.diff(starts)
    for level in np.flatnonzero(on_possible | off_possible):
        idx = units.corner_indices(positions, grid, int(level))
        max_index = int(sizes[level]) - 1
        if on_possible[level]:
            fits = level_words[level] <= (np.inf if fit else cap)  # packings that can be on chip
            keys, inverse = np.unique(np.stack([epw, wpe], axis=1)[fits], axis=0, return_inverse=True)
            cyc = np.zeros((len(keys), T), np.int64)
            words = np.zeros((len(keys), T), np.int64)
            if he.bank_mapping == "vertex":  # conflict-free: ceil(8 wpe groups / banks) per batch
                full, rest = n_per_tile // he.batch_groups, n_per_tile % he.batch_groups
                for p, (_, w_per) in enumerate(keys):
                    per = 8 * int(w_per)
                    cyc[p] = full * -(-per * he.batch_groups // he.sram_banks) + \
                        np.where(rest > 0, -(-per * rest // he.sram_banks), 0)
                    words[p] = per * n_per_tile
            else:
                muls = np.array([divider(int(d), max_index) for d in keys[:, 0]], np.int64)
                K.sram_profile_kernel(idx, starts, he.batch_groups, np.ascontiguousarray(keys[:, 0]), muls,
                                      np.ascontiguousarray(keys[:, 1]), he.sram_banks, pow2_mask(he.sram_banks),
                                      sram_shift, xor_fold, cyc, words)
            grid_cyc[level, fits] = cyc[inverse.ravel()]
            grid_words[level, fits] = words[inverse.ravel()]
        if off_possible[level]:
            valid = epl >= 1
            keys, inverse = np.unique(epl[valid], return_inverse=True)
            n = len(keys)
            cyc, acc, own = (np.zeros((n, T), np.int64) for _ in range(3))
            hits = np.zeros((n, T, G, W), np.int64)
            gaps = np.zeros((n, T + 1), np.int64)
            n_used = np.zeros(n, np.int64)
            n_lines = -(-int(sizes[level]) // keys)
            muls = np.array([divider(int(d), max_index) for d in keys], np.int64)
            K.cache_profile_kernel(idx, starts, he.batch_groups, keys, muls, n_lines.astype(np.int64), cc.banks,
                                   pow2_mask(cc.banks), line_shift, xor_fold, cc.n_sets, pow2_mask(cc.n_sets), W,
                                   bucket_of_gap, cyc, acc, own, hits, gaps, n_used)
            rows = np.flatnonzero(valid)
            inv = inverse.ravel()
            cache_cyc[level, rows] = cyc[inv]
            cache_acc[level, rows] = acc[inv]
            miss_lo[level, rows] = own[inv]
            miss_hi[level, rows] = (own + hits.sum(axis=(2, 3)))[inv]
            reuse[level, rows] = hits.sum(axis=1)[inv]
            window[level, rows] = np.stack([window_lines(gaps[p], int(n_used[p]), T, gap_rep)
                                            for p in range(n)])[inv]
    if monotone:
        invalid = np.flatnonzero(epl < 1)  # widest bit-widths a line cannot hold: as the last valid one
        if invalid.size and invalid[0] > 0:
            for table in (cache_cyc, miss_lo, miss_hi, window):
                table[:, invalid] = table[:, invalid[:1] - 1]
        grid_cyc, cache_cyc, miss_lo, miss_hi = (np.rint(isotonic_over_bits(table))
                                                 for table in (grid_cyc, cache_cyc, miss_lo, miss_hi))
        window = isotonic_over_bits(window)
        reuse[:] = reuse.sum(axis=1, keepdims=True)
        # lines per set from the widest packing, so that more window lines always mean more evictions
        widest = level_lines[:, epl >= 1].max(axis=1, keepdims=True)
        level_lines = np.broadcast_to(widest, level_lines.shape).copy()
    total = reuse.sum(axis=(2, 3), keepdims=True)
    reuse_p = np.where(total > 0, reuse / np.maximum(total, 1), 0.0)

    line = cc.line_bytes
    max_grid_bytes = int(level_words.max(axis=1).sum()) * he.word_bits // 8
    max_weight_bytes = sum(4 * layer.fan_in * layer.fan_out for layer in workload.mlp_layers)
    n_max = max(8 * config.tile_samples * L, -(-max_grid_bytes // line) - (-max_weight_bytes // line)) + 2
    dram_table = np.zeros(n_max + 1, np.int64)
    dram = config.dram
    K.dram_return_kernel(dram.bw_milli_bytes_per_cycle, line * 1000, dram.latency_cycles, dram.queue_depth,
                         dram_table)
    return FrameProfile(tiles=tiles, service=service, bit_index=bit_index, entries_per_line=epl,
                        level_lines=level_lines, level_words=level_words, capacity_words=cap, grid_cycles=grid_cyc,
                        grid_words=grid_words, cache_cycles=cache_cyc, cache_accesses=cache_acc, miss_lo=miss_lo,
                        miss_hi=miss_hi, window=window, reuse_p=reuse_p, dram_table=dram_table)
