"""Accelerator simulator benchmark on scenes/primitives (edge preset, uniform 8 bits).

    python benchmarks/bench_sim.py [--checkpoint CKPT] [--preset edge] [--repeats 5] [--skip-800]

Prints one JSON object:
- frame_100_exact_s, frame_100_sampled_s: median seconds of `simulate` on test view 0 at 100x100,
  exact and with the default sample fraction (after JIT);
- frame_800_s, frame_800_sampled_s: the same view traced at 800x800 (focal length x 8);
- events_per_s: events of the exact 100x100 timing pass per second of its wall time;
- speedup_vs_simpy: wall time of the same tile pipeline written with SimPy (processes, Stores of
  fifo_depth tiles, a Resource of queue_depth DRAM slots) over that of the Numba event loop, on
  the same precomputed per-tile work; the two cycle counts are asserted equal;
- sampled_latency_error: |sampled / exact - 1| of the 100x100 frame;
- edge_100: latency, area, energy and unit shares of the 100x100 frame.
The workload comes from the glue layer (`hero_lite.search.workload`) and a checkpoint (cached in
runs/bench/primitives/, trained for 1200 steps if missing, as bench_quant.py does); without the
glue layer it falls back to `synthetic_workload` and says so in `workload`. SimPy is a
benchmark-only dependency (`pip install simpy`), not a runtime one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance, repo_path  # noqa: E402


def simpy_pipeline(service, lines, preload_lines, fifo_depth, bwm, line_bytes, latency, queue_depth):
    """The tile pipeline of hero_lite.accel.engine written with SimPy processes.

    Returns (total cycles, SimPy events processed).
    """
    import simpy

    env = simpy.Environment()
    n_stages, n_tiles = service.shape
    fifos = [simpy.Store(env, capacity=fifo_depth) for _ in range(n_stages - 1)]
    slots = simpy.Resource(env, capacity=queue_depth)
    channel = {"free": 0}
    line_milli = line_bytes * 1000
    service = service.tolist()
    lines = lines.tolist()

    def line(req, ret):
        yield env.timeout(ret - env.now)
        slots.release(req)

    def dram_batch(m):
        pending = []
        for _ in range(m):
            req = slots.request()
            yield req
            start = max(env.now * bwm, channel["free"])
            end = start + line_milli
            channel["free"] = end
            pending.append(env.process(line(req, -(-end // bwm) + latency)))
        if pending:
            yield simpy.AllOf(env, pending)

    def stage(s):
        for k in range(n_tiles):
            if s > 0:
                yield fifos[s - 1].get()
            yield env.timeout(service[s][k])
            if s < n_stages - 1:
                yield fifos[s].put(k)

    def hash_stage():
        yield env.process(dram_batch(preload_lines))
        for k in range(n_tiles):
            yield fifos[1].get()
            memory = env.process(dram_batch(lines[k]))
            yield env.timeout(service[2][k])
            yield memory
            yield fifos[2].put(k)

    for s in range(n_stages):
        env.process(hash_stage() if s == 2 else stage(s))
    steps = 0
    while True:
        try:
            env.step()
        except simpy.core.EmptySchedule:
            break
        steps += 1
    return int(env.now), steps


def _median_time(fn, repeats):
    fn()
    times = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _workloads(args):
    """(100x100 workload, 800x800 workload or None, description)."""
    try:
        from hero_lite.search import workload as glue
    except ImportError:
        glue = None
    from hero_lite.accel import synthetic_workload

    if glue is None:
        w800 = None if args.skip_800 else synthetic_workload(800, 800)
        return synthetic_workload(), w800, "synthetic_workload (hero_lite.search.workload not available)"
    from hero_lite.nerf.checkpoint import load_checkpoint
    from hero_lite.nerf.pipeline import train_run
    from hero_lite.nerf.trace import trace_view
    from hero_lite.scenes import load_scene

    ckpt = args.checkpoint
    if ckpt is None:
        run_dir = repo_path("runs", "bench", "primitives")
        ckpt = os.path.join(run_dir, "checkpoint.h5")
        if not os.path.exists(ckpt):
            train_run(args.scene, run_dir, steps=1200, seed=0)
    w100 = glue.trace_workload(ckpt, args.scene, split="test", views=1)[0]
    w800 = None
    if not args.skip_800:
        model, _ = load_checkpoint(ckpt)
        scene = load_scene(args.scene, "test")
        h, w = 8 * scene.height, 8 * scene.width
        w800 = glue.workload_from_trace(trace_view(model, scene.poses[0], 8 * scene.focal, h, w), model.config)
    return w100, w800, f"primitives test view 0 traced by hero_lite.search.workload ({os.path.relpath(ckpt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--scene", default=repo_path("scenes", "primitives"))
    parser.add_argument("--preset", default="edge")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-800", action="store_true", help="skip the 800x800 frame")
    args = parser.parse_args()

    import numpy as np

    from hero_lite.accel import DEFAULT_SAMPLE_FRACTION, load_config, simulate, uniform_bits
    from hero_lite.accel import units
    from hero_lite.accel.engine import run_pipeline

    w100, w800, described = _workloads(args)
    config = load_config(args.preset)
    bits = uniform_bits(w100, 8)

    t_exact, exact = _median_time(lambda: simulate(w100, bits, config), args.repeats)
    t_sampled, sampled = _median_time(lambda: simulate(w100, bits, config, sample_fraction=DEFAULT_SAMPLE_FRACTION),
                                      args.repeats)

    # the timing pass alone, against SimPy, on the same per-tile work
    tiles = units.build_tiles(w100, units.ray_issue_order(w100.width, w100.height, config.ray_block),
                              config.tile_samples)
    lbits = units.layer_bits(w100, bits)
    placement = units.place_levels(w100.grid, np.array([bits[p] for p in w100.level_points]),
                                   config.hash_engine.word_bits, units.grid_words_capacity(config),
                                   config.cache.line_bytes)
    hw = units.hash_memory_pass(w100, placement, config, tiles,
                                units.CacheState.cold(config.cache.n_sets, config.cache.ways))
    service = units.compute_service(w100, lbits, config, tiles)
    service[2] = hw.sram_cycles
    line = config.cache.line_bytes
    preload = -(-placement.grid_words_used * config.hash_engine.word_bits // 8 // line) + \
        -(-units.weight_bytes(w100, bits) // line)
    dram = config.dram
    args_des = (service, hw.miss_lines, preload, config.fifo_depth, dram.bw_milli_bytes_per_cycle, line,
                dram.latency_cycles, dram.queue_depth)
    t_des, des = _median_time(lambda: run_pipeline(*args_des), args.repeats)
    assert des.total_cycles == exact.total_cycles
    t0 = time.perf_counter()
    simpy_cycles, simpy_events = simpy_pipeline(*args_des)
    t_simpy = time.perf_counter() - t0
    assert simpy_cycles == des.total_cycles, (simpy_cycles, des.total_cycles)

    out = {
        "workload": described,
        "preset": args.preset,
        "bits": "uniform 8",
        "n_samples_100": w100.n_samples,
        "frame_100_exact_s": t_exact,
        "frame_100_sampled_s": t_sampled,
        "sample_fraction": DEFAULT_SAMPLE_FRACTION,
        "sampled_latency_error": abs(sampled.latency_ms / exact.latency_ms - 1),
        "events_per_s": des.n_events / t_des,
        "n_events_100": des.n_events,
        "timing_pass_100_s": t_des,
        "simpy_s": t_simpy,
        "simpy_events": simpy_events,
        "speedup_vs_simpy": t_simpy / t_des,
        "cycles_match_simpy": True,
        "edge_100": {"total_cycles": exact.total_cycles, "latency_ms": exact.latency_ms, "area_mm2": exact.area_mm2,
                     "energy_uj": exact.energy_uj, "unit_busy_shares": exact.unit_shares(),
                     "levels_on_chip": exact.levels_on_chip, "cache_hit_rate": exact.cache_hit_rate},
    }
    if w800 is not None:
        b800 = uniform_bits(w800, 8)
        t800, r800 = _median_time(lambda: simulate(w800, b800, config), max(1, min(args.repeats, 3)))
        t800s, r800s = _median_time(lambda: simulate(w800, b800, config, sample_fraction=DEFAULT_SAMPLE_FRACTION),
                                    max(1, min(args.repeats, 3)))
        out.update({"frame_800_s": t800, "frame_800_sampled_s": t800s, "n_samples_800": w800.n_samples,
                    "n_events_800": r800.n_events, "latency_800_ms": r800.latency_ms,
                    "sampled_latency_error_800": abs(r800s.latency_ms / r800.latency_ms - 1)})
    out.update(provenance())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
