"""Only the samples before early termination go through the network in training (`live_samples`,
`live_samples_in_rounds`)."""

import numpy as np
import pytest

from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import TrainConfig
from hero_lite.nerf.render import (TRANSMITTANCE_EPS, composite, composite_backward, live_samples,
                                   live_samples_in_rounds)
from hero_lite.nerf.sh import sh_encode
from hero_lite.nerf.train import Trainer


def _rays(rng):
    """Packed samples of 40 rays: empty rays, rays that terminate early and rays that never do."""
    counts = rng.integers(0, 30, size=40)
    counts[:3] = 0
    offsets = np.zeros(41, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    sigmas = rng.exponential(20.0, size=offsets[-1]).astype(np.float32)
    sigmas[offsets[3]:offsets[6]] = 0.0  # three transparent rays
    sigmas[offsets[6]] = 1e4  # a ray that is opaque at its first sample
    return sigmas, offsets


def test_live_samples_are_the_prefix_composite_uses():
    rng = np.random.default_rng(3)
    sigmas, offsets = _rays(rng)
    rgbs = rng.random((sigmas.shape[0], 3)).astype(np.float32)
    bg = rng.random((40, 3)).astype(np.float32)
    dt = 0.05
    index, live_offsets = live_samples(sigmas, dt, offsets, TRANSMITTANCE_EPS)
    counts = np.diff(live_offsets)
    assert live_offsets[0] == 0 and live_offsets[-1] == index.shape[0] and index.dtype == np.int64
    assert np.all(counts <= np.diff(offsets)) and counts[:3].tolist() == [0, 0, 0]
    assert counts[3:6].tolist() == np.diff(offsets)[3:6].tolist()  # transparent: every sample is live
    assert counts[6] == 1  # opaque first sample: T falls to 0 after it
    assert index.shape[0] < 0.7 * sigmas.shape[0]  # the test rays do terminate
    for r in range(40):
        np.testing.assert_array_equal(index[live_offsets[r]:live_offsets[r + 1]], offsets[r] + np.arange(counts[r]))

    # the live samples give the same colours, bit for bit
    full, t_full = composite(sigmas, rgbs, dt, offsets, bg, TRANSMITTANCE_EPS)
    live, t_live = composite(sigmas[index], rgbs[index], dt, live_offsets, bg, TRANSMITTANCE_EPS)
    np.testing.assert_array_equal(live, full)
    np.testing.assert_array_equal(t_live, t_full)
    # and the samples left out have exactly zero gradient; the others the same gradient
    grad_colors = rng.normal(size=(40, 3)).astype(np.float32)
    gs_full, gr_full = composite_backward(sigmas, rgbs, dt, offsets, full, grad_colors, TRANSMITTANCE_EPS)
    gs_live, gr_live = composite_backward(sigmas[index], rgbs[index], dt, live_offsets, live, grad_colors,
                                          TRANSMITTANCE_EPS)
    dead = np.setdiff1d(np.arange(sigmas.shape[0]), index)
    assert dead.size > 0 and np.all(gs_full[dead] == 0) and np.all(gr_full[dead] == 0)
    np.testing.assert_array_equal(gs_live, gs_full[index])
    np.testing.assert_array_equal(gr_live, gr_full[index])


def test_without_termination_every_sample_is_live():
    rng = np.random.default_rng(4)
    sigmas, offsets = _rays(rng)
    index, live_offsets = live_samples(sigmas, 0.05, offsets, 0.0)
    np.testing.assert_array_equal(index, np.arange(sigmas.shape[0]))
    np.testing.assert_array_equal(live_offsets, offsets)


@pytest.mark.parametrize("rounds", [(8, 8, 16), (), (1,), (3, 5)])
@pytest.mark.parametrize("eps", [TRANSMITTANCE_EPS, 0.0])
def test_rounds_find_the_same_live_samples_and_skip_what_follows_termination(rounds, eps):
    rng = np.random.default_rng(5)
    sigmas, offsets = _rays(rng)
    calls = []

    def density(samples):
        calls.append(samples.copy())
        return sigmas[samples]

    dt = 0.05
    found = live_samples_in_rounds(density, offsets, dt, eps, rounds)
    index, live_offsets = live_samples(sigmas, dt, offsets, eps)
    np.testing.assert_array_equal(found.index, index)
    np.testing.assert_array_equal(found.live_offsets, live_offsets)
    np.testing.assert_array_equal(found.evaluated, np.concatenate(calls))
    np.testing.assert_array_equal(found.evaluated_sigmas, sigmas[found.evaluated])
    np.testing.assert_array_equal(found.evaluated[found.live_rows], index)
    assert len(calls) <= len(rounds) + 1
    assert np.unique(found.evaluated).size == found.evaluated.size  # no sample twice
    # every ray's evaluated samples are a prefix that ends with the round in which it terminated
    ray_of = np.repeat(np.arange(40), np.diff(offsets))
    evaluated_per_ray = np.bincount(ray_of[found.evaluated], minlength=40)
    live_per_ray, marched_per_ray = np.diff(live_offsets), np.diff(offsets)
    boundaries = np.cumsum(rounds)
    for r in range(40):
        got = np.sort(found.evaluated[ray_of[found.evaluated] == r])
        np.testing.assert_array_equal(got, offsets[r] + np.arange(evaluated_per_ray[r]))
        after = boundaries[boundaries >= live_per_ray[r]]
        terminated = live_per_ray[r] < marched_per_ray[r]
        bound = min(after[0], marched_per_ray[r]) if terminated and after.size else marched_per_ray[r]
        assert live_per_ray[r] <= evaluated_per_ray[r] <= bound, r
    if eps > 0 and rounds:
        assert found.evaluated.size < sigmas.size  # the tail of terminated rays was skipped
    if eps == 0:
        assert found.evaluated.size == sigmas.size


@pytest.mark.parametrize("supersample", [1, 2])
def test_a_training_step_on_live_samples_has_the_gradients_of_the_whole_batch(tiny_checkpoint, tiny_scenes,
                                                                              supersample):
    # The trainer's step against the same batch pushed through the network whole.
    model, _ = load_checkpoint(tiny_checkpoint)
    scene = tiny_scenes[0]
    trainer = Trainer(model, scene, TrainConfig(), np.random.default_rng(0), update_occupancy=False)
    out = trainer._forward_batch(supersample)
    assert 0 < out.live.n_samples < out.marched.n_samples  # a trained model terminates rays
    dt = model.config.step_size
    grads_live = {"hash_table": np.zeros_like(model.params["hash_table"])}
    gs, gr = composite_backward(out.fwd.sigmas, out.fwd.rgbs, dt, out.live.ray_offsets, out.ray_colors,
                                out.grad_ray_colors, TRANSMITTANCE_EPS)
    model.backward(out.fwd, gs, gr, grads_live)
    grads_live = {k: v.copy() for k, v in grads_live.items()}

    batch = out.marched
    whole = model.forward(batch.positions, sh_encode(batch.directions), batch.ray_ids)
    np.testing.assert_allclose(whole.sigmas[out.evaluated], out.evaluated_sigmas, rtol=1e-6)
    colors, _ = composite(whole.sigmas, whole.rgbs, dt, batch.ray_offsets, out.ray_backgrounds, TRANSMITTANCE_EPS)
    np.testing.assert_allclose(colors, out.ray_colors, rtol=1e-5, atol=1e-6)
    gs, gr = composite_backward(whole.sigmas, whole.rgbs, dt, batch.ray_offsets, colors, out.grad_ray_colors,
                                TRANSMITTANCE_EPS)
    grads_whole = {"hash_table": np.zeros_like(model.params["hash_table"])}
    model.backward(whole, gs, gr, grads_whole)
    for name, grad in grads_whole.items():
        scale = np.abs(grad).max()
        assert scale > 0, name
        np.testing.assert_allclose(grads_live[name], grad, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
    # the same rows of the table are touched (the sparse optimiser skips the others)
    np.testing.assert_array_equal(np.any(grads_live["hash_table"] != 0, axis=1),
                                  np.any(grads_whole["hash_table"] != 0, axis=1))
