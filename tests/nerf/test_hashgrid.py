"""Hash grid: level layout, encode vs the NumPy reference, corner rows, the uint32 hash, backward."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_lite.nerf.config import HashGridConfig
from hero_lite.nerf.hashgrid import (
    PRIME_Y,
    PRIME_Z,
    HashGridLayout,
    corner_indices,
    encode,
    encode_backward,
    encode_reference,
    init_table,
)

# (n_levels, n_feat, log2 T, N_min, N_max): default-like, F = 1, F = 4, a tiny T (all hashed).
CONFIGS = [
    HashGridConfig(n_levels=6, n_feat=2, log2_table_size=12, base_res=16, max_res=256),
    HashGridConfig(n_levels=4, n_feat=1, log2_table_size=10, base_res=4, max_res=32),
    HashGridConfig(n_levels=3, n_feat=4, log2_table_size=9, base_res=5, max_res=40),
    HashGridConfig(n_levels=3, n_feat=2, log2_table_size=4, base_res=8, max_res=64),
]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _points(rng, layout, n_random=200):
    """Random points, plus 0, 1, 0.5 and points on cell boundaries of every level."""
    pts = [rng.random((n_random, 3)).astype(np.float32)]
    pts.append(np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0.5], [1, 0, 1], [0.5, 0.5, 0.5]], dtype=np.float32))
    for scale in layout.scales:
        # pos = x * scale + 0.5 lands on an integer (a cell boundary) for x = (k - 0.5) / scale
        k = rng.integers(1, max(2, int(scale)), size=(8, 3))
        pts.append(np.clip((k - 0.5) / np.float64(scale), 0.0, 1.0).astype(np.float32))
    return np.concatenate(pts)


def _trilinear_weights(positions, layout):
    """(n, n_levels, 8) float64 trilinear weights, computed like the kernel (pos in float32)."""
    n = positions.shape[0]
    out = np.empty((n, layout.n_levels, 8))
    for level, scale in enumerate(layout.scales):
        pos = positions * scale + np.float32(0.5)
        frac = (pos - np.floor(pos)).astype(np.float64)
        for corner in range(8):
            bits = np.array([corner & 1, (corner >> 1) & 1, (corner >> 2) & 1])
            out[:, level, corner] = np.prod(np.where(bits == 1, frac, 1.0 - frac), axis=1)
    return out


def test_default_layout_matches_ngp_md():
    layout = HashGridLayout.from_config(HashGridConfig())
    # b = (512 / 16)^(1/15) = 2^(1/3); scale_l = 16 * 2^(l/3) - 1 = 15, 19.159, 24.398, 31, 39.317 ...
    # res_l = ceil(scale_l) + 1 = 16, 21, 26, 32, 41 ...
    np.testing.assert_allclose(layout.scales[:5], [15.0, 19.158737, 24.398417, 31.0, 39.317474], rtol=1e-6)
    assert layout.resolutions[:4].tolist() == [16, 21, 26, 32]
    # dense sizes: 16^3 = 4096, 21^3 = 9261 -> 9264 (next multiple of 8), 26^3 = 17576, 32^3 = 32768 = T
    assert layout.sizes[:4].tolist() == [4096, 9264, 17576, 32768]
    assert layout.hashed.tolist() == [False] * 4 + [True] * 12
    # levels 4..15 hold T = 2^15 = 32768 entries each
    assert layout.sizes[4:].tolist() == [32768] * 12
    # 4096 + 9264 + 17576 + 32768 + 12 * 32768 = 456,920 entries
    assert layout.n_entries == 456_920
    assert layout.offsets[0] == 0 and layout.offsets[-1] == 456_920
    np.testing.assert_array_equal(np.diff(layout.offsets), layout.sizes)
    assert layout.n_levels == 16 and layout.n_feat == 2


def test_init_table_range_and_dtype(rng):
    layout = HashGridLayout.from_config(CONFIGS[1])
    table = init_table(layout, rng)
    assert table.dtype == np.float32 and table.shape == (layout.n_entries, 1)
    # U(-1e-4, 1e-4) (NGP paper section 4)
    assert np.abs(table).max() <= 1e-4 and table.std() > 3e-5


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_levels}F{c.n_feat}T{c.log2_table_size}")
def test_encode_matches_reference(config, rng):
    layout = HashGridLayout.from_config(config)
    table = rng.uniform(-1, 1, size=(layout.n_entries, layout.n_feat)).astype(np.float32)
    positions = _points(rng, layout)
    got = encode(positions, table, layout)
    want = encode_reference(positions, table, layout)
    assert got.shape == (positions.shape[0], config.n_levels * config.n_feat) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_encode_uses_out_buffer(rng):
    layout = HashGridLayout.from_config(CONFIGS[0])
    table = rng.uniform(-1, 1, size=(layout.n_entries, 2)).astype(np.float32)
    positions = rng.random((10, 3)).astype(np.float32)
    out = np.full((10, layout.n_levels * 2), np.nan, dtype=np.float32)
    result = encode(positions, table, layout, out=out)
    assert result is out
    np.testing.assert_allclose(out, encode_reference(positions, table, layout), rtol=1e-5, atol=1e-6)


def test_encode_rejects_bad_shapes(rng):
    layout = HashGridLayout.from_config(CONFIGS[1])
    table = np.zeros((layout.n_entries, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="positions"):
        encode(np.zeros((4, 2), dtype=np.float32), table, layout)
    with pytest.raises(ValueError, match="table"):
        encode(np.zeros((4, 3), dtype=np.float32), table.astype(np.float64), layout)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_levels}F{c.n_feat}T{c.log2_table_size}")
def test_corner_indices_are_the_rows_of_the_reference(config, rng):
    layout = HashGridLayout.from_config(config)
    positions = _points(rng, layout, n_random=50)
    idx = corner_indices(positions, layout)
    assert idx.shape == (positions.shape[0], layout.n_levels, 8) and idx.dtype == np.int64
    assert np.all(idx >= 0) and np.all(idx < layout.sizes[None, :, None])
    # Rebuild the encoding from these rows and the trilinear weights: it must equal the reference.
    weights = _trilinear_weights(positions, layout)
    table = rng.uniform(-1, 1, size=(layout.n_entries, layout.n_feat))
    rows = idx + layout.offsets[:-1][None, :, None]
    rebuilt = np.einsum("nlc,nlcf->nlf", weights, table[rows]).reshape(positions.shape[0], -1)
    want = encode_reference(positions, table.astype(np.float32), layout)
    np.testing.assert_allclose(rebuilt, want, rtol=1e-5, atol=1e-6)
    # Every corner row is some reference row: a one-hot table at that row gives weight w_c there.
    i, level, corner = 3, layout.n_levels - 1, 5
    one_hot = np.zeros((layout.n_entries, layout.n_feat), dtype=np.float32)
    one_hot[rows[i, level, corner]] = 1.0
    feat = encode_reference(positions[i : i + 1], one_hot, layout)[0, level * layout.n_feat]
    # the 8 corner rows of a hashed level may collide, so feat is the summed weight of that row
    same = rows[i, level] == rows[i, level, corner]
    assert feat == pytest.approx(weights[i, level, same].sum(), rel=1e-5)


def _hash_row(cx, cy, cz, table_size):
    """tcnn coherent prime hash with uint32 wraparound: (x ^ y*2654435761 ^ z*805459861) mod T."""
    return ((cx * 1) ^ ((cy * 2654435761) % 2**32) ^ ((cz * 805459861) % 2**32)) % table_size


def test_hash_formula_on_hand_picked_corners():
    config = HashGridConfig(n_levels=2, n_feat=2, log2_table_size=12, base_res=16, max_res=512)
    layout = HashGridLayout.from_config(config)
    assert layout.hashed.tolist() == [False, True]
    scale = np.float64(layout.scales[1])  # b = 32, scale = 16 * 32 - 1 = 511
    assert scale == 511.0 and layout.resolutions[1] == 512
    # cells chosen so that y * 2654435761 and z * 805459861 overflow 32 bits (uint32 wraparound)
    for cell in [(1, 1, 1), (7, 300, 11), (509, 2, 508), (123, 456, 321)]:
        # put the point at frac 0.25 inside the cell: pos = x * scale + 0.5 = cell + 0.25
        x = ((np.array(cell) + 0.25 - 0.5) / scale).astype(np.float32)
        idx = corner_indices(x[None, :], layout)[0, 1]
        for corner in range(8):
            c = [cell[d] + ((corner >> d) & 1) for d in range(3)]
            assert idx[corner] == _hash_row(*c, 4096), (cell, corner)
    # hand-computed: corner (1, 1, 1): 1 ^ 2654435761 ^ 805459861 = 2922720805 -> mod 4096 = 3621
    # (2654435761 = 0x9E3779B1, 805459861 = 0x30025795, xor = 0xAE352E24, ^ 1 = 0xAE352E25)
    assert _hash_row(1, 1, 1, 4096) == 0xAE352E25 % 4096 == 3621
    x = ((np.array([1, 1, 1]) + 0.25 - 0.5) / scale).astype(np.float32)
    assert corner_indices(x[None, :], layout)[0, 1, 0] == 3621
    assert PRIME_Y == 2654435761 and PRIME_Z == 805459861


def test_dense_index_is_x_plus_y_res_plus_z_res2():
    config = HashGridConfig(n_levels=1, n_feat=2, log2_table_size=12, base_res=8, max_res=8)
    layout = HashGridLayout.from_config(config)
    # scale = 7, res = 8, 512 entries, dense
    assert (layout.resolutions[0], layout.sizes[0], bool(layout.hashed[0])) == (8, 512, False)
    x = ((np.array([2, 3, 5]) + 0.25 - 0.5) / 7.0).astype(np.float32)
    idx = corner_indices(x[None, :], layout)[0, 0]
    # corner 0 = (2, 3, 5) -> 2 + 3 * 8 + 5 * 64 = 346; corner 7 = (3, 4, 6) -> 3 + 32 + 384 = 419
    assert idx[0] == 346 and idx[7] == 419
    # corner 1 adds 1 (x), corner 2 adds res (y), corner 4 adds res^2 (z)
    assert (idx[1], idx[2], idx[4]) == (347, 354, 410)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_levels}F{c.n_feat}T{c.log2_table_size}")
def test_encode_backward_is_the_adjoint_scatter(config, rng):
    layout = HashGridLayout.from_config(config)
    positions = _points(rng, layout, n_random=60)
    n = positions.shape[0]
    g = rng.normal(size=(n, layout.n_levels * layout.n_feat)).astype(np.float32)
    grad = np.zeros((layout.n_entries, layout.n_feat), dtype=np.float32)
    encode_backward(positions, g, layout, grad)

    # Dense scatter from corner rows and trilinear weights: dL/dtable[row] += w_c * g
    rows = corner_indices(positions, layout) + layout.offsets[:-1][None, :, None]
    weights = _trilinear_weights(positions, layout)
    want = np.zeros((layout.n_entries, layout.n_feat))
    g3 = g.reshape(n, layout.n_levels, layout.n_feat).astype(np.float64)
    for corner in range(8):
        np.add.at(want, rows[:, :, corner].ravel(), (weights[:, :, corner, None] * g3).reshape(-1, layout.n_feat))
    scale = np.abs(want).max()
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-5 * scale)

    # encode is linear in the table, so L(P) = sum(g * encode(P)) = sum(grad * P) for any table P
    probe = rng.uniform(-1, 1, size=grad.shape).astype(np.float32)
    lhs = float(np.sum(g.astype(np.float64) * encode_reference(positions, probe, layout)))
    rhs = float(np.sum(grad.astype(np.float64) * probe))
    assert rhs == pytest.approx(lhs, rel=1e-4, abs=1e-4 * float(np.abs(g).sum()) / n)

    # rows no sample touches stay exactly zero
    untouched = np.ones(layout.n_entries, dtype=bool)
    untouched[rows.ravel()] = False
    assert np.all(grad[untouched] == 0.0)


def test_encode_backward_leaves_untouched_rows_exactly_zero(rng):
    layout = HashGridLayout.from_config(CONFIGS[0])
    positions = rng.random((3, 3)).astype(np.float32)
    g = rng.normal(size=(3, layout.n_levels * 2)).astype(np.float32)
    grad = np.zeros((layout.n_entries, 2), dtype=np.float32)
    encode_backward(positions, g, layout, grad)
    touched = np.zeros(layout.n_entries, dtype=bool)
    touched[(corner_indices(positions, layout) + layout.offsets[:-1][None, :, None]).ravel()] = True
    # 3 samples x 6 levels x 8 corners touch at most 144 of the table's rows
    assert touched.sum() <= 144
    assert np.all(grad[~touched] == 0.0)
    assert np.count_nonzero(np.any(grad != 0, axis=1)) == touched.sum()


def test_encode_backward_accumulates(rng):
    layout = HashGridLayout.from_config(CONFIGS[0])
    positions = rng.random((300, 3)).astype(np.float32)
    g = rng.normal(size=(300, layout.n_levels * 2)).astype(np.float32)
    once = np.zeros((layout.n_entries, 2), dtype=np.float32)
    encode_backward(positions, g, layout, once)
    twice = np.zeros_like(once)
    encode_backward(positions, g, layout, twice)
    encode_backward(positions, g, layout, twice)
    # x + x = 2x exactly in floating point (per-level order is fixed, so both passes add the same values)
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-6, atol=1e-7)
    assert np.count_nonzero(once) > 0


def test_encode_backward_rejects_bad_shapes(rng):
    layout = HashGridLayout.from_config(CONFIGS[1])
    positions = rng.random((5, 3)).astype(np.float32)
    grad = np.zeros((layout.n_entries, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="grad_features"):
        encode_backward(positions, np.zeros((5, 3), dtype=np.float32), layout, grad)
    with pytest.raises(ValueError, match="grad_table"):
        encode_backward(positions, np.zeros((5, 4), dtype=np.float32), layout, grad.astype(np.float64))


@settings(max_examples=40, deadline=None)
@given(
    xyz=st.lists(st.floats(0.0, 1.0, width=32), min_size=3, max_size=3),
    value=st.floats(-4.0, 4.0, width=32),
    config_index=st.integers(0, len(CONFIGS) - 1),
)
def test_constant_table_gives_that_constant(xyz, value, config_index):
    # trilinear weights are a partition of unity: sum_c w_c = 1, so a constant table c encodes to c
    layout = HashGridLayout.from_config(CONFIGS[config_index])
    table = np.full((layout.n_entries, layout.n_feat), value, dtype=np.float32)
    out = encode(np.array([xyz], dtype=np.float32), table, layout)
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 10_000, 20_000, 70_000])
def test_encode_blocks_are_even_shares_and_do_not_change_features(n, rng):
    import numba

    from hero_lite.nerf.hashgrid import _BLOCK, _balanced_block

    block = _balanced_block(n)
    blocks = -(-n // block)
    assert block <= _BLOCK and blocks % numba.get_num_threads() in (0, blocks)
    layout = HashGridLayout.from_config(CONFIGS[0])
    table = init_table(layout, rng)
    points = rng.random((n, 3)).astype(np.float32)
    whole = encode(points, table, layout)
    # every sample is computed alone: the features of a part equal those of the whole batch
    np.testing.assert_array_equal(encode(points[n // 3:], table, layout), whole[n // 3:])
