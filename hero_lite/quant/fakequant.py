"""FakeQuantHooks: the nerf layer's QuantHooks, implemented with fake quantization and a clipped STE.

Stored tensors (hash levels, weights) take their range from the tensor itself (min/max, weights
symmetric), recomputed at every call while `dynamic` (quantization-aware training), fixed after
`freeze()`. Activations use calibrated ranges (`hero_lite.quant.calibrate`), fixed throughout.

Because tensor ranges are the tensor's own min/max (max|w| for weights), no stored value is
ever clipped, so the clipped STE mask of tables and weights is all ones and their backward hooks
leave gradients unchanged. Activations are clipped to their calibrated ranges, and their backward
hooks zero the gradient outside (Bengio et al. 2013; clipped as in CAQ code `quantization/utils.py`).
"""

from __future__ import annotations

import numpy as np

from hero_lite.nerf.hooks import WEIGHT_PARAMS, QuantHooks
from hero_lite.nerf.model import NGPModel, Workspace
from hero_lite.quant.points import FLOAT_BITS, QuantPoint
from hero_lite.quant.policy import QuantPolicy
from hero_lite.quant.quantizers import QuantParams, fake_quant, fake_quant_rows_kernel, make_params, ste_mask_kernel


def tensor_params(point: QuantPoint, bits: int, values: np.ndarray, per_channel: bool = False) -> QuantParams:
    """Quantizer parameters of a stored tensor from its own range.

    Hash tables: asymmetric over [min, max] of the slice. Weights: symmetric over max|w|, per tensor
    or (per_channel) per output column.
    """
    if point.kind == "weight" and per_channel:
        return make_params(point.scheme, bits, values.min(axis=0), values.max(axis=0))
    return make_params(point.scheme, bits, values.min(), values.max())


class FakeQuantHooks(QuantHooks):
    """Fake quantization of every point of a policy.

    Parameters
    ----------
    model : the NGPModel whose layout the hooks follow.
    policy : QuantPolicy (hero or caq set) for the model's config.
    activation_ranges : point name -> (lo, hi) floats for every quantized activation point.
    per_channel : per-output-channel scales for weights.
    """

    active = True

    def __init__(self, model: NGPModel, policy: QuantPolicy, activation_ranges: dict[str, tuple[float, float]],
                 per_channel: bool = False):
        self.model = model
        self.points = {p.name: p for p in policy.points(model.config)}
        self.hash_points = [p for p in self.points.values() if p.kind == "hash_level"]
        self.per_channel = per_channel
        self.activation_ranges = dict(activation_ranges)
        self._table_q = None
        self._workspace = Workspace()
        self.set_policy(policy)

    def set_policy(self, policy: QuantPolicy) -> None:
        """Switch to other bits (same model and point set); tensor ranges are recomputed (dynamic)."""
        self.policy = policy
        self.act_params: dict[str, QuantParams] = {}
        for name, p in self.points.items():
            if p.kind != "activation":
                continue
            bits = policy.bits[name]
            if bits == FLOAT_BITS:
                continue
            if name not in self.activation_ranges:
                raise ValueError(f"no calibrated range for activation point {name}")
            lo, hi = self.activation_ranges[name]
            self.act_params[name] = make_params(p.scheme, bits, lo, hi)
        self.hash_quantized = any(policy.bits[p.name] != FLOAT_BITS for p in self.hash_points)
        self.frozen = False
        self.tensor_params: dict[str, QuantParams] = {}
        self._weights_q: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ stored tensors

    def _level_slices(self, point: QuantPoint):
        offsets = self.model.layout.offsets
        return [slice(int(offsets[level]), int(offsets[level + 1])) for level in point.levels]

    def _quantize_table(self, table: np.ndarray, out: np.ndarray) -> None:
        for point in self.hash_points:
            bits = self.policy.bits[point.name]
            rows = slice(self._level_slices(point)[0].start, self._level_slices(point)[-1].stop)
            if bits == FLOAT_BITS:
                out[rows] = table[rows]
                continue
            params = self.tensor_params.get(point.name) if self.frozen else None
            if params is None:
                params = tensor_params(point, bits, table[rows])
                self.tensor_params[point.name] = params
            fake_quant_rows_kernel(table[rows], out[rows], np.float32(params.scale), np.float32(params.zero_point),
                                   np.float32(params.qmin), np.float32(params.qmax))

    def table(self, table: np.ndarray) -> np.ndarray:
        if not self.hash_quantized:
            return table
        if self.frozen and self._table_q is not None:
            return self._table_q
        if self._table_q is None or self._table_q.shape != table.shape:
            self._table_q = np.empty_like(table)
        self._quantize_table(table, self._table_q)
        return self._table_q

    def weight(self, name: str, weight: np.ndarray) -> np.ndarray:
        bits = self.policy.bits[name]
        if bits == FLOAT_BITS:
            return weight
        if self.frozen and name in self._weights_q:
            return self._weights_q[name]
        params = self.tensor_params.get(name) if self.frozen else None
        if params is None:
            params = tensor_params(self.points[name], bits, weight, self.per_channel)
            self.tensor_params[name] = params
        quantized = fake_quant(weight, params)
        if self.frozen:
            self._weights_q[name] = quantized
        return quantized

    # ------------------------------------------------------------------ activations

    def activation(self, name: str, x: np.ndarray) -> np.ndarray:
        params = self.act_params.get(name)
        if params is None:
            return x
        out = self._workspace.get(name, x.shape[0], x.shape[1])
        fake_quant_rows_kernel(np.ascontiguousarray(x), out, np.float32(params.scale), np.float32(params.zero_point),
                               np.float32(params.qmin), np.float32(params.qmax))
        return out

    def activation_backward(self, name: str, grad: np.ndarray, x: np.ndarray) -> None:
        params = self.act_params.get(name)
        if params is None:
            return
        lo, hi = params.range()
        ste_mask_kernel(grad, np.ascontiguousarray(x), np.float32(lo), np.float32(hi))

    # ------------------------------------------------------------------ modes

    def freeze(self) -> "FakeQuantHooks":
        """Fix the tensor ranges to the model's current values and cache the quantized tensors."""
        self.frozen = False
        self.tensor_params = {}
        self._weights_q = {}
        p = self.model.params
        table = self.table(p["hash_table"])
        self._table_q = table if self.hash_quantized else None
        weights = {name: self.weight(name, p[param]) for name, param in WEIGHT_PARAMS.items()
                   if name in self.points}
        self.frozen = True
        self._weights_q = {k: v for k, v in weights.items() if self.policy.bits[k] != FLOAT_BITS}
        return self

    def thaw(self) -> "FakeQuantHooks":
        """Back to dynamic ranges (quantization-aware training)."""
        self.frozen = False
        self.tensor_params = {}
        self._weights_q = {}
        return self

    def quantized_tensors(self) -> dict[str, tuple[QuantPoint, QuantParams, np.ndarray]]:
        """Frozen stored tensors by point: (point, params, fp32 values they quantize)."""
        if not self.frozen:
            raise ValueError("freeze() the hooks before exporting")
        out = {}
        p = self.model.params
        for point in self.points.values():
            if point.kind == "activation":
                continue
            if point.kind == "hash_level":
                rows = slice(self._level_slices(point)[0].start, self._level_slices(point)[-1].stop)
                values = p["hash_table"][rows]
            else:
                values = p[WEIGHT_PARAMS[point.name]]
            out[point.name] = (point, self.tensor_params.get(point.name), values)
        return out
