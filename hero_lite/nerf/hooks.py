"""The hook interface through which quantization reaches the model.

`nerf` defines it and calls it at every quantizable tensor; `hero_lite.quant` implements it
(fake quantization with a straight-through backward), so `nerf` never imports `quant`.
The base class is the identity: a model run with `QuantHooks()` equals a run with no hooks.

Point names, in data-flow order (the HERO observation order of the MLP part):
- hash levels: the table slice of level l (`hash.l00`, `hash.l01`, ...), reached through `table`;
- weights (`WEIGHT_POINTS`): the five MLP matrices;
- activations (`ACTIVATION_POINTS`): encoder output, density hidden ReLU, density-MLP output,
  density after exp, SH direction features, colour hidden ReLUs, colour output before the sigmoid,
  colour after the sigmoid. (The HERO point set uses all but the two after exp/sigmoid, which
  CAQ's 15-quantizer set adds.) 1-D activations (sigma) are passed as (n, 1) arrays.
"""

from __future__ import annotations

import numpy as np

WEIGHT_POINTS = ("w.density0", "w.density1", "w.color0", "w.color1", "w.color2")
ACTIVATION_POINTS = (
    "act.encoding",
    "act.density_hidden",
    "act.density_out",
    "act.sigma",
    "act.sh",
    "act.color_hidden0",
    "act.color_hidden1",
    "act.color_out",
    "act.rgb",
)
WEIGHT_PARAMS = {
    "w.density0": "density_w0",
    "w.density1": "density_w1",
    "w.color0": "color_w0",
    "w.color1": "color_w1",
    "w.color2": "color_w2",
}


def hash_level_point(level: int) -> str:
    """Name of the quantization point of hash level `level` (e.g. 3 -> 'hash.l03')."""
    return f"hash.l{level:02d}"


class QuantHooks:
    """Identity hooks. Subclasses return fake-quantized tensors and mask gradients (STE).

    Forward hooks must not modify their input; they return the tensor the model uses instead
    (the input itself when a point is not quantized). Backward hooks map the gradient with
    respect to the quantized tensor to the gradient with respect to the original one, in place.
    """

    active = False  # False: the model may skip the calls and the extra buffers

    def table(self, table: np.ndarray) -> np.ndarray:
        """(n_entries, n_feat) float32 table -> the table used for lookups."""
        return table

    def table_backward(self, grad_table: np.ndarray, table: np.ndarray) -> None:
        """Mask dL/d(table used) into dL/d(table), in place (clipped STE)."""

    def weight(self, name: str, weight: np.ndarray) -> np.ndarray:
        """(fan_in, fan_out) float32 weight -> the weight used in the matmul."""
        return weight

    def weight_backward(self, name: str, grad: np.ndarray, weight: np.ndarray) -> None:
        """Mask dL/d(weight used) into dL/d(weight), in place."""

    def activation(self, name: str, x: np.ndarray) -> np.ndarray:
        """(n, width) float32 activation -> the value passed on."""
        return x

    def activation_backward(self, name: str, grad: np.ndarray, x: np.ndarray) -> None:
        """Mask dL/d(quantized activation) into dL/d(activation), in place; x is the input."""
