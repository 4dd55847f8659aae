"""Sampled simulation: every k-th tile measured (after a warm-up tile), the rest estimated; the
latency stays within 5% of the exact frame."""

import numpy as np
import pytest

from hero_lite.accel import DEFAULT_SAMPLE_FRACTION, load_config, simulate, split_bits, synthetic_workload
from hero_lite.accel.simulator import sampled_tiles

FRAMES = {"sphere": dict(), "far": dict(seed=1, camera_distance=1.1), "grazing": dict(seed=2, radius=0.42)}


@pytest.mark.parametrize("preset", ["edge", "server"])
@pytest.mark.parametrize("frame", list(FRAMES))
def test_sampled_latency_within_5_percent(preset, frame):
    config = load_config(preset)
    w = synthetic_workload(**FRAMES[frame])
    for hash_bits, mlp_bits in ((8, 8), (16, 8), (4, 4), (2, 8)):
        bits = split_bits(w, hash_bits, mlp_bits)
        exact = simulate(w, bits, config)
        sampled = simulate(w, bits, config, sample_fraction=DEFAULT_SAMPLE_FRACTION)
        assert sampled.sampled and sampled.sample_fraction == DEFAULT_SAMPLE_FRACTION
        assert abs(sampled.latency_ms / exact.latency_ms - 1) <= 0.05, (hash_bits, mlp_bits)
        # the parts that are exact by construction
        assert sampled.units["mlp"]["busy_cycles"] == exact.units["mlp"]["busy_cycles"]
        assert sampled.units["sampler"]["busy_cycles"] == exact.units["sampler"]["busy_cycles"]
        assert sampled.n_samples == exact.n_samples and sampled.n_tiles == exact.n_tiles
        assert sampled.model_bytes == exact.model_bytes and sampled.area_mm2 == exact.area_mm2
        # estimated memory traffic and energy stay close too
        assert abs(sampled.dram_bytes / exact.dram_bytes - 1) <= 0.15
        assert abs(sampled.energy_uj / exact.energy_uj - 1) <= 0.10


def test_sampled_tiles_pattern():
    measured, warm = sampled_tiles(20, 0.125)
    assert np.flatnonzero(measured).tolist() == [4, 12] and np.flatnonzero(warm).tolist() == [3, 11]
    measured, warm = sampled_tiles(3, 0.125)  # fewer tiles than k // 2: the middle one
    assert measured.tolist() == [False, True, False] and warm.tolist() == [True, False, False]
    measured, warm = sampled_tiles(5, 1.0)
    assert measured.all() and not warm.any()


def test_fraction_one_is_exact_and_sampling_is_deterministic():
    w = synthetic_workload(64, 64)
    bits = split_bits(w, 8, 8)
    config = load_config("edge")
    assert simulate(w, bits, config, sample_fraction=1.0).to_dict() == simulate(w, bits, config).to_dict()
    a = simulate(w, bits, config, sample_fraction=0.125)
    assert a.to_dict() == simulate(w, bits, config, sample_fraction=0.125).to_dict()
