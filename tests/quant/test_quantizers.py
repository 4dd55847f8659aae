"""Quantizers: hypothesis laws, hand examples, the fast kernels against the NumPy functions, STE."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hero_lite.quant.quantizers import (
    dequantize,
    fake_quant,
    fake_quant_rows_kernel,
    make_params,
    quantize,
    ste_grad,
    ste_mask_kernel,
)

finite = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False, width=32)
bits_st = st.integers(2, 16)
schemes = st.sampled_from(["symmetric", "asymmetric", "unsigned"])


def _params_for(x, scheme, bits):
    return make_params(scheme, bits, float(x.min()), float(x.max()))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 50), elements=finite), schemes, bits_st)
def test_error_at_most_half_a_step_inside_range(x, scheme, bits):
    p = _params_for(x, scheme, bits)
    lo, hi = p.range()
    inside = (x >= lo) & (x <= hi)
    err = np.abs(fake_quant(x, p) - x)
    # half a step, plus float32 rounding of s * (q - z)
    assert np.all(err[inside] <= 0.5 * p.scale * (1 + 1e-5) + 1e-6 * np.abs(x[inside]))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 50), elements=finite), schemes, bits_st)
def test_idempotent(x, scheme, bits):
    p = _params_for(x, scheme, bits)
    once = fake_quant(x, p)
    np.testing.assert_array_equal(fake_quant(once, p), once)


@given(arrays(np.float32, st.integers(1, 50), elements=finite), schemes)
def test_32_bits_is_identity(x, scheme):
    p = make_params(scheme, 32, float(x.min()), float(x.max()))
    np.testing.assert_array_equal(fake_quant(x, p), x)
    np.testing.assert_array_equal(ste_grad(np.ones_like(x), x, p), np.ones_like(x))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(2, 50), elements=finite), schemes, bits_st)
def test_monotone(x, scheme, bits):
    p = _params_for(x, scheme, bits)
    xs = np.sort(x)
    q = fake_quant(xs, p)
    assert np.all(np.diff(q) >= 0)


def test_asymmetric_hand_example():
    # range [-1, 2] at 2 bits: s = 3 / 3 = 1, z = 1; codes 0..3 are -1, 0, 1, 2
    p = make_params("asymmetric", 2, -1.0, 2.0)
    assert float(p.scale) == 1.0 and int(p.zero_point) == 1
    x = np.array([-1.4, -0.6, 0.2, 0.5, 1.49, 5.0], np.float32)
    np.testing.assert_array_equal(quantize(x, p), [0, 0, 1, 2, 2, 3])  # 0.5 rounds half up
    np.testing.assert_array_equal(fake_quant(x, p), [-1, -1, 0, 1, 1, 2])


def test_symmetric_restricted_range():
    # 3 bits symmetric: q in [-3, 3], s = max|x| / 3
    p = make_params("symmetric", 3, -0.3, 0.6)
    assert (p.qmin, p.qmax) == (-3, 3)
    assert float(p.scale) == pytest.approx(0.2)
    np.testing.assert_allclose(fake_quant(np.array([-0.7, 0.05, 0.11, 0.6], np.float32), p), [-0.6, 0.0, 0.2, 0.6], rtol=1e-6)


def test_unsigned_clips_negative_to_zero():
    p = make_params("unsigned", 4, 0.0, 1.5)  # s = 0.1
    np.testing.assert_allclose(fake_quant(np.array([-1.0, 0.04, 0.06, 2.0], np.float32), p), [0.0, 0.0, 0.1, 1.5], rtol=1e-6)


def test_per_channel_scales():
    w = np.array([[1.0, 0.1], [-0.5, 0.05]], np.float32)
    p = make_params("symmetric", 8, w.min(axis=0), w.max(axis=0))
    assert p.scale.shape == (2,)
    np.testing.assert_allclose(p.scale, [1.0 / 127, 0.1 / 127], rtol=1e-6)
    # each column keeps its own relative precision
    assert np.max(np.abs(fake_quant(w, p) - w) / np.abs(w)) < 0.01


def test_constant_tensor_is_valid():
    p = make_params("asymmetric", 4, 0.25, 0.25)
    assert np.isfinite(p.scale) and p.scale > 0
    out = fake_quant(np.full(3, 0.25, np.float32), p)
    assert np.all(np.isfinite(out))


def test_dequantize_of_codes_equals_fake_quant_bitwise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000).astype(np.float32)
    for scheme in ("symmetric", "asymmetric", "unsigned"):
        p = _params_for(x, scheme, 5)
        np.testing.assert_array_equal(dequantize(quantize(x, p), p), fake_quant(x, p))


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric", "unsigned"])
@pytest.mark.parametrize("bits", [2, 3, 8, 16])
def test_kernel_matches_numpy(scheme, bits):
    rng = np.random.default_rng(bits)
    x = (rng.normal(size=(300, 7)) * 3).astype(np.float32)
    p = make_params(scheme, bits, float(np.percentile(x, 5)), float(np.percentile(x, 95)))
    out = np.empty_like(x)
    fake_quant_rows_kernel(x, out, np.float32(p.scale), np.float32(p.zero_point), np.float32(p.qmin), np.float32(p.qmax))
    np.testing.assert_array_equal(out, fake_quant(x, p))


def test_ste_gradient_is_clipped_identity():
    p = make_params("asymmetric", 4, -1.0, 1.0)
    lo, hi = p.range()
    x = np.array([lo - 0.1, lo, 0.0, hi, hi + 0.1], np.float32)
    g = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(ste_grad(g, x, p), [0, 2, 3, 4, 0])
    g2 = g.copy().reshape(1, -1)
    ste_mask_kernel(g2, x.reshape(1, -1), np.float32(lo), np.float32(hi))
    np.testing.assert_array_equal(g2[0], [0, 2, 3, 4, 0])


def test_ste_gradient_matches_finite_difference_of_smoothed_quantizer():
    # Inside the range the STE is the derivative of the identity the quantizer approximates:
    # the finite difference of fake_quant over one full step (s) equals 1 on average.
    p = make_params("asymmetric", 8, -2.0, 2.0)
    s = float(p.scale)
    x = np.linspace(-1.5, 1.5, 101).astype(np.float32)
    fd = (fake_quant(x + s, p) - fake_quant(x, p)) / s
    np.testing.assert_allclose(fd, 1.0, atol=1e-3)
    np.testing.assert_array_equal(ste_grad(np.ones_like(x), x, p), 1.0)
    # outside the range the quantizer is flat, and so is the STE
    x_out = np.array([3.0, 4.0], np.float32)
    assert np.all(fake_quant(x_out + s, p) == fake_quant(x_out, p))
    assert np.all(ste_grad(np.ones_like(x_out), x_out, p) == 0)


def test_bad_bits_and_scheme():
    with pytest.raises(ValueError, match="bits"):
        make_params("asymmetric", 17, 0, 1)
    with pytest.raises(ValueError, match="bits"):
        make_params("asymmetric", 0, 0, 1)
    with pytest.raises(ValueError, match="scheme"):
        make_params("fancy", 8, 0, 1)
