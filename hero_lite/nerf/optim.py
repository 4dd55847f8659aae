"""Adam for the NGP model (NGP paper section 4; tcnn `optimizers/adam.h`).

Hash entries whose gradient is exactly zero are skipped: their parameters, moments and step
counter stay as they are (tcnn `skip_zero_grad_non_matrix_params`), and each entry keeps its own
step counter for the bias correction. The gradient buffer is zeroed as it is consumed, so no
table-sized array is allocated or cleared per step. L2 regularisation applies to the MLP weights only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _bias_corrections(beta, n_steps):
    """(n_steps + 1,) float64, 1 - beta**t for t = 0 .. n_steps, computed as the kernel would."""
    out = np.empty(n_steps + 1, dtype=np.float64)
    for t in range(n_steps + 1):
        out[t] = 1.0 - beta**t
    return out


@njit(cache=True, parallel=True)
def _sparse_adam_kernel(param, grad, m, v, steps, lr, beta1, beta2, eps, corrections1, corrections2):
    # Bias corrections come from tables (a power per row cost 2/3 of the update, measured); a row
    # step beyond the tables falls back to the power, with the same result.
    n_rows, n_feat = param.shape
    n_table = corrections1.shape[0]
    for row in prange(n_rows):
        nonzero = False
        for f in range(n_feat):
            if grad[row, f] != 0.0:
                nonzero = True
        if not nonzero:
            continue
        t = steps[row] + 1
        steps[row] = t
        if t < n_table:
            corr1 = corrections1[t]
            corr2 = corrections2[t]
        else:
            corr1 = 1.0 - beta1**t
            corr2 = 1.0 - beta2**t
        for f in range(n_feat):
            g = grad[row, f]
            m[row, f] = beta1 * m[row, f] + (1.0 - beta1) * g
            v[row, f] = beta2 * v[row, f] + (1.0 - beta2) * g * g
            m_hat = m[row, f] / corr1
            v_hat = v[row, f] / corr2
            param[row, f] -= lr * m_hat / (np.sqrt(v_hat) + eps)
            grad[row, f] = 0.0


class Adam:
    """Adam over a dict of float32 parameters; `sparse` names get the skip-zero-gradient update.

    Parameters
    ----------
    params : name -> float32 array, updated in place.
    sparse : names whose rows are skipped when their gradient is zero (the hash table).
    weight_decay : L2 coefficient added to the gradients of the dense (non-sparse) parameters.
    """

    def __init__(self, params: dict[str, np.ndarray], sparse: tuple[str, ...] = ("hash_table",), beta1: float = 0.9,
                 beta2: float = 0.99, eps: float = 1e-15, weight_decay: float = 1e-6):
        self.params = params
        self.sparse = tuple(sparse)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.row_steps = {k: np.zeros(params[k].shape[0], dtype=np.int64) for k in self.sparse}
        self.step_count = 0
        self._corrections = (np.zeros(0), np.zeros(0))

    def _correction_tables(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Tables of 1 - beta1**t and 1 - beta2**t covering step t, doubled in length when outgrown."""
        if self._corrections[0].shape[0] <= t:
            n_steps = max(2 * t, 1024)
            self._corrections = (_bias_corrections(np.float32(self.beta1), n_steps),
                                 _bias_corrections(np.float32(self.beta2), n_steps))
        return self._corrections

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        """Apply one update. Sparse gradients are consumed (left zero); dense ones are read only."""
        self.step_count += 1
        t = self.step_count
        b1, b2 = self.beta1, self.beta2
        for name, param in self.params.items():
            grad = grads[name]
            if name in self.sparse:
                corrections1, corrections2 = self._correction_tables(t)
                _sparse_adam_kernel(param, grad, self.m[name], self.v[name], self.row_steps[name], np.float32(lr),
                                    np.float32(b1), np.float32(b2), np.float32(self.eps), corrections1, corrections2)
                continue
            g = grad + np.float32(self.weight_decay) * param
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            param -= (lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Moments and counters as flat arrays (for checkpoints)."""
        state = {f"m/{k}": v for k, v in self.m.items()}
        state.update({f"v/{k}": v for k, v in self.v.items()})
        state.update({f"row_steps/{k}": v for k, v in self.row_steps.items()})
        state["step_count"] = np.asarray(self.step_count, dtype=np.int64)
        return state
