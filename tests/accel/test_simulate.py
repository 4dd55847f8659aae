"""simulate() end to end on synthetic frames: report consistency, the laws (fewer bits, more
bandwidth, more SRAM), area modes, determinism and the JSON round trip."""

import json

import numpy as np
import pytest

from hero_lite.accel import (SimReport, Workload, default_geometry, load_config, model_bytes, simulate, split_bits,
                             synthetic_workload, uniform_bits)

EDGE = load_config("edge")
SERVER = load_config("server")


@pytest.fixture(scope="module")
def frame():
    return synthetic_workload()  # 100 x 100, ~55k samples


@pytest.fixture(scope="module")
def small():
    return synthetic_workload(48, 40, seed=2)


def test_report_is_consistent(frame):
    bits = uniform_bits(frame, 8)
    r = simulate(frame, bits, EDGE)
    assert r.n_samples == frame.n_samples and r.n_rays == 10000 and not r.sampled and r.sample_fraction == 1.0
    for name, u in r.units.items():
        assert u["busy_cycles"] + u["stall_cycles"] + u["idle_cycles"] == r.total_cycles, name
        assert min(u.values()) >= 0
    assert r.total_cycles >= max(u["busy_cycles"] for u in r.units.values())
    assert r.latency_ms == pytest.approx(r.total_cycles / EDGE.clock_hz * 1e3)
    assert r.fps == pytest.approx(1e3 / r.latency_ms)
    assert r.cost_efficiency == r.cost_efficiency_per_ms_mm2 == pytest.approx(1 / (r.latency_ms * r.area_mm2))
    assert r.model_bytes == model_bytes(frame, bits)
    assert r.dram_bytes == sum(r.dram_bytes_by_kind.values())
    assert r.dram_bytes_by_kind["hash_lines"] + r.dram_bytes_by_kind["grid_preload"] + \
        r.dram_bytes_by_kind["weight_preload"] == r.dram_lines * EDGE.cache.line_bytes
    assert r.energy_uj == pytest.approx(sum(r.energy_breakdown_uj.values()))
    assert r.area_mm2 == pytest.approx(sum(r.area_breakdown_mm2.values()))
    assert all(v >= 0 for v in r.energy_breakdown_uj.values()) and all(v >= 0 for v in r.area_breakdown_mm2.values())
    assert r.levels_on_chip == [0, 1] and 0 < r.onchip_hit_rate < 1 and 0 < r.cache_hit_rate < 1
    assert r.bank_conflict_cycles == sum(r.bank_conflict_cycles_by_memory.values()) > 0
    assert sum(r.mlp_cycles_by_layer.values()) == r.units["mlp"]["busy_cycles"]
    q = r.dram_queue  # Little's law on the reported queue statistics
    assert q["mean_outstanding"] == pytest.approx(q["throughput_lines_per_cycle"] * q["mean_time_in_system_cycles"])
    assert r.timeline is None


def test_edge_is_balanced_at_uniform_8_bits(frame):
    # the MLP engine and the hash-memory/DRAM path each take a substantial share of the frame
    shares = simulate(frame, uniform_bits(frame, 8), EDGE).unit_shares()
    assert shares["mlp"] >= 0.2
    assert max(shares["hash_memory"], shares["dram"]) >= 0.2


def test_deterministic_and_json_round_trip(small, tmp_path):
    bits = split_bits(small, 6, 4)
    a = simulate(small, bits, EDGE, timeline=True)
    b = simulate(small, bits, EDGE, timeline=True)
    assert a.to_dict() == b.to_dict()
    text = a.to_json()
    back = SimReport.from_json(text)
    assert back.to_dict() == a.to_dict()
    d = json.loads(text)
    assert d["cost_efficiency"] == d["cost_efficiency_per_ms_mm2"]
    assert {"total_cycles", "latency_ms", "clock_hz", "dram_bytes", "energy_uj", "area_mm2", "model_bytes"} <= set(d)
    with pytest.raises(ValueError, match="unknown key"):
        SimReport.from_dict({**d, "latency_s": 1.0})
    # timeline: per unit intervals inside the frame
    for name, iv in a.timeline.items():
        arr = np.asarray(iv)
        assert arr.size == 0 or (arr.min() >= 0 and arr.max() <= a.total_cycles), name
    assert len(a.timeline["mlp"]) == a.n_tiles


@pytest.mark.parametrize("config", [EDGE, SERVER], ids=["edge", "server"])
def test_fewer_mlp_bits_never_slower(frame, config):
    previous = None
    for b in (32, 16, 8, 6, 4, 3, 2):
        r = simulate(frame, split_bits(frame, 8, b), config)
        if previous is not None:
            assert r.total_cycles <= previous.total_cycles, b
            assert r.energy_breakdown_uj["mac"] <= previous.energy_breakdown_uj["mac"]
        previous = r
    # one layer at a time, too
    base = simulate(frame, uniform_bits(frame, 8), config).total_cycles
    for point in ("w.color1", "act.density_hidden", "act.sh"):
        bits = uniform_bits(frame, 8)
        bits[point] = 2
        assert simulate(frame, bits, config).total_cycles <= base, point


