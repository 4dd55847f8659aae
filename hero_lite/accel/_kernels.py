"""Numba kernels of the simulator: index generation, the hash-memory functional pass, the event loop.

Kernels take contiguous arrays and scalars only; the documented wrappers live in `units.py`
(functional pass) and `engine.py` (timing pass). Plain-Python references are in the tests.
All kernels use error_model="numpy" (no ZeroDivisionError checks: the wrappers validate every
divisor), which keeps the inner loops free of exception paths (6x faster LRU lookups, measured).
"""

from __future__ import annotations

import numpy as np
from numba import njit

PRIME_Y = 2654435761  # tcnn coherent prime hash (NGP paper eq. 4), x is multiplied by 1
PRIME_Z = 805459861
MASK32 = 0xFFFFFFFF

# counters of the hash-memory pass (index into `counters`)
C_GRID_GROUPS = 0
C_GRID_WORDS = 1
C_GRID_CONFLICT = 2
C_CACHE_GROUPS = 3
C_CACHE_ACCESSES = 4
C_CACHE_HITS = 5
C_CACHE_CONFLICT = 6
N_COUNTERS = 7

# bank mappings of the grid SRAM and the cache (config.BANK_MAPPINGS, in that order)
MAP_WORD_MOD, MAP_VERTEX, MAP_XOR, MAP_BLOCK_MOD = 0, 1, 2, 3

# pipeline stages (rows of `service`)
SAMPLER, IGU, HASH, INTERP, MLP, VRU = 0, 1, 2, 3, 4, 5
N_STAGES = 6
IDLE, BUSY, BLOCKED = 0, 1, 2

# scalar state of the event loop (index into `g`)
G_SEQ, G_CHAN_FREE, G_OUT, G_AREA, G_LAST, G_SOJOURN, G_COMPLETED, G_CHAN_BUSY = 0, 1, 2, 3, 4, 5, 6, 7
G_RING_HEAD, G_RING_COUNT, G_NEED, G_ISSUED = 8, 9, 10, 11
G_RETURNED, G_SRAM_END, G_N_DRAM_IV, G_DRAM_WAIT = 12, 13, 14, 15
N_G = 16
# results of the event loop (index into `stats`)
S_TOTAL, S_EVENTS, S_AREA, S_SOJOURN, S_COMPLETED, S_CHAN_BUSY_MILLI, S_FIRST_DONE, S_DRAM_WAIT = 0, 1, 2, 3, 4, 5, 6, 7
N_STATS = 8


@njit(cache=True, error_model="numpy")
def corner_indices_into(x, y, z, scale, res, size, hashed, out):
    """Entry indices (within the level) of the 8 trilinear corners of one point, into out (8,) int64.

    tcnn: pos = x * scale + 0.5 (float32), cell = floor(pos); corner c = (c&1, c>>1&1, c>>2&1);
    hashed: (x ^ y*2654435761 ^ z*805459861) mod 2^32 mod size; dense: (x + y*res + z*res^2) mod size.
    A power-of-two size is reduced with a mask and a dense index below size skips the division
    (same result, fewer divisions in the inner loop).
    """
    half = np.float32(0.5)
    x0 = np.int64(np.floor(x * scale + half))
    y0 = np.int64(np.floor(y * scale + half))
    z0 = np.int64(np.floor(z * scale + half))
    pow2 = (size & (size - 1)) == 0
    if hashed:
        hy0 = y0 * PRIME_Y
        hy1 = hy0 + PRIME_Y
        hz0 = z0 * PRIME_Z
        hz1 = hz0 + PRIME_Z
        for c in range(8):
            h = ((x0 + (c & 1)) ^ (hy1 if (c >> 1) & 1 else hy0) ^ (hz1 if (c >> 2) & 1 else hz0)) & MASK32
            out[c] = h & (size - 1) if pow2 else h % size
    else:
        rr = res * res
        base = x0 + y0 * res + z0 * rr
        for c in range(8):
            v = base + (c & 1) + ((c >> 1) & 1) * res + ((c >> 2) & 1) * rr
            out[c] = v if v < size else v % size


@njit(cache=True, error_model="numpy")
def corner_indices_kernel(positions, scale, res, size, hashed, out):
    """Corner indices of many points at one level: out (n, 8) int64."""
    buf = np.empty(8, np.int64)
    for i in range(positions.shape[0]):
        corner_indices_into(positions[i, 0], positions[i, 1], positions[i, 2], scale, res, size, hashed, buf)
        for c in range(8):
            out[i, c] = buf[c]


