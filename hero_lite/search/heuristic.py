"""The three-rule hand policy: the baseline a hardware-aware engineer writes without a search, and
a start policy for the search's actor (`SearchConfig.start = "heuristic"`)."""

from __future__ import annotations

from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import QuantPolicy, model_signature
from hero_lite.search.widths import snap_to_hardware

HEURISTIC_BITS = {"coarse_hash": 8, "fine_hash": 4, "wide_input_weight": 4, "other": 8}


def heuristic_policy(config: ModelConfig) -> QuantPolicy:
    """Three hand rules on HERO's point set:

    - the weight matrices with hidden_width (64) inputs at 4 bits: `w.density1`, `w.color1` and
      `w.color2`, the layers BitFusion runs at twice the 8-bit rate;
    - every other weight (`w.density0`, `w.color0`) and every activation at 8 bits;
    - hash levels l < L // 2 (the coarse half, `hash.l00`-`hash.l07` of 16) at 8 bits, the fine half
      (`hash.l08`-`hash.l15`) at 4.
    """
    half = config.grid.n_levels // 2
    bits = {}
    for p in quant_points(config, "hero"):
        if p.kind == "hash_level":
            bits[p.name] = HEURISTIC_BITS["coarse_hash" if p.levels[0] < half else "fine_hash"]
        elif p.kind == "weight" and p.shape[0] == config.hidden_width:
            bits[p.name] = HEURISTIC_BITS["wide_input_weight"]
        else:
            bits[p.name] = HEURISTIC_BITS["other"]
    return QuantPolicy("hero", bits, model_signature(config))


def heuristic_snapped_bits(config: ModelConfig, accel) -> dict[str, int]:
    """`heuristic_policy`'s bits snapped to `accel` (an AccelConfig; `widths.snap_to_hardware`): the
    same rules, each MLP width raised to the widest width the PEs run at its cost (edge: unchanged;
    edge_bitserial: activations 8 -> 16). Returns point name -> bits on HERO's point set."""
    return snap_to_hardware(heuristic_policy(config).bits, quant_points(config, "hero"), accel)
