"""Image quality metrics: PSNR and SSIM on [0, 1] images."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error on [0, 1] values: -10 log10(mse) (inf for mse = 0)."""
    if mse <= 0:
        return float("inf")
    return float(-10.0 * np.log10(mse))


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB between two images of the same shape (H, W, 3), values in [0, 1].

    Example: a constant error of 0.1 gives MSE 0.01 and PSNR 20 dB.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"psnr: shapes differ, {prediction.shape} vs {target.shape}")
    return mse_to_psnr(float(np.mean((prediction - target) ** 2)))


def ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity (Wang et al., IEEE TIP 2004) of two (H, W, C) images in [0, 1].

    Gaussian window sigma 1.5 truncated to 11 x 11, K1 = 0.01, K2 = 0.03, data range 1; the SSIM
    map is averaged over channels and over pixels at least 5 from the border (as scikit-image does
    with `gaussian_weights=True`). Unitless, 1 for identical images.
    """
    x = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"ssim: expected two (H, W, C) images of one shape, got {x.shape} and {y.shape}")
    c1 = (0.01 * 1.0) ** 2
    c2 = (0.03 * 1.0) ** 2
    radius = 5

    def blur(a):
        return gaussian_filter(a, sigma=(1.5, 1.5, 0), truncate=radius / 1.5, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    # Unbiased covariances, as scikit-image computes them.
    n = (2 * radius + 1) ** 2
    cov_norm = n / (n - 1)
    vx = cov_norm * (blur(x * x) - mu_x * mu_x)
    vy = cov_norm * (blur(y * y) - mu_y * mu_y)
    vxy = cov_norm * (blur(x * y) - mu_x * mu_y)
    s = ((2 * mu_x * mu_y + c1) * (2 * vxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (vx + vy + c2))
    h, w = x.shape[:2]
    if h > 2 * radius and w > 2 * radius:
        s = s[radius : h - radius, radius : w - radius]
    return float(s.mean())