@njit(cache=True, error_model="numpy")
def sample_order_kernel(ray_order, ray_offsets, out):
    """Sample indices in issue order: the samples of ray_order[0], then ray_order[1], ... into out."""
    k = 0
    for j in range(ray_order.shape[0]):
        r = ray_order[j]
        for s in range(ray_offsets[r], ray_offsets[r + 1]):
            out[k] = s
            k += 1
    return k


@njit(cache=True, error_model="numpy")
def _log2_or_neg(v):
    """log2(v) if v is a power of two, else -1 (lets the inner loops shift instead of divide)."""
    if v < 1 or (v & (v - 1)) != 0:
        return -1
    k = 0
    while (1 << k) < v:
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def _bits_for(n):
    """Bits that number n items: ceil(log2 n), at least 1."""
    k = 1
    while (1 << k) < n:
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def _div(a, d, shift):
    return a >> shift if shift >= 0 else a // d


@njit(cache=True, error_model="numpy")
def _mod(a, m, shift):
    return a & (m - 1) if shift >= 0 else a % m


@njit(cache=True, error_model="numpy")
def _lru_access(line, n_sets, sets_shift, ways, tags, stamps, clock):
    """One access of an exact set-associative LRU cache; returns True on a hit (allocates on a miss).

    Set = line mod n_sets; the victim is an empty way (stamp 0) or the least recently used one.
    """
    base = _mod(line, n_sets, sets_shift) * ways
    clock[0] += 1
    now = clock[0]
    victim = base
    oldest = stamps[base]
    for w in range(base, base + ways):
        if tags[w] == line:
            stamps[w] = now
            return True
        if stamps[w] < oldest:
            oldest = stamps[w]
            victim = w
    tags[victim] = line
    stamps[victim] = now
    return False


@njit(cache=True, error_model="numpy")
def xor_bank(block, banks, bank_bits):
    """Bank of a bank block under XOR interleaving: the block number folded into bank_bits bits by XOR.

    The XOR of the address's bank_bits-wide bit fields (Rau, "Pseudo-randomly interleaved memory",
    ISCA 1991; the XOR-based placement functions of Gonzalez et al., ICS 1997). For a power-of-two
    number of banks (bank_bits = log2 banks) every bank gets the same share of any aligned run of
    banks blocks; otherwise the fold is taken mod banks. block >= 0.
    """
    mask = (1 << bank_bits) - 1
    folded = 0
    while block > 0:
        folded ^= block & mask
        block >>= bank_bits
    return folded if folded < banks else folded % banks


@njit(cache=True, error_model="numpy")
def block_bank(block, banks, bank_bits, xor_fold):
    """Bank of a bank block: `xor_bank` (xor mapping) or block mod banks (block_mod mapping)."""
    if xor_fold:
        return xor_bank(block, banks, bank_bits)
    return block % banks


@njit(cache=True, error_model="numpy")
def _bank_insert(v, bank, bank_items, bank_count):
    """Add item v to its bank's list unless present; True if it was new."""
    for q in range(bank_count[bank]):
        if bank_items[bank, q] == v:
            return False
    bank_items[bank, bank_count[bank]] = v
    bank_count[bank] += 1
    return True


