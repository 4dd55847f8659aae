"""Uniform quantizers: parameters, fake quantization and the clipped straight-through gradient.

Schemes (Jacob et al. CVPR 2018; Krishnamoorthi arXiv 1806.08342):
- `symmetric` (weights): z = 0, s = max|x| / (2^(b-1) - 1), q in [-(2^(b-1) - 1), 2^(b-1) - 1]
  (the "restricted" range, as HAQ's weight quantizer);
- `asymmetric` (hash entries, signed activations): s = (x_max - x_min) / (2^b - 1),
  z = clamp(round(-x_min / s), 0, 2^b - 1), q in [0, 2^b - 1];
- `unsigned` (ReLU outputs): z = 0, s = x_max / (2^b - 1), q in [0, 2^b - 1].
In every scheme q = clamp(round(x / s) + z, qmin, qmax) and x_hat = s (q - z), with round half up
(floor(v + 0.5)), computed in float32 so a dequantized export equals the fake-quantized tensor bit
for bit. 32 bits means "not quantized": the identity.

Backward: the clipped straight-through estimator (Bengio et al. 2013; CAQ code
`quantization/utils.py`): dx_hat/dx = 1 where s (qmin - z) <= x <= s (qmax - z), else 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

SCHEMES = ("symmetric", "asymmetric", "unsigned")
FLOAT_BITS = 32
_MIN_SCALE = np.float32(1e-12)  # a constant tensor still gets a valid (tiny) step


@dataclass(frozen=True)
class QuantParams:
    """Parameters of one quantizer.

    Attributes
    ----------
    bits : int, 1..16, or 32 (identity).
    scheme : one of SCHEMES.
    scale : float32 array, shape () per tensor or (channels,) per output channel (last axis).
    zero_point : int64 array, same shape as scale.
    """

    bits: int
    scheme: str
    scale: np.ndarray
    zero_point: np.ndarray

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.scheme == "symmetric" else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.scheme == "symmetric" else 2**self.bits - 1

    @property
    def is_identity(self) -> bool:
        return self.bits == FLOAT_BITS

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest representable values s (qmin - z), s (qmax - z), float32."""
        lo = (self.scale * np.float32(self.qmin - self.zero_point)).astype(np.float32)
        hi = (self.scale * np.float32(self.qmax - self.zero_point)).astype(np.float32)
        return lo, hi


def _check_bits(bits: int) -> None:
    if not (isinstance(bits, (int, np.integer)) and (1 <= bits <= 16 or bits == FLOAT_BITS)):
        raise ValueError(f"bits = {bits!r}; valid: integer 1..16, or 32 for unquantized")


def make_params(scheme: str, bits: int, x_min, x_max) -> QuantParams:
    """Quantizer parameters covering [x_min, x_max] (scalars or per-channel arrays).

    Example: asymmetric, 2 bits, range [-1, 2]: s = 3 / 3 = 1, z = round(1 / 1) = 1, so the codes
    0..3 represent -1, 0, 1, 2.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme = {scheme!r}; valid: {', '.join(SCHEMES)}")
    _check_bits(bits)
    x_min = np.asarray(x_min, dtype=np.float32)
    x_max = np.asarray(x_max, dtype=np.float32)
    if bits == FLOAT_BITS:
        return QuantParams(bits, scheme, np.ones_like(x_min), np.zeros(x_min.shape, np.int64))
    if scheme == "symmetric":
        if bits < 2:
            raise ValueError("symmetric quantizers need at least 2 bits")
        absmax = np.maximum(np.abs(x_min), np.abs(x_max))
        scale = absmax / np.float32(2 ** (bits - 1) - 1)
        zero = np.zeros(scale.shape, np.int64)
    elif scheme == "unsigned":
        scale = np.maximum(x_max, 0) / np.float32(2**bits - 1)
        zero = np.zeros(scale.shape, np.int64)
    else:
        lo = np.minimum(x_min, 0)  # the range always contains 0, so 0 is exact (Jacob 2018)
        hi = np.maximum(x_max, 0)
        scale = (hi - lo) / np.float32(2**bits - 1)
        scale = np.maximum(scale, _MIN_SCALE)
        zero = np.clip(np.floor(-lo / scale + np.float32(0.5)), 0, 2**bits - 1).astype(np.int64)
    scale = np.maximum(scale, _MIN_SCALE).astype(np.float32)
    return QuantParams(bits, scheme, scale, zero)


def quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integer codes q = clamp(floor(x / s + 0.5) + z, qmin, qmax), int64, same shape as x."""
    x = np.asarray(x, dtype=np.float32)
    v = np.floor(x / params.scale + np.float32(0.5)).astype(np.int64) + params.zero_point
    return np.clip(v, params.qmin, params.qmax)


def dequantize(codes: np.ndarray, params: QuantParams) -> np.ndarray:
    """x_hat = s (q - z), float32."""
    return (params.scale * (np.asarray(codes) - params.zero_point).astype(np.float32)).astype(np.float32)


def fake_quant(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """Quantize then dequantize (float32); the identity at 32 bits."""
    x = np.asarray(x, dtype=np.float32)
    if params.is_identity:
        return x.copy()
    return dequantize(quantize(x, params), params)


def ste_grad(grad: np.ndarray, x: np.ndarray, params: QuantParams) -> np.ndarray:
    """Clipped straight-through gradient: grad where x is inside the quantizer's range, else 0."""
    if params.is_identity:
        return np.array(grad, dtype=np.float32)
    lo, hi = params.range()
    inside = (x >= lo) & (x <= hi)
    return np.where(inside, grad, np.float32(0.0)).astype(np.float32)


# ----------------------------------------------------------------------------- fast kernels


@njit(cache=True, parallel=True)
def fake_quant_rows_kernel(x, out, scale, zero_point, qmin, qmax):
    """out = fake_quant(x) for a C-contiguous 2-D float32 x with one per-tensor (scale, z)."""
    flat_x = x.reshape(-1)
    flat_o = out.reshape(-1)
    for i in prange(flat_x.shape[0]):
        q = np.floor(flat_x[i] / scale + np.float32(0.5)) + zero_point
        q = min(max(q, qmin), qmax)
        flat_o[i] = scale * np.float32(q - zero_point)


@njit(cache=True, parallel=True)
def ste_mask_kernel(grad, x, lo, hi):
    """grad <- grad * (lo <= x <= hi), in place, C-contiguous float32 arrays of one shape."""
    g = grad.reshape(-1)
    v = x.reshape(-1)
    for i in prange(g.shape[0]):
        if v[i] < lo or v[i] > hi:
            g[i] = 0.0
