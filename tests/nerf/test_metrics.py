"""PSNR and SSIM: hand examples and a slow windowed SSIM reference."""

import math

import numpy as np
import pytest

from hero_lite.nerf.metrics import mse_to_psnr, psnr, ssim


@pytest.fixture
def rng():
    return np.random.default_rng(17)


def test_psnr_hand_examples():
    target = np.full((4, 5, 3), 0.5)
    # constant error 0.1: MSE 0.01 -> -10 log10(0.01) = 20 dB
    assert psnr(target + 0.1, target) == pytest.approx(20.0)
    # MSE 1e-3 -> 30 dB
    assert mse_to_psnr(1e-3) == pytest.approx(30.0)
    assert psnr(target, target) == math.inf
    with pytest.raises(ValueError, match="shapes"):
        psnr(target, target[:, :4])


def ssim_reference(x, y):
    """Slow SSIM: 11 x 11 Gaussian window (sigma 1.5), unbiased (co)variances, valid pixels only."""
    k = np.arange(-5, 6)
    g = np.exp(-(k**2) / (2 * 1.5**2))
    window = np.outer(g, g)
    window /= window.sum()
    c1, c2 = 0.01**2, 0.03**2
    cov_norm = 121 / 120
    h, w, channels = x.shape
    values = []
    for c in range(channels):
        for i in range(5, h - 5):
            for j in range(5, w - 5):
                a = x[i - 5 : i + 6, j - 5 : j + 6, c]
                b = y[i - 5 : i + 6, j - 5 : j + 6, c]
                mx, my = np.sum(window * a), np.sum(window * b)
                vx = cov_norm * (np.sum(window * a * a) - mx * mx)
                vy = cov_norm * (np.sum(window * b * b) - my * my)
                vxy = cov_norm * (np.sum(window * a * b) - mx * my)
                values.append(((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_identical_is_one(rng):
    img = rng.random((20, 24, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_ssim_drops_with_noise_and_is_symmetric(rng):
    img = rng.random((24, 24, 3)) * 0.5 + 0.25
    small = np.clip(img + rng.normal(scale=0.02, size=img.shape), 0, 1)
    large = np.clip(img + rng.normal(scale=0.2, size=img.shape), 0, 1)
    s_small, s_large = ssim(small, img), ssim(large, img)
    assert 1.0 > s_small > s_large > 0.0
    assert ssim(img, small) == pytest.approx(s_small, rel=1e-12)


def test_ssim_matches_slow_reference(rng):
    x = rng.random((18, 21, 3))
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(ssim_reference(x, y), rel=1e-9, abs=1e-12)
    # a smooth pair too (SSIM near 1)
    u = np.linspace(0, 1, 18)[:, None, None] * np.linspace(0.2, 0.8, 21)[None, :, None] * np.ones((1, 1, 3))
    assert ssim(u, u * 0.9 + 0.05) == pytest.approx(ssim_reference(u, u * 0.9 + 0.05), rel=1e-9)


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError, match="ssim"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="ssim"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
