"""Supersampled pixels (`ModelConfig.supersample`): s x s rays per pixel in training, rendering and
the traced frame the simulator prices."""

import dataclasses

import numpy as np
import pytest

from hero_lite.accel import load_config, simulate
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import HashGridConfig, ModelConfig, TrainConfig
from hero_lite.nerf.evaluate import block_mean, evaluate, render_view, view_rays
from hero_lite.nerf.metrics import psnr
from hero_lite.nerf.model import PARAM_NAMES, NGPModel
from hero_lite.nerf.trace import trace_view
from hero_lite.nerf.train import (Trainer, loss_and_grad, pixel_loss_and_grad, pixel_means, sample_ray_batch,
                                  subpixel_offsets, train)
from hero_lite.scenes.cameras import camera_rays, pixel_rays
from hero_lite.search.workload import workload_from_trace



@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    """The tiny checkpoint's model (trained with one ray per pixel) and the same weights at s = 2."""
    model, _ = load_checkpoint(tiny_checkpoint)
    twice = NGPModel(dataclasses.replace(model.config, supersample=2), model.aabb, model.params, model.occupancy)
    return model, twice


def test_subpixel_offsets_are_the_centres_of_an_s_by_s_grid():
    np.testing.assert_array_equal(subpixel_offsets(1), [[0.5, 0.5]])
    np.testing.assert_array_equal(subpixel_offsets(2), [[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])
    assert subpixel_offsets(3).shape == (9, 2) and subpixel_offsets(3)[4].tolist() == [0.5, 0.5]


def test_view_rays_are_the_sub_pixel_rays_in_the_fine_raster(tiny_scenes):
    test = tiny_scenes[2]
    h, w, s = test.height, test.width, 2
    _, dirs = view_rays(test.poses[1], test.focal, h, w, s)
    assert dirs.shape == (s * h * s * w, 3)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for a in range(s):
        for b in range(s):
            fine = (s * rows + a) * (s * w) + (s * cols + b)  # raster index in the (s h, s w) frame
            _, expected = pixel_rays(test.poses, test.focal, h, w, np.full(h * w, 1), rows.ravel() + (a + 0.5) / s,
                                     cols.ravel() + (b + 0.5) / s)
            np.testing.assert_allclose(dirs[fine.ravel()], expected, atol=1e-6)
    np.testing.assert_array_equal(view_rays(test.poses[1], test.focal, h, w, 1)[1],
                                  camera_rays(test.poses[1], test.focal, h, w)[1])


def test_block_mean_by_hand():
    image = np.arange(4 * 6 * 1, dtype=np.float32).reshape(4, 6, 1)
    out = block_mean(image, 2)
    assert out.shape == (2, 3, 1)
    assert out[0, 0, 0] == (0 + 1 + 6 + 7) / 4 and out[1, 2, 0] == (16 + 17 + 22 + 23) / 4
    assert block_mean(image, 1) is image


def test_training_batch_has_s_squared_rays_per_pixel_at_the_sub_pixel_centres(tiny_model, tiny_scenes):
    _, twice = tiny_model
    scene = tiny_scenes[0]
    n, h, w = scene.images.shape[:3]
    pixels = np.ascontiguousarray(scene.images.reshape(n * h * w, 4), dtype=np.float32)
    batch = sample_ray_batch(twice, scene, pixels, 403, np.random.default_rng(7), 1 << 20)
    assert batch.rays_per_pixel == 4 and batch.n_pixels == 100 and batch.n_rays == 400
    # the same generator draws the pixels first, so they can be recomputed
    pix = np.random.default_rng(7).integers(0, n * h * w, size=100, dtype=np.int64)
    np.testing.assert_array_equal(batch.target_rgba, pixels[pix])
    for p in (0, 57, 99):
        view, rem = divmod(int(pix[p]), h * w)
        row, col = divmod(rem, w)
        _, dirs = view_rays(scene.poses[view], scene.focal, h, w, 2)
        fine = [(2 * row + a) * (2 * w) + 2 * col + b for a in range(2) for b in range(2)]
        np.testing.assert_allclose(batch.directions[4 * p: 4 * p + 4], dirs[fine], atol=1e-6)


def test_a_batch_cut_at_max_samples_keeps_whole_pixels(tiny_model, tiny_scenes):
    _, twice = tiny_model
    scene = tiny_scenes[0]
    pixels = np.ascontiguousarray(scene.images.reshape(-1, 4), dtype=np.float32)
    full = sample_ray_batch(twice, scene, pixels, 4096, np.random.default_rng(3), 1 << 20)
    cut = sample_ray_batch(twice, scene, pixels, 4096, np.random.default_rng(3), full.n_samples // 3)
    assert cut.n_rays == 4 * cut.n_pixels < full.n_rays
    assert cut.n_samples <= full.n_samples // 3 and cut.positions.shape[0] == cut.n_samples
    np.testing.assert_array_equal(cut.ray_offsets, full.ray_offsets[: cut.n_rays + 1])


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_pixel_loss_gradient_matches_finite_differences(kind):
    rng = np.random.default_rng(11)
    k = 4
    target = rng.random((6, 3))
    rays = target.repeat(k, axis=0) + rng.uniform(-0.3, 0.3, size=(6 * k, 3))
    means = pixel_means(rays, k)
    assert means.dtype == np.float64 and means.shape == (6, 3)
    np.testing.assert_allclose(means, rays.reshape(6, k, 3).mean(axis=1))
    assert np.any(np.abs(means - target) > 0.1)  # both sides of the Huber kink
    _, _, grad = pixel_loss_and_grad(rays, target, k, kind, 0.1)
    assert grad.shape == rays.shape
    eps = 1e-7
    fd = np.empty_like(rays)
    for idx in np.ndindex(rays.shape):
        up, down = rays.copy(), rays.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (pixel_loss_and_grad(up, target, k, kind, 0.1)[0]
                   - pixel_loss_and_grad(down, target, k, kind, 0.1)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


def test_one_ray_per_pixel_is_the_plain_loss():
    rng = np.random.default_rng(1)
    pred, target = rng.random((50, 3)).astype(np.float32), rng.random((50, 3)).astype(np.float32)
    loss, pixels, grad = pixel_loss_and_grad(pred, target, 1, "huber", 0.1)
    expected_loss, expected_grad = loss_and_grad(pred, target, "huber", 0.1)
    assert loss == expected_loss and pixels is pred
    np.testing.assert_array_equal(grad, expected_grad)


def test_render_view_is_the_block_mean_of_the_fine_camera(tiny_model, tiny_scenes):
    model, twice = tiny_model
    test = tiny_scenes[2]
    h, w = test.height, test.width
    image, spr = render_view(twice, test.poses[0], test.focal, h, w)
    assert image.shape == (h, w, 3) and spr.shape == (4 * h * w,)
    fine = twice.render(*camera_rays(test.poses[0], 2 * test.focal, 2 * h, 2 * w))
    np.testing.assert_array_equal(image, block_mean(fine.colors.reshape(2 * h, 2 * w, 3), 2))
    np.testing.assert_array_equal(spr, fine.samples_per_ray)
    # the same field seen through finer rays: close to the one-ray picture, not equal to it
    single, _ = render_view(model, test.poses[0], test.focal, h, w)
    assert not np.array_equal(image, single) and psnr(image, single) > 25.0
    scores = evaluate(twice, test, max_views=2, with_ssim=False)
    assert scores.mean_samples_per_ray == pytest.approx(
        np.mean([render_view(twice, test.poses[k], test.focal, h, w)[1].mean() for k in range(2)]))


def test_the_traced_frame_has_every_ray_and_costs_more(tiny_model, tiny_scenes):
    model, twice = tiny_model
    test = tiny_scenes[2]
    h, w = test.height, test.width
    one = trace_view(model, test.poses[0], test.focal, h, w)
    four = trace_view(twice, test.poses[0], test.focal, h, w)
    assert (four.width, four.height, four.n_rays) == (2 * w, 2 * h, 4 * h * w)
    _, spr = render_view(twice, test.poses[0], test.focal, h, w)
    np.testing.assert_array_equal(four.samples_per_ray, spr)
    assert four.n_samples > 3 * one.n_samples
    bits = {name: 8 for name in workload_from_trace(one, model.config).point_names}
    accel = load_config("edge")
    latency_one = simulate(workload_from_trace(one, model.config), bits, accel, sample_fraction=0.125).latency_ms
    latency_four = simulate(workload_from_trace(four, twice.config), bits, accel, sample_fraction=0.125).latency_ms
    assert latency_four > 2.5 * latency_one


SMALL_MODEL = ModelConfig(grid=HashGridConfig(n_levels=8, log2_table_size=12, max_res=128), occupancy_res=32,
                          supersample=2)
SMALL_TRAIN = TrainConfig(samples_per_step=1 << 13, initial_rays=512)


def _train(scene, seed, steps):
    model = NGPModel.create(SMALL_MODEL, scene.aabb, np.random.default_rng(seed))
    summary = train(model, scene, SMALL_TRAIN, np.random.default_rng(seed), steps=steps)
    return model, summary


def test_supersampled_training_is_deterministic_and_learns(tiny_scenes):
    scene, _, test = tiny_scenes
    a, summary = _train(scene, 5, 60)
    b, _ = _train(scene, 5, 60)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    assert summary.last.n_rays % 4 == 0 and np.isfinite(summary.last.loss)
    images = test.rgb((1.0, 1.0, 1.0)).astype(np.float64)
    mean_colour = float(np.mean([psnr(np.broadcast_to(im.mean(axis=(0, 1)), im.shape), im) for im in images]))
    assert evaluate(a, test, with_ssim=False).psnr > mean_colour + 4.0


def _trained_steps(model_config, train_config, scene, progresses):
    """Parameters after one Trainer step at each progress in `progresses` (seed 9)."""
    model = NGPModel.create(model_config, scene.aabb, np.random.default_rng(9))
    trainer = Trainer(model, scene, train_config, np.random.default_rng(9))
    for progress in progresses:
        trainer.step(progress)
    return model.params


def test_training_switches_from_one_ray_to_s_by_s_at_supersample_from(tiny_scenes):
    scene = tiny_scenes[0]
    one_ray = dataclasses.replace(SMALL_MODEL, supersample=1)
    late = dataclasses.replace(SMALL_TRAIN, supersample_from=0.5)
    early = dataclasses.replace(SMALL_TRAIN, supersample_from=0.0)
    before = [0.0, 0.2, 0.49]
    # Before the switch the s = 2 model trains exactly as the one-ray model does ...
    expected = _trained_steps(one_ray, late, scene, before)
    got = _trained_steps(SMALL_MODEL, late, scene, before)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    # ... and from it on as one supersampled from the start, which it differs from before.
    from_start = _trained_steps(SMALL_MODEL, early, scene, before)
    assert not np.array_equal(from_start["hash_table"], got["hash_table"])
    once_switched = _trained_steps(SMALL_MODEL, late, scene, [0.5, 0.7])
    np.testing.assert_array_equal(once_switched["hash_table"],
                                  _trained_steps(SMALL_MODEL, early, scene, [0.5, 0.7])["hash_table"])


def test_a_quantization_aware_fine_tune_trains_with_the_models_rays_from_the_first_step():
    from hero_lite.quant.qat import qat_config

    assert TrainConfig().supersample_from > 0 and qat_config().supersample_from == 0.0