@njit(cache=True, error_model="numpy")
def hash_memory_kernel(positions, sample_order, tile_starts, scales, resolutions, sizes, hashed,
                       onchip, entries_per_word, words_per_entry, sram_banks, mapping, batch_groups,
                       entries_per_line, line_base, n_sets, ways, cache_banks, sram_block_shift, line_block_shift,
                       tags, stamps, clock, grid_cycles, cache_cycles, miss_lines, counters):
    """Functional pass of the hash-memory unit over tiles of samples (serial: the cache has state).

    Within a tile the engine works level by level (coarse to fine), samples in issue order, and
    looks up `batch_groups` (sample, level) groups at a time. An on-chip level's batch reads the
    distinct SRAM words of its corners, one word per bank per cycle: batch cycles = the largest
    number of distinct words in one bank, or ceil(words / banks) with the conflict-free vertex
    mapping. A cached level's batch reads the distinct lines of its corners, one line per cache
    bank per cycle, each through the exact LRU in order of first use; a miss is one DRAM line
    request of the tile. Conflict cycles = batch cycles - ceil(distinct / banks). Writes per-tile
    cycles, misses and event counts (counters[t, :]).

    mapping (MAP_*): word_mod and vertex: bank = word mod sram_banks (vertex: on-chip levels
    conflict-free instead), cache bank = line mod cache_banks. xor and block_mod: the level's
    entries are cut into aligned bank blocks of 2^sram_block_shift (SRAM) or 2^line_block_shift
    (cache) entries, each block in one bank, bank = `block_bank(entry >> shift)` (+ j for word j
    of an entry wider than a word); the blocks are a whole number of words or lines at every packing.
    """
    n_tiles = tile_starts.shape[0] - 1
    n_levels = scales.shape[0]
    idx = np.empty(8, np.int64)
    max_wpe = 1
    for level in range(n_levels):
        max_wpe = max(max_wpe, words_per_entry[level])
    cap = 8 * batch_groups * max_wpe
    n_banks = max(sram_banks, cache_banks)
    bank_items = np.empty((n_banks, cap), np.int64)
    bank_count = np.zeros(n_banks, np.int64)
    new_lines = np.empty(8 * batch_groups, np.int64)
    banks_shift = _log2_or_neg(sram_banks)
    cbanks_shift = _log2_or_neg(cache_banks)
    sets_shift = _log2_or_neg(n_sets)
    sram_bank_bits = _bits_for(sram_banks)
    cache_bank_bits = _bits_for(cache_banks)
    use_blocks = mapping == MAP_XOR or mapping == MAP_BLOCK_MOD
    xor_fold = mapping == MAP_XOR
    for t in range(n_tiles):
        g_cyc = 0
        c_cyc = 0
        misses = 0
        for level in range(n_levels):
            scale = scales[level]
            res = resolutions[level]
            size = sizes[level]
            is_hashed = hashed[level]
            on = onchip[level]
            epw = entries_per_word[level]
            wpe = words_per_entry[level]
            epl = entries_per_line[level]
            lbase = line_base[level]
            epw_shift = _log2_or_neg(epw)
            epl_shift = _log2_or_neg(epl)
            for i0 in range(tile_starts[t], tile_starts[t + 1], batch_groups):
                i1 = min(i0 + batch_groups, tile_starts[t + 1])
                n_groups = i1 - i0
                if on and mapping == MAP_VERTEX:
                    n_words = 8 * wpe * n_groups
                    cyc = (n_words + sram_banks - 1) // sram_banks
                    g_cyc += cyc
                    counters[t, C_GRID_GROUPS] += n_groups
                    counters[t, C_GRID_WORDS] += n_words
                    continue
                n_new = 0
                distinct = 0
                for i in range(i0, i1):
                    s = sample_order[i]
                    corner_indices_into(positions[s, 0], positions[s, 1], positions[s, 2], scale, res, size,
                                        is_hashed, idx)
                    if on:
                        for c in range(8):
                            home = block_bank(idx[c] >> sram_block_shift, sram_banks, sram_bank_bits,
                                              xor_fold) if use_blocks else 0
                            for j in range(wpe):
                                w = _div(idx[c], epw, epw_shift) if wpe == 1 else idx[c] * wpe + j
                                if use_blocks:
                                    bank = home + j
                                    bank = bank if bank < sram_banks else bank % sram_banks
                                else:
                                    bank = _mod(w, sram_banks, banks_shift)
                                if _bank_insert(w, bank, bank_items, bank_count):
                                    distinct += 1
                    else:
                        for c in range(8):
                            a = lbase + _div(idx[c], epl, epl_shift)
                            if use_blocks:
                                bank = block_bank(idx[c] >> line_block_shift, cache_banks, cache_bank_bits, xor_fold)
                            else:
                                bank = _mod(a, cache_banks, cbanks_shift)
                            if _bank_insert(a, bank, bank_items, bank_count):
                                new_lines[n_new] = a
                                n_new += 1
                worst = 0
                for b in range(n_banks):
                    if bank_count[b] > worst:
                        worst = bank_count[b]
                    bank_count[b] = 0
                if on:
                    g_cyc += worst
                    counters[t, C_GRID_GROUPS] += n_groups
                    counters[t, C_GRID_WORDS] += distinct
                    counters[t, C_GRID_CONFLICT] += worst - (distinct + sram_banks - 1) // sram_banks
                else:
                    for q in range(n_new):
                        if _lru_access(new_lines[q], n_sets, sets_shift, ways, tags, stamps, clock):
                            counters[t, C_CACHE_HITS] += 1
                        else:
                            misses += 1
                    c_cyc += worst
                    counters[t, C_CACHE_GROUPS] += n_groups
                    counters[t, C_CACHE_ACCESSES] += n_new
                    counters[t, C_CACHE_CONFLICT] += worst - (n_new + cache_banks - 1) // cache_banks
        grid_cycles[t] = g_cyc
        cache_cycles[t] = c_cyc
        miss_lines[t] = misses


