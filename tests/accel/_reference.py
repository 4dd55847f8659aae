"""Plain-Python / NumPy references of the simulator's kernels (slow, written for clarity)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

PRIME_Y = np.uint32(2654435761)
PRIME_Z = np.uint32(805459861)


def tcnn_corner_indices(positions: np.ndarray, scale: float, res: int, size: int, hashed: bool) -> np.ndarray:
    """(n, 8) int64 corner indices with explicit uint32 arithmetic (tcnn `grid_index`)."""
    pos = positions.astype(np.float32) * np.float32(scale) + np.float32(0.5)
    cell = np.floor(pos).astype(np.uint32)
    out = np.empty((positions.shape[0], 8), np.int64)
    for c in range(8):
        off = np.array([c & 1, (c >> 1) & 1, (c >> 2) & 1], dtype=np.uint32)
        v = cell + off
        if hashed:
            with np.errstate(over="ignore"):
                h = v[:, 0] ^ (v[:, 1] * PRIME_Y) ^ (v[:, 2] * PRIME_Z)
            out[:, c] = h.astype(np.int64) % size
        else:
            v = v.astype(np.int64)
            out[:, c] = (v[:, 0] + v[:, 1] * res + v[:, 2] * res * res) % size
    return out


class LRUCache:
    """Set-associative LRU: one OrderedDict per set (most recent last)."""

    def __init__(self, n_sets: int, ways: int):
        self.n_sets, self.ways = n_sets, ways
        self.sets = [OrderedDict() for _ in range(n_sets)]

    def access(self, line: int) -> bool:
        s = self.sets[line % self.n_sets]
        if line in s:
            s.move_to_end(line)
            return True
        if len(s) == self.ways:
            s.popitem(last=False)
        s[line] = True
        return False


def xor_fold_bank(block: int, banks: int) -> int:
    """XOR of the block number's ceil(log2 banks)-bit fields, mod banks (Rau 1991 style interleaving)."""
    width = max(1, (banks - 1).bit_length())
    folded = 0
    while block:
        folded ^= block & ((1 << width) - 1)
        block >>= width
    return folded % banks


def block_bank_reference(block: int, banks: int, xor_fold: bool) -> int:
    """Bank of a bank block: the xor mapping's XOR fold, or block_mod's block mod banks."""
    return xor_fold_bank(block, banks) if xor_fold else block % banks


