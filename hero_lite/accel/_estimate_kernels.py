"""Numba kernels of `CostEstimator`: per-level profiles of a frame, the DRAM return table, the
pool-adjacent-violators fit, the tile-pipeline recurrence and the evaluation of one policy.

Kernels take contiguous arrays and scalars only; the documented wrappers are `frame_profile.py`
(precompute) and `estimate.py` (per policy). Plain-Python references and comparisons with the
simulator's own kernels (`_kernels.py`, `engine.run_pipeline`) are in tests/accel/test_estimate.py.
Like the simulator's kernels they use error_model="numpy": the wrappers validate every divisor.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hero_lite.accel._kernels import _bank_insert, _bits_for, block_bank


@njit(cache=True, error_model="numpy")
def _div(a, d, mul):
    return (a * mul) >> 32 if mul > 0 else a // d


@njit(cache=True, error_model="numpy")
def _mod(a, m, mask):
    return a & mask if mask >= 0 else a % m


@njit(cache=True, error_model="numpy")
def sram_profile_one(idx, tile_starts, batch_groups, epw, epw_mul, wpe, sram_banks, banks_mask, block_shift,
                     xor_fold, cycles, words):
    """Grid-SRAM cycles and distinct words read per tile by one on-chip level, packed epw entries per
    word (or wpe words per entry): `hash_memory_kernel`'s on-chip branch (word_mod, xor, block_mod).
    epw_mul, banks_mask : `frame_profile.divider(epw, ...)` and `frame_profile.pow2_mask(sram_banks)`
    (faster division). block_shift : < 0 for word_mod banks (bank = word mod banks), else the
    bank-block shift of the xor (xor_fold) or block_mod mapping (bank = block_bank(entry >>
    block_shift) + word of the entry)."""
    bank_items = np.empty((sram_banks, 8 * batch_groups * wpe), np.int64)
    bank_count = np.zeros(sram_banks, np.int64)
    bank_bits = _bits_for(sram_banks)
    for t in range(tile_starts.shape[0] - 1):
        for i0 in range(tile_starts[t], tile_starts[t + 1], batch_groups):
            i1 = min(i0 + batch_groups, tile_starts[t + 1])
            distinct = 0
            for i in range(i0, i1):
                for c in range(8):
                    home = 0
                    if block_shift >= 0:
                        home = block_bank(idx[i, c] >> block_shift, sram_banks, bank_bits, xor_fold)
                    for j in range(wpe):
                        w = _div(idx[i, c], epw, epw_mul) if wpe == 1 else idx[i, c] * wpe + j
                        if block_shift >= 0:
                            bank = (home + j) % sram_banks
                        else:
                            bank = _mod(w, sram_banks, banks_mask)
                        if _bank_insert(w, bank, bank_items, bank_count):
                            distinct += 1
            worst = 0
            for b in range(sram_banks):
                worst = max(worst, bank_count[b])
                bank_count[b] = 0
            cycles[t] += worst
            words[t] += distinct


@njit(cache=True, error_model="numpy", parallel=True)
def sram_profile_kernel(idx, tile_starts, batch_groups, epw, epw_mul, wpe, sram_banks, banks_mask, block_shift,
                        xor_fold, cycles, words):
    """`sram_profile_one` for every packing p (epw[p], wpe[p]) into cycles[p], words[p] (n_tiles,)."""
    for p in prange(epw.shape[0]):
        sram_profile_one(idx, tile_starts, batch_groups, epw[p], epw_mul[p], wpe[p], sram_banks, banks_mask,
                         block_shift, xor_fold, cycles[p], words[p])


@njit(cache=True, error_model="numpy")
def cache_profile_one(idx, tile_starts, batch_groups, epl, epl_mul, n_lines, cache_banks, banks_mask, block_shift,
                      xor_fold, n_sets, sets_mask, ways, bucket_of_gap, cycles, accesses, own_miss, reuse, gap_hist):
    """One off-chip level alone, packed epl entries per line, per tile t:

    cycles[t] : max bank load over the distinct lines of each batch (bank = line mod banks, or with
        block_shift >= 0 block_bank(entry >> block_shift, xor_fold): xor or block_mod), summed;
    accesses[t] : distinct lines per batch, summed (each one LRU access, in order of first use);
    own_miss[t] : misses of the level alone in the set-associative LRU cache (cold at the start);
    reuse[t, b, k] : hits on a line last used g >= 1 tiles earlier (bucket b of g) with k lines of
        the level used in the same set since (its LRU stack depth, k < ways);
    gap_hist[L] : runs of L consecutive tiles without a use of a line, over the used lines (before
        the first use, between uses, after the last). Returns the number of lines used.
    epl_mul, banks_mask, sets_mask : `frame_profile.divider(epl, ...)`, `pow2_mask(cache_banks)`,
        `pow2_mask(n_sets)`.
    """
    n_tiles = tile_starts.shape[0] - 1
    bank_items = np.empty((cache_banks, 8 * batch_groups), np.int64)
    bank_count = np.zeros(cache_banks, np.int64)
    new_lines = np.empty(8 * batch_groups, np.int64)
    bank_bits = _bits_for(cache_banks)
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
                    if block_shift >= 0:
                        bank = block_bank(idx[i, c] >> block_shift, cache_banks, bank_bits, xor_fold)
                    else:
                        bank = _mod(a, cache_banks, banks_mask)
                    if _bank_insert(a, bank, bank_items, bank_count):
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
def cache_profile_kernel(idx, tile_starts, batch_groups, epl, epl_mul, n_lines, cache_banks, banks_mask, block_shift,
                         xor_fold, n_sets, sets_mask, ways, bucket_of_gap, cycles, accesses, own_miss, reuse, gap_hist,
                         n_used):
    """`cache_profile_one` for every packing p (epl[p] entries per line) into row p of each output."""
    for p in prange(epl.shape[0]):
        n_used[p] = cache_profile_one(idx, tile_starts, batch_groups, epl[p], epl_mul[p], n_lines[p], cache_banks,
                                      banks_mask, block_shift, xor_fold, n_sets, sets_mask, ways, bucket_of_gap,
                                      cycles[p], accesses[p], own_miss[p], reuse[p], gap_hist[p])


@njit(cache=True, error_model="numpy")
def dram_return_kernel(bwm, line_milli, latency, queue_depth, out):
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
def isotonic_kernel(y, out):
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
def pipeline_recurrence_kernel(service, dram_cycles, preload_cycles, fifo_depth):
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
def set_count_pmf(lines_per_set, used_fraction, ways, out):
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
def convolve_capped(a, b, out):
    """Distribution of the sum of two independent counts, both capped at len - 1 (the cap absorbs the tail)."""
    n = a.shape[0]
    out[:] = 0.0
    for i in range(n):
        if a[i] == 0.0:
            continue
        for j in range(n):
            out[min(i + j, n - 1)] += a[i] * b[j]


@njit(cache=True, error_model="numpy")
def evaluate_kernel(bi, placements, grid_cyc, grid_words, cache_cyc, cache_acc, miss_lo, miss_hi, window,
                    reuse_p, level_words, level_lines, service, dram_table, preload_other_lines, word_bits,
                    line_bytes, fifo_depth, n_sets, ways, out):
    """Evaluate every placement (rows of `placements`, (n_p, L) bool) of one policy (bit index bi (L,)).

    Tables are indexed [level, bit index, ...] (`frame_profile.FrameProfile`). Per gap bucket g, the other
    off-chip levels' lines in a set are the capped sum of `set_count_pmf` per level (prefix and
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
                    set_count_pmf(n_lines / n_sets, window[level, bi[level], g] / max(n_lines, 1.0), ways,
                                  pmf[level])
            prefix[0, :] = 0.0
            prefix[0, 0] = 1.0
            for level in range(L):
                convolve_capped(prefix[level], pmf[level], prefix[level + 1])
            suffix[L, :] = 0.0
            suffix[L, 0] = 1.0
            for level in range(L - 1, -1, -1):
                convolve_capped(suffix[level + 1], pmf[level], suffix[level])
            for level in range(L):
                if placements[p, level]:
                    continue
                convolve_capped(prefix[level], suffix[level + 1], others)
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
        out[p, 0] = pipeline_recurrence_kernel(service, dram_t, dram_table[preload], fifo_depth)
        out[p, 1] = lines
        out[p, 2] = words_read
        out[p, 3] = accesses
        out[p, 4] = used
