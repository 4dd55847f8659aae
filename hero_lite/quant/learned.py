"""Learned (differentiable) bit-widths, as CAQ trains them (CAQ paper, ECCV 2024; CAQ code
`quantization/utils.py`, `nerf/utils.py`).

Each point holds a continuous "soft" bit-width; the forward pass quantizes with
B = round(clamp(soft, 2, 16)) (above 16.5 the point is unquantized, 32 bits). With the step
s = R / (2^B - 1) over a fixed range R, the quantizer's bit gradient inside the range is
    d x_hat / dB = (2^B ln 2 / (2^B - 1)) (x - x_hat)
(the LSQ step gradient (x_hat - x) / s times ds/dB = -s 2^B ln 2 / (2^B - 1)), and 0 in the
clipped regions (there x_hat = s qmax and d(s qmax)/dB = 0 for a fixed range). The backward hooks
accumulate dL_net/dB_k = sum over the point's elements of dL/dx_hat * dx_hat/dB.

The bit loss (CAQ code): L_bit = sqrt|L_net - L_metric| + lambda P, with P the weighted mean bit
P = (sum_all B + 0.3 sum_weights B + B_sigma) / (n + 0.3 n_weights + 1) (stored tensors count 1.3x,
the density output 2x); only the soft bits get L_bit's gradient, through
dL_bit/dB = sign(L_net - L_metric) / (2 sqrt|L_net - L_metric|) dL_net/dB + lambda dP/dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit, prange

from hero_lite.nerf.model import NGPModel
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.points import FLOAT_BITS, quant_points
from hero_lite.quant.policy import QuantPolicy, model_signature
from hero_lite.quant.quantizers import QuantParams

SOFT_MIN, SOFT_MAX = 2.0, 16.0
UNQUANTIZED_ABOVE = 16.5
_BLOCK = 1 << 14


def hard_bits(soft: float) -> int:
    """Bits the forward pass uses for a soft bit-width (32 above 16.5, else round(clamp(., 2, 16)))."""
    if soft > UNQUANTIZED_ABOVE:
        return FLOAT_BITS
    return int(min(max(math.floor(soft + 0.5), SOFT_MIN), SOFT_MAX))


@njit(cache=True, parallel=True)
def _bit_grad_kernel(grad, x, scale, zero_point, qmin, qmax, factor, partial):
    # Fixed blocks, partial sums reduced in block order: the same result for any thread count.
    g = grad.reshape(-1)
    v = x.reshape(-1)
    n = g.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(n_blocks):
        acc = 0.0
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            q = np.floor(v[i] / scale + np.float32(0.5)) + zero_point
            if q < qmin or q > qmax:
                continue
            x_hat = scale * np.float32(q - zero_point)
            acc += g[i] * (v[i] - x_hat)
        partial[b] = acc * factor


def bit_gradient(grad: np.ndarray, x: np.ndarray, params: QuantParams) -> float:
    """sum(grad * dx_hat/dB) over elements inside the quantizer's range (module docstring).

    grad, x : float32 arrays of one shape (dL/dx_hat and the quantizer's input).
    """
    if params.is_identity or x.size == 0:
        return 0.0
    # s = R / (2^B - 1) for asymmetric and unsigned, s = max|x| / (2^(B-1) - 1) for symmetric:
    # ds/dB = -s n ln2 / (n - 1) with n = 2^B or 2^(B-1)
    n = 2.0 ** (params.bits - 1) if params.scheme == "symmetric" else 2.0**params.bits
    factor = n * math.log(2.0) / (n - 1.0)
    n_blocks = -(-x.size // _BLOCK)
    partial = np.zeros(n_blocks, dtype=np.float64)
    _bit_grad_kernel(np.ascontiguousarray(grad, dtype=np.float32), np.ascontiguousarray(x, dtype=np.float32),
                     np.float32(params.scale), np.float32(params.zero_point), np.float32(params.qmin),
                     np.float32(params.qmax), factor, partial)
    return float(partial.sum())


def penalty_weights(points) -> dict[str, float]:
    """CAQ's weights of the mean bit: 1 per point, +0.3 for stored tensors, +1 for act.sigma;
    normalised so that P is a weighted mean (CAQ code `nerf/utils.py`)."""
    raw = {p.name: 1.0 + (0.3 if p.kind != "activation" else 0.0) + (1.0 if p.name == "act.sigma" else 0.0)
           for p in points}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


class LearnedBitHooks(FakeQuantHooks):
    """Fake quantization at learned bit-widths, accumulating dL_net/dB for every point.

    Parameters
    ----------
    model : NGPModel; point_set : 'caq' (CAQ's 15 quantizers) or 'hero'.
    activation_ranges : calibrated (lo, hi) per activation point (ranges stay fixed).
    initial : point name -> initial soft bits (CAQ: 8 everywhere, 32 for act.sigma).
    """

    def __init__(self, model: NGPModel, point_set: str, activation_ranges: dict[str, tuple[float, float]],
                 initial: dict[str, float]):
        self.point_set = point_set
        self.signature = model_signature(model.config)
        self.point_list = quant_points(model.config, point_set)
        self.soft = {p.name: float(initial[p.name]) for p in self.point_list}
        self.bit_grads = {p.name: 0.0 for p in self.point_list}
        super().__init__(model, self.current_policy(), activation_ranges)

    def current_policy(self) -> QuantPolicy:
        """The hard bits of the current soft bits, as a policy."""
        bits = {p.name: hard_bits(self.soft[p.name]) for p in self.point_list}
        return QuantPolicy(self.point_set, bits, dict(self.signature))

    def refresh(self) -> None:
        """Re-derive the quantizers from the current soft bits (call after each bit update)."""
        self.set_policy(self.current_policy())

    def zero_bit_grads(self) -> None:
        self.bit_grads = {k: 0.0 for k in self.bit_grads}

    # backward hooks: clipped STE as FakeQuantHooks, plus the bit gradients

    def activation_backward(self, name: str, grad: np.ndarray, x: np.ndarray) -> None:
        params = self.act_params.get(name)
        if params is not None:
            self.bit_grads[name] += bit_gradient(grad, x, params)
        super().activation_backward(name, grad, x)

    def weight_backward(self, name: str, grad: np.ndarray, weight: np.ndarray) -> None:
        params = self.tensor_params.get(name)
        if params is not None and self.policy.bits[name] != FLOAT_BITS:
            self.bit_grads[name] += bit_gradient(grad, weight, params)
        super().weight_backward(name, grad, weight)

    def table_backward(self, grad_table: np.ndarray, table: np.ndarray) -> None:
        offsets = self.model.layout.offsets
        for point in self.hash_points:
            params = self.tensor_params.get(point.name)
            if params is None or self.policy.bits[point.name] == FLOAT_BITS:
                continue
            rows = slice(int(offsets[point.levels[0]]), int(offsets[point.levels[-1] + 1]))
            self.bit_grads[point.name] += bit_gradient(grad_table[rows], table[rows], params)
        super().table_backward(grad_table, table)


@dataclass(frozen=True)
class BitLearningConfig:
    """CAQ-like bit learning (CAQ code `config/GetConfig.py`, `nerf/utils.py`), with the QAT length scaled to a CPU budget.

    mode : 'mdl' (minimal degradation: L_metric = loss_fp; hero-lite's default, since CAQ's 30 dB
        MGL target lies ~4 dB below the training PSNR of the bundled scenes' models and cost them
        ~2 dB of test PSNR) or 'mgl' (metric-guided: L_metric = max(0.5 10^(-target/10), loss_fp)).
    target_psnr : MGL target (dB; CAQ default 30).
    penalty : lambda of the mean-bit penalty (CAQ default 1e-3).
    steps : QAT steps with bit learning (CAQ: 3000).
    bit_lr : Adam rate of the soft bits; None = CAQ's 1e-2 x 3000 / steps, so a shorter run can move
        the bits as far as CAQ's 3000 steps do.
    qat_lr : rate of tables and weights (CAQ: 1e-3 for MGL, 1e-4 for MDL; None picks by mode).
    samples_per_step : samples per step; loss_batches : batches averaged for the fp32 loss_fp.
    initial_bits : starting soft bits (CAQ: 8; act.sigma starts unquantized).
    """

    mode: str = "mdl"
    target_psnr: float = 30.0
    penalty: float = 1e-3
    steps: int = 300
    bit_lr: float | None = None
    qat_lr: float | None = None
    samples_per_step: int = 1 << 15
    loss_batches: int = 8
    initial_bits: float = 8.0

    def __post_init__(self) -> None:
        if self.mode not in ("mgl", "mdl"):
            raise ValueError(f"bit learning mode = {self.mode!r}; valid: 'mgl', 'mdl'")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"bit learning steps = {self.steps!r}; valid: integer >= 1")
        if not self.penalty >= 0:
            raise ValueError(f"bit learning penalty = {self.penalty!r}; valid: >= 0")

    @property
    def bit_rate(self) -> float:
        return self.bit_lr if self.bit_lr is not None else 1e-2 * 3000 / self.steps

    @property
    def net_rate(self) -> float:
        return self.qat_lr if self.qat_lr is not None else (1e-3 if self.mode == "mgl" else 1e-4)


@dataclass
class BitLearningResult:
    """Learned policy and the trace of the run: soft bits (steps+1, n_points), loss per step, loss_fp, metric."""

    policy: QuantPolicy
    soft_trace: np.ndarray
    losses: np.ndarray
    loss_fp: float
    loss_metric: float
    names: list[str]


def learn_bit_widths(model: NGPModel, scene, activation_ranges: dict[str, tuple[float, float]],
                     config: BitLearningConfig, rng: np.random.Generator, point_set: str = "caq",
                     progress: Callable[[int], None] | None = None) -> BitLearningResult:
    """CAQ's adversarial bit learning on `model` (fine-tuned in place): QAT steps in which the network
    minimises L_net while the soft bits minimise L_bit = sqrt|L_net - L_metric| + lambda P (module
    docstring); Adam (0.9, 0.99) on the soft bits, clamped to [2, 16.5] after each step.
    """
    from hero_lite.nerf.train import Trainer
    from hero_lite.quant.qat import qat_config

    train_config = qat_config(config.net_rate, config.samples_per_step)
    loss_fp = Trainer(model.copy(), scene, train_config, np.random.default_rng(rng.integers(1 << 63))).mean_loss(
        config.loss_batches)
    if config.mode == "mgl":
        loss_metric = max(0.5 * 10.0 ** (-config.target_psnr / 10.0), loss_fp)  # CAQ code: 0.5 MSE = SmoothL1
    else:
        loss_metric = loss_fp
    initial = {p.name: (FLOAT_BITS if p.default_bits == FLOAT_BITS else config.initial_bits)
               for p in quant_points(model.config, point_set)}
    hooks = LearnedBitHooks(model, point_set, activation_ranges, initial)
    names = [p.name for p in hooks.point_list]
    weights = penalty_weights(hooks.point_list)
    learnable = [n for n in names if initial[n] != FLOAT_BITS]
    soft = np.array([hooks.soft[n] for n in names])
    m = np.zeros(len(names))
    v = np.zeros(len(names))
    beta1, beta2, eps = 0.9, 0.99, 1e-8
    trace = [soft.copy()]
    losses = []
    trainer = Trainer(model, scene, train_config, rng, hooks=hooks, update_occupancy=False)
    hooks.thaw()
    for step in range(config.steps):
        hooks.zero_bit_grads()
        stats = trainer.step(step / config.steps)
        losses.append(stats.loss)
        gap = stats.loss - loss_metric
        scale = math.copysign(1.0, gap) / (2.0 * math.sqrt(max(abs(gap), 1e-12)))
        grad = np.array([scale * hooks.bit_grads[n] + config.penalty * weights[n] for n in names])
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        t = step + 1
        update = config.bit_rate * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
        for k, name in enumerate(names):
            if name in learnable:
                soft[k] = min(max(soft[k] - update[k], SOFT_MIN), UNQUANTIZED_ABOVE)
                hooks.soft[name] = float(soft[k])
        if hooks.current_policy().bits != hooks.policy.bits:
            hooks.refresh()
        trace.append(soft.copy())
        if progress is not None:
            progress(step + 1)
    hooks.freeze()
    return BitLearningResult(hooks.current_policy(), np.array(trace), np.array(losses), loss_fp, loss_metric, names)