def hash_memory_reference(positions, sample_order, tile_starts, grid, placement, sram_banks, batch_groups,
                          cache_banks, cache: LRUCache, blocks: tuple[int, int, bool] | None = None):
    """Per-tile grid cycles, cache cycles, misses and counters.

    Banks: word (line) mod banks, or with blocks = (sram_shift, line_shift, xor_fold) the block
    mappings (xor, block_mod): an entry's word j in bank block_bank_reference(entry >> sram_shift) + j,
    its line in bank block_bank_reference(entry >> line_shift)."""
    n_tiles = len(tile_starts) - 1
    grid_cyc = np.zeros(n_tiles, np.int64)
    cache_cyc = np.zeros(n_tiles, np.int64)
    misses = np.zeros(n_tiles, np.int64)
    counts = dict(grid_groups=0, grid_words=0, grid_conflict_cycles=0, cache_groups=0, cache_accesses=0,
                  cache_hits=0, cache_conflict_cycles=0)
    idx_by_level = [tcnn_corner_indices(positions, grid.scales[level], int(grid.resolutions[level]),
                                        int(grid.sizes[level]), bool(grid.hashed[level]))
                    for level in range(grid.n_levels)]
    for t in range(n_tiles):
        for level in range(grid.n_levels):
            idx = idx_by_level[level]
            epw = int(placement.entries_per_word[level])
            wpe = int(placement.words_per_entry[level])
            epl = int(placement.entries_per_line[level])
            base = int(placement.line_base[level])
            members = list(range(tile_starts[t], tile_starts[t + 1]))
            for b0 in range(0, len(members), batch_groups):
                batch = [sample_order[i] for i in members[b0:b0 + batch_groups]]
                if placement.onchip[level]:
                    words, banks = [], []
                    for s in batch:
                        for e in idx[s]:
                            for j in range(wpe):
                                w = int(e) // epw if wpe == 1 else int(e) * wpe + j
                                if w not in words:
                                    words.append(w)
                                    banks.append(w % sram_banks if blocks is None else
                                                 (block_bank_reference(int(e) >> blocks[0], sram_banks, blocks[2])
                                                  + j) % sram_banks)
                    load = np.bincount(banks, minlength=sram_banks)
                    grid_cyc[t] += load.max()
                    counts["grid_groups"] += len(batch)
                    counts["grid_words"] += len(words)
                    counts["grid_conflict_cycles"] += int(load.max()) - -(-len(words) // sram_banks)
                else:
                    lines, banks = [], []
                    for s in batch:
                        for e in idx[s]:
                            a = base + int(e) // epl
                            if a not in lines:
                                lines.append(a)
                                banks.append(a % cache_banks if blocks is None else
                                             block_bank_reference(int(e) >> blocks[1], cache_banks, blocks[2]))
                    load = np.bincount(banks, minlength=cache_banks)
                    cache_cyc[t] += load.max()
                    for a in lines:
                        if cache.access(a):
                            counts["cache_hits"] += 1
                        else:
                            misses[t] += 1
                    counts["cache_groups"] += len(batch)
                    counts["cache_accesses"] += len(lines)
                    counts["cache_conflict_cycles"] += int(load.max()) - -(-len(lines) // cache_banks)
    return grid_cyc, cache_cyc, misses, counts


def pipeline_reference(service, lines, preload_lines, depth, bwm, line_bytes, latency, queue_depth):
    """Max-plus recurrence of the blocking tile pipeline (an independent formulation of the DES).

    start[s][k] = max(leave[s-1][k], leave[s][k-1]); done = start + service (the hash stage, 2:
    also >= its last line's return); leave[s][k] = max(done[s][k], start[s+1][k-depth]) (the
    FIFO slot frees when the tile `depth` places earlier is taken); the last stage leaves at done.
    The hash stage starts tile 0 no earlier than the preload's last return. DRAM line j issues at
    max(its tile's start, return of line j - queue_depth); the channel is a FIFO with transfer
    time line_bytes / bw (milli-byte arithmetic as in the kernel).

    Returns
    -------
    dict with total, busy (6,), stall (6,), dram_wait, issue (list), ret (list).
    """
    n_stages, n_tiles = service.shape
    start = np.zeros((n_stages, n_tiles), np.int64)
    done = np.zeros((n_stages, n_tiles), np.int64)
    leave = np.zeros((n_stages, n_tiles), np.int64)
    issue, ret = [], []
    chan = {"free": 0}

    def dram_batch(t0, m):
        last = t0
        for _ in range(m):
            j = len(issue)
            t_issue = max(t0, ret[j - queue_depth] if j >= queue_depth else 0)
            s = max(t_issue * bwm, chan["free"])
            e = s + line_bytes * 1000
            chan["free"] = e
            r = -(-e // bwm) + latency
            issue.append(t_issue)
            ret.append(r)
            last = r
        return last

    preload_done = dram_batch(0, preload_lines)
    dram_wait = preload_done
    # in tile order every term is known: start[s+1][k-depth] belongs to an earlier tile
    for k in range(n_tiles):
        for s in range(n_stages):
            arrive = 0 if s == 0 else leave[s - 1][k]
            free = leave[s][k - 1] if k > 0 else (preload_done if s == 2 else 0)
            start[s][k] = max(arrive, free)
            done[s][k] = start[s][k] + service[s][k]
            if s == 2 and lines[k] > 0:
                last = dram_batch(start[s][k], int(lines[k]))
                dram_wait += max(0, last - done[s][k])
                done[s][k] = max(done[s][k], last)
            blocked = start[s + 1][k - depth] if (s + 1 < n_stages and k - depth >= 0) else 0
            leave[s][k] = max(done[s][k], blocked)
    busy = service.sum(axis=1)
    stall = (leave - done).sum(axis=1)
    stall[2] += dram_wait
    return {"total": int(leave[-1][-1]), "busy": busy, "stall": stall, "dram_wait": int(dram_wait),
            "issue": list(issue), "ret": list(ret)}
