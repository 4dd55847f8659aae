"""Bias-free MLP pieces: Xavier init and fused elementwise kernels around BLAS matmuls.

Weights are stored `(fan_in, fan_out)` so a layer is `y = x @ W` with C-contiguous operands; the
backward is `dx = dy @ W.T` and `dW = x.T @ dy` (NumPy/BLAS). The elementwise steps (ReLU and its
mask, the density and colour activations) are small parallel Numba kernels that work in place,
so no temporary of activation size is allocated per step.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def xavier_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Xavier-uniform weights U(+-sqrt(6 / (fan_in + fan_out))) (Glorot & Bengio 2010; tcnn default).

    Returns
    -------
    (fan_in, fan_out) float32.
    """
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)


@njit(cache=True, parallel=True)
def relu_inplace(x):
    """x <- max(x, 0), for a C-contiguous (n, width) float32 array."""
    flat = x.reshape(-1)
    for i in prange(flat.shape[0]):
        if flat[i] < 0.0:
            flat[i] = 0.0


@njit(cache=True, parallel=True)
def relu_backward_inplace(grad, activated):
    """grad <- grad * (activated > 0), where `activated` is the ReLU output."""
    g = grad.reshape(-1)
    a = activated.reshape(-1)
    for i in prange(g.shape[0]):
        if a[i] <= 0.0:
            g[i] = 0.0


@njit(cache=True, parallel=True)
def density_activation(logits, logit_max, sigmas):
    """sigma = exp(min(logit, logit_max)) from column 0 of the density output (NGP paper)."""
    for i in prange(logits.shape[0]):
        sigmas[i] = np.exp(min(logits[i, 0], logit_max))


@njit(cache=True, parallel=True)
def sigmoid(x, out):
    """out = 1 / (1 + exp(-x)) elementwise, (n, 3) float32."""
    for i in prange(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = 1.0 / (1.0 + np.exp(-x[i, c]))


@njit(cache=True, parallel=True)
def gather_color_input(density_out, sh_per_ray, ray_ids, out):
    """out[i] = concat(density_out[i], sh_per_ray[ray_ids[i]]): the colour MLP input (tcnn NeRF)."""
    n_geo = density_out.shape[1]
    n_sh = sh_per_ray.shape[1]
    for i in prange(density_out.shape[0]):
        for k in range(n_geo):
            out[i, k] = density_out[i, k]
        r = ray_ids[i]
        for k in range(n_sh):
            out[i, n_geo + k] = sh_per_ray[r, k]


@njit(cache=True, parallel=True)
def output_backward(grad_sigmas, sigmas, logits, logit_max, grad_rgbs, rgbs, grad_logits, grad_color_logits):
    """Chain dL/dsigma and dL/drgb through exp and sigmoid.

    grad_logits[:, 0] += dL/dsigma * sigma where the logit is below the clamp (0 above: the clamp
    cuts the gradient); grad_color_logits = dL/drgb * rgb (1 - rgb).
    """
    for i in prange(sigmas.shape[0]):
        if logits[i, 0] < logit_max:
            grad_logits[i, 0] += grad_sigmas[i] * sigmas[i]
        for c in range(3):
            grad_color_logits[i, c] = grad_rgbs[i, c] * rgbs[i, c] * (1.0 - rgbs[i, c])
