"""Bit-packed export of a quantized model, and loading it back.

Packing: codes (non-negative ints below 2^bits; symmetric codes are stored offset by -qmin) are
written as one little-endian bit stream, least significant bit first: code k occupies bits
[k*bits, (k+1)*bits) of the stream, and bit j of the stream is bit (j mod 8) of byte j // 8.
So n codes of b bits take ceil(n*b/8) bytes.

Quantized checkpoint (same HDF5 format as fp32 checkpoints, kind "quantized"):
```
/ attrs ... (as hero_lite.nerf.checkpoint), policy (JSON), per_channel (bool)
/aabb, /occupancy/...                      as fp32 checkpoints
/quant/<point>/codes    uint8 packed codes  (stored tensors: hash levels, weights)
/quant/<point>/scale    float32 (per tensor () or per channel (fan_out,))
/quant/<point>/zero_point int32, same shape as scale
/quant/<point>          attrs: kind, scheme, bits, shape
/float/<point>          float32 tensor for stored points left at 32 bits
/activations/<point>    attrs: scheme, bits, scale, zero_point (quantized activations only)
```
`model_bytes` of an export is the sum of the bytes of every codes, scale, zero_point and float
dataset: exactly `hero_lite.quant.points.model_bytes` of the policy (per-tensor scales).
"""

from __future__ import annotations

import json
import os
import reprlib

import h5py
import numpy as np
from numba import njit

from hero_lite.nerf.checkpoint import (
    open_checkpoint,
    read_common,
    read_dataset,
    require_node,
    write_model_groups,
)
from hero_lite.nerf.hooks import WEIGHT_PARAMS
from hero_lite.nerf.model import NGPModel
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.points import FLOAT_BITS
from hero_lite.quant.policy import QuantPolicy
from hero_lite.quant.quantizers import SCHEMES, QuantParams, dequantize, quantize
from hero_lite.runfolder import write_atomically


@njit(cache=True)
def _pack_kernel(codes, bits, out):
    acc = np.uint64(0)
    n_acc = 0
    k = 0
    mask = np.uint64((1 << bits) - 1)
    for i in range(codes.shape[0]):
        acc |= (np.uint64(codes[i]) & mask) << np.uint64(n_acc)
        n_acc += bits
        while n_acc >= 8:
            out[k] = np.uint8(acc & np.uint64(0xFF))
            acc >>= np.uint64(8)
            n_acc -= 8
            k += 1
    if n_acc > 0:
        out[k] = np.uint8(acc & np.uint64(0xFF))


@njit(cache=True)
def _unpack_kernel(packed, bits, n, out):
    acc = np.uint64(0)
    n_acc = 0
    k = 0
    mask = np.uint64((1 << bits) - 1)
    for i in range(n):
        while n_acc < bits:
            acc |= np.uint64(packed[k]) << np.uint64(n_acc)
            n_acc += 8
            k += 1
        out[i] = np.int64(acc & mask)
        acc >>= np.uint64(bits)
        n_acc -= bits


