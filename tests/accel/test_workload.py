"""Workload, grid geometry, bit-width checks and model_bytes."""

import numpy as np
import pytest

from hero_lite.accel import default_geometry, model_bytes, synthetic_workload, uniform_bits
from hero_lite.accel.workload import MLPLayer, Workload, check_bits, packed_tensor_bytes, split_bits


def _tiny_workload(stored, activations):
    return Workload(width=1, height=1, samples_per_ray=np.array([1]), march_steps_per_ray=np.array([1]),
                    positions=np.full((1, 3), 0.5, np.float32), grid=default_geometry(n_levels=1),
                    level_points=("hash.l00",), mlp_layers=(MLPLayer("w.a", 2, 5, (activations[0],)),),
                    stored_points=stored, activation_points=activations)


def test_default_geometry_matches_ngp_lite():
    g = default_geometry()
    # levels 0-3 dense with 16, 21, 26, 32 vertices per axis; 456,920 entries (hashgrid.py docstring)
    assert g.resolutions[:4].tolist() == [16, 21, 26, 32]
    assert g.sizes[:4].tolist() == [4096, 9264, 17576, 32768]
    assert g.sizes[4:].tolist() == [32768] * 12
    assert g.hashed.tolist() == [False] * 4 + [True] * 12
    assert g.n_entries == 456920 and g.n_feat == 2 and g.scales.dtype == np.float32


def test_default_geometry_equals_the_models_layout():
    from hero_lite.nerf.config import HashGridConfig
    from hero_lite.nerf.hashgrid import HashGridLayout

    for kw in ({}, {"log2_table_size": 19, "max_res": 2048}, {"n_levels": 8, "base_res": 4, "max_res": 64}):
        layout = HashGridLayout.from_config(HashGridConfig(**kw))
        g = default_geometry(**kw)
        np.testing.assert_array_equal(g.scales, layout.scales)
        np.testing.assert_array_equal(g.resolutions, layout.resolutions)
        np.testing.assert_array_equal(g.sizes, layout.sizes)
        np.testing.assert_array_equal(g.hashed, layout.hashed)


def test_model_bytes_hand_example():
    # 1000 elements at 4 bits: 500 + 8 = 508; 10 weights at 32 bits: 40; act.x at 8 bits: 8; act.y at 32: 0
    w = _tiny_workload({"hash.l00": 1000, "w.a": 10}, ("act.x", "act.y"))
    bits = {"hash.l00": 4, "w.a": 32, "act.x": 8, "act.y": 32}
    assert model_bytes(w, bits) == 556
    # odd packing: 3 elements at 3 bits = 9 bits -> 2 bytes + 8
    assert packed_tensor_bytes(3, 3) == 10


@pytest.mark.parametrize("point_set", ["hero", "caq"])
def test_model_bytes_agrees_with_quant_points(point_set):
    from hero_lite.nerf.config import ModelConfig
    from hero_lite.quant import points as qp

    pts = qp.quant_points(ModelConfig(), point_set)
    w = synthetic_workload(8, 8)
    stored = {p.name: p.n_elements for p in pts if p.kind != "activation"}
    acts = tuple(p.name for p in pts if p.kind == "activation")
    levels = ("hash.all",) * 16 if point_set == "caq" else w.level_points
    w = Workload(width=w.width, height=w.height, samples_per_ray=w.samples_per_ray,
                 march_steps_per_ray=w.march_steps_per_ray, positions=w.positions, grid=w.grid, level_points=levels,
                 mlp_layers=w.mlp_layers, stored_points=stored, activation_points=acts)
    rng = np.random.default_rng(0)
    for _ in range(5):
        bits = {p.name: int(rng.choice([2, 3, 4, 5, 8, 11, 16, 32])) for p in pts}
        assert model_bytes(w, bits) == qp.model_bytes(pts, bits)


def test_check_bits_names_missing_points_and_bad_values():
    w = synthetic_workload(4, 4)
    bits = uniform_bits(w, 8)
    del bits["w.color1"], bits["hash.l07"]
    with pytest.raises(ValueError, match="hash.l07, w.color1|w.color1, hash.l07"):
        check_bits(w, bits)
    for bad in (1, 17, 0, 24, True, 8.0):
        b = uniform_bits(w, 8)
        b["act.sh"] = bad
        with pytest.raises(ValueError, match="act.sh"):
            check_bits(w, b)


def test_synthetic_workload_shapes_and_ranges():
    w = synthetic_workload()
    w.validate()
    assert w.n_rays == 10000 and w.samples_per_ray.shape == (10000,)
    assert 4.0 < w.samples_per_ray.mean() < 7.0  # ~5.5 samples per ray, like a traced frame
    assert w.positions.dtype == np.float32 and w.positions.min() >= 0 and w.positions.max() <= 1
    assert np.all(w.march_steps_per_ray >= w.samples_per_ray)
    assert w.macs_per_sample == 9408
    # deterministic for a seed, different for another
    np.testing.assert_array_equal(w.positions, synthetic_workload().positions)
    assert not np.array_equal(w.positions, synthetic_workload(seed=1).positions)


def test_split_bits_and_point_names():
    w = synthetic_workload(4, 4)
    b = split_bits(w, 4, 8)
    assert all(b[p] == 4 for p in w.level_points) and b["w.color0"] == 8 and b["act.sh"] == 8
    assert len(w.point_names) == 16 + 5 + 7


def test_validate_rejects_inconsistent_arrays():
    w = synthetic_workload(4, 4)
    bad = Workload(**{**w.__dict__, "samples_per_ray": w.samples_per_ray[:-1]})
    with pytest.raises(ValueError, match="samples_per_ray"):
        bad.validate()
    bad = Workload(**{**w.__dict__, "level_points": w.level_points[:3]})
    with pytest.raises(ValueError, match="level_points"):
        bad.validate()
    bad = Workload(**{**w.__dict__, "positions": w.positions[:-1]})
    with pytest.raises(ValueError, match="positions"):
        bad.validate()
