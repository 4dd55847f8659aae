"""Degree-4 real spherical harmonics of view directions (16 outputs), tiny-cuda-nn's basis.

tcnn takes directions in [0, 1]^3 and maps them back with 2v - 1, so the basis is evaluated on the
unit direction itself. Constants: the standard real SH (tcnn
`encodings/spherical_harmonics.h`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

SH_WIDTH = 16


@njit(cache=True, parallel=True)
def _sh_kernel(dirs, out):
    for i in prange(dirs.shape[0]):
        x = dirs[i, 0]
        y = dirs[i, 1]
        z = dirs[i, 2]
        xx = x * x
        yy = y * y
        zz = z * z
        out[i, 0] = 0.28209479177387814
        out[i, 1] = -0.48860251190291987 * y
        out[i, 2] = 0.48860251190291987 * z
        out[i, 3] = -0.48860251190291987 * x
        out[i, 4] = 1.0925484305920792 * x * y
        out[i, 5] = -1.0925484305920792 * y * z
        out[i, 6] = 0.94617469575755997 * zz - 0.31539156525251999
        out[i, 7] = -1.0925484305920792 * x * z
        out[i, 8] = 0.54627421529603959 * (xx - yy)
        out[i, 9] = 0.59004358992664352 * y * (-3.0 * xx + yy)
        out[i, 10] = 2.8906114426405538 * x * y * z
        out[i, 11] = 0.45704579946446572 * y * (1.0 - 5.0 * zz)
        out[i, 12] = 0.3731763325901154 * z * (5.0 * zz - 3.0)
        out[i, 13] = 0.45704579946446572 * x * (1.0 - 5.0 * zz)
        out[i, 14] = 1.4453057213202769 * z * (xx - yy)
        out[i, 15] = 0.59004358992664352 * x * (-xx + 3.0 * yy)


def sh_encode(directions: np.ndarray) -> np.ndarray:
    """SH basis of unit directions.

    Parameters
    ----------
    directions : (n, 3) float32, unit vectors (world frame).

    Returns
    -------
    (n, 16) float32. Example: direction (0, 0, 1) gives out[0] = 0.2821, out[2] = 0.4886,
    out[6] = 0.6308, out[12] = 0.7464, every other entry 0.
    """
    directions = np.ascontiguousarray(directions, dtype=np.float32)
    if directions.ndim != 2 or directions.shape[1] != 3:
        raise ValueError(f"directions must have shape (n, 3), got {directions.shape}")
    out = np.empty((directions.shape[0], SH_WIDTH), dtype=np.float32)
    _sh_kernel(directions, out)
    return out
