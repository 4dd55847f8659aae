"""CostEstimator: kernels against plain-Python references and the simulator's own kernels, accuracy
against `simulate` on the synthetic frame and (if a checkpoint exists) a real trace, monotonicity of
the monotone mode (hypothesis), exact area and model bytes, calibration, errors.

Accuracy and speed numbers are printed (run with -s to see them)."""

import os
import pathlib
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from hero_lite.accel import (CostEstimate, CostEstimator, Workload, load_config, model_bytes, simulate, split_bits,
                             synthetic_workload, uniform_bits, units)
from hero_lite.accel import _kernels as K
from hero_lite.accel._estimate_kernels import (cache_profile_one, dram_return_kernel, isotonic_kernel,
                                               pipeline_recurrence_kernel, sram_profile_one)
from hero_lite.accel.engine import run_pipeline
from hero_lite.accel.frame_profile import BIT_VALUES, divider, gap_buckets, pow2_mask, window_lines

from ._reference import block_bank_reference

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "runs" / "bench" / "primitives" / "checkpoint.h5"
SCENE = ROOT / "scenes" / "primitives"
PRESETS = ("edge", "server")
N_POLICIES = 25
TARGETS = {"median": 0.05, "max": 0.15, "spearman": 0.95}


def random_policies(workload: Workload, n: int, seed: int) -> list[dict]:
    """Mixed policies: hash levels 2..16 (10% fp32), MLP weights and activations 2..8 (10% fp32)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        bits = {}
        for name in workload.point_names:
            lo, hi = (2, 16) if name.startswith("hash") else (2, 8)
            bits[name] = 32 if rng.random() < 0.1 else int(rng.integers(lo, hi + 1))
        out.append(bits)
    return out


def accuracy(estimated, simulated) -> dict:
    e, s = np.asarray(estimated, float), np.asarray(simulated, float)
    rel = np.abs(e / s - 1)
    return {"median": float(np.median(rel)), "max": float(rel.max()), "spearman": float(spearmanr(e, s)[0])}


def build_case(workload: Workload, preset: str, seed: int) -> dict:
    config = load_config(preset)
    case = {"config": config, "policies": random_policies(workload, N_POLICIES, seed)}
    case["reports"] = [simulate(workload, b, config) for b in case["policies"]]
    for mode in (False, True):
        t0 = time.perf_counter()
        est = CostEstimator(workload, config, monotone=mode)
        precompute_s = time.perf_counter() - t0
        estimates, per_call = [], []
        for b in case["policies"]:
            t0 = time.perf_counter()
            estimates.append(est.estimate(b))
            per_call.append(time.perf_counter() - t0)
        case["monotone" if mode else "faithful"] = {"estimator": est, "estimates": estimates,
                                                    "precompute_s": precompute_s,
                                                    "per_call_ms": 1e3 * float(np.median(per_call))}
    return case


def report_case(label: str, case: dict) -> dict:
    sim_ms = [r.latency_ms for r in case["reports"]]
    out = {}
    for mode in ("faithful", "monotone"):
        m = case[mode]
        lat = accuracy([x.latency_ms for x in m["estimates"]], sim_ms)
        energy = accuracy([x.energy_uj for x in m["estimates"]], [r.energy_uj for r in case["reports"]])
        print(f"\n{label} {mode:8s}: latency error median {lat['median']:.4%} max {lat['max']:.4%} "
              f"spearman {lat['spearman']:.4f} | energy error median {energy['median']:.4%} max {energy['max']:.4%} "
              f"| precompute {m['precompute_s']:.2f} s, per call {m['per_call_ms']:.3f} ms")
        out[mode] = (lat, energy)
    return out


@pytest.fixture(scope="module")
def frame():
    return synthetic_workload()  # 100 x 100, ~55k samples


@pytest.fixture(scope="module")
def small():
    return synthetic_workload(48, 40, seed=2)


@pytest.fixture(scope="module")
def synthetic_cases(frame):
    return {preset: build_case(frame, preset, seed=7) for preset in PRESETS}


# ---------------------------------------------------------------------------------------------
# kernels


def cache_profile_reference(idx, tile_starts, batch_groups, epl, cache_banks, n_sets, ways, bucket_of_gap, n_buckets,
                            block_shift=-1, xor_fold=False):
    """Plain Python: distinct lines per batch, per-set LRU lists (most recent first), gaps per line.
    Banks: line mod banks, or with block_shift >= 0 the block mappings' bank of entry >> block_shift."""
    n_tiles = len(tile_starts) - 1
    cycles, accesses, own = (np.zeros(n_tiles, np.int64) for _ in range(3))
    reuse = np.zeros((n_tiles, n_buckets, ways), np.int64)
    sets = [[] for _ in range(n_sets)]
    used_in = {}
    for t in range(n_tiles):
        for b0 in range(tile_starts[t], tile_starts[t + 1], batch_groups):
            lines, banks = [], []
            for i in range(b0, min(b0 + batch_groups, tile_starts[t + 1])):
                for e in idx[i]:
                    if int(e) // epl not in lines:
                        lines.append(int(e) // epl)
                        banks.append(lines[-1] % cache_banks if block_shift < 0 else
                                     block_bank_reference(int(e) >> block_shift, cache_banks, xor_fold))
            cycles[t] += np.bincount(banks, minlength=cache_banks).max()
            accesses[t] += len(lines)
            for a in lines:
                stack = sets[a % n_sets]
                pos = next((k for k, (line, _) in enumerate(stack) if line == a), None)
                if pos is None:
                    own[t] += 1
                else:
                    _, last = stack.pop(pos)
                    if last < t:
                        reuse[t, bucket_of_gap[t - last], pos] += 1
                stack.insert(0, (a, t))
                del stack[ways:]
                used_in.setdefault(a, set()).add(t)
    gaps = np.zeros(n_tiles + 1, np.int64)
    for tiles in used_in.values():
        tiles = sorted(tiles)
        gaps[tiles[0]] += 1
        for a, b in zip(tiles, tiles[1:]):
            gaps[b - a - 1] += 1
        gaps[n_tiles - 1 - tiles[-1]] += 1
    return cycles, accesses, own, reuse, gaps, len(used_in)


def one_level_sim_kernel(workload, tiles, level, onchip, epw, wpe, epl, config, mapping="word_mod"):
    """The simulator's own hash_memory_kernel on one level alone (cold cache)."""
    g, he, cc = workload.grid, config.hash_engine, config.cache
    sl = slice(level, level + 1)
    n = tiles.n_tiles
    out = [np.zeros(n, np.int64) for _ in range(3)]
    counters = np.zeros((n, K.N_COUNTERS), np.int64)
    cache = units.CacheState.cold(cc.n_sets, cc.ways)
    K.hash_memory_kernel(workload.positions, tiles.sample_order, tiles.tile_starts, g.scales[sl].copy(),
                         g.resolutions[sl].copy(), g.sizes[sl].copy(), g.hashed[sl].copy(), np.array([onchip]),
                         np.array([epw]), np.array([wpe]), he.sram_banks, units.mapping_code(mapping),
                         he.batch_groups, np.array([epl]), np.array([0]), cc.n_sets, cc.ways, cc.banks,
                         *units.bank_block_shifts(g.n_feat, he.word_bits, cc.line_bytes), cache.tags, cache.stamps,
                         cache.clock, *out, counters)
    return out, counters


@pytest.mark.parametrize("mapping", ["word_mod", "xor", "block_mod"])
@pytest.mark.parametrize("level", [1, 3, 9])
def test_profile_kernels_match_the_simulator_and_a_python_reference(small, level, mapping):
    config = load_config("edge").with_overrides({"tile_samples": 64, "cache": {"kib": 2.0, "ways": 4, "banks": 12}})
    blocks = mapping != "word_mod"
    xor_fold = mapping == "xor"
    shifts = units.bank_block_shifts(small.grid.n_feat, 32, 32) if blocks else (-1, -1)
    tiles = units.build_tiles(small, units.ray_issue_order(small.width, small.height, 8), 64)
    positions = np.ascontiguousarray(small.positions[tiles.sample_order])
    idx = units.corner_indices(positions, small.grid, level)
    he, cc = config.hash_engine, config.cache
    bucket_of_gap, rep = gap_buckets(tiles.n_tiles)
    max_index = int(small.grid.sizes[level]) - 1
    for epw, wpe in ((8, 1), (4, 1) if blocks else (3, 1), (1, 1), (1, 2)):
        cycles, words = np.zeros(tiles.n_tiles, np.int64), np.zeros(tiles.n_tiles, np.int64)
        sram_profile_one(idx, tiles.tile_starts, he.batch_groups, epw, divider(epw, max_index), wpe, he.sram_banks,
                         pow2_mask(he.sram_banks), shifts[0], xor_fold, cycles, words)
        (grid_cycles, _, _), counters = one_level_sim_kernel(small, tiles, level, True, epw, wpe, 4, config, mapping)
        assert np.array_equal(cycles, grid_cycles) and np.array_equal(words, counters[:, K.C_GRID_WORDS])
    for epl in (64, 16, 4) if blocks else (64, 21, 4):
        n_lines = -(-int(small.grid.sizes[level]) // epl)
        got = [np.zeros(tiles.n_tiles, np.int64) for _ in range(3)]
        reuse = np.zeros((tiles.n_tiles, rep.size, cc.ways), np.int64)
        gaps = np.zeros(tiles.n_tiles + 1, np.int64)
        n_used = cache_profile_one(idx, tiles.tile_starts, he.batch_groups, epl, divider(epl, max_index), n_lines,
                                   cc.banks, pow2_mask(cc.banks), shifts[1], xor_fold, cc.n_sets, pow2_mask(cc.n_sets),
                                   cc.ways, bucket_of_gap, *got, reuse, gaps)
        (_, cache_cycles, misses), counters = one_level_sim_kernel(small, tiles, level, False, 1, 1, epl, config,
                                                                   mapping)
        assert np.array_equal(got[0], cache_cycles) and np.array_equal(got[2], misses)
        assert np.array_equal(got[1], counters[:, K.C_CACHE_ACCESSES])
        ref = cache_profile_reference(idx, tiles.tile_starts, he.batch_groups, epl, cc.banks, cc.n_sets, cc.ways,
                                      bucket_of_gap, rep.size, shifts[1], xor_fold)
        for a, b in zip((*got, reuse, gaps, n_used), ref):
            assert np.array_equal(a, b)


def test_divider_is_exact():
    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 5, 7, 21, 25, 42, 64, 1000):
        m = divider(d, (1 << 20) - 1)
        a = np.concatenate([rng.integers(0, 1 << 20, 5000), np.arange(2000), [(1 << 20) - 1]])
        assert m > 0 and np.array_equal((a * m) >> 32, a // d), d
    assert divider(3, 1 << 40) == 0  # too large for 64-bit products: plain division
    assert pow2_mask(16) == 15 and pow2_mask(12) == -1


@pytest.mark.parametrize("seed", range(6))
def test_pipeline_recurrence_and_dram_table_equal_the_event_engine(seed):
    rng = np.random.default_rng(seed)
    n_tiles = int(rng.integers(1, 40))
    service = rng.integers(0, 400, (6, n_tiles)).astype(np.int64)
    lines = np.where(rng.random(n_tiles) < 0.3, 0, rng.integers(0, 900, n_tiles)).astype(np.int64)
    preload = int(rng.integers(0, 500))
    depth, qd, latency = int(rng.integers(1, 4)), int(rng.integers(1, 80)), int(rng.integers(0, 120))
    bwm, line = int(rng.integers(500, 300000)), int(rng.choice([8, 32, 64]))
    table = np.zeros(max(int(lines.max()), preload) + 2, np.int64)
    dram_return_kernel(bwm, line * 1000, latency, qd, table)
    exact = run_pipeline(service, lines, preload, depth, bwm, line, latency, qd).total_cycles
    assert pipeline_recurrence_kernel(service, table[lines], table[preload], depth) == exact


def isotonic_reference(y):
    """Pool adjacent violators, written plainly: merge blocks while a block mean exceeds the next."""
    blocks = [[float(v)] for v in y]
    i = 0
    while i < len(blocks) - 1:
        if np.mean(blocks[i]) > np.mean(blocks[i + 1]):
            blocks[i] += blocks.pop(i + 1)
            i = max(i - 1, 0)
        else:
            i += 1
    return np.concatenate([[np.mean(b)] * len(b) for b in blocks])


def test_isotonic_kernel_against_reference():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(50, 16)) + np.linspace(0, 1, 16)
    y[0] = [3, 1, 2, 2, 0, 5, 4, 4, 4, 6, 1, 9, 8, 8, 8, 7]
    out = np.empty_like(y)
    isotonic_kernel(y, out)
    for row, got in zip(y, out):
        assert np.allclose(got, isotonic_reference(row))
        assert np.all(np.diff(got) >= -1e-12) and np.isclose(got.sum(), row.sum())


def test_window_lines_against_brute_force():
    rng = np.random.default_rng(2)
    n_tiles, n_lines = 23, 40
    use = rng.random((n_lines, n_tiles)) < rng.uniform(0.02, 0.6, (n_lines, 1))
    use = use[use.any(axis=1)]
    gaps = np.zeros(n_tiles + 1, np.int64)
    for row in use:
        tiles = np.flatnonzero(row)
        gaps[tiles[0]] += 1
        for a, b in zip(tiles, tiles[1:]):
            gaps[b - a - 1] += 1
        gaps[n_tiles - 1 - tiles[-1]] += 1
    g = np.arange(1, n_tiles + 3, dtype=float)
    brute = [np.mean([use[:, s:s + int(k)].any(axis=1).sum() for s in range(max(n_tiles - int(k) + 1, 1))])
             for k in g]
    assert np.allclose(window_lines(gaps, use.shape[0], n_tiles, g), brute)
    # docstring example: one line used in tile 2 of 5
    assert np.isclose(window_lines(np.array([0, 0, 2, 0, 0, 0]), 1, 5, np.array([1.0]))[0], 0.2)


def test_gap_buckets_cover_every_gap():
    for n_tiles in (1, 5, 27, 108, 500):
        bucket, rep = gap_buckets(n_tiles)
        assert bucket[0] == -1 and bucket.shape == (n_tiles + 1,)
        assert np.all(np.diff(bucket[1:]) >= 0) and bucket[1:].max() < rep.size
        exact = min(n_tiles, 15)
        assert np.array_equal(bucket[1:exact + 1], np.arange(exact))


# ---------------------------------------------------------------------------------------------
# accuracy against simulate


@pytest.mark.parametrize("preset", PRESETS)
def test_accuracy_on_the_synthetic_frame(synthetic_cases, preset):
    case = synthetic_cases[preset]
    got = report_case(f"synthetic 100x100 {preset}", case)
    lat, energy = got["faithful"]
    assert lat["median"] <= TARGETS["median"] and lat["max"] <= TARGETS["max"]
    assert lat["spearman"] >= TARGETS["spearman"]
    assert energy["median"] <= 0.01 and energy["max"] <= 0.05
    for x, r, b in zip(case["faithful"]["estimates"], case["reports"], case["policies"]):
        assert x.area_mm2 == pytest.approx(r.area_mm2, rel=1e-12) and x.model_bytes == r.model_bytes
        assert x.levels_on_chip == r.levels_on_chip
    # the monotone mode pays for monotonicity where the simulator is not monotone (module docstring);
    # guard its numbers against regressions (measured: edge median < 0.1%, server median ~6%)
    lat, _ = got["monotone"]
    if preset == "edge":
        assert lat["median"] <= TARGETS["median"] and lat["max"] <= TARGETS["max"]
        assert lat["spearman"] >= TARGETS["spearman"]
    else:
        assert lat["median"] <= 0.10


@pytest.mark.skipif(not (CHECKPOINT.is_file() and SCENE.is_dir()), reason="no checkpoint at runs/bench/primitives")
def test_accuracy_on_a_real_trace():
    from hero_lite.search.workload import trace_workload

    workload = trace_workload(str(CHECKPOINT), str(SCENE))[0]
    for preset in PRESETS:
        got = report_case(f"primitives trace {workload.width}x{workload.height} {preset}",
                          build_case(workload, preset, seed=11))
        lat, energy = got["faithful"]
        assert lat["median"] <= TARGETS["median"] and lat["max"] <= TARGETS["max"]
        assert lat["spearman"] >= TARGETS["spearman"]
        assert energy["median"] <= 0.01


@pytest.mark.parametrize("name, overrides, area_mode", [
    ("fit", {}, "fit"),
    ("vertex banks", {"hash_engine": {"bank_mapping": "vertex"}}, None),
    ("xor banks", {"hash_engine": {"bank_mapping": "xor"}}, None),
    ("xor banks, odd banks", {"hash_engine": {"bank_mapping": "xor", "sram_banks": 12}, "cache": {"banks": 12}}, None),
    ("block_mod banks", {"hash_engine": {"bank_mapping": "block_mod"}}, None),
    ("odd banks and sets", {"cache": {"banks": 12, "kib": 12.0, "ways": 3}, "tile_samples": 300, "fifo_depth": 1,
                            "hash_engine": {"sram_banks": 12, "batch_groups": 3}}, None),
    ("queue-bound dram", {"dram": {"queue_depth": 8, "bw_bytes_per_cycle": 7.3, "latency_cycles": 80}}, None),
])
def test_faithful_mode_on_other_configurations(small, name, overrides, area_mode):
    config = load_config("edge").with_overrides(overrides)
    est = CostEstimator(small, config, area_mode=area_mode)
    for bits in random_policies(small, 6, seed=3):
        r, x = simulate(small, bits, config, area_mode=area_mode), est.estimate(bits)
        assert x.total_cycles == pytest.approx(r.total_cycles, rel=0.01), name
        assert x.area_mm2 == pytest.approx(r.area_mm2, rel=1e-12) and x.model_bytes == r.model_bytes
        assert x.energy_uj == pytest.approx(r.energy_uj, rel=0.01) and x.dram_bytes == pytest.approx(r.dram_bytes,
                                                                                                      rel=0.01)
        assert x.levels_on_chip == r.levels_on_chip


def test_faithful_mode_follows_the_simulators_own_non_monotonicity(frame):
    # server, levels 0-2 at 16 bits fill the grid SRAM; level 3 off chip: at 8 bits (16 entries per
    # 32-byte line) its z-neighbours are 64 lines apart, in the same one of the 64 cache banks
    # (with word_mod banks; the presets' xor banks are monotone, test_monotone.py)
    config = load_config("server").with_overrides({"hash_engine": {"bank_mapping": "word_mod"}})
    est = CostEstimator(frame, config)
    bits = split_bits(frame, 16, 8)
    lat = {}
    for b3 in (8, 9):
        bits["hash.l03"] = b3
        lat[b3] = (simulate(frame, bits, config).total_cycles, est.estimate(bits).total_cycles)
    assert lat[8][0] > lat[9][0] * 1.02  # the simulator: fewer bits, slower
    assert lat[8][1] / lat[9][1] == pytest.approx(lat[8][0] / lat[9][0], rel=0.005)


# ---------------------------------------------------------------------------------------------
# monotone mode


@pytest.fixture(scope="module")
def monotone_estimators(synthetic_cases):
    return {preset: synthetic_cases[preset]["monotone"]["estimator"] for preset in PRESETS}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_monotone_mode_lowering_any_bits_never_raises_latency(frame, monotone_estimators, data):
    est = monotone_estimators[data.draw(st.sampled_from(PRESETS))]
    bits = {name: data.draw(st.sampled_from(BIT_VALUES)) for name in frame.point_names}
    name = data.draw(st.sampled_from(frame.point_names))
    lower = [b for b in BIT_VALUES if b < bits[name]]
    if not lower:
        return
    before = est.latency_ms(bits)
    bits[name] = data.draw(st.sampled_from(lower))
    assert est.latency_ms(bits) <= before


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_monotone_mode_lowering_many_bits_never_raises_latency(frame, monotone_estimators, data):
    est = monotone_estimators[data.draw(st.sampled_from(PRESETS))]
    high = {name: data.draw(st.sampled_from(BIT_VALUES)) for name in frame.point_names}
    low = {name: data.draw(st.sampled_from([v for v in BIT_VALUES if v <= b])) for name, b in high.items()}
    assert est.latency_ms(low) <= est.latency_ms(high)


# ---------------------------------------------------------------------------------------------
# API


def test_exact_numbers_calibration_and_memo(small):
    config = load_config("edge")
    est = CostEstimator(small, config)
    bits = split_bits(small, 6, 4)
    bits["act.sh"] = 32
    r = simulate(small, bits, config)
    x = est.estimate(bits)
    assert isinstance(x, CostEstimate) and est.estimate(bits) is x  # memoised
    assert est.model_bytes(bits) == model_bytes(small, bits) == x.model_bytes
    assert est.area_mm2(bits) == pytest.approx(r.area_mm2, rel=1e-12)
    assert est.latency_ms(bits) == x.latency_ms and est.energy_uj(bits) == x.energy_uj
    assert est.dram_bytes(bits) == x.dram_bytes and est.placement(bits) == r.levels_on_chip
    assert np.int64(8) in BIT_VALUES and est.latency_ms({k: np.int64(v) for k, v in bits.items()}) == x.latency_ms
    # calibration: the calibrated policy returns the report's numbers; others move by the same factor
    other = split_bits(small, 3, 8)
    before = est.latency_ms(other)
    fake = simulate(small, bits, config)
    fake.total_cycles, fake.energy_uj = int(r.total_cycles * 1.25), r.energy_uj * 0.5
    est.calibrate(bits, fake)
    assert est.estimate(bits).total_cycles == pytest.approx(fake.total_cycles)
    assert est.energy_uj(bits) == pytest.approx(fake.energy_uj)
    assert est.latency_ms(other) == pytest.approx(before * fake.total_cycles / x.total_cycles)
    est.calibrate(bits, r)
    assert est.latency_ms(bits) == pytest.approx(r.latency_ms)
    with pytest.raises(ValueError, match="does not match"):
        est.calibrate(bits, simulate(small, bits, load_config("server")))
    with pytest.raises(TypeError):
        est.calibrate(bits, {"latency_ms": 1.0})


def test_bad_arguments_name_the_problem(small):
    with pytest.raises(ValueError, match="area_mode"):
        CostEstimator(small, load_config("edge"), area_mode="max")
    with pytest.raises(TypeError, match="monotone"):
        CostEstimator(small, load_config("edge"), monotone="yes")
    est = CostEstimator(small, load_config("edge"))
    bits = uniform_bits(small, 8)
    del bits["w.color1"]
    with pytest.raises(ValueError, match="w.color1"):
        est.latency_ms(bits)
    bits = uniform_bits(small, 8)
    bits["hash.l03"] = 1
    with pytest.raises(ValueError, match="hash.l03"):
        est.latency_ms(bits)
    bits["hash.l03"] = True
    with pytest.raises(ValueError, match="hash.l03"):
        est.model_bytes(bits)


def test_caq_point_set(small):
    stored = {"hash.all": int(small.grid.sizes.sum()) * small.grid.n_feat}
    stored.update({layer.weight_point: layer.fan_in * layer.fan_out for layer in small.mlp_layers})
    caq = Workload(**{**small.__dict__, "level_points": ("hash.all",) * 16, "stored_points": stored})
    config = load_config("server")
    for monotone in (False, True):
        est = CostEstimator(caq, config, monotone=monotone)
        previous = None
        for b in (16, 8, 4, 2):
            bits = uniform_bits(caq, b)
            x, r = est.estimate(bits), simulate(caq, bits, config)
            assert x.model_bytes == r.model_bytes
            if not monotone:
                assert x.total_cycles == pytest.approx(r.total_cycles, rel=0.01)
            if previous is not None and monotone:
                assert x.total_cycles <= previous
            previous = x.total_cycles


def test_speed_report(synthetic_cases):
    for preset in PRESETS:
        for mode in ("faithful", "monotone"):
            m = synthetic_cases[preset][mode]
            print(f"\nspeed synthetic 100x100 {preset} {mode}: precompute {m['precompute_s']:.2f} s, "
                  f"estimate {m['per_call_ms']:.3f} ms per policy")


def test_kernels_run_without_jit():
    code = textwrap.dedent("""
        import numba
        assert numba.config.DISABLE_JIT
        from hero_lite.accel import CostEstimator, load_config, simulate, split_bits, synthetic_workload
        w = synthetic_workload(12, 10, samples_per_ray=3)
        cfg = load_config("edge").with_overrides({"tile_samples": 32, "cache": {"kib": 1.0, "ways": 2}})
        bits = split_bits(w, 5, 8)
        exact = simulate(w, bits, cfg).total_cycles
        assert abs(CostEstimator(w, cfg).estimate(bits).total_cycles / exact - 1) < 0.01
        assert CostEstimator(w, cfg, monotone=True).estimate(bits).total_cycles > 0
        print("ok")
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