@njit(cache=True, error_model="numpy")
def _issue_lines(now, g, ring_time, ring_seq, ring_issue, bwm, line_milli, latency, queue_depth,
                 record, dram_iv, max_dram_iv):
    """Issue the hash unit's pending line requests while the DRAM queue has room (FIFO channel).

    Channel time is kept in milli-bytes (cycles * bw_milli): a line starts at max(now, channel
    free) and takes line_milli / bw_milli cycles; its data returns `latency` cycles after the
    transfer ends (rounded up to a whole cycle).
    """
    while g[G_ISSUED] < g[G_NEED] and g[G_OUT] < queue_depth:
        start = max(now * bwm, g[G_CHAN_FREE])
        end = start + line_milli
        g[G_CHAN_FREE] = end
        g[G_CHAN_BUSY] += line_milli
        end_cycle = (end + bwm - 1) // bwm
        g[G_AREA] += g[G_OUT] * (now - g[G_LAST])
        g[G_LAST] = now
        g[G_OUT] += 1
        pos = g[G_RING_HEAD] + g[G_RING_COUNT]
        if pos >= queue_depth:
            pos -= queue_depth
        ring_time[pos] = end_cycle + latency
        ring_seq[pos] = g[G_SEQ]
        ring_issue[pos] = now
        g[G_SEQ] += 1
        g[G_RING_COUNT] += 1
        g[G_ISSUED] += 1
        if record:
            s_cycle = start // bwm
            n = g[G_N_DRAM_IV]
            if n > 0 and s_cycle <= dram_iv[n - 1, 1]:
                dram_iv[n - 1, 1] = max(dram_iv[n - 1, 1], end_cycle)
            elif n < max_dram_iv:
                dram_iv[n, 0] = s_cycle
                dram_iv[n, 1] = end_cycle
                g[G_N_DRAM_IV] = n + 1
            else:
                dram_iv[n - 1, 1] = max(dram_iv[n - 1, 1], end_cycle)


@njit(cache=True, error_model="numpy")
def _finish(s, now, g, state, tile, fifo, fifo_depth, blocked_since, stall, done):
    """Stage s ends its service at `now`: put the tile downstream, or block on a full FIFO."""
    if s == HASH:
        if now > g[G_SRAM_END]:
            stall[HASH] += now - g[G_SRAM_END]
            g[G_DRAM_WAIT] += now - g[G_SRAM_END]
        if tile[HASH] < 0:  # the frame-start preload
            state[HASH] = IDLE
            return
    if s == VRU:
        done[0] += 1
        state[s] = IDLE
    elif fifo[s] < fifo_depth:
        fifo[s] += 1
        state[s] = IDLE
    else:
        state[s] = BLOCKED
        blocked_since[s] = now


