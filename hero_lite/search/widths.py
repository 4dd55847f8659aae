"""The widths an accelerator runs without waste, for hardware snapping and the search's action space.

A width is wasted when the next wider one costs the hardware exactly the same: BitFusion PEs run
5-7-bit operands like 8-bit ones (BitFusion, ISCA 2018: 2, 4 or 8 bits per fused PE), and a hash
entry of 5-7 bits per feature takes the 8-bit slot of the xor and block_mod memories (entries in
power-of-two slots, docs/accelerator.md "Hash memory"). The wasted width still loses precision, so
a search that may pick it can lose quality and buy nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hero_lite.accel import units
from hero_lite.quant.points import FLOAT_BITS, QuantPoint


def _operand_cost(bits: int, kind: str, mlp) -> tuple:
    """What an MLP operand of `bits` bits costs on `mlp` (an accel MLPEngineConfig), the other operand
    at pmax: (effective rows, passes, MAC energy) from the simulator's own `accel.units` functions
    (docs/accelerator.md, "MLP engine"). The three are products of one factor per operand, so two
    widths with the same cost here cost the same beside any other operand."""
    b_a, b_w = (mlp.pmax, bits) if kind == "weight" else (bits, mlp.pmax)
    return (units.effective_rows(b_a, b_w, mlp), units.operand_passes(b_a, b_w, mlp), units.mac_energy_pj(b_a, b_w, mlp))


def snap_mlp_bits(bits: int, kind: str, mlp) -> int:
    """The width an MLP weight or activation of `bits` bits runs at on `mlp` (an accel
    MLPEngineConfig) without waste: the largest width w <= pmax that costs what min(bits, pmax) costs
    (`_operand_cost`: rows, passes and energy).

    A width above pmax goes down to pmax (one pass instead of ceil(bits / pmax)); one below pmax goes
    up to the widest width the PEs run at the same rate, which costs no time and no energy. With
    pmin = 2, pmax = 8: bitfusion 2 -> 2, 3 -> 4, 4 -> 4, 5..8 -> 8, 9.. -> 8 (the smallest pmin 2^k
    >= bits, capped at pmax); bit_serial weights (ceil(b / pmin) serial steps) 3 -> 4, 5 -> 6,
    7 -> 8, activations -> 8; fixed everything -> 8. 32 (unquantized) stays 32.
    """
    if bits == FLOAT_BITS:
        return bits
    low = min(bits, mlp.pmax)
    cost = _operand_cost(low, kind, mlp)
    return max(w for w in range(low, mlp.pmax + 1) if _operand_cost(w, kind, mlp) == cost)


def _hash_cost(bits: int, n_feat: int, accel) -> tuple:
    """What a hash entry of `bits` bits per feature costs on `accel` (an AccelConfig): entries per
    SRAM word, words per entry and entries per cache line (`units.packing`)."""
    epw, wpe, epl = units.packing(n_feat, np.array([bits]), accel.hash_engine.word_bits, accel.cache.line_bytes,
                                  units.uses_pow2_slots(accel))
    return int(epw[0]), int(wpe[0]), int(epl[0])


def _search_top(point: QuantPoint, accel) -> int:
    """The widest width a search over hardware widths offers `point`: the top of its choices; for an
    activation, the widest width up to max_bits that the PEs run at that top's cost (`snap_mlp_bits`:
    16 on PEs with a 16-bit activation operand, 8 on BitFusion's), since a narrower activation there
    loses precision and buys nothing."""
    top = max(point.choices())
    if point.kind == "activation" and top != FLOAT_BITS:
        top = min(max(top, snap_mlp_bits(top, "activation", accel.mlp_engine)), point.max_bits)
    return top


def hardware_widths(point: QuantPoint, accel) -> tuple[int, ...]:
    """The widths from `point`'s min_bits to its search top (`_search_top`) that `accel` (an
    AccelConfig) runs without waste, ascending: w such that w is the top or w + 1 costs more
    (`_operand_cost` for MLP weights and activations, `_hash_cost` for hash levels). E.g. on `edge`
    (BitFusion 2-8 bits, xor memory, F = 2): MLP 2..8 -> (2, 4, 8); hash 2..16 -> (2, 4, 8, 16); on
    `edge_bitserial` (16-bit activation operand, 1-bit weight steps): activations -> (16,), weights
    2..8 -> (2, 3, ..., 8)."""
    if point.kind == "hash_level":
        cost = lambda b: _hash_cost(b, point.shape[1], accel)  # noqa: E731
    else:
        cost = lambda b: _operand_cost(b, point.kind, accel.mlp_engine)  # noqa: E731
    top = _search_top(point, accel)
    return tuple(w for w in range(point.min_bits, top + 1) if w == top or cost(w + 1) != cost(w))


def with_hardware_widths(points: list[QuantPoint], accel) -> list[QuantPoint]:
    """`points` with each point's `widths` set to `hardware_widths` and min_bits to the narrowest of
    them (so the cheapest policy, every point at min_bits, is one the search can pick); a frozen
    point (min_bits = max_bits) is kept."""
    narrowed = []
    for p in points:
        if p.min_bits == p.max_bits or p.min_bits == FLOAT_BITS:
            narrowed.append(p)
            continue
        widths = hardware_widths(p, accel)
        narrowed.append(dataclasses.replace(p, widths=widths, min_bits=widths[0]))
    return narrowed


def snap_to_hardware(bits: dict[str, int], points: list[QuantPoint], accel) -> dict[str, int]:
    """Every MLP weight and activation width snapped to what `accel` (an AccelConfig) runs without
    waste (`snap_mlp_bits`: the MLP engine's PE mode, pmin and pmax), then clipped to the point's
    allowed range; hash widths are kept. Returns point name -> bits.

    MLP widths go up (free on the PEs) or, above pmax, down. Hash widths stay as learned: an entry
    of b bits costs its slot in the SRAM word and cache line whatever b is, so no hash width runs
    slower than the widest width with its packing; snapping up would only add model bytes, and
    snapping down would be another policy, not the same one run by the hardware."""
    snapped = {}
    for p in points:
        b = bits[p.name]
        new = b if p.kind == "hash_level" else snap_mlp_bits(b, p.kind, accel.mlp_engine)
        snapped[p.name] = new if new == FLOAT_BITS else min(max(new, p.min_bits), p.max_bits)
    return snapped
