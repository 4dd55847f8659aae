"""Dense layers in row blocks (`hero_lite.nerf._linalg`) against float64 NumPy."""

import numpy as np
import pytest

from hero_lite.nerf._linalg import (BLOCK_GROUP, MIN_BLOCK, ROW_BLOCK, dense_backward, dense_forward, n_row_blocks,
                                    sum_partials)


@pytest.mark.parametrize("n", [0, 1, 300, 1000, 4097, 27_000])
def test_row_blocks_are_even_shares_of_at_most_row_block_rows(n):
    blocks = n_row_blocks(n)
    assert blocks >= 1 and -(-n // blocks) <= ROW_BLOCK
    if n > ROW_BLOCK:
        assert blocks % BLOCK_GROUP == 0  # 2 or 4 threads get the same number of blocks
    if blocks > 1:
        assert n // blocks >= MIN_BLOCK


@pytest.mark.parametrize("n", [1, 300, 4097, 27_000])
def test_dense_forward_and_backward_match_numpy(n):
    rng = np.random.default_rng(n)
    k, m = 32, 16
    x = rng.normal(size=(n, k)).astype(np.float32)
    w = rng.normal(size=(k, m)).astype(np.float32)
    out = np.empty((n, m), dtype=np.float32)
    dense_forward(x, w, out, True)
    want = np.maximum(x.astype(np.float64) @ w, 0.0)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)

    grad_out = rng.normal(size=(n, m)).astype(np.float32)
    relu_out = rng.normal(size=(n, k)).astype(np.float32)  # the activation that produced x
    grad_in = np.empty((n, k), dtype=np.float32)
    partial = np.empty((n_row_blocks(n), k, m), dtype=np.float32)
    dense_backward(x, grad_out, w, grad_in, relu_out, partial)
    want_in = (grad_out.astype(np.float64) @ w.T) * (relu_out > 0)
    np.testing.assert_allclose(grad_in, want_in, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sum_partials(partial, n), x.T.astype(np.float64) @ grad_out, rtol=1e-4, atol=1e-2)