@njit(cache=True, error_model="numpy")
def pipeline_kernel(service, lines, preload_lines, fifo_depth, bwm, line_milli, latency, queue_depth,
                    record, intervals, n_intervals, dram_iv, busy, stall, stats):
    """Discrete-event timing pass of the tile pipeline sampler -> IGU -> hash memory (+ DRAM) ->
    interpolation -> MLP -> VRU, FIFOs of `fifo_depth` tiles between stages.

    Each stage loops: take a tile from its input FIFO (freeing a slot upstream), serve it for
    service[s, k] cycles, put it into its output FIFO (blocking while full). The hash-memory
    stage's tile also issues lines[k] DRAM line requests (at most queue_depth outstanding) and
    completes when both its SRAM cycles have elapsed and its last line has returned. Before its
    first tile the hash stage loads `preload_lines` lines (on-chip levels and MLP weights).

    Event list: one pending completion slot per stage (a stage has at most one) plus a ring of
    DRAM returns, whose times never decrease (FIFO channel, constant latency); the next event is
    the smallest (time, sequence number), so ties resolve in scheduling order (deterministic).
    """
    n_tiles = service.shape[1]
    max_iv = intervals.shape[1]
    max_dram_iv = dram_iv.shape[0]
    state = np.zeros(N_STAGES, np.int64)
    tile = np.full(N_STAGES, -1, np.int64)
    taken = np.zeros(N_STAGES, np.int64)
    fifo = np.zeros(N_STAGES, np.int64)
    pend_time = np.full(N_STAGES, -1, np.int64)
    pend_seq = np.zeros(N_STAGES, np.int64)
    blocked_since = np.zeros(N_STAGES, np.int64)
    done = np.zeros(1, np.int64)
    g = np.zeros(N_G, np.int64)
    ring_time = np.empty(queue_depth, np.int64)
    ring_seq = np.empty(queue_depth, np.int64)
    ring_issue = np.empty(queue_depth, np.int64)
    first_done = -1
    n_events = 0
    now = 0
    if preload_lines > 0:
        state[HASH] = BUSY
        g[G_NEED] = preload_lines
        _issue_lines(0, g, ring_time, ring_seq, ring_issue, bwm, line_milli, latency, queue_depth,
                     record, dram_iv, max_dram_iv)
    scan = True
    while True:
        # start every stage that can start at `now` (downstream first frees FIFO slots)
        changed = scan
        scan = False
        while changed:
            changed = False
            for s in range(N_STAGES - 1, -1, -1):
                if state[s] == BLOCKED and fifo[s] < fifo_depth:
                    fifo[s] += 1
                    stall[s] += now - blocked_since[s]
                    state[s] = IDLE
                    changed = True
                if state[s] == IDLE and taken[s] < n_tiles and (s == 0 or fifo[s - 1] > 0):
                    if s > 0:
                        fifo[s - 1] -= 1
                    k = taken[s]
                    taken[s] += 1
                    tile[s] = k
                    state[s] = BUSY
                    changed = True
                    d = service[s, k]
                    busy[s] += d
                    if record and n_intervals[s] < max_iv:
                        intervals[s, n_intervals[s], 0] = now
                        intervals[s, n_intervals[s], 1] = now + d
                        n_intervals[s] += 1
                    if s == HASH:
                        g[G_SRAM_END] = now + d
                        g[G_NEED] = lines[k]
                        g[G_ISSUED] = 0
                        g[G_RETURNED] = 0
                        if lines[k] > 0:
                            _issue_lines(now, g, ring_time, ring_seq, ring_issue, bwm, line_milli, latency,
                                         queue_depth, record, dram_iv, max_dram_iv)
                            continue
                    pend_time[s] = now + d
                    pend_seq[s] = g[G_SEQ]
                    g[G_SEQ] += 1
        # next event: smallest (time, seq) over the stage slots and the DRAM ring head
        best = -1
        bt = 0
        bs = 0
        for s in range(N_STAGES):
            if pend_time[s] >= 0 and (best < 0 or pend_time[s] < bt or (pend_time[s] == bt and pend_seq[s] < bs)):
                best = s
                bt = pend_time[s]
                bs = pend_seq[s]
        if g[G_RING_COUNT] > 0:
            h = g[G_RING_HEAD]
            if best < 0 or ring_time[h] < bt or (ring_time[h] == bt and ring_seq[h] < bs):
                best = N_STAGES
                bt = ring_time[h]
        if best < 0:
            break
        now = bt
        n_events += 1
        if best == N_STAGES:
            h = g[G_RING_HEAD]
            g[G_AREA] += g[G_OUT] * (now - g[G_LAST])
            g[G_LAST] = now
            g[G_OUT] -= 1
            g[G_SOJOURN] += now - ring_issue[h]
            g[G_COMPLETED] += 1
            g[G_RING_HEAD] = h + 1 if h + 1 < queue_depth else 0
            g[G_RING_COUNT] -= 1
            g[G_RETURNED] += 1
            _issue_lines(now, g, ring_time, ring_seq, ring_issue, bwm, line_milli, latency, queue_depth,
                         record, dram_iv, max_dram_iv)
            if g[G_RETURNED] < g[G_NEED]:
                continue
            if now < g[G_SRAM_END]:
                pend_time[HASH] = g[G_SRAM_END]
                pend_seq[HASH] = g[G_SEQ]
                g[G_SEQ] += 1
                continue
            _finish(HASH, now, g, state, tile, fifo, fifo_depth, blocked_since, stall, done)
            scan = True
        else:
            pend_time[best] = -1
            _finish(best, now, g, state, tile, fifo, fifo_depth, blocked_since, stall, done)
            scan = True
            if best == VRU and first_done < 0:
                first_done = now
    stats[S_TOTAL] = now
    stats[S_EVENTS] = n_events
    stats[S_AREA] = g[G_AREA]
    stats[S_SOJOURN] = g[G_SOJOURN]
    stats[S_COMPLETED] = g[G_COMPLETED]
    stats[S_CHAN_BUSY_MILLI] = g[G_CHAN_BUSY]
    stats[S_FIRST_DONE] = first_done
    stats[S_DRAM_WAIT] = g[G_DRAM_WAIT]
    return done[0] == n_tiles and g[G_RING_COUNT] == 0, g[G_N_DRAM_IV]
