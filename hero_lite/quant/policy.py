"""QuantPolicy: bits per quantization point, with JSON round trip and validation.

File format: `{"set": "hero" | "caq", "model": {...model signature...}, "points": {name: bits}}`.
The model signature (hash-grid config and MLP widths) lets a policy made for another model be
rejected with a clear message. Bits are ints; 32 means unquantized.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.points import FLOAT_BITS, POINT_SETS, QuantPoint, model_bytes, quant_points


def model_signature(config: ModelConfig) -> dict:
    """The parts of a model config a policy depends on."""
    g = config.grid
    return {"n_levels": g.n_levels, "n_feat": g.n_feat, "log2_table_size": g.log2_table_size, "base_res": g.base_res,
            "max_res": g.max_res, "hidden_width": config.hidden_width, "geo_feat": config.geo_feat}


@dataclass(frozen=True)
class QuantPolicy:
    """Bits for every point of a point set of one model configuration.

    Attributes
    ----------
    point_set : 'hero' or 'caq'.
    bits : dict point name -> int bits (every point of the set, nothing else).
    model : model signature (see `model_signature`).
    """

    point_set: str
    bits: dict
    model: dict

    def points(self, config: ModelConfig) -> list[QuantPoint]:
        return quant_points(config, self.point_set)

    def to_dict(self) -> dict:
        return {"set": self.point_set, "model": dict(self.model), "points": dict(self.bits)}

    def save(self, path: str) -> None:
        from hero_lite.runfolder import write_json_atomically

        write_json_atomically(path, self.to_dict())

    def model_bytes(self, config: ModelConfig) -> int:
        return model_bytes(self.points(config), self.bits)

    def key(self) -> tuple:
        """Hashable identity of the policy (set, bits in point order)."""
        return (self.point_set, tuple(sorted(self.bits.items())))

    @classmethod
    def from_dict(cls, data: dict, config: ModelConfig, source: str = "policy") -> "QuantPolicy":
        """Validate and build a policy for `config`; raises ValueError naming the problem."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: top level must be a JSON object with 'set' and 'points', "
                             f"got {type(data).__name__}")
        unknown_keys = sorted(set(data) - {"set", "model", "points"})
        if unknown_keys:
            raise ValueError(f"{source}: unknown key(s) {', '.join(unknown_keys)}; valid keys: set, model, points")
        point_set = data.get("set", "hero")
        if not isinstance(point_set, str) or point_set not in POINT_SETS:
            raise ValueError(f"{source}: set {point_set!r}; valid: {', '.join(POINT_SETS)}")
        signature = model_signature(config)
        model = data.get("model", signature)
        if not isinstance(model, dict):
            raise ValueError(f"{source}: 'model' must be an object (the model signature: {', '.join(signature)}), "
                             f"got {type(model).__name__}")
        if model != signature:
            diffs = [f"{k} {model.get(k)!r} (model: {v!r})" for k, v in signature.items() if model.get(k) != v]
            raise ValueError(f"{source}: made for a different model config: {', '.join(diffs) or 'signature differs'}")
        bits = data.get("points")
        if not isinstance(bits, dict):
            raise ValueError(f"{source}: 'points' must be an object mapping point names to bits, "
                             f"got {type(bits).__name__}")
        points = quant_points(config, point_set)
        by_name = {p.name: p for p in points}
        unknown = sorted(set(bits) - set(by_name))
        if unknown:
            raise ValueError(f"{source}: unknown point name(s) {', '.join(unknown)} for set '{point_set}' "
                             f"(valid: {points[0].name} ... {points[-1].name}, see `hero-lite points`)")
        missing = [p.name for p in points if p.name not in bits]
        if missing:
            raise ValueError(f"{source}: no bits for point(s) {', '.join(missing)}")
        for name, b in bits.items():
            p = by_name[name]
            if not p.allows(b):
                raise ValueError(f"{source}: {name} = {b!r} bits; valid: {p.min_bits}-{p.max_bits} or {FLOAT_BITS}")
        ordered = {p.name: int(bits[p.name]) for p in points}
        return cls(point_set, ordered, signature)

    @classmethod
    def load(cls, path: str, config: ModelConfig) -> "QuantPolicy":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"policy file not found: {path}")
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"policy {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except (UnicodeDecodeError, RecursionError):
            raise ValueError(f"policy {path} is not valid JSON (not UTF-8 text, or nested too deeply)") from None
        return cls.from_dict(data, config, source=f"policy {path}")


def uniform_policy(config: ModelConfig, hash_bits: int, mlp_bits: int, point_set: str = "hero",
                   activation_bits: int | None = None) -> QuantPolicy:
    """Every hash point at `hash_bits`, every MLP weight at `mlp_bits`, every activation at
    `activation_bits` (default `mlp_bits`). Raises ValueError for bits a point does not allow."""
    points = quant_points(config, point_set)
    act_bits = mlp_bits if activation_bits is None else activation_bits
    bits = {}
    for p in points:
        b = hash_bits if p.kind == "hash_level" else (mlp_bits if p.kind == "weight" else act_bits)
        if not p.allows(b):
            raise ValueError(f"{p.name} does not allow {b} bits; valid: {p.min_bits}-{p.max_bits} or {FLOAT_BITS}")
        bits[p.name] = b
    return QuantPolicy(point_set, bits, model_signature(config))


def fp32_policy(config: ModelConfig, point_set: str = "hero") -> QuantPolicy:
    """The unquantized model as a policy (32 bits everywhere)."""
    return uniform_policy(config, FLOAT_BITS, FLOAT_BITS, point_set)
