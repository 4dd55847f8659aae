"""Functional models: index generation, packing and placement, the hash-memory pass (bank conflicts
and the LRU cache against plain-Python references), the MLP engine's closed forms, ray order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_lite.accel import AccelConfig, default_geometry, synthetic_workload
from hero_lite.accel import units as U
from hero_lite.accel.config import MLPEngineConfig

from ._reference import LRUCache, hash_memory_reference, tcnn_corner_indices


def test_corner_indices_match_the_numpy_tcnn_hash():
    rng = np.random.default_rng(0)
    pos = np.concatenate([rng.random((500, 3)), [[0, 0, 0], [1, 1, 1], [0.5, 1, 0]]]).astype(np.float32)
    for grid in (default_geometry(), default_geometry(log2_table_size=19, max_res=2048),
                 default_geometry(n_levels=4, log2_table_size=10, base_res=4, max_res=64)):
        for level in range(grid.n_levels):
            want = tcnn_corner_indices(pos, grid.scales[level], int(grid.resolutions[level]), int(grid.sizes[level]),
                                       bool(grid.hashed[level]))
            got = U.corner_indices(pos, grid, level)
            np.testing.assert_array_equal(got, want)
            assert got.min() >= 0 and got.max() < grid.sizes[level]


def test_corner_indices_match_the_models_hash_grid():
    from hero_lite.nerf.config import HashGridConfig
    from hero_lite.nerf.hashgrid import HashGridLayout, corner_indices

    pos = synthetic_workload(16, 16).positions
    model = corner_indices(pos, HashGridLayout.from_config(HashGridConfig()))
    grid = default_geometry()
    for level in range(16):
        np.testing.assert_array_equal(U.corner_indices(pos, grid, level), model[:, level])


def test_non_power_of_two_hashed_size_uses_the_uint32_hash():
    grid = default_geometry(n_levels=3, log2_table_size=10, base_res=8, max_res=64)
    odd = type(grid)(scales=grid.scales, resolutions=grid.resolutions, sizes=np.array([512, 1000, 1000]),
                     hashed=np.array([False, True, True]), n_feat=2)
    pos = np.random.default_rng(1).random((300, 3)).astype(np.float32)
    for level in range(3):
        want = tcnn_corner_indices(pos, odd.scales[level], int(odd.resolutions[level]), int(odd.sizes[level]),
                                   bool(odd.hashed[level]))
        np.testing.assert_array_equal(U.corner_indices(pos, odd, level), want)


def test_packing_and_placement():
    g = default_geometry()
    # 8 bits, F = 2: 16-bit entries, 2 per 32-bit word, 16 per 32-byte line
    p = U.place_levels(g, np.full(16, 8), 32, 8192, 32)  # 32 KiB
    assert p.entries_per_word.tolist() == [2] * 16 and p.words_per_entry.tolist() == [1] * 16
    assert p.level_words[:4].tolist() == [2048, 4632, 8788, 16384]
    assert p.levels_on_chip == [0, 1]  # 2048 + 4632 words fit, + 8788 does not
    assert p.entries_per_line.tolist() == [16] * 16
    # DRAM regions at fixed addresses, sized for the widest packing (fp32: 4 entries per line)
    np.testing.assert_array_equal(p.line_base[:3], [0, 1024, 1024 + 2316])
    np.testing.assert_array_equal(U.place_levels(g, np.full(16, 2), 32, 8192, 32).line_base, p.line_base)
    # 2 bits: 8 per word; levels 0-3 = 512 + 1158 + 2197 + 4096 = 7963 words fit in 8192
    assert U.place_levels(g, np.full(16, 2), 32, 8192, 32).levels_on_chip == [0, 1, 2, 3]
    # fp32: an entry spans 2 words; 3 bits: floor(32 / 6) = 5 per word, floor(256 / 6) = 42 per line
    q = U.place_levels(g, np.array([32, 3] + [8] * 14), 32, 8192, 32)
    assert q.words_per_entry[0] == 2 and q.level_words[0] == 8192 and q.entries_per_word[1] == 5
    assert q.entries_per_line[:2].tolist() == [4, 42]
    # the longest prefix that fits: a 16-bit level 1 does not fit, so the 2-bit level 2 stays off chip too
    r = U.place_levels(g, np.array([8, 16, 2] + [16] * 13), 32, 8192, 32)
    assert r.levels_on_chip == [0]
    assert U.place_levels(g, np.array([8, 2, 2] + [16] * 13), 32, 8192, 32).levels_on_chip == [0, 1, 2]
    # power-of-two slots (xor mapping): 3 bits take 8-bit slots, 4 per word, 32 per line; 5-8 bits 16-bit slots
    x = U.place_levels(g, np.array([3, 5, 8, 2] + [16] * 12), 32, 8192, 32, pow2_slots=True)
    assert x.entries_per_word[:4].tolist() == [4, 2, 2, 8] and x.entries_per_line[:4].tolist() == [32, 16, 16, 64]
    assert x.level_words[:2].tolist() == [1024, 4632]
    # fit: everything on chip
    assert U.place_levels(g, np.full(16, 8), 32, None, 32).levels_on_chip == list(range(16))


def _config(**hash_engine):
    return AccelConfig().with_overrides({"tile_samples": 64, "hash_engine": {"grid_sram_kib": 8.0, "sram_banks": 4,
                                                                             **hash_engine},
                                         "cache": {"kib": 2.0, "ways": 2, "banks": 4}})


@pytest.mark.parametrize("mapping", ["word_mod", "xor", "block_mod"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bits", [2, 5, 8, 32])
def test_hash_memory_pass_matches_the_python_reference(batch, bits, mapping):
    w = synthetic_workload(20, 16, samples_per_ray=6)
    cfg = _config(batch_groups=batch, bank_mapping=mapping)
    levels = np.full(16, bits)
    blocks = mapping != "word_mod"
    p = U.place_levels(w.grid, levels, 32, U.grid_words_capacity(cfg), cfg.cache.line_bytes, pow2_slots=blocks)
    tiles = U.build_tiles(w, U.ray_issue_order(w.width, w.height, cfg.ray_block), cfg.tile_samples)
    got = U.hash_memory_pass(w, p, cfg, tiles, U.CacheState.cold(cfg.cache.n_sets, cfg.cache.ways))
    shifts = (*U.bank_block_shifts(w.grid.n_feat, 32, cfg.cache.line_bytes), mapping == "xor") if blocks else None
    ref = hash_memory_reference(w.positions, tiles.sample_order, tiles.tile_starts, w.grid, p, 4, batch, 4,
                                LRUCache(cfg.cache.n_sets, cfg.cache.ways), shifts)
    np.testing.assert_array_equal(got.grid_cycles, ref[0])
    np.testing.assert_array_equal(got.cache_cycles, ref[1])
    np.testing.assert_array_equal(got.miss_lines, ref[2])
    assert got.counts == ref[3]
    assert got.counts["cache_hits"] > 0 and got.miss_lines.sum() > 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=400), st.sampled_from([1, 2, 4, 8]),
       st.sampled_from([1, 2, 4]))
def test_lru_kernel_matches_ordereddict(lines, n_sets, ways):
    from hero_lite.accel import _kernels as K

    tags = np.full(n_sets * ways, -1, np.int64)
    stamps = np.zeros(n_sets * ways, np.int64)
    clock = np.zeros(1, np.int64)
    ref = LRUCache(n_sets, ways)
    shift = K._log2_or_neg(n_sets)
    for a in lines:
        assert K._lru_access(a, n_sets, shift, ways, tags, stamps, clock) == ref.access(a)


def test_vertex_mapping_is_conflict_free():
    w = synthetic_workload(12, 12, samples_per_ray=4)
    cfg = _config(bank_mapping="vertex", sram_banks=8, batch_groups=1, grid_sram_kib=64.0)
    p = U.place_levels(w.grid, np.full(16, 8), 32, U.grid_words_capacity(cfg), cfg.cache.line_bytes)
    tiles = U.build_tiles(w, U.ray_issue_order(w.width, w.height, 8), 64)
    hw = U.hash_memory_pass(w, p, cfg, tiles, U.CacheState.cold(cfg.cache.n_sets, cfg.cache.ways))
    # one cycle per group on the on-chip levels: 8 corners in 8 banks
    assert hw.grid_cycles.sum() == hw.counts["grid_groups"] == w.n_samples * len(p.levels_on_chip)
    assert hw.counts["grid_conflict_cycles"] == 0


def test_perf_factor_bitfusion_law():
    # BitFusion: floor(8 / max(b, 2)) per operand
    assert U.perf_factor(8, 8) == 1 and U.perf_factor(4, 4) == 4 and U.perf_factor(2, 2) == 16
    assert U.perf_factor(4, 8) == 2 and U.perf_factor(3, 8) == 2 and U.perf_factor(5, 5) == 1
    assert U.perf_factor(1, 2) == 16 and U.perf_factor(16, 16) == 1


def test_mlp_layer_cycles_closed_form():
    mlp = MLPEngineConfig(rows=16, cols=16)
    # K = N = 64 on 16 x 16 at 8 bits: 4 * 4 folds of (256 + 2*16 + 16 - 2) = 302 cycles
    assert U.mlp_layer_cycles(256, 64, 64, 8, 8, mlp) == 16 * 302
    # 4 x 4 bits: R' = 64 -> 1 * 4 folds
    assert U.mlp_layer_cycles(256, 64, 64, 4, 4, mlp) == 4 * 302
    # fp32 on 8-bit PEs: 4 x 4 passes
    assert U.mlp_layer_cycles(256, 64, 64, 32, 32, mlp) == 16 * 16 * 302
    # 16-bit activations, 4-bit weights: 2 passes, perf factor 2 -> R' = 32
    assert U.mlp_layer_cycles(256, 64, 64, 16, 4, mlp) == 2 * (2 * 4) * 302
    # fixed PEs: no gain below pmax
    fixed = MLPEngineConfig(rows=16, cols=16, pe_mode="fixed")
    assert U.mlp_layer_cycles(256, 64, 64, 2, 2, fixed) == U.mlp_layer_cycles(256, 64, 64, 8, 8, fixed) == 16 * 302
    # bit-serial: cycles proportional to weight bits (pmin-bit steps)
    serial = MLPEngineConfig(rows=16, cols=16, pe_mode="bit_serial", pmin=1)
    assert U.mlp_layer_cycles(256, 64, 64, 8, 4, serial) * 2 == U.mlp_layer_cycles(256, 64, 64, 8, 8, serial)
    # two arrays split the samples; zero samples cost nothing; arrays of tiles
    two = MLPEngineConfig(rows=16, cols=16, arrays=2)
    assert U.mlp_layer_cycles(256, 64, 64, 8, 8, two) == 16 * (128 + 46)
    np.testing.assert_array_equal(U.mlp_layer_cycles(np.array([0, 256]), 64, 64, 8, 8, mlp), [0, 16 * 302])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 512), st.integers(1, 128), st.integers(1, 128), st.sampled_from([2, 3, 4, 5, 6, 8, 16, 32]),
       st.sampled_from([2, 3, 4, 5, 6, 8, 16, 32]), st.sampled_from(["bitfusion", "bit_serial", "fixed"]))
def test_fewer_mlp_bits_never_more_cycles(n, k, m, b_a, b_w, mode):
    mlp = MLPEngineConfig(rows=16, cols=8, pe_mode=mode)
    base = U.mlp_layer_cycles(n, k, m, b_a, b_w, mlp)
    assert U.mlp_layer_cycles(n, k, m, max(2, b_a // 2), b_w, mlp) <= base
    assert U.mlp_layer_cycles(n, k, m, b_a, max(2, b_w // 2), mlp) <= base
    # and never below the ideal of the array's MAC throughput at the best perf factor
    assert base >= n * k * m / (mlp.rows * mlp.cols * 16)


def test_mac_energy_by_precision():
    mlp = MLPEngineConfig()
    assert U.mac_energy_pj(8, 8, mlp) == pytest.approx(0.459)
    assert U.mac_energy_pj(4, 4, mlp) == pytest.approx(0.459 / 4)
    assert U.mac_energy_pj(2, 2, mlp) == pytest.approx(0.459 / 16)
    assert U.mac_energy_pj(32, 32, mlp) == pytest.approx(0.459 * 16)


def test_ray_issue_order_blocks():
    order = U.ray_issue_order(5, 3, 2)
    # blocks of 2x2 in raster order; rows of 5 pixels; edge blocks partial
    assert order.tolist() == [0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14]
    assert sorted(U.ray_issue_order(100, 100, 8).tolist()) == list(range(10000))


def test_build_tiles_counts():
    w = synthetic_workload(10, 10, samples_per_ray=5)
    order = U.ray_issue_order(10, 10, 4)
    t = U.build_tiles(w, order, 16)
    assert t.n_samples == w.n_samples and t.tile_starts[-1] == w.n_samples
    assert t.samples.sum() == w.n_samples and t.rays.sum() == 100
    assert t.march_steps.sum() == np.maximum(w.march_steps_per_ray, 1).sum()
    # sample order: the samples of the rays in issue order
    offsets = np.concatenate([[0], np.cumsum(w.samples_per_ray)])
    want = np.concatenate([np.arange(offsets[r], offsets[r + 1]) for r in order])
    np.testing.assert_array_equal(t.sample_order, want)
