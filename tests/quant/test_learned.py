"""The hand-written bit gradient of learned bit-widths (quant/learned.py) against central differences.

The forward pass rounds, so the checked function is the straight-through surrogate the gradient is
derived from (LSQ): x_hat(B) = s(B) round(x / s0) + x - x s(B) / s0 around the current step s0,
with s(B) continuous in B (s = R / (2^B - 1), or max|x| / (2^(B-1) - 1) for symmetric quantizers).
"""

import numpy as np
import pytest

from hero_lite.quant.learned import bit_gradient, hard_bits
from hero_lite.quant.quantizers import make_params


def _step(scheme, bits, lo, hi):
    if scheme == "symmetric":
        return max(abs(lo), abs(hi)) / (2.0 ** (bits - 1) - 1)
    if scheme == "unsigned":
        return hi / (2.0**bits - 1)
    return (max(hi, 0) - min(lo, 0)) / (2.0**bits - 1)


@pytest.mark.parametrize("scheme, lo, hi", [("unsigned", 0.0, 2.0), ("asymmetric", -1.0, 3.0), ("symmetric", -1.5, 1.5)])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_bit_gradient_matches_central_differences(scheme, lo, hi, bits):
    rng = np.random.default_rng(bits)
    params = make_params(scheme, bits, lo, hi)
    s0 = float(params.scale)
    # inputs strictly inside the range and away from rounding ties
    x = rng.uniform(lo if scheme != "unsigned" else 0.0, hi, 2000) * 0.98
    x = x[np.abs(x / s0 - np.floor(x / s0) - 0.5) > 1e-3].astype(np.float32)
    grad = rng.normal(size=x.shape).astype(np.float32)
    x64, grad64 = x.astype(np.float64), grad.astype(np.float64)
    codes = np.floor(x64 / s0 + 0.5)

    def surrogate(b):
        s = _step(scheme, b, lo, hi) * s0 / _step(scheme, bits, lo, hi)  # equals the float32 s0 at b = bits
        return float(np.sum(grad64 * (s * codes + x64 - x64 * s / s0)))

    eps = 1e-4
    numeric = (surrogate(bits + eps) - surrogate(bits - eps)) / (2 * eps)
    scale_of_terms = float(np.sum(np.abs(grad64 * (x64 - s0 * codes))))  # the kernel works in float32
    assert bit_gradient(grad, x, params) == pytest.approx(numeric, abs=1e-5 * scale_of_terms)


def test_clipped_elements_get_no_bit_gradient():
    params = make_params("unsigned", 4, 0.0, 1.0)
    x = np.array([5.0, 7.0], dtype=np.float32)  # far above the range: x_hat = s qmax, fixed range
    assert bit_gradient(np.ones(2, np.float32), x, params) == 0.0


def test_hard_bits():
    assert [hard_bits(b) for b in (1.2, 2.4, 2.6, 7.5, 16.4, 16.6)] == [2, 2, 3, 8, 16, 32]
