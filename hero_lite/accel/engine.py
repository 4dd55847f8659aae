"""Timing pass: a discrete-event simulation of the tile pipeline (Numba kernel in `_kernels.py`).

Units and FIFOs (each FIFO holds `fifo_depth` tiles, back-pressure by blocking):

    sampler -> index_gen -> hash_memory -> interp -> mlp -> vru
                               |  ^
                               v  |  line requests / returns (<= queue_depth outstanding)
                              dram channel

Semantics, kept simple and exact (the SimPy model in benchmarks/bench_sim.py gives the same cycle
count): every stage loops over tiles: wait for an input tile (take it, freeing a slot upstream),
serve it for its service time, put it into its output FIFO (block while full). The hash-memory
stage's tile issues its DRAM line requests when it starts (at most `queue_depth` outstanding, the
rest as slots free); the channel moves one line per line_bytes / bw cycles in FIFO order and the
data returns `latency_cycles` after the transfer ends; the tile completes when both its SRAM cycles
have elapsed and its last line has returned.

Frame start (cold caches): before its first tile the hash-memory stage loads the on-chip grid
levels and the MLP weights from DRAM (`preload_lines` lines through the same queue); the sampler
and index generation run meanwhile (they fill their FIFOs). The preload wait is hash-memory stall.

Per unit: busy = serving a tile (the hash unit: its SRAM cycles); stall = blocked on a full output
FIFO, or (hash unit) waiting for DRAM beyond its SRAM cycles; idle = starved (no input tile),
including before the first and after the last tile: busy + stall + idle = total cycles.
The DRAM unit is busy while the channel transfers; its stall is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hero_lite.accel import _kernels as K

MAX_DRAM_INTERVALS = 1 << 20  # timeline only: later channel intervals extend the last one
STAGES = ("sampler", "index_gen", "hash_memory", "interp", "mlp", "vru")  # rows of `service`


@dataclass(frozen=True)
class PipelineResult:
    """Outcome of the timing pass.

    Attributes
    ----------
    total_cycles : int, completion of the last tile at the VRU.
    busy_cycles, stall_cycles : (6,) int64 per stage (order of STAGES).
    dram_busy_cycles : int, channel transfer time (rounded up to whole cycles).
    dram_wait_cycles : int, hash-memory cycles waiting for DRAM beyond its SRAM cycles.
    n_events : int, events processed (tile completions and DRAM returns).
    first_done_cycles : int, completion of the first tile at the VRU.
    dram_lines : int, line requests served (preload included).
    dram_outstanding_area : int, integral over time of outstanding requests (request-cycles).
    dram_sojourn_cycles : int, sum over requests of (return - issue) cycles.
    intervals : dict unit -> (n, 2) int64 busy intervals [start, end) in cycles, or None.
    """

    total_cycles: int
    busy_cycles: np.ndarray
    stall_cycles: np.ndarray
    dram_busy_cycles: int
    dram_wait_cycles: int
    n_events: int
    first_done_cycles: int
    dram_lines: int
    dram_outstanding_area: int
    dram_sojourn_cycles: int
    intervals: dict | None


def run_pipeline(service: np.ndarray, lines: np.ndarray, preload_lines: int, fifo_depth: int,
                 bw_milli_bytes_per_cycle: int, line_bytes: int, latency_cycles: int, queue_depth: int,
                 timeline: bool = False) -> PipelineResult:
    """Time the pipeline.

    Parameters
    ----------
    service : (6, n_tiles) int64 service cycles per stage and tile (row 2: the hash unit's SRAM cycles).
    lines : (n_tiles,) int64 DRAM line requests of each tile's hash-memory work.
    preload_lines : lines loaded before the hash unit's first tile.
    fifo_depth : tiles per inter-stage FIFO (>= 1).
    bw_milli_bytes_per_cycle : channel bandwidth in 1/1000 bytes per cycle (>= 1).
    line_bytes, latency_cycles, queue_depth : DRAM line size, return latency, outstanding limit.
    timeline : record busy intervals per unit (and merged channel intervals for 'dram').
    """
    service = np.ascontiguousarray(service, dtype=np.int64)
    lines = np.ascontiguousarray(lines, dtype=np.int64)
    if service.ndim != 2 or service.shape[0] != K.N_STAGES or lines.shape != (service.shape[1],):
        raise ValueError(f"service must be (6, n_tiles) and lines (n_tiles,), got {service.shape} and {lines.shape}")
    if service.shape[1] < 1 or np.any(service < 0) or np.any(lines < 0) or preload_lines < 0:
        raise ValueError("need >= 1 tile and non-negative service times and line counts")
    if fifo_depth < 1 or bw_milli_bytes_per_cycle < 1 or line_bytes < 1 or latency_cycles < 0 or queue_depth < 1:
        raise ValueError("fifo_depth, bandwidth, line_bytes, queue_depth must be >= 1 and latency >= 0")
    n_tiles = service.shape[1]
    iv_len = n_tiles if timeline else 1
    intervals = np.zeros((K.N_STAGES, iv_len, 2), np.int64)
    n_intervals = np.zeros(K.N_STAGES, np.int64)
    dram_iv = np.zeros((MAX_DRAM_INTERVALS if timeline else 1, 2), np.int64)
    busy = np.zeros(K.N_STAGES, np.int64)
    stall = np.zeros(K.N_STAGES, np.int64)
    stats = np.zeros(K.N_STATS, np.int64)
    ok, n_dram_iv = K.pipeline_kernel(service, lines, int(preload_lines), int(fifo_depth),
                                      int(bw_milli_bytes_per_cycle), int(line_bytes) * 1000, int(latency_cycles),
                                      int(queue_depth), bool(timeline), intervals, n_intervals, dram_iv, busy, stall,
                                      stats)
    assert ok, "pipeline did not drain (internal error)"
    iv = None
    if timeline:
        iv = {name: intervals[s, :n_intervals[s]].copy() for s, name in enumerate(STAGES)}
        iv["dram"] = dram_iv[:n_dram_iv].copy()
    chan_busy = -(-int(stats[K.S_CHAN_BUSY_MILLI]) // int(bw_milli_bytes_per_cycle))
    return PipelineResult(
        total_cycles=int(stats[K.S_TOTAL]), busy_cycles=busy, stall_cycles=stall, dram_busy_cycles=chan_busy,
        dram_wait_cycles=int(stats[K.S_DRAM_WAIT]), n_events=int(stats[K.S_EVENTS]),
        first_done_cycles=int(stats[K.S_FIRST_DONE]), dram_lines=int(stats[K.S_COMPLETED]),
        dram_outstanding_area=int(stats[K.S_AREA]), dram_sojourn_cycles=int(stats[K.S_SOJOURN]), intervals=iv)