@pytest.mark.parametrize("config", [EDGE, SERVER], ids=["edge", "server"])
@pytest.mark.parametrize("seed", [0, 1])
def test_halving_hash_bits_never_adds_dram_bytes(config, seed):
    w = synthetic_workload(seed=seed, camera_distance=0.95 + 0.15 * seed)
    previous = None
    for b in (16, 8, 4, 2):
        r = simulate(w, split_bits(w, b, 8), config)
        if previous is not None:
            assert r.dram_bytes <= previous.dram_bytes, b
            assert set(previous.levels_on_chip) <= set(r.levels_on_chip)
            assert r.model_bytes < previous.model_bytes
        previous = r


@pytest.mark.parametrize("config", [EDGE, SERVER], ids=["edge", "server"])
def test_more_bandwidth_or_sram_never_slower(frame, config):
    bits = split_bits(frame, 8, 4)
    base = simulate(frame, bits, config).total_cycles
    for override in ({"dram": {"bw_bytes_per_cycle": config.dram.bw_bytes_per_cycle * 2}},
                     {"dram": {"latency_cycles": config.dram.latency_cycles // 2}},
                     {"dram": {"queue_depth": config.dram.queue_depth * 2}},
                     {"hash_engine": {"grid_sram_kib": config.hash_engine.grid_sram_kib * 2}},
                     {"hash_engine": {"grid_sram_kib": config.hash_engine.grid_sram_kib * 4}},
                     {"cache": {"kib": config.cache.kib * 2}},
                     {"cache": {"ways": config.cache.ways * 2}},
                     {"fifo_depth": config.fifo_depth + 2}):
        assert simulate(frame, bits, config.with_overrides(override)).total_cycles <= base, override


def test_fit_area_mode_sizes_the_grid_sram_to_the_policy(frame):
    r8 = simulate(frame, uniform_bits(frame, 8), EDGE, area_mode="fit")
    r4 = simulate(frame, split_bits(frame, 4, 8), EDGE, area_mode="fit")
    fixed = simulate(frame, uniform_bits(frame, 8), EDGE)
    assert r8.area_mode == "fit" and fixed.area_mode == "fixed"
    assert r8.levels_on_chip == list(range(16)) and r8.cache_hit_rate == 1.0 and r8.onchip_hit_rate == 1.0
    assert r8.dram_bytes_by_kind["hash_lines"] == 0 and r8.area_breakdown_mm2["cache"] == 0
    # 456,920 entries x 16 bits = 913,840 bytes; 4 bits: a quarter... plus word rounding per level
    assert r8.grid_sram_kib == pytest.approx(913840 / 1024)
    assert r4.grid_sram_kib < r8.grid_sram_kib / 1.9 and r4.area_mm2 < r8.area_mm2
    assert r8.area_mm2 > fixed.area_mm2
    # the config's area_mode is the default
    assert simulate(frame, uniform_bits(frame, 8), EDGE.with_overrides({"area_mode": "fit"})).area_mode == "fit"


def test_caq_point_set_and_empty_frames(small):
    levels = ("hash.all",) * 16
    stored = {"hash.all": 456920 * 2}
    stored.update({layer.weight_point: layer.fan_in * layer.fan_out for layer in small.mlp_layers})
    acts = small.activation_points + ("act.sigma", "act.rgb")
    caq = Workload(**{**small.__dict__, "level_points": levels, "stored_points": stored, "activation_points": acts})
    bits = uniform_bits(caq, 8)
    bits["act.sigma"] = 32
    a = simulate(caq, bits, EDGE)
    b = simulate(small, uniform_bits(small, 8), EDGE)
    assert a.total_cycles == b.total_cycles  # same hardware work; only the model size differs
    assert a.model_bytes == model_bytes(caq, bits) != b.model_bytes
    # a frame where every ray misses: the sampler still marches, nothing else works
    empty = synthetic_workload(16, 16, samples_per_ray=0)
    r = simulate(empty, uniform_bits(empty, 8), EDGE, sample_fraction=0.125)
    assert r.n_samples == 0 and r.total_cycles > 0 and r.units["mlp"]["busy_cycles"] == 0


def test_bad_arguments_name_the_problem(small):
    bits = uniform_bits(small, 8)
    del bits["w.density0"]
    with pytest.raises(ValueError, match="w.density0"):
        simulate(small, bits, EDGE)
    with pytest.raises(ValueError, match="area_mode"):
        simulate(small, uniform_bits(small, 8), EDGE, area_mode="max")
    with pytest.raises(ValueError, match="sample_fraction"):
        simulate(small, uniform_bits(small, 8), EDGE, sample_fraction=0.0)
    wide = Workload(**{**small.__dict__, "grid": default_geometry(n_feat=8)})  # 8 x 32-bit entries
    with pytest.raises(ValueError, match="line_bytes = 8"):
        simulate(wide, uniform_bits(wide, 32), EDGE.with_overrides({"cache": {"line_bytes": 8, "kib": 1.0}}))


def test_energy_and_latency_respond_to_hash_bits(frame):
    r16 = simulate(frame, split_bits(frame, 16, 4), EDGE)
    r4 = simulate(frame, split_bits(frame, 4, 4), EDGE)
    assert r4.energy_breakdown_uj["dram"] < r16.energy_breakdown_uj["dram"]
    assert r4.total_cycles < r16.total_cycles
