"""`CostEstimator`: the simulator's latency, energy, area and model size of any policy in well under a ms.

    from hero_lite.accel import CostEstimator, load_config, synthetic_workload, uniform_bits
    workload = synthetic_workload(100, 100)
    est = CostEstimator(workload, load_config("edge"))        # ~1.5 s once per workload and config
    bits = uniform_bits(workload, 8)
    est.latency_ms(bits), est.energy_uj(bits), est.area_mm2(bits), est.model_bytes(bits)   # ~0.2 ms

Built from the simulator's own structure (`simulator.py`): the per-tile service of every pipeline
stage and the DRAM line requests of every tile, timed by the same pipeline.

Precompute (once):
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

Per call:
- placement of the levels: `units.place_levels`' rule (coarse to fine, on chip while it fits);
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

Faithful vs monotone. The simulator is not monotone in the bits: a level's bank conflicts depend
on its packing (a dense level at 16 entries per 32-byte line puts z-neighbours 64 lines apart, in
the same one of 64 cache banks: on the server preset, with levels 0-2 at 16 bits and the MLP at 8,
level 3 at 8 bits makes the synthetic frame 11% slower than at 9 bits), and the greedy
placement can put a coarse level on chip at the cost of several finer ones (raising a coarse level
to fp32 frees room and makes the server design up to 14% faster). In random single-point decrements
on the synthetic frame about one in five raises the simulated latency, on the server by up to 14%.
`monotone=False` (default) follows the simulator, non-monotonicities included; over 50 random mixed
policies per preset, on the synthetic frame and the primitives trace, its latency equals
`simulate`'s to the cycle and its energy is within 0.01%. `monotone=True` is monotone by
construction (lowering any point's bits never raises the estimated latency), at a price where the
simulator is not: per tile, every level's SRAM cycles, cache cycles, misses and window lines are
replaced by their least-squares non-decreasing fit over the bit-widths (pool adjacent violators),
the reuse profile is pooled over bit-widths, lines per set are taken at the widest packing, and the
placement is the best of the on-chip prefixes (levels 0..k-1) that fit, instead of the greedy fill.
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
from numba import njit, prange

from hero_lite.accel import costs, units
from hero_lite.accel._kernels import _bank_insert
from hero_lite.accel.config import AREA_MODES, AccelConfig
from hero_lite.accel.report import SimReport
from hero_lite.accel.simulator import PIXEL_BYTES
from hero_lite.accel.workload import (FLOAT_BITS, MAX_QUANT_BITS, MIN_BITS, PARAM_BYTES_PER_QUANTIZER, Workload,
                                     check_bits)

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


# ---------------------------------------------------------------------------------------------
# Kernels (plain-Python references in tests/accel/test_estimate.py)


def _divider(divisor: int, max_numerator: int) -> int:
    """Multiplier m with (a * m) >> 32 == a // divisor for 0 <= a <= max_numerator, or 0 (divide).

    m = ceil(2^32 / d) is exact while (max_numerator + 1) * d <= 2^32 (Granlund-Montgomery).
    """
    if (max_numerator + 1) * divisor > 1 << 32:
        return 0
    return -(-(1 << 32) // divisor)


def _mask(modulus: int) -> int:
    """modulus - 1 if a power of two (a % m == a & mask), else -1."""
    return modulus - 1 if modulus & (modulus - 1) == 0 else -1


@njit(cache=True, error_model="numpy")
def _div(a, d, mul):
    return (a * mul) >> 32 if mul > 0 else a // d


@njit(cache=True, error_model="numpy")
def _mod(a, m, mask):
    return a & mask if mask >= 0 else a % m


@njit(cache=True, error_model="numpy")
def _sram_profile_one(idx, tile_starts, batch_groups, epw, epw_mul, wpe, sram_banks, banks_mask, cycles, words):
    """Grid-SRAM cycles and distinct words read per tile by one on-chip level, packed epw entries per
    word (or wpe words per entry): `hash_memory_kernel`'s on-chip branch (word_mod banks).
    epw_mul, banks_mask : `_divider(epw, ...)` and `_mask(sram_banks)` (faster division)."""
    bank_items = np.empty((sram_banks, 8 * batch_groups * wpe), np.int64)
    bank_count = np.zeros(sram_banks, np.int64)
    for t in range(tile_starts.shape[0] - 1):
        for i0 in range(tile_starts[t], tile_starts[t + 1], batch_groups):
            i1 = min(i0 + batch_groups, tile_starts[t + 1])
            distinct = 0
            for i in range(i0, i1):
                for c in range(8):
                    for j in range(wpe):
                        w = _div(idx[i, c], epw, epw_mul) if wpe == 1 else idx[i, c] * wpe + j
                        if _bank_insert(w, _mod(w, sram_banks, banks_mask), bank_items, bank_count):
                            distinct += 1
            worst = 0
            for b in range(sram_banks):
                worst = max(worst, bank_count[b])
                bank_count[b] = 0
            cycles[t] += worst
            words[t] += distinct


@njit(cache=True, error_model="numpy", parallel=True)
def _sram_profile_kernel(idx, tile_starts, batch_groups, epw, epw_mul, wpe, sram_banks, banks_mask, cycles, words):
    """`_sram_profile_one` for every packing p (epw[p], wpe[p]) into cycles[p], words[p] (n_tiles,)."""
    for p in prange(epw.shape[0]):
        _sram_profile_one(idx, tile_starts, batch_groups, epw[p], epw_mul[p], wpe[p], sram_banks, banks_mask,
                          cycles[p], words[p])


@njit(cache=True, error_model="numpy")
def _cache_profile_one(idx, tile_starts, batch_groups, epl, epl_mul, n_lines, cache_banks, banks_mask, n_sets,
                       sets_mask, ways, bucket_of_gap, cycles, accesses, own_miss, reuse, gap_hist):
    """One off-chip level alone, packed epl entries per line, per tile t:

    cycles[t] : max bank load over the distinct lines of each batch (bank = line mod banks), summed;
    accesses[t] : distinct lines per batch, summed (each one LRU access, in order of first use);
    own_miss[t] : misses of the level alone in the set-associative LRU cache (cold at the start);
    reuse[t, b, k] : hits on a line last used g >= 1 tiles earlier (bucket b of g) with k lines of
        the level used in the same set since (its LRU stack depth, k < ways);
    gap_hist[L] : runs of L consecutive tiles without a use of a line, over the used lines (before
        the first use, between uses, after the last). Returns the number of lines used.
    epl_mul, banks_mask, sets_mask : `_divider(epl, ...)`, `_mask(cache_banks)`, `_mask(n_sets)`.
    """
    n_tiles = tile_starts.shape[0] - 1
    bank_items = np.empty((cache_banks, 8 * batch_groups), np.int64)
    bank_count = np.zeros(cache_banks, np.int64)
    new_lines = np.empty(8 * batch_groups, np.int64)
    stack_line = np.full(n_sets * ways, -1, np.int64)
    stack_tile = np.zeros(n_sets * ways, np.int64)
    last_tile = np.full(n_lines, -1, np.int64)
    for t in range(n_tiles):
        for i0 in range(tile_starts[t], tile_starts[t + 1], batch_groups):
            i1 = min(i0 + batch_groups, tile_starts[t + 1])
            n_new = 0
            for i in range(i0, i1):
                for c in range(8):
                    a = _div(idx[i, c], epl, epl_mul)
                    if _bank_insert(a, _mod(a, cache_banks, banks_mask), bank_items, bank_count):
                        new_lines[n_new] = a
                        n_new += 1
            worst = 0
            for b in range(cache_banks):
                worst = max(worst, bank_count[b])
                bank_count[b] = 0
            cycles[t] += worst
            accesses[t] += n_new
            for q in range(n_new):
                a = new_lines[q]
                base = _mod(a, n_sets, sets_mask) * ways
                pos = -1
                for k in range(ways):
                    if stack_line[base + k] == a:
                        pos = k
                        break
                if pos < 0:
                    own_miss[t] += 1
                    pos = ways - 1
                elif stack_tile[base + pos] < t:
                    reuse[t, bucket_of_gap[t - stack_tile[base + pos]], pos] += 1
                for k in range(pos, 0, -1):
                    stack_line[base + k] = stack_line[base + k - 1]
                    stack_tile[base + k] = stack_tile[base + k - 1]
                stack_line[base] = a
                stack_tile[base] = t
                if last_tile[a] != t:
                    gap_hist[t - last_tile[a] - 1] += 1
                    last_tile[a] = t
    n_used = 0
    for a in range(n_lines):
        if last_tile[a] >= 0:
            gap_hist[n_tiles - 1 - last_tile[a]] += 1
            n_used += 1
    return n_used


@njit(cache=True, error_model="numpy", parallel=True)
def _cache_profile_kernel(idx, tile_starts, batch_groups, epl, epl_mul, n_lines, cache_banks, banks_mask, n_sets,
                          sets_mask, ways, bucket_of_gap, cycles, accesses, own_miss, reuse, gap_hist, n_used):
    """`_cache_profile_one` for every packing p (epl[p] entries per line) into row p of each output."""
    for p in prange(epl.shape[0]):
        n_used[p] = _cache_profile_one(idx, tile_starts, batch_groups, epl[p], epl_mul[p], n_lines[p], cache_banks,
                                       banks_mask, n_sets, sets_mask, ways, bucket_of_gap, cycles[p], accesses[p],
                                       own_miss[p], reuse[p], gap_hist[p])


@njit(cache=True, error_model="numpy")
def _dram_return_kernel(bwm, line_milli, latency, queue_depth, out):
    """out[n] = cycles from a tile's start (idle channel) to the return of the last of its n lines.

    The engine's channel: the first queue_depth lines are issued at once, each later one when a line
    returns; FIFO transfers of line_milli / bwm cycles; data back `latency` cycles after the end of
    the transfer rounded up to a whole cycle. out has n_max + 1 entries; out[0] = 0.
    """
    n_max = out.shape[0] - 1
    ret = np.empty(max(n_max, 1), np.int64)
    chan = 0
    out[0] = 0
    for i in range(n_max):
        start = 0 if i < queue_depth else ret[i - queue_depth] * bwm
        start = max(start, chan)
        chan = start + line_milli
        ret[i] = (chan + bwm - 1) // bwm + latency
        out[i + 1] = max(out[i], ret[i])


@njit(cache=True, error_model="numpy")
def _isotonic_kernel(y, out):
    """Least-squares non-decreasing fit of every row of y (n, m) float64 into out (pool adjacent violators)."""
    n, m = y.shape
    value = np.empty(m, np.float64)
    weight = np.empty(m, np.int64)
    for r in range(n):
        top = 0
        for j in range(m):
            value[top] = y[r, j]
            weight[top] = 1
            top += 1
            while top > 1 and value[top - 2] > value[top - 1]:
                w = weight[top - 2] + weight[top - 1]
                value[top - 2] = (value[top - 2] * weight[top - 2] + value[top - 1] * weight[top - 1]) / w
                weight[top - 2] = w
                top -= 1
        j = 0
        for b in range(top):
            for _ in range(weight[b]):
                out[r, j] = value[b]
                j += 1


@njit(cache=True, error_model="numpy")
def _pipeline_kernel(service, dram_cycles, preload_cycles, fifo_depth):
    """Completion cycle of the last tile at the last stage: `engine.run_pipeline` as a recurrence.

    service : (n_stages, n_tiles) int64; dram_cycles : (n_tiles,) int64, DRAM return time of each
    tile's lines from the hash stage's start of it (row 2 is the hash stage); preload_cycles : the
    hash stage is free from then on. start[s, k] = max(leave[s, k-1], leave[s-1, k]);
    end = start + service (hash stage: max(service, dram)); leave[s, k] = max(end, start[s+1, k - fifo_depth]).
    """
    n_stages, n_tiles = service.shape
    start = np.zeros((n_stages, n_tiles), np.int64)
    leave = np.zeros((n_stages, n_tiles), np.int64)
    for k in range(n_tiles):
        for s in range(n_stages):
            free = leave[s, k - 1] if k > 0 else (preload_cycles if s == 2 else 0)
            ready = leave[s - 1, k] if s > 0 else 0
            st = max(free, ready)
            d = service[s, k]
            if s == 2:
                d = max(d, dram_cycles[k])
            end = st + d
            start[s, k] = st
            if s < n_stages - 1 and k >= fifo_depth:
                end = max(end, start[s + 1, k - fifo_depth])
            leave[s, k] = end
    return leave[n_stages - 1, n_tiles - 1]


@njit(cache=True, error_model="numpy")
def _set_count_pmf(lines_per_set, used_fraction, ways, out):
    """Distribution of one other level's lines in a given set within a window, into out (ways + 1,)
    (out[ways] = P(>= ways)): the level's lines fill the sets evenly (floor or ceil of lines_per_set
    lines each, as contiguous line numbers do), each used in the window with probability used_fraction."""
    out[:] = 0.0
    f = min(max(used_fraction, 0.0), 1.0)
    lo = np.int64(np.floor(lines_per_set))
    r = lines_per_set - lo
    for c, weight in ((lo, 1.0 - r), (lo + 1, r)):
        if weight <= 0.0:
            continue
        if f >= 1.0 or c == 0:
            out[min(c if f >= 1.0 else 0, ways)] += weight
            continue
        term = (1.0 - f) ** c  # binomial(c, f) probabilities by recursion, the tail lumped at `ways`
        head = 0.0
        for i in range(min(c, ways - 1) + 1):
            out[i] += weight * term
            head += term
            term *= (c - i) / (i + 1.0) * f / (1.0 - f)
        if c >= ways:
            out[ways] += weight * max(1.0 - head, 0.0)


@njit(cache=True, error_model="numpy")
def _convolve_capped(a, b, out):
    """Distribution of the sum of two independent counts, both capped at len - 1 (the cap absorbs the tail)."""
    n = a.shape[0]
    out[:] = 0.0
    for i in range(n):
        if a[i] == 0.0:
            continue
        for j in range(n):
            out[min(i + j, n - 1)] += a[i] * b[j]


@njit(cache=True, error_model="numpy")
def _evaluate_kernel(bi, placements, grid_cyc, grid_words, cache_cyc, cache_acc, miss_lo, miss_hi, window,
                     reuse_p, level_words, level_lines, service, dram_table, preload_other_lines, word_bits,
                     line_bytes, fifo_depth, n_sets, ways, out):
    """Evaluate every placement (rows of `placements`, (n_p, L) bool) of one policy (bit index bi (L,)).

    Tables are indexed [level, bit index, ...] (`CostEstimator`). Per gap bucket g, the other
    off-chip levels' lines in a set are the capped sum of `_set_count_pmf` per level (prefix and
    suffix products leave each level out in O(L)); a level's misses per tile are its misses alone
    plus its cross-tile hits times phi = sum_{g,k} reuse_p[g, k] * P(others >= ways - k).
    service : (6, n_tiles) int64 with every row but the hash stage's filled (row 2 is overwritten).
    out : (n_p, 5) float64 <- total cycles, hash DRAM lines, grid words read, cache line accesses,
    on-chip words used.
    """
    n_p, L = placements.shape
    n_tiles = service.shape[1]
    n_gb = window.shape[2]
    grid_t = np.empty(n_tiles)
    cache_t = np.empty(n_tiles)
    miss_t = np.empty(n_tiles)
    dram_t = np.empty(n_tiles, np.int64)
    n_max = dram_table.shape[0] - 2
    pmf = np.zeros((L, ways + 1))
    prefix = np.zeros((L + 1, ways + 1))
    suffix = np.zeros((L + 2, ways + 1))
    others = np.zeros(ways + 1)
    evict = np.zeros((L, n_gb, ways))  # evict[l, g, k] = P(>= ways - k other lines in the set)
    for p in range(n_p):
        grid_t[:] = 0.0
        cache_t[:] = 0.0
        miss_t[:] = 0.0
        words_read = 0.0
        accesses = 0.0
        used = 0
        for g in range(n_gb):
            # other levels' lines in a set: product of the per-level distributions, all levels but l
            for level in range(L):
                if placements[p, level]:
                    pmf[level, :] = 0.0
                    pmf[level, 0] = 1.0
                else:
                    n_lines = level_lines[level, bi[level]]
                    _set_count_pmf(n_lines / n_sets, window[level, bi[level], g] / max(n_lines, 1.0), ways,
                                   pmf[level])
            prefix[0, :] = 0.0
            prefix[0, 0] = 1.0
            for level in range(L):
                _convolve_capped(prefix[level], pmf[level], prefix[level + 1])
            suffix[L, :] = 0.0
            suffix[L, 0] = 1.0
            for level in range(L - 1, -1, -1):
                _convolve_capped(suffix[level + 1], pmf[level], suffix[level])
            for level in range(L):
                if placements[p, level]:
                    continue
                _convolve_capped(prefix[level], suffix[level + 1], others)
                tail = 0.0
                for j in range(ways, 0, -1):  # tail = P(X >= j)
                    tail += others[j]
                    evict[level, g, ways - j] = min(tail, 1.0)
        for level in range(L):
            b = bi[level]
            if placements[p, level]:
                used += level_words[level, b]
                for t in range(n_tiles):
                    grid_t[t] += grid_cyc[level, b, t]
                    words_read += grid_words[level, b, t]
                continue
            phi = 0.0
            for g in range(n_gb):
                for k in range(ways):
                    phi += reuse_p[level, b, g, k] * evict[level, g, k]
            for t in range(n_tiles):
                cache_t[t] += cache_cyc[level, b, t]
                accesses += cache_acc[level, b, t]
                lo = miss_lo[level, b, t]
                miss_t[t] += lo + (miss_hi[level, b, t] - lo) * phi
        lines = 0.0
        for t in range(n_tiles):
            service[2, t] = np.int64(np.rint(max(grid_t[t], cache_t[t])))
            x = min(max(miss_t[t], 0.0), float(n_max))
            lines += x
            if x <= 0.0:
                dram_t[t] = 0
            else:
                i = np.int64(np.floor(x))
                f = x - i
                dram_t[t] = np.int64(np.rint(dram_table[i] + f * (dram_table[i + 1] - dram_table[i])))
        grid_bytes = used * word_bits // 8
        preload = (grid_bytes + line_bytes - 1) // line_bytes + preload_other_lines
        preload = min(preload, n_max)
        out[p, 0] = _pipeline_kernel(service, dram_t, dram_table[preload], fifo_depth)
        out[p, 1] = lines
        out[p, 2] = words_read
        out[p, 3] = accesses
        out[p, 4] = used


# ---------------------------------------------------------------------------------------------
# Public API


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
        he, cc = config.hash_engine, config.cache
        grid = workload.grid
        fit = area_mode == "fit"
        self._capacity_words = None if fit else units.grid_words_capacity(config)
        order = units.ray_issue_order(workload.width, workload.height, config.ray_block)
        tiles = units.build_tiles(workload, order, config.tile_samples)
        self._tiles = tiles
        T, L, nb = tiles.n_tiles, grid.n_levels, len(BIT_VALUES)
        self._service = units.compute_service(workload, [], config, tiles)
        bit_values = np.asarray(BIT_VALUES, np.int64)
        self._bit_index = np.full(FLOAT_BITS + 1, -1, np.int64)
        self._bit_index[bit_values] = np.arange(nb)

        # packings of each bit-width (as units.place_levels)
        entry_bits = grid.n_feat * bit_values
        epw_raw = he.word_bits // entry_bits
        wpe = np.where(epw_raw >= 1, 1, -(-entry_bits // he.word_bits)).astype(np.int64)
        epw = np.maximum(epw_raw, 1).astype(np.int64)
        self._epl = ((8 * cc.line_bytes) // entry_bits).astype(np.int64)
        self._level_lines = (-(-grid.sizes.astype(np.int64)[:, None] // np.maximum(self._epl, 1)[None, :])
                             ).astype(np.float64)  # DRAM lines of each level's packed table
        sizes = grid.sizes.astype(np.int64)
        self._level_words = np.where(wpe[None, :] == 1, -(-sizes[:, None] // epw[None, :]),
                                     sizes[:, None] * wpe[None, :]).astype(np.int64)
        cap = self._capacity_words
        on_possible = np.ones(L, bool) if fit else self._level_words.min(axis=1) <= cap
        if fit:
            off_possible = np.zeros(L, bool)
        elif monotone:  # the prefixes put any level off chip
            off_possible = np.ones(L, bool)
        else:  # greedy: a level is surely on chip if it fits after every coarser one at fp32
            off_possible = np.cumsum(self._level_words.max(axis=1)) > cap

        bucket_of_gap, gap_rep = gap_buckets(T)
        G, W = gap_rep.size, cc.ways
        self._grid_cyc = np.zeros((L, nb, T))
        self._grid_words = np.zeros((L, nb, T))
        self._cache_cyc = np.zeros((L, nb, T))
        self._cache_acc = np.zeros((L, nb, T))
        self._miss_lo = np.zeros((L, nb, T))
        self._miss_hi = np.zeros((L, nb, T))
        self._window = np.zeros((L, nb, G))
        reuse = np.zeros((L, nb, G, W))
        positions = np.ascontiguousarray(workload.positions[tiles.sample_order], dtype=np.float32)
        starts = tiles.tile_starts
        n_per_tile = np.diff(starts)
        for level in np.flatnonzero(on_possible | off_possible):
            idx = units.corner_indices(positions, grid, int(level))
            max_index = int(sizes[level]) - 1
            if on_possible[level]:
                fits = self._level_words[level] <= (np.inf if fit else cap)  # packings that can be on chip
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
                    muls = np.array([_divider(int(d), max_index) for d in keys[:, 0]], np.int64)
                    _sram_profile_kernel(idx, starts, he.batch_groups, np.ascontiguousarray(keys[:, 0]), muls,
                                         np.ascontiguousarray(keys[:, 1]), he.sram_banks, _mask(he.sram_banks),
                                         cyc, words)
                self._grid_cyc[level, fits] = cyc[inverse.ravel()]
                self._grid_words[level, fits] = words[inverse.ravel()]
            if off_possible[level]:
                valid = self._epl >= 1
                keys, inverse = np.unique(self._epl[valid], return_inverse=True)
                n = len(keys)
                cyc, acc, own = (np.zeros((n, T), np.int64) for _ in range(3))
                hits = np.zeros((n, T, G, W), np.int64)
                gaps = np.zeros((n, T + 1), np.int64)
                n_used = np.zeros(n, np.int64)
                n_lines = -(-int(sizes[level]) // keys)
                muls = np.array([_divider(int(d), max_index) for d in keys], np.int64)
                _cache_profile_kernel(idx, starts, he.batch_groups, keys, muls, n_lines.astype(np.int64), cc.banks,
                                      _mask(cc.banks), cc.n_sets, _mask(cc.n_sets), W, bucket_of_gap, cyc, acc, own,
                                      hits, gaps, n_used)
                rows = np.flatnonzero(valid)
                inv = inverse.ravel()
                self._cache_cyc[level, rows] = cyc[inv]
                self._cache_acc[level, rows] = acc[inv]
                self._miss_lo[level, rows] = own[inv]
                self._miss_hi[level, rows] = (own + hits.sum(axis=(2, 3)))[inv]
                reuse[level, rows] = hits.sum(axis=1)[inv]
                self._window[level, rows] = np.stack([window_lines(gaps[p], int(n_used[p]), T, gap_rep)
                                                      for p in range(n)])[inv]
        if monotone:
            invalid = np.flatnonzero(self._epl < 1)  # widest bit-widths a line cannot hold: as the last valid one
            if invalid.size and invalid[0] > 0:
                for name in ("_cache_cyc", "_miss_lo", "_miss_hi", "_window"):
                    getattr(self, name)[:, invalid] = getattr(self, name)[:, invalid[:1] - 1]
            for name in ("_grid_cyc", "_cache_cyc", "_miss_lo", "_miss_hi"):
                setattr(self, name, np.rint(_isotonic_over_bits(getattr(self, name))))
            self._window = _isotonic_over_bits(self._window)
            reuse[:] = reuse.sum(axis=1, keepdims=True)
            # lines per set from the widest packing, so that more window lines always mean more evictions
            widest = self._level_lines[:, self._epl >= 1].max(axis=1, keepdims=True)
            self._level_lines = np.broadcast_to(widest, self._level_lines.shape).copy()
        total = reuse.sum(axis=(2, 3), keepdims=True)
        self._reuse_p = np.where(total > 0, reuse / np.maximum(total, 1), 0.0)

        line = cc.line_bytes
        max_grid_bytes = int(self._level_words.max(axis=1).sum()) * he.word_bits // 8
        max_weight_bytes = sum(4 * layer.fan_in * layer.fan_out for layer in workload.mlp_layers)
        n_max = max(8 * config.tile_samples * L, -(-max_grid_bytes // line) - (-max_weight_bytes // line)) + 2
        self._dram_table = np.zeros(n_max + 1, np.int64)
        dram = config.dram
        _dram_return_kernel(dram.bw_milli_bytes_per_cycle, line * 1000, dram.latency_cycles, dram.queue_depth,
                            self._dram_table)
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

    def _greedy(self, bi: np.ndarray) -> np.ndarray:
        L = bi.size
        if self._capacity_words is None:
            return np.ones((1, L), np.bool_)
        words = self._level_words[np.arange(L), bi]
        on = np.zeros((1, L), np.bool_)
        used = 0
        for level in range(L):
            if used + words[level] <= self._capacity_words:
                on[0, level] = True
                used += int(words[level])
        return on

    def _prefixes(self, bi: np.ndarray) -> np.ndarray:
        L = bi.size
        if self._capacity_words is None:
            return np.ones((1, L), np.bool_)
        used = np.cumsum(self._level_words[np.arange(L), bi])
        n = 1 + int(np.searchsorted(used, self._capacity_words, side="right"))
        return np.arange(L)[None, :] < np.arange(n)[:, None]

    def _layer_terms(self, k: int, b_a: int, b_w: int) -> tuple:
        key = (k, b_a, b_w)
        got = self._mlp_memo.get(key)
        if got is None:
            layer, mlp = self.workload.mlp_layers[k], self.config.mlp_engine
            n = self._tiles.n_samples
            cycles = units.mlp_layer_cycles(self._tiles.samples, layer.fan_in, layer.fan_out, b_a, b_w, mlp)
            passes = units.operand_passes(b_a, b_w, mlp)
            got = (cycles, n * layer.fan_in * layer.fan_out * units.mac_energy_pj(b_a, b_w, mlp),
                   self._tiles.n_tiles * mlp.arrays * passes * -(-layer.fan_in * layer.fan_out * b_w // 32),
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
        bi = self._bit_index[level_bits]
        if np.any(self._epl[bi] < 1):
            raise ValueError(f"cache.line_bytes = {self.config.cache.line_bytes} holds no entry of "
                             f"{int(w.grid.n_feat * level_bits.max())} bits")
        service = self._service.copy()
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
        placements = self._prefixes(bi) if self.monotone else self._greedy(bi)
        out = np.zeros((placements.shape[0], 5))
        _evaluate_kernel(bi, placements, self._grid_cyc, self._grid_words, self._cache_cyc, self._cache_acc,
                         self._miss_lo, self._miss_hi, self._window, self._reuse_p, self._level_words,
                         self._level_lines, service,
                         self._dram_table, weight_lines, he.word_bits, line, self.config.fifo_depth,
                         self.config.cache.n_sets, self.config.cache.ways, out)
        best = int(np.argmin(out[:, 0]))
        cycles, hash_lines, words_read, accesses, used = out[best]
        used = int(used)
        macros, area = self._macros(used)
        grid_lines = -(-(used * he.word_bits // 8) // line)
        latency_s = cycles / self.config.clock_hz
        n = float(self._tiles.n_samples)
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
        if report.config_name != self.config.name or report.area_mode != self.area_mode or \
                report.n_samples != self._tiles.n_samples or report.n_rays != self.workload.n_rays:
            raise ValueError(f"report of config {report.config_name!r}, area_mode {report.area_mode!r}, "
                             f"{report.n_samples} samples does not match the estimator's config "
                             f"{self.config.name!r}, area_mode {self.area_mode!r}, {self._tiles.n_samples} samples")
        self._latency_scale = self._energy_scale = 1.0
        self._memo_key = None
        raw = self.estimate(bits)
        self._latency_scale = report.total_cycles / raw.total_cycles if raw.total_cycles > 0 else 1.0
        self._energy_scale = report.energy_uj / raw.energy_uj if raw.energy_uj > 0 else 1.0
        self._memo_key = None


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


def _isotonic_over_bits(table: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit along axis 1 (the bit-widths) of a (L, n_bits, ...) table."""
    moved = np.moveaxis(table, 1, -1)
    flat = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=np.float64)
    out = np.empty_like(flat)
    _isotonic_kernel(flat, out)
    return np.moveaxis(out.reshape(moved.shape), -1, 1).copy()
