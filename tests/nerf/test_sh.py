"""Degree-4 SH direction encoding against the standard real SH formula table (tcnn `encodings/spherical_harmonics.h`)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_lite.nerf.sh import SH_WIDTH, sh_encode


def sh_table(x, y, z):
    """The formula table, row by row (8-digit constants)."""
    return np.array([
        0.28209479,
        -0.48860251 * y,
        0.48860251 * z,
        -0.48860251 * x,
        1.09254843 * x * y,
        -1.09254843 * y * z,
        0.94617470 * z * z - 0.31539157,
        -1.09254843 * x * z,
        0.54627422 * (x * x - y * y),
        0.59004359 * y * (-3 * x * x + y * y),
        2.89061144 * x * y * z,
        0.45704580 * y * (1 - 5 * z * z),
        0.37317633 * z * (5 * z * z - 3),
        0.45704580 * x * (1 - 5 * z * z),
        1.44530572 * z * (x * x - y * y),
        0.59004359 * x * (-x * x + 3 * y * y),
    ])


@pytest.fixture
def directions():
    rng = np.random.default_rng(7)
    d = rng.normal(size=(64, 3))
    d = np.concatenate([d, np.eye(3), -np.eye(3), [[1, 1, 1], [1, -2, 0.5]]])
    return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)


def test_plus_z_hand_values():
    out = sh_encode(np.array([[0.0, 0.0, 1.0]], dtype=np.float32))[0]
    want = np.zeros(16)
    want[0] = 0.28209479  # 1 / (2 sqrt(pi))
    want[2] = 0.48860251  # sqrt(3 / (4 pi))
    want[6] = 0.94617470 - 0.31539157  # = 0.63078313
    want[12] = 0.37317633 * 2  # z (5 z^2 - 3) = 2 -> 0.74635266
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_plus_x_hand_values():
    out = sh_encode(np.array([[1.0, 0.0, 0.0]], dtype=np.float32))[0]
    want = np.zeros(16)
    want[0] = 0.28209479
    want[3] = -0.48860251
    want[6] = -0.31539157
    want[8] = 0.54627422  # x^2 - y^2 = 1
    want[13] = 0.45704580  # x (1 - 5 z^2) = 1
    want[15] = -0.59004359  # x (-x^2 + 3 y^2) = -1
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_matches_formula_table(directions):
    out = sh_encode(directions)
    assert out.shape == (directions.shape[0], SH_WIDTH) and out.dtype == np.float32
    want = np.stack([sh_table(*d.astype(np.float64)) for d in directions])
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=2e-7)


def test_rejects_bad_shape():
    with pytest.raises(ValueError, match="directions"):
        sh_encode(np.zeros((4, 2), dtype=np.float32))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3).filter(lambda v: sum(t * t for t in v) > 1e-2))
def test_band_energy_is_constant(v):
    # addition theorem: sum_m Y_lm(d)^2 = (2l + 1) / (4 pi) for every unit d;
    # bands l = 0..3 are outputs 0, 1-3, 4-8, 9-15: 0.0796, 0.2387, 0.3979, 0.5570
    d = np.asarray(v) / np.linalg.norm(v)
    out = sh_encode(d[None, :].astype(np.float32))[0].astype(np.float64)
    for band, (lo, hi) in enumerate([(0, 1), (1, 4), (4, 9), (9, 16)]):
        assert np.sum(out[lo:hi] ** 2) == pytest.approx((2 * band + 1) / (4 * math.pi), rel=1e-5)
