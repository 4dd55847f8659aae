"""Quantization points: the named list of every quantizable tensor of a model.

Two point sets:
- `hero` (HERO's unified observation space): one point per hash-grid level (`hash.l00` ...,
  coarse to fine), then the MLP in data-flow order, weights and activations interleaved:
  act.encoding, w.density0, act.density_hidden, w.density1, act.density_out, act.sh, w.color0,
  act.color_hidden0, w.color1, act.color_hidden1, w.color2, act.color_out. Hash levels take 2-16
  bits, MLP weights 2-8; a search picks activations from 2-8 as well (HAQ's action range), and a
  policy may hold activations up to 16 bits, the operand width of PEs that run wider activations at
  no cost (a search over the hardware's widths picks it there, `search.widths`); 32 means unquantized.
- `caq` mirrors CAQ's 15 quantizers in CAQ's order (CAQ code `manual_bit`,
  `calBitOps_CAQ`): one bit-width for the whole hash table (`hash.all`), plus the density after exp
  (`act.sigma`) and the colour after the sigmoid (`act.rgb`); bits 2-16 or 32.

`model_bytes` (the exact size of the packed export) is defined here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from hero_lite.nerf.config import ModelConfig
from hero_lite.nerf.hashgrid import HashGridLayout
from hero_lite.nerf.hooks import WEIGHT_PARAMS, hash_level_point

POINT_SETS = ("hero", "caq")
KINDS = ("hash_level", "weight", "activation")
FLOAT_BITS = 32
PARAM_BYTES_PER_QUANTIZER = 8  # one float32 scale + one int32 zero point


@dataclass(frozen=True)
class QuantPoint:
    """One quantizable tensor.

    Attributes
    ----------
    name : point name, e.g. 'hash.l03', 'w.color1', 'act.density_hidden'.
    kind : 'hash_level' | 'weight' | 'activation'.
    scheme : quantizer: 'asymmetric' (hash entries, signed activations), 'symmetric' (weights),
        'unsigned' (ReLU, exp and sigmoid outputs).
    shape : tensor shape; (entries, n_feat) for hash levels, (fan_in, fan_out) for weights,
        (width,) per sample for activations.
    n_elements : stored elements (0 for activations, which are not stored).
    per_sample : lookups of F-feature entries (hash: 8 corners), MACs (weights) or values
        (activations) per sample.
    min_bits, max_bits : allowed bit range; 32 (unquantized) is always allowed too.
    levels : hash levels this point covers (empty for MLP points).
    resolution : vertices per axis of the level (0 if not a single level).
    dense : True for a dense (collision-free) level.
    default_bits : the starting bit-width of the set (CAQ starts act.sigma at 32).
    widths : the bit-widths a search picks from, ascending, in [min_bits, max_bits]; empty: every
        width of the range (`choices`). A policy may still hold any width the range allows.
    """

    name: str
    kind: str
    scheme: str
    shape: tuple[int, ...]
    n_elements: int
    per_sample: int
    min_bits: int
    max_bits: int
    levels: tuple[int, ...] = ()
    resolution: int = 0
    dense: bool = False
    default_bits: int = 8
    widths: tuple[int, ...] = ()

    def choices(self) -> tuple[int, ...]:
        """The bit-widths a search picks from, ascending: `widths`, or min_bits..max_bits."""
        return self.widths or tuple(range(self.min_bits, self.max_bits + 1))

    def allows(self, bits: int) -> bool:
        """True if `bits` is in [min_bits, max_bits] or is 32 (unquantized)."""
        return isinstance(bits, int) and not isinstance(bits, bool) and (
            bits == FLOAT_BITS or self.min_bits <= bits <= self.max_bits)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "scheme": self.scheme, "shape": list(self.shape),
                "n_elements": self.n_elements, "per_sample": self.per_sample, "min_bits": self.min_bits,
                "max_bits": self.max_bits, "levels": list(self.levels), "resolution": self.resolution,
                "dense": self.dense, "default_bits": self.default_bits, "widths": list(self.widths)}


def _mlp_points(config: ModelConfig, max_bits: int, with_caq_extras: bool, activation_max_bits: int | None = None,
                activation_widths: tuple[int, ...] = ()) -> dict[str, QuantPoint]:
    """The MLP's weight points (2..max_bits) and activation points (2..activation_max_bits, default
    max_bits; a search picks from `activation_widths`, empty: the whole range)."""
    h, g = config.hidden_width, config.geo_feat
    enc, cin = config.encoding_width, config.color_in_width
    shapes = {"w.density0": (enc, h), "w.density1": (h, g), "w.color0": (cin, h), "w.color1": (h, h), "w.color2": (h, 3)}
    points = {}
    for name, shape in shapes.items():
        points[name] = QuantPoint(name, "weight", "symmetric", shape, shape[0] * shape[1], shape[0] * shape[1], 2, max_bits)
    acts = {
        "act.encoding": ("asymmetric", enc),
        "act.density_hidden": ("unsigned", h),
        "act.density_out": ("asymmetric", g),
        "act.sh": ("asymmetric", config.sh_width),
        "act.color_hidden0": ("unsigned", h),
        "act.color_hidden1": ("unsigned", h),
        "act.color_out": ("asymmetric", 3),
    }
    if with_caq_extras:
        acts["act.sigma"] = ("unsigned", 1)
        acts["act.rgb"] = ("asymmetric", 3)
    for name, (scheme, width) in acts.items():
        points[name] = QuantPoint(name, "activation", scheme, (width,), 0, width, 2, activation_max_bits or max_bits,
                                  default_bits=FLOAT_BITS if name == "act.sigma" else 8, widths=activation_widths)
    return points


def quant_points(config: ModelConfig, point_set: str = "hero") -> list[QuantPoint]:
    """The ordered quantization points of a model configuration.

    Parameters
    ----------
    config : ModelConfig of the model.
    point_set : 'hero' (per-level hash points, walk order of the agent) or 'caq' (CAQ's 15).
    """
    if point_set not in POINT_SETS:
        raise ValueError(f"point set {point_set!r}; valid: {', '.join(POINT_SETS)}")
    layout = HashGridLayout.from_config(config.grid)
    n_feat = config.grid.n_feat
    if point_set == "hero":
        points = [
            QuantPoint(hash_level_point(level), "hash_level", "asymmetric", (int(layout.sizes[level]), n_feat),
                       int(layout.sizes[level]) * n_feat, 8, 2, 16, levels=(level,),
                       resolution=int(layout.resolutions[level]), dense=not bool(layout.hashed[level]))
            for level in range(layout.n_levels)
        ]
        mlp = _mlp_points(config, 8, with_caq_extras=False, activation_max_bits=16,
                          activation_widths=tuple(range(2, 9)))
        order = ["act.encoding", "w.density0", "act.density_hidden", "w.density1", "act.density_out", "act.sh",
                 "w.color0", "act.color_hidden0", "w.color1", "act.color_hidden1", "w.color2", "act.color_out"]
        return points + [mlp[name] for name in order]
    mlp = _mlp_points(config, 16, with_caq_extras=True)
    table = QuantPoint("hash.all", "hash_level", "asymmetric", (layout.n_entries, n_feat), layout.n_entries * n_feat,
                       8 * layout.n_levels, 2, 16, levels=tuple(range(layout.n_levels)))
    caq_order = ["act.encoding", "hash.all", "act.sigma", "w.density0", "act.density_hidden", "act.density_out",
                 "w.density1", "act.sh", "act.color_out", "act.rgb", "w.color0", "act.color_hidden0", "w.color1",
                 "act.color_hidden1", "w.color2"]
    by_name = dict(mlp, **{"hash.all": table})
    return [by_name[name] for name in caq_order]


def packed_tensor_bytes(n_elements: int, bits: int) -> int:
    """Bytes of one stored tensor: ceil(n * bits / 8) packed codes + scale and zero point, or
    4 bytes per element when unquantized (bits 32, float32, no quantizer parameters)."""
    if bits == FLOAT_BITS:
        return 4 * n_elements
    return -(-n_elements * bits // 8) + PARAM_BYTES_PER_QUANTIZER


def model_bytes(points: list[QuantPoint], bits: dict[str, int]) -> int:
    """Exact size in bytes of the packed export of a policy.

    Stored tensors (hash levels, weights) contribute `packed_tensor_bytes`; each quantized
    activation contributes its scale and zero point (8 bytes); unquantized activations nothing.
    Per-channel weight scales are not counted here (the export is per-tensor).
    The occupancy grid is not part of the model size (the same for every policy).
    """
    total = 0
    for p in points:
        b = bits[p.name]
        if p.kind == "activation":
            total += 0 if b == FLOAT_BITS else PARAM_BYTES_PER_QUANTIZER
        else:
            total += packed_tensor_bytes(p.n_elements, b)
    return total


def fp32_bytes(points: list[QuantPoint]) -> int:
    """Size in bytes of the unquantized model (all stored tensors as float32)."""
    return sum(4 * p.n_elements for p in points if p.kind != "activation")


def weight_param_of(point_name: str) -> str:
    """Model parameter name of a weight point ('w.color1' -> 'color_w1')."""
    return WEIGHT_PARAMS[point_name]
