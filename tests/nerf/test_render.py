"""Ray-box intersection, marching, compositing (forward, backward) and inference rendering."""

import math
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_lite.nerf.render import (
    TRANSMITTANCE_EPS,
    _composite_backward_kernel,
    _composite_kernel,
    composite,
    composite_backward,
    march_rays,
    max_march_steps,
    ray_aabb,
    render_rays,
    render_weights_from_density,
)

BOX = np.array([[-1, -1, -1], [1, 1, 1]], dtype=np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _packed(rng, counts):
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    sigmas = rng.uniform(0.0, 40.0, size=n)
    rgbs = rng.random((n, 3))
    backgrounds = rng.random((len(counts), 3))
    return sigmas, rgbs, offsets, backgrounds


# ----------------------------------------------------------------------------- ray_aabb


def test_ray_aabb_hand_cases():
    origins = np.array([
        [0, 0, 4],  # straight down the z axis: hits z = 1 at t 3, leaves z = -1 at t 5
        [3, 3, 4],  # parallel to z but outside the x slab: miss
        [0, 0, 0],  # inside the box: t_near clamps to 0, exits at t 1
        [0.5, -0.25, 4],  # zero x and y direction components, inside both slabs: t 3 .. 5
        [2, 0, 0],  # along -x from x = 2: t 1 .. 3
        [0, 0, 4],  # pointing away from the box: miss
    ], dtype=np.float32)
    dirs = np.array([[0, 0, -1], [0, 0, -1], [0, 0, 1], [0, 0, -1], [-1, 0, 0], [0, 0, 1]], dtype=np.float32)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    assert t_near.dtype == np.float32 and t_far.dtype == np.float32
    np.testing.assert_allclose(t_near[[0, 2, 3, 4]], [3, 0, 3, 1])
    np.testing.assert_allclose(t_far[[0, 2, 3, 4]], [5, 1, 5, 3])
    hit = t_near < t_far
    assert hit.tolist() == [True, False, True, True, True, False]


def test_ray_aabb_diagonal_and_boundary_origin():
    # from (-2, -2, -2) along (1, 1, 1)/sqrt 3: enters at t = sqrt 3, leaves at t = 3 sqrt 3
    t_near, t_far = ray_aabb(np.array([[-2, -2, -2]], np.float32), _unit([[1, 1, 1]]), BOX)
    assert t_near[0] == pytest.approx(math.sqrt(3), rel=1e-6)
    assert t_far[0] == pytest.approx(3 * math.sqrt(3), rel=1e-6)
    # origin on the x = 1 face, direction (0, 0, -1): 0 * inf = nan in the x slab is treated as inside
    t_near, t_far = ray_aabb(np.array([[1, 0, 4]], np.float32), np.array([[0, 0, -1]], np.float32), BOX)
    assert (t_near[0], t_far[0]) == (3.0, 5.0)


def test_ray_aabb_tiny_direction_component_is_silent():
    # 1 / 1e-39 overflows float32 to inf, which the slab method handles like a zero component
    # (t 3 .. 5 as for direction (0, 0, -1)); it must not emit a RuntimeWarning per batch.
    dirs = np.array([[1e-39, 0, -1]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t_near, t_far = ray_aabb(np.array([[0, 0, 4]], np.float32), dirs, BOX)
    assert (t_near[0], t_far[0]) == (3.0, 5.0)


@settings(max_examples=60, deadline=None)
@given(
    origin=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    direction=st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda v: sum(t * t for t in v) > 1e-3),
)
def test_ray_aabb_segment_is_inside_the_box(origin, direction):
    o = np.array([origin], dtype=np.float32)
    d = _unit([direction])
    t_near, t_far = ray_aabb(o, d, BOX)
    assert t_near[0] >= 0
    if t_far[0] > t_near[0] + 1e-4:
        mid = o[0].astype(np.float64) + 0.5 * (float(t_near[0]) + float(t_far[0])) * d[0]
        assert np.all(np.abs(mid) <= 1 + 1e-4)
    # a point of the ray inside the box implies a hit: check the point nearest the box centre
    t_closest = max(0.0, -float(np.dot(o[0], d[0])))
    p = o[0] + t_closest * d[0]
    if np.all(np.abs(p) < 0.999):
        assert t_near[0] < t_far[0]


def test_ray_aabb_non_finite_and_zero_direction_rays_miss():
    # a NaN origin or direction, or a zero direction (what a degenerate pose gives), has no finite
    # exit: it would otherwise get the segment [0, inf) and march forever
    origins = np.float32([[np.nan, 0, 0], [0, 0, 4], [0, 0, 0], [np.inf, 0, 0], [0, 0, 4]])
    dirs = np.float32([[0, 0, -1], [np.nan, np.nan, np.nan], [0, 0, 0], [-1, 0, 0], [0, 0, -1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t_near, t_far = ray_aabb(origins, dirs, BOX)
    assert t_near.tolist() == [0, 0, 0, 0, 3] and t_far.tolist() == [0, 0, 0, 0, 5]


# ----------------------------------------------------------------------------- composite


def test_composite_hand_example():
    # one sample with sigma dt = ln 2 -> alpha 0.5; red over white: 0.5 * (1, 0, 0) + 0.5 * (1, 1, 1)
    colors, t_final = composite(
        np.array([math.log(2.0)], np.float32), np.array([[1, 0, 0]], np.float32), 1.0,
        np.array([0, 1], np.int64), np.ones((1, 3), np.float32),
    )
    np.testing.assert_allclose(colors, [[1.0, 0.5, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(t_final, [0.5], rtol=1e-6)


def test_composite_two_samples_and_empty_ray():
    # alphas 0.5, 0.5: w = 0.5, 0.25, T_final = 0.25; colours red, green over black -> (0.5, 0.25, 0)
    # second ray has no samples: background (0.2, 0.3, 0.4), T_final 1
    sig = np.full(2, math.log(2.0) / 0.1, np.float32)
    colors, t_final = composite(sig, np.array([[1, 0, 0], [0, 1, 0]], np.float32), 0.1, np.array([0, 2, 2], np.int64),
                                np.array([[0, 0, 0], [0.2, 0.3, 0.4]], np.float32))
    np.testing.assert_allclose(colors, [[0.5, 0.25, 0.0], [0.2, 0.3, 0.4]], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t_final, [0.25, 1.0], rtol=1e-5)


def test_composite_agrees_with_render_weights(rng):
    sigmas, rgbs, offsets, bgs = _packed(rng, [0, 1, 5, 17, 3])
    dt = 0.03
    colors, t_final = composite(sigmas.astype(np.float32), rgbs.astype(np.float32), dt, offsets, bgs.astype(np.float32))
    weights = render_weights_from_density(sigmas, dt, offsets).astype(np.float64)
    for r in range(len(offsets) - 1):
        seg = slice(offsets[r], offsets[r + 1])
        opacity = weights[seg].sum()
        want = (weights[seg, None] * rgbs[seg]).sum(axis=0) + (1 - opacity) * bgs[r]
        np.testing.assert_allclose(colors[r], want, rtol=1e-5, atol=1e-6)
        # T_{N+1} = 1 - sum_i w_i
        assert t_final[r] == pytest.approx(1 - opacity, rel=1e-5, abs=1e-6)


def _composite64(sigmas, rgbs, dt, offsets, bgs):
    n_rays = len(offsets) - 1
    colors = np.empty((n_rays, 3))
    t_final = np.empty(n_rays)
    _composite_kernel(sigmas, rgbs, np.float64(dt), offsets, bgs, colors, t_final, 0.0)
    return colors, t_final


def test_composite_backward_matches_central_differences_float64(rng):
    sigmas, rgbs, offsets, bgs = _packed(rng, [1, 4, 9, 0, 6])
    dt = 0.05
    g = rng.normal(size=(len(offsets) - 1, 3))
    colors, _ = _composite64(sigmas, rgbs, dt, offsets, bgs)
    assert colors.dtype == np.float64
    grad_sigmas = np.empty_like(sigmas)
    grad_rgbs = np.empty_like(rgbs)
    _composite_backward_kernel(sigmas, rgbs, np.float64(dt), offsets, colors, g, grad_sigmas, grad_rgbs, 0.0)

    def loss(s, c):
        return float(np.sum(g * _composite64(s, c, dt, offsets, bgs)[0]))

    eps = 1e-6
    fd_sigmas = np.empty_like(sigmas)
    for i in range(sigmas.shape[0]):
        up, down = sigmas.copy(), sigmas.copy()
        up[i] += eps
        down[i] -= eps
        fd_sigmas[i] = (loss(up, rgbs) - loss(down, rgbs)) / (2 * eps)
    fd_rgbs = np.empty_like(rgbs)
    for i in range(rgbs.shape[0]):
        for c in range(3):
            up, down = rgbs.copy(), rgbs.copy()
            up[i, c] += eps
            down[i, c] -= eps
            fd_rgbs[i, c] = (loss(sigmas, up) - loss(sigmas, down)) / (2 * eps)
    np.testing.assert_allclose(grad_sigmas, fd_sigmas, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_rgbs, fd_rgbs, rtol=1e-6, atol=1e-8)


def test_composite_backward_public_wrapper_float32(rng):
    sigmas, rgbs, offsets, bgs = _packed(rng, [3, 8])
    dt = 0.05
    g = rng.normal(size=(2, 3))
    colors64, _ = _composite64(sigmas, rgbs, dt, offsets, bgs)
    want_s = np.empty_like(sigmas)
    want_c = np.empty_like(rgbs)
    _composite_backward_kernel(sigmas, rgbs, np.float64(dt), offsets, colors64, g, want_s, want_c, 0.0)
    f32 = np.float32
    colors, _ = composite(sigmas.astype(f32), rgbs.astype(f32), dt, offsets, bgs.astype(f32))
    got_s, got_c = composite_backward(sigmas.astype(f32), rgbs.astype(f32), dt, offsets, colors, g.astype(f32))
    assert got_s.dtype == np.float32 and got_c.dtype == np.float32
    np.testing.assert_allclose(got_s, want_s, rtol=1e-3, atol=1e-5 * np.abs(want_s).max())
    np.testing.assert_allclose(got_c, want_c, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- march_rays


def _rays(rng, n):
    origins = rng.uniform(-3, 3, size=(n, 3))
    origins[:, 2] = 4.0  # all above the box
    targets = rng.uniform(-0.8, 0.8, size=(n, 3))
    return origins.astype(np.float32), _unit(targets - origins)


def _expected_ts(t_start, t_far, dt):
    """The marcher's float32 recurrence t <- t + dt while t < t_far."""
    out = []
    t = np.float32(t_start)
    while t < t_far:
        out.append(t)
        t = np.float32(t + np.float32(dt))
    return np.array(out, dtype=np.float32)


def test_march_all_occupied_gives_every_step(rng):
    origins, dirs = _rays(rng, 12)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    assert np.all(t_near < t_far)
    dt = 0.05
    t_start = (t_near + rng.random(12) * dt).astype(np.float32)
    packed = march_rays(origins, dirs, t_start, t_far, dt, BOX, np.ones((8, 8, 8), bool))
    for r in range(12):
        seg = slice(packed.ray_offsets[r], packed.ray_offsets[r + 1])
        want = _expected_ts(t_start[r], t_far[r], dt)
        np.testing.assert_array_equal(packed.ts[seg], want)
        # t_start + k dt up to t_far
        np.testing.assert_allclose(want, t_start[r] + dt * np.arange(want.size), rtol=1e-5)
        assert packed.t_next[r] >= t_far[r]
        world = origins[r] + packed.ts[seg, None] * dirs[r]
        np.testing.assert_allclose(packed.positions[seg], np.clip((world + 1) / 2, 0, 1), atol=1e-5)
    assert packed.n_samples == packed.positions.shape[0] == packed.ts.shape[0]
    ids = packed.ray_ids()
    assert ids.dtype == np.int64 and np.array_equal(np.bincount(ids, minlength=12), np.diff(packed.ray_offsets))


def test_march_empty_grid_gives_no_samples(rng):
    origins, dirs = _rays(rng, 10)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    packed = march_rays(origins, dirs, t_near, t_far, 0.05, BOX, np.zeros((8, 8, 8), bool))
    assert packed.n_samples == 0 and np.all(packed.ray_offsets == 0)
    # marching still advanced every ray to its far end
    assert np.all(packed.t_next >= t_far)


def test_march_half_occupied_keeps_only_occupied_cells(rng):
    origins, dirs = _rays(rng, 40)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    dt = 0.03
    t_start = (t_near + rng.random(40) * dt).astype(np.float32)
    res = 8
    bits = np.zeros((res, res, res), bool)
    bits[:, :, : res // 2] = True  # indexed [z, y, x]: occupied where world x < 0
    packed = march_rays(origins, dirs, t_start, t_far, dt, BOX, bits)
    assert packed.n_samples > 0
    assert np.all(packed.positions[:, 0] <= 0.5)
    full = march_rays(origins, dirs, t_start, t_far, dt, BOX, np.ones_like(bits))
    for r in range(40):
        seg = slice(full.ray_offsets[r], full.ray_offsets[r + 1])
        keep = full.positions[seg, 0] < 0.5
        np.testing.assert_array_equal(packed.ts[packed.ray_offsets[r]:packed.ray_offsets[r + 1]], full.ts[seg][keep])


def test_march_max_per_ray_and_resume(rng):
    origins, dirs = _rays(rng, 5)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    dt = 0.05
    bits = np.ones((4, 4, 4), bool)
    full = march_rays(origins, dirs, t_near, t_far, dt, BOX, bits)
    first = march_rays(origins, dirs, t_near, t_far, dt, BOX, bits, max_per_ray=7)
    assert np.all(np.diff(first.ray_offsets) == 7)
    # resuming from t_next continues the same sequence (up to float32 rounding of the restart)
    second = march_rays(origins, dirs, first.t_next, t_far, dt, BOX, bits)
    for r in range(5):
        a = first.ts[first.ray_offsets[r]:first.ray_offsets[r + 1]]
        b = second.ts[second.ray_offsets[r]:second.ray_offsets[r + 1]]
        np.testing.assert_allclose(np.concatenate([a, b]), full.ts[full.ray_offsets[r]:full.ray_offsets[r + 1]], rtol=1e-6)


def test_max_march_steps():
    # diagonal of [-1, 1]^3 = 2 sqrt 3 = 3.464; / 0.05 = 69.3 -> 70 steps, + 1
    assert max_march_steps(BOX, 0.05) == 71
    with pytest.raises(ValueError, match="dt = 0.0; valid"):
        max_march_steps(BOX, 0.0)
    with pytest.raises(ValueError, match="aabb"):
        max_march_steps(np.float32([[1, 1, 1], [-1, -1, -1]]), 0.05)


def test_march_nan_rays_end_promptly_with_zero_samples():
    # NaN origins or directions: `t < t_far` never fails for NaN positions, so without the guards
    # the walk ran for ever (`hero-lite eval` on a zero pose ran 11 minutes)
    bits = np.ones((8, 8, 8), bool)
    origins = np.float32([[np.nan, 0, 0], [0, 0, 4], [0, 0, 4], [0, 0, 4]])
    dirs = np.float32([[0, 0, -1], [np.nan, 0, -1], [0, 0, -1], [0, 0, -1]])
    t_start = np.float32([0, 0, np.nan, 3])
    t_far = np.float32([np.inf, np.inf, np.inf, 5])
    start = time.perf_counter()
    packed = march_rays(origins, dirs, t_start, t_far, 0.05, BOX, bits)
    assert time.perf_counter() - start < 30  # includes a first compile
    assert np.diff(packed.ray_offsets).tolist() == [0, 0, 0, 40]
    # finished rays resume nowhere: t_next = t_far, so the caller's `t < t_far` is false
    assert packed.t_next[:3].tolist() == [np.inf] * 3


def test_march_steps_are_capped_per_ray():
    # a finite ray given an endless segment stops after max_march_steps (the box diagonal / dt + 1)
    # steps; one whose t no longer grows in float32 (t + dt == t) stops at once
    bits = np.ones((8, 8, 8), bool)
    origins = np.float32([[0, 0, 0], [0, 0, 0], [0, 0, 4]])
    dirs = np.float32([[0, 0, 0], [0, 0, 1], [0, 0, -1]])
    t_start = np.float32([0, 0, 1e9])
    t_far = np.float32([np.inf, np.inf, np.inf])
    packed = march_rays(origins, dirs, t_start, t_far, 0.05, BOX, bits)
    counts = np.diff(packed.ray_offsets)
    assert counts[0] == counts[1] == max_march_steps(BOX, 0.05) and counts[2] == 1
    assert np.all(packed.t_next == np.inf)


def test_render_rays_with_nan_rays_returns_the_background():
    bits = np.ones((8, 8, 8), bool)
    origins = np.float32([[np.nan, 0, 0], [0, 0, 4], [0, 0, 4]])
    dirs = np.float32([[0, 0, -1], [np.nan, np.nan, np.nan], [0, 0, -1]])
    bg = np.float32([0.1, 0.7, 0.3])

    def grey_fog(positions, _dirs, _ids):
        return np.full(positions.shape[0], 1.0, np.float32), np.full((positions.shape[0], 3), 0.5, np.float32)

    result = render_rays(origins, dirs, grey_fog, BOX, bits, 0.05, bg)
    assert result.samples_per_ray[:2].tolist() == [0, 0] and result.samples_per_ray[2] == 40
    np.testing.assert_array_equal(result.colors[:2], np.tile(bg, (2, 1)))
    assert np.all(np.isfinite(result.colors))


# ----------------------------------------------------------------------------- render_rays


def test_render_rays_stops_at_low_transmittance():
    n = 6
    origins = np.tile(np.array([[0, 0, 4]], np.float32), (n, 1))
    dirs = _unit(np.stack([np.linspace(-0.1, 0.1, n), np.zeros(n), -np.ones(n)], axis=1))
    dt = 0.02
    sigma = math.log(2.0) / dt  # alpha 0.5 per sample

    def field(positions, _dirs, _ids):
        return np.full(positions.shape[0], sigma, np.float32), np.tile(np.float32([0.2, 0.4, 0.6]), (positions.shape[0], 1))

    result = render_rays(origins, dirs, field, BOX, np.ones((8, 8, 8), bool), dt, np.ones(3, np.float32),
                         samples_per_batch=32)
    # T after k samples = 0.5^k: 0.5^13 = 1.22e-4 >= 1e-4 so sample 14 is used; 0.5^14 = 6.1e-5 < 1e-4: stop
    assert 0.5**13 >= TRANSMITTANCE_EPS > 0.5**14
    np.testing.assert_array_equal(result.samples_per_ray, 14)
    # C = (1 - T) c + T bg with T = 0.5^14
    t_final = 0.5**14
    np.testing.assert_allclose(result.colors, np.tile((1 - t_final) * np.array([0.2, 0.4, 0.6]) + t_final, (n, 1)), rtol=1e-4)
    np.testing.assert_allclose(result.opacity, 1 - t_final, rtol=1e-5)


def test_render_rays_counts_and_background(rng):
    origins, dirs = _rays(rng, 16)
    # two extra rays that miss the box
    origins = np.concatenate([origins, np.float32([[5, 5, 4], [0, 0, 4]])])
    dirs = np.concatenate([dirs, np.float32([[0, 0, -1], [0, 0, 1]])])
    dt = 0.04
    bg = np.float32([0.1, 0.7, 0.3])
    calls = []

    def clear_field(positions, _dirs, ray_ids):
        calls.append(ray_ids.copy())
        return np.zeros(positions.shape[0], np.float32), np.zeros((positions.shape[0], 3), np.float32)

    # sigma = 0 everywhere and all cells occupied: every marching step is composited, T stays 1
    result = render_rays(origins, dirs, clear_field, BOX, np.ones((8, 8, 8), bool), dt, bg, samples_per_batch=40)
    t_near, t_far = ray_aabb(origins, dirs, BOX)
    want = [len(_expected_ts(t_near[r] + np.float32(0.5 * dt), t_far[r], dt)) if t_near[r] < t_far[r] else 0
            for r in range(18)]
    assert want[-2:] == [0, 0] and min(want[:16]) > 10
    # several rounds of <= 4 samples per ray were needed (samples_per_batch 40 / 16 rays -> 4)
    assert len(calls) > 3
    np.testing.assert_allclose(result.samples_per_ray, want, atol=1)
    assert np.array_equal(np.bincount(np.concatenate(calls), minlength=18), result.samples_per_ray)
    np.testing.assert_allclose(result.colors, np.tile(bg, (18, 1)), rtol=1e-6)
    np.testing.assert_allclose(result.opacity, 0.0, atol=1e-7)

    # an empty occupancy grid: no samples at all, background everywhere, the field is never called
    calls.clear()
    empty = render_rays(origins, dirs, clear_field, BOX, np.zeros((8, 8, 8), bool), dt, bg)
    assert calls == []
    np.testing.assert_array_equal(empty.samples_per_ray, 0)
    np.testing.assert_allclose(empty.colors, np.tile(bg, (18, 1)))


def test_early_termination_forward_and_backward(rng):
    # With eps = 0.5 a ray stops once T < 0.5: later samples contribute nothing and get zero gradient.
    sigmas = np.array([5.0, 5.0, 5.0, 5.0])  # sigma dt = 0.25 each: T = 1, .78, .61, .47, .37
    rgbs = rng.random((4, 3))
    offsets = np.array([0, 4], np.int64)
    bgs = np.ones((1, 3))
    dt = 0.05
    colors = np.empty((1, 3))
    t_final = np.empty(1)
    _composite_kernel(sigmas, rgbs, np.float64(dt), offsets, bgs, colors, t_final, 0.5)
    # samples 0..2 composite (T before sample 3 is 0.47 < 0.5), so t_final = exp(-0.75)
    assert t_final[0] == pytest.approx(np.exp(-0.75))
    head, _ = _composite64(sigmas[:3].copy(), rgbs[:3].copy(), dt, np.array([0, 3], np.int64), bgs)
    np.testing.assert_allclose(colors, head)
    g = rng.normal(size=(1, 3))
    gs, gc = np.empty(4), np.empty((4, 3))
    _composite_backward_kernel(sigmas, rgbs, np.float64(dt), offsets, colors, g, gs, gc, 0.5)
    assert gs[3] == 0.0 and np.all(gc[3] == 0.0)

    def loss(s):
        c = np.empty((1, 3))
        _composite_kernel(s, rgbs, np.float64(dt), offsets, bgs, c, np.empty(1), 0.5)
        return float(np.sum(g * c))

    h = 1e-7  # small enough not to move the termination point
    for i in range(3):
        up, down = sigmas.copy(), sigmas.copy()
        up[i] += h
        down[i] -= h
        assert gs[i] == pytest.approx((loss(up) - loss(down)) / (2 * h), rel=1e-5, abs=1e-9)
