"""Dense layers as Numba-parallel blocks of single-threaded BLAS calls.

Why: NumPy's multi-threaded OpenBLAS and Numba's thread pool both spin-wait, and alternating
between them on 2 cores cost 1.6x per training step (measured: 250 ms vs 155 ms). Here every
matmul runs inside Numba's pool, one row block per task, each block a single-threaded BLAS call,
so one thread pool does all the work. `single_threaded_blas()` pins OpenBLAS to one thread.

Weight gradients are summed per block into `partial[block]` and reduced in block order; the
blocks depend on the row count only, so no result depends on the thread count (deterministic).
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from numba import njit, prange

ROW_BLOCK = 4096  # rows per parallel task, at most
# The block count is a multiple of this, so 1, 2 or 4 threads get equal shares (7 blocks on 2
# threads would leave one idle for a seventh of the time), with blocks of at least MIN_BLOCK rows.
BLOCK_GROUP = 4
MIN_BLOCK = 256


@njit(cache=True)
def _row_blocks(n):
    # A function of n alone, not of the thread count: BLAS rounds a row differently depending on
    # the block it is in, and the weight gradients are summed per block.
    n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    n_blocks = (n_blocks + BLOCK_GROUP - 1) // BLOCK_GROUP * BLOCK_GROUP
    return max(1, min(n_blocks, n // MIN_BLOCK))


def single_threaded_blas() -> int:
    """Set every loaded OpenBLAS to one thread (OpenBLAS `openblas_set_num_threads`).

    Loads SciPy's BLAS first (Numba's `np.dot` calls it). Returns how many libraries were set.
    Environment variable OPENBLAS_NUM_THREADS=1 has the same effect if set before NumPy loads.
    """
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that Numba calls)

    count = 0
    maps = "/proc/self/maps"
    if not os.path.exists(maps):
        return 0
    with open(maps) as f:
        paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn(1)
                count += 1
                break
    return count


@njit(cache=True, parallel=True)
def dense_forward(x, w, out, relu):
    """out = x @ w, then max(out, 0) if `relu`. x (n, k), w (k, m), out (n, m), float32, C order."""
    n = x.shape[0]
    n_blocks = _row_blocks(n)
    block = (n + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        start = min(n, b * block)
        stop = min(n, start + block)
        if start == stop:
            continue
        np.dot(x[start:stop], w, out[start:stop])
        if relu:
            for i in range(start, stop):
                for j in range(out.shape[1]):
                    if out[i, j] < 0.0:
                        out[i, j] = 0.0


@njit(cache=True, parallel=True)
def dense_backward(x, grad_out, w, grad_in, relu_out, weight_partial):
    """Gradients of y = x @ w.

    grad_in = grad_out @ w.T (skipped when grad_in has 0 columns), then multiplied by
    (relu_out > 0) when relu_out has rows (the ReLU that produced x); weight_partial[b] =
    x_b.T @ grad_out_b per row block b, to be summed in block order (`sum_partials`).
    Shapes: x (n, k), grad_out (n, m), w (k, m), grad_in (n, k) or (n, 0), relu_out (n, k) or (0, k),
    weight_partial (n_blocks, k, m); float32.
    """
    n = x.shape[0]
    n_blocks = _row_blocks(n)
    block = (n + n_blocks - 1) // n_blocks
    want_input = grad_in.shape[1] > 0
    masked = relu_out.shape[0] > 0
    for b in prange(n_blocks):
        start = min(n, b * block)
        stop = min(n, start + block)
        if start == stop:
            weight_partial[b] = 0.0
            continue
        # BLAS writes into the output views directly: no per-block allocation (page faults cost 2x).
        np.dot(x[start:stop].T, grad_out[start:stop], weight_partial[b])
        if want_input:
            np.dot(grad_out[start:stop], w.T, grad_in[start:stop])
            if masked:
                for i in range(start, stop):
                    for j in range(grad_in.shape[1]):
                        if relu_out[i, j] <= 0.0:
                            grad_in[i, j] = 0.0


def n_row_blocks(n_rows: int) -> int:
    """Number of row blocks `dense_backward` uses for n_rows rows."""
    return int(_row_blocks(n_rows))


def sum_partials(partial: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum per-block weight gradients in block order: (k, m) float32."""
    return partial[: n_row_blocks(n_rows)].sum(axis=0, dtype=np.float32)