def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack non-negative integer codes < 2^bits (any shape, flattened in C order) into uint8.

    Returns (ceil(n * bits / 8),) uint8. Example: codes [1, 2, 3] at 2 bits -> one byte
    0b00111001 = 57.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"bits = {bits}; valid: 1..16")
    flat = np.ascontiguousarray(codes, dtype=np.int64).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= 1 << bits):
        raise ValueError(f"codes must lie in [0, {(1 << bits) - 1}] for {bits} bits")
    out = np.zeros(-(-flat.size * bits // 8), dtype=np.uint8)
    _pack_kernel(flat, bits, out)
    return out


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_bits`: (n,) int64 codes."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits = {bits}; valid: 1..16")
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.size != -(-n * bits // 8):
        raise ValueError(f"{packed.size} bytes cannot hold exactly {n} codes of {bits} bits")
    out = np.empty(n, dtype=np.int64)
    _unpack_kernel(packed, bits, n, out)
    return out


def save_quantized(path: str, model: NGPModel, hooks: FakeQuantHooks, metadata: dict | None = None) -> int:
    """Write the quantized model of frozen `hooks` as a packed HDF5 checkpoint, atomically.

    Returns model_bytes: the bytes of every stored tensor dataset (codes, scales, zero points,
    unquantized float32 tensors) plus the activation quantizers' scales and zero points.
    """
    tensors = hooks.quantized_tensors()
    policy = hooks.policy
    size = {"bytes": 0}

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            write_model_groups(f, model, "quantized", metadata or {}, params=False)
            f.attrs["policy"] = json.dumps(policy.to_dict())
            f.attrs["per_channel"] = bool(hooks.per_channel)
            quant = f.create_group("quant")
            floats = f.create_group("float")
            for name, (point, params, values) in tensors.items():
                bits = policy.bits[name]
                if bits == FLOAT_BITS:
                    floats.create_dataset(name, data=values.astype(np.float32))
                    size["bytes"] += values.size * 4
                    continue
                codes = quantize(values, params) - params.qmin
                g = quant.create_group(name)
                packed = pack_bits(codes, bits)
                g.create_dataset("codes", data=packed)
                g.create_dataset("scale", data=np.asarray(params.scale, np.float32))
                g.create_dataset("zero_point", data=np.asarray(params.zero_point, np.int32))
                g.attrs.update({"kind": point.kind, "scheme": params.scheme, "bits": bits, "shape": list(values.shape)})
                size["bytes"] += packed.nbytes + 4 * np.asarray(params.scale).size + 4 * np.asarray(params.zero_point).size
            acts = f.create_group("activations")
            for name, params in hooks.act_params.items():
                g = acts.create_group(name)
                g.attrs.update({"scheme": params.scheme, "bits": params.bits, "scale": float(params.scale),
                                "zero_point": int(params.zero_point)})
                size["bytes"] += 8
            f.attrs["model_bytes"] = size["bytes"]

    write_atomically(path, write)
    return size["bytes"]


def is_quantized_checkpoint(path: str) -> bool:
    """True if `path` is a hero-lite checkpoint of kind 'quantized' (errors as `open_checkpoint`)."""
    with open_checkpoint(path) as f:
        return f.attrs.get("kind") == "quantized"


def _attr(node, name: str, where: str):
    try:
        return node.attrs[name]
    except KeyError:
        raise ValueError(f"{where} has no attribute '{name}'") from None


def _quant_params(where: str, point, policy_bits: int, scheme, bits, scale, zero_point,
                  scale_shapes: tuple[tuple[int, ...], ...]) -> QuantParams:
    """Validated QuantParams of one stored quantizer; errors name `where` (file and dataset)."""
    scheme = scheme.decode() if isinstance(scheme, bytes) else scheme
    bits = bits.item() if isinstance(bits, np.generic) else bits
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise ValueError(f"{where}: unknown quantization scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme != point.scheme:
        raise ValueError(f"{where}: scheme {scheme!r}; valid: {point.scheme!r}, the scheme of point {point.name}")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits != policy_bits:
        raise ValueError(f"{where}: bits = {bits!r}; valid: {policy_bits}, the policy's bits for {point.name}")
    scale = np.asarray(scale)
    zero_point = np.asarray(zero_point)
    if scale.dtype.kind not in "fiu" or scale.shape not in scale_shapes:
        raise ValueError(f"{where}: scale has shape {scale.shape} and dtype {scale.dtype}; valid: numbers of shape "
                         f"{' or '.join(str(s) for s in scale_shapes)}")
    scale = scale.astype(np.float32)
    # (written so that NaN is rejected too)
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError(f"{where}: scale must be finite and > 0, got {reprlib.repr(scale.tolist())}")
    params = QuantParams(policy_bits, scheme, scale, np.zeros(scale.shape, np.int64))
    if (zero_point.dtype.kind not in "iu" or zero_point.shape != scale.shape
            or np.any(zero_point < params.qmin) or np.any(zero_point > params.qmax)):
        raise ValueError(f"{where}: zero_point must be integers of shape {scale.shape} in "
                         f"[{params.qmin}, {params.qmax}], got {reprlib.repr(zero_point.tolist())}")
    return QuantParams(policy_bits, scheme, scale, zero_point.astype(np.int64))


def _stored_shape(model: NGPModel, point) -> tuple[int, ...]:
    """Shape of the tensor a stored (hash level or weight) point quantizes."""
    if point.kind == "weight":
        return tuple(model.params[WEIGHT_PARAMS[point.name]].shape)
    offsets = model.layout.offsets
    rows = int(offsets[point.levels[-1] + 1]) - int(offsets[point.levels[0]])
    return (rows, model.config.grid.n_feat)


def load_quantized(path: str) -> tuple[NGPModel, FakeQuantHooks, dict]:
    """Read a quantized checkpoint: the model holds the dequantized tensors, and the frozen hooks
    quantize the activations exactly as at export (and leave the already-quantized tensors as they are).

    Every stored quantizer is validated before use: scheme the point's (one of SCHEMES), bits the
    policy's, tensor shape the model config's, scales finite and > 0, zero points in [qmin, qmax],
    unquantized tensors finite float32. Errors are ValueErrors naming the file and the dataset.

    Returns (model, hooks, metadata); metadata includes 'model_bytes' and 'policy'.
    """
    path = os.fspath(path)
    with open_checkpoint(path) as f:
        if f.attrs.get("kind") != "quantized":
            raise ValueError(f"checkpoint {path} is a '{f.attrs.get('kind')}' checkpoint; expected a quantized one")
        config, aabb, occupancy, metadata = read_common(f, path)
        try:
            policy = QuantPolicy.from_dict(json.loads(f.attrs["policy"]), config, source=f"checkpoint {path}")
        except (KeyError, TypeError, json.JSONDecodeError):
            raise ValueError(f"checkpoint {path} has no readable policy attribute") from None
        per_channel = f.attrs.get("per_channel", False)
        if not isinstance(per_channel, (bool, np.bool_)):
            raise ValueError(f"checkpoint {path}: attribute per_channel = {per_channel!r}; valid: true or false")
        try:
            model_bytes = int(f.attrs.get("model_bytes", -1))
        except (TypeError, ValueError):
            raise ValueError(f"checkpoint {path}: attribute model_bytes must be an integer") from None
        points = {p.name: p for p in policy.points(config)}
        model = NGPModel.create(config, aabb, np.random.default_rng(0))
        model.occupancy = occupancy
        tensor_params: dict[str, QuantParams] = {}
        for name, point in points.items():
            if point.kind == "activation":
                continue
            bits = policy.bits[name]
            shape = _stored_shape(model, point)
            if bits == FLOAT_BITS:
                values = read_dataset(f, f"float/{name}", path, shape, kinds="f")
                if values.dtype != np.float32 or not np.all(np.isfinite(values)):
                    raise ValueError(f"checkpoint {path}: float/{name} must be finite float32")
            else:
                where = f"checkpoint {path}: quant/{name}"
                codes = read_dataset(f, f"quant/{name}/codes", path, kinds="u")
                g = f[f"quant/{name}"]
                stored_shape = tuple(int(s) for s in np.asarray(_attr(g, "shape", where)).reshape(-1))
                if stored_shape != shape:
                    raise ValueError(f"{where}: shape attribute {stored_shape}; the model config needs {shape}")
                per_channel_shape = (shape[-1],) if point.kind == "weight" and per_channel else ()
                params = _quant_params(where, point, bits, _attr(g, "scheme", where), _attr(g, "bits", where),
                                       read_dataset(f, f"quant/{name}/scale", path),
                                       read_dataset(f, f"quant/{name}/zero_point", path), ((), per_channel_shape))
                try:
                    flat = unpack_bits(codes, bits, int(np.prod(shape)))
                except ValueError as exc:
                    raise ValueError(f"{where}/codes: {exc}") from None
                values = dequantize(flat.reshape(shape) + params.qmin, params)
                tensor_params[name] = params
            _assign(model, point, values, path)
        act_params: dict[str, QuantParams] = {}
        for name, point in points.items():
            if point.kind != "activation" or policy.bits[name] == FLOAT_BITS:
                continue
            where = f"checkpoint {path}: activations/{name}"
            a = require_node(f, f"activations/{name}", path)
            act_params[name] = _quant_params(where, point, policy.bits[name], _attr(a, "scheme", where),
                                             _attr(a, "bits", where), _attr(a, "scale", where),
                                             _attr(a, "zero_point", where), ((),))
        ranges = {}
        for name, params in act_params.items():
            lo, hi = params.range()
            ranges[name] = (float(lo), float(hi))
        hooks = FakeQuantHooks(model, policy, ranges, per_channel=bool(per_channel))
        hooks.act_params.update(act_params)
        metadata = dict(metadata, model_bytes=model_bytes, policy=policy.to_dict())
    hooks.tensor_params = tensor_params
    hooks.frozen = True
    hooks.table(model.params["hash_table"])  # quantized table from the stored params (idempotent)
    hooks._weights_q = {}
    return model, hooks, metadata


def _assign(model: NGPModel, point, values: np.ndarray, path: str) -> None:
    if point.kind == "weight":
        target = model.params[WEIGHT_PARAMS[point.name]]
        if target.shape != values.shape:
            raise ValueError(f"checkpoint {path}: {point.name} has shape {values.shape}, expected {target.shape}")
        target[...] = values
        return
    offsets = model.layout.offsets
    rows = slice(int(offsets[point.levels[0]]), int(offsets[point.levels[-1] + 1]))
    target = model.params["hash_table"][rows]
    if target.shape != values.shape:
        raise ValueError(f"checkpoint {path}: {point.name} has shape {values.shape}, expected {target.shape}")
    target[...] = values
