"""Adam on one flat float64 parameter vector, as HAQ's DDPG uses it (HAQ code `lib/rl/ddpg.py`:
`torch.optim.Adam` on the actor and on the critic, no weight decay)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Adam:
    """Adam with PyTorch semantics (torch.optim.Adam, no weight decay, no amsgrad) on a flat vector.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    theta <- theta - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    Parameters
    ----------
    size : length of the parameter vector.
    lr, beta1, beta2, eps : the Adam constants.
    """

    def __init__(self, size: int, lr: float, beta1: float, beta2: float, eps: float):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = np.zeros(size, dtype=np.float64)
        self.v = np.zeros(size, dtype=np.float64)
        self.step_count = 0
        self.scratch = np.zeros(size, dtype=np.float64)  # work array, no state

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update `params` (flat float64) in place from `grad` (same shape); no allocation."""
        self.step_count += 1
        t = self.step_count
        scratch = self.scratch
        self.m *= self.beta1
        np.multiply(grad, 1.0 - self.beta1, out=scratch)
        self.m += scratch
        self.v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - self.beta2
        self.v += scratch
        bias_correction1 = 1.0 - self.beta1**t
        bias_correction2 = 1.0 - self.beta2**t
        np.sqrt(self.v, out=scratch)
        scratch /= math.sqrt(bias_correction2)
        scratch += self.eps
        np.divide(self.m, scratch, out=scratch)
        scratch *= self.lr / bias_correction1
        params -= scratch

    def state_dict(self) -> dict[str, Any]:
        """Copies of the moments m, v ((size,) float64) and the step count `step` (int)."""
        return {"m": self.m.copy(), "v": self.v.copy(), "step": self.step_count}

    def load_state_dict(self, state: dict[str, Any], name: str = "adam") -> None:
        """Restore from `state_dict()` output; `name` labels the state in the error for a wrong shape."""
        for moment in ("m", "v"):
            values = np.asarray(state[moment], dtype=np.float64)
            if values.shape != self.m.shape:
                raise ValueError(f"{name}.{moment} has shape {values.shape}; expected {self.m.shape}")
            getattr(self, moment)[:] = values
        self.step_count = int(state["step"])
