"""Run a tiny subset of kernel checks as plain Python (NUMBA_DISABLE_JIT=1), so coverage sees kernel code.

The flag must be set before numba is imported, hence a subprocess. The environment is passed on,
so a coverage run configured for subprocesses (COVERAGE_PROCESS_START) measures the kernels too.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numba
    import numpy as np

    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT was not honoured"

    from hero_lite.nerf.config import HashGridConfig
    from hero_lite.nerf.hashgrid import HashGridLayout, corner_indices, encode, encode_backward, encode_reference
    from hero_lite.nerf.render import (composite, composite_backward, live_samples, live_samples_in_rounds, march_rays,
                                       ray_aabb, render_weights_from_density)
    from hero_lite.nerf.sh import sh_encode

    rng = np.random.default_rng(0)

    # hash encode (one dense and two hashed levels) against the NumPy reference
    layout = HashGridLayout.from_config(HashGridConfig(n_levels=3, n_feat=2, log2_table_size=8, base_res=4, max_res=16))
    assert layout.hashed.tolist() == [False, True, True]
    table = rng.uniform(-1, 1, size=(layout.n_entries, 2)).astype(np.float32)
    pos = np.concatenate([rng.random((20, 3)), [[0, 0, 0], [1, 1, 1]]]).astype(np.float32)
    np.testing.assert_allclose(encode(pos, table, layout), encode_reference(pos, table, layout), rtol=1e-5, atol=1e-6)
    assert corner_indices(pos, layout).shape == (22, 3, 8)
    # backward: sum(grad * P) = sum(g * encode(P))
    g = rng.normal(size=(22, 6)).astype(np.float32)
    grad = np.zeros_like(table)
    encode_backward(pos, g, layout, grad)
    probe = rng.normal(size=table.shape).astype(np.float32)
    lhs = float(np.sum(g * encode_reference(pos, probe, layout)))
    assert abs(float(np.sum(grad * probe)) - lhs) <= 1e-4 * (1 + abs(lhs))

    # SH: direction (0, 0, 1) -> 0.2821, 0.4886 (k 2), 0.6308 (k 6), 0.7464 (k 12)
    sh = sh_encode(np.array([[0, 0, 1]], np.float32))[0]
    np.testing.assert_allclose(sh[[0, 2, 6, 12]], [0.28209479, 0.48860251, 0.63078313, 0.74635266], rtol=1e-6)

    # composite against the weights reference, and its backward against finite differences
    offsets = np.array([0, 3, 3, 8], np.int64)
    sig = rng.uniform(0, 30, size=8).astype(np.float32)
    rgb = rng.random((8, 3)).astype(np.float32)
    bg = rng.random((3, 3)).astype(np.float32)
    colors, t_final = composite(sig, rgb, 0.05, offsets, bg)
    w = render_weights_from_density(sig, 0.05, offsets)
    for r in range(3):
        seg = slice(offsets[r], offsets[r + 1])
        want = (w[seg, None] * rgb[seg]).sum(0) + (1 - w[seg].sum()) * bg[r]
        np.testing.assert_allclose(colors[r], want, rtol=1e-5, atol=1e-6)
    gc = rng.normal(size=(3, 3)).astype(np.float32)
    gs, gr = composite_backward(sig, rgb, 0.05, offsets, colors, gc)
    i, eps = 5, 1e-2
    up, down = sig.copy(), sig.copy()
    up[i] += eps
    down[i] -= eps
    fd = (np.sum(gc * composite(up, rgb, 0.05, offsets, bg)[0]) - np.sum(gc * composite(down, rgb, 0.05, offsets, bg)[0])) / (2 * eps)
    assert abs(gs[i] - fd) <= 1e-3 * (1 + abs(fd)), (gs[i], fd)
    # live samples: an opaque sample ends its ray, and compositing the live ones gives the same colours
    dense = sig.copy()
    dense[4] = 1e4
    index, live_offsets = live_samples(dense, 0.05, offsets, 1e-4)
    assert np.diff(live_offsets).tolist() == [3, 0, 2] and index.tolist() == [0, 1, 2, 3, 4]
    found = live_samples_in_rounds(lambda samples: dense[samples], offsets, 0.05, 1e-4, rounds=(1,))
    assert found.index.tolist() == index.tolist() and found.evaluated[found.live_rows].tolist() == index.tolist()
    np.testing.assert_array_equal(composite(dense[index], rgb[index], 0.05, live_offsets, bg, 1e-4)[0],
                                  composite(dense, rgb, 0.05, offsets, bg, 1e-4)[0])

    # marching with a full grid: samples t_start + k dt
    o = np.array([[0, 0, 4]], np.float32)
    d = np.array([[0, 0, -1]], np.float32)
    t_near, t_far = ray_aabb(o, d, np.array([[-1, -1, -1], [1, 1, 1]], np.float32))
    packed = march_rays(o, d, t_near, t_far, 0.25, np.array([[-1, -1, -1], [1, 1, 1]], np.float32), np.ones((2, 2, 2), bool))
    np.testing.assert_allclose(packed.ts, 3 + 0.25 * np.arange(8))
    # NaN rays and an endless segment end with zero samples / a capped walk (no endless loop)
    box = np.array([[-1, -1, -1], [1, 1, 1]], np.float32)
    o = np.array([[np.nan, 0, 0], [0, 0, 4], [0, 0, 0]], np.float32)
    d = np.array([[0, 0, -1], [np.nan, 0, -1], [0, 0, 1]], np.float32)
    packed = march_rays(o, d, np.zeros(3, np.float32), np.full(3, np.inf, np.float32), 0.25, box,
                        np.ones((2, 2, 2), bool))
    assert np.diff(packed.ray_offsets).tolist() == [0, 0, 15], packed.ray_offsets  # ceil(3.46 / 0.25) + 1
    assert np.all(packed.t_next == np.inf)
    print("nojit ok")
    """
)


def test_kernels_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nojit ok" in result.stdout
