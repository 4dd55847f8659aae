"""Adam: skip-zero-gradient rows with per-row step counters, dense L2 weight decay."""

import numpy as np
import pytest

from hero_lite.nerf.optim import Adam

B1, B2, EPS = 0.9, 0.99, 1e-15


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def _numpy_adam(p, grads, lr, b1=B1, b2=B2, eps=EPS):
    """Plain float64 Adam with bias correction over a list of gradients (step t = 1, 2, ...)."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p, m, v


def _make(rng, weight_decay=0.0):
    params = {"hash_table": rng.normal(size=(10, 2)).astype(np.float32),
              "w": rng.normal(size=(3, 4)).astype(np.float32)}
    return params, Adam(params, sparse=("hash_table",), beta1=B1, beta2=B2, eps=EPS, weight_decay=weight_decay)


def test_sparse_rows_skip_zero_gradients_and_count_their_own_steps(rng):
    params, opt = _make(rng)
    start = params["hash_table"].copy()
    lr = 0.01
    g1 = np.zeros((10, 2), np.float32)
    g1[[1, 3]] = rng.normal(size=(2, 2))
    g1[5, 1] = 0.7  # one non-zero feature is enough to update the whole row
    g2 = np.zeros((10, 2), np.float32)
    g2[[3, 7]] = rng.normal(size=(2, 2))
    history = {r: [] for r in range(10)}
    for g in (g1, g2):
        for r in range(10):
            if np.any(g[r] != 0):
                history[r].append(g[r].astype(np.float64).copy())
        grads = {"hash_table": g.copy(), "w": np.zeros((3, 4), np.float32)}
        opt.step(grads, lr)
        # the sparse gradient buffer is consumed: left all zero
        assert np.all(grads["hash_table"] == 0.0)

    table = params["hash_table"]
    # rows 0, 2, 4, 6, 8, 9 never had a gradient: parameter, moments and counter unchanged
    for r in (0, 2, 4, 6, 8, 9):
        np.testing.assert_array_equal(table[r], start[r])
        assert np.all(opt.m["hash_table"][r] == 0) and np.all(opt.v["hash_table"][r] == 0)
    # per-row counters: rows 1, 5 stepped once (global step 1), row 7 once (global step 2), row 3 twice
    assert opt.row_steps["hash_table"].tolist() == [0, 1, 0, 2, 0, 1, 0, 1, 0, 0]
    assert opt.step_count == 2
    for r in (1, 3, 5, 7):
        # row 7 was first touched at global step 2, but its bias correction uses its own t = 1:
        # m_hat = g, v_hat = g^2, so it moved by exactly -lr * sign(g)
        want, m, v = _numpy_adam(start[r], history[r], lr)
        np.testing.assert_allclose(table[r], want, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(opt.m["hash_table"][r], m, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(opt.v["hash_table"][r], v, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(table[7], start[7] - lr * np.sign(g2[7]), rtol=1e-5)
    # row 5: feature 0 had a zero gradient inside a touched row, so m = v = 0 and it did not move
    assert table[5, 0] == start[5, 0]
    assert table[5, 1] == pytest.approx(start[5, 1] - lr, rel=1e-5)


def test_dense_first_step_with_weight_decay(rng):
    params, opt = _make(rng, weight_decay=0.1)
    w0 = params["w"].copy()
    g = rng.normal(size=(3, 4)).astype(np.float32)
    g[0] = 0.0  # zero gradient: only the L2 term moves these (dense params are never skipped)
    grads = {"hash_table": np.zeros((10, 2), np.float32), "w": g.copy()}
    opt.step(grads, 0.05)
    # first Adam step: m_hat = g', v_hat = g'^2 with g' = g + wd * w, so w <- w - lr * sign(g')
    want = w0 - 0.05 * np.sign(g + 0.1 * w0)
    np.testing.assert_allclose(params["w"], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(params["w"][0], w0[0] - 0.05 * np.sign(w0[0]), rtol=1e-6)
    # dense gradients are read only
    np.testing.assert_array_equal(grads["w"], g)


def test_dense_matches_numpy_adam_over_steps(rng):
    params, opt = _make(rng, weight_decay=1e-2)
    w = params["w"].astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, 6):
        g = rng.normal(size=(3, 4)).astype(np.float32)
        opt.step({"hash_table": np.zeros((10, 2), np.float32), "w": g}, 0.01)
        g2 = g + 1e-2 * w  # L2 on the dense parameter
        m = B1 * m + (1 - B1) * g2
        v = B2 * v + (1 - B2) * g2 * g2
        w -= 0.01 * (m / (1 - B1**t)) / (np.sqrt(v / (1 - B2**t)) + EPS)
    np.testing.assert_allclose(params["w"], w, rtol=1e-5, atol=1e-6)


def test_sparse_params_get_no_weight_decay(rng):
    params, opt = _make(rng, weight_decay=10.0)
    start = params["hash_table"].copy()
    opt.step({"hash_table": np.zeros((10, 2), np.float32), "w": np.zeros((3, 4), np.float32)}, 0.1)
    # a huge L2 coefficient, but the table had no gradient: nothing moves
    np.testing.assert_array_equal(params["hash_table"], start)


def test_state_dict_keys(rng):
    _, opt = _make(rng)
    state = opt.state_dict()
    assert set(state) == {"m/hash_table", "m/w", "v/hash_table", "v/w", "row_steps/hash_table", "step_count"}
    assert int(state["step_count"]) == 0


def test_bias_correction_tables_equal_the_power_past_the_table_end(rng):
    # Rows whose step counter lies beyond the correction tables fall back to 1 - beta**t: the update
    # must be bit-identical to the tabled one.
    from hero_lite.nerf.optim import _bias_corrections, _sparse_adam_kernel

    b1, b2, eps, lr = np.float32(B1), np.float32(B2), np.float32(EPS), np.float32(0.01)
    param = rng.normal(size=(40, 2)).astype(np.float32)
    grad = rng.normal(size=(40, 2)).astype(np.float32)
    m = rng.normal(size=(40, 2)).astype(np.float32) * np.float32(0.1)
    v = rng.random((40, 2)).astype(np.float32) * np.float32(0.1)
    steps = rng.integers(0, 60, size=40).astype(np.int64)
    results = []
    for n_table in (0, 30, 100):  # all rows beyond, some beyond, none beyond the table
        p, g, mm, vv, s = param.copy(), grad.copy(), m.copy(), v.copy(), steps.copy()
        table1 = _bias_corrections(b1, n_table - 1) if n_table else np.zeros(0)
        table2 = _bias_corrections(b2, n_table - 1) if n_table else np.zeros(0)
        _sparse_adam_kernel(p, g, mm, vv, s, lr, b1, b2, eps, table1, table2)
        results.append((p, mm, vv, s))
    for p, mm, vv, s in results[1:]:
        np.testing.assert_array_equal(p, results[0][0])
        np.testing.assert_array_equal(mm, results[0][1])
        np.testing.assert_array_equal(s, steps + 1)
    # the first row against plain float64 Adam with its own step counter
    t = steps[0] + 1
    m0 = B1 * m[0].astype(np.float64) + (1 - B1) * grad[0]
    v0 = B2 * v[0].astype(np.float64) + (1 - B2) * grad[0].astype(np.float64) ** 2
    want = param[0] - 0.01 * (m0 / (1 - B1**t)) / (np.sqrt(v0 / (1 - B2**t)) + EPS)
    np.testing.assert_allclose(results[0][0][0], want, rtol=1e-5)


def test_correction_tables_grow_with_the_step_count(rng):
    params, opt = _make(rng)
    for _ in range(3):
        opt.step({"hash_table": rng.normal(size=(10, 2)).astype(np.float32), "w": np.zeros((3, 4), np.float32)}, 0.01)
    first = opt._corrections[0]
    assert first.shape[0] > opt.step_count
    np.testing.assert_allclose(first[:4], 1.0 - np.float32(B1) ** np.arange(4), rtol=1e-6)
    opt.step_count = first.shape[0] + 5  # past the table: it is rebuilt longer
    opt.step({"hash_table": rng.normal(size=(10, 2)).astype(np.float32), "w": np.zeros((3, 4), np.float32)}, 0.01)
    assert opt._corrections[0].shape[0] > opt.step_count
