"""The same policies priced on the preset's design (area mode 'fixed') and on the design whose grid
SRAM is sized to hold every table (area mode 'fit'), with the share of the frame each unit is busy.

    python benchmarks/area_modes.py runs/variants_hw --scene primitives --accel edge --seed 0 \
        --out benchmarks/results/area_modes.json

Reads a finished `hero-lite sweep` folder (its sweep.json and the scene's fp32 checkpoint) and
prices, on the search frame (validation view 0, as the searches do) of that checkpoint:
- every row of the sweep for SCENE, ACCEL and SEED (caq, caq_snapped, heuristic, hero@F, ...);
- the heuristic with one change each: every hash level at 4, at 8 or at 16 bits, the fine levels
  (8-15) at 2, and every MLP weight and activation at 8 bits.
Prints and writes one JSON object: provenance, and per policy and area mode the latency (ms), area
(mm^2), cost efficiency (1 / (ms x mm^2)), model bytes and the busy share of each pipeline unit
(`SimReport.unit_shares`: the unit with the largest share bounds the frame).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance  # noqa: E402

MODES = ("fixed", "fit")


def heuristic_variants(heuristic: dict[str, int]) -> dict[str, dict[str, int]]:
    """The heuristic's bits (point name -> bits, hero set) with one change each."""
    def changed(bits_of) -> dict[str, int]:
        return {name: bits_of(name, bits) for name, bits in heuristic.items()}

    is_hash = lambda name: name.startswith("hash.")  # noqa: E731
    return {
        "heuristic, hash 4": changed(lambda n, b: 4 if is_hash(n) else b),
        "heuristic, hash 8": changed(lambda n, b: 8 if is_hash(n) else b),
        "heuristic, hash 16": changed(lambda n, b: 16 if is_hash(n) else b),
        "heuristic, fine hash 2": changed(lambda n, b: 2 if is_hash(n) and int(n[-2:]) >= 8 else b),
        "heuristic, MLP 8": changed(lambda n, b: b if is_hash(n) else 8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--scene", default="primitives")
    parser.add_argument("--accel", default="edge")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--out")
    args = parser.parse_args()

    from hero_lite.search.cost import policy_cost
    from hero_lite.search.hero import SearchConfig, prepare
    from hero_lite.search.workload import workload_from_trace

    with open(os.path.join(args.sweep_dir, "sweep.json")) as f:
        sweep = json.load(f)
    scene = sweep["scenes"][args.scene]
    checkpoint = os.path.join(args.sweep_dir, scene["train"]["checkpoint"])
    rows = scene["accels"][args.accel]["seeds"][args.seed]["rows"]
    spec_search = sweep["spec"]["search"]
    config = SearchConfig(accel=args.accel, scene_downscale=spec_search.get("scene_downscale", 1))
    setup = prepare(checkpoint, sweep["spec"]["scenes"][args.scene], config)

    policies = {name: (row["point_set"], row["bits"]) for name, row in rows.items()}
    policies.update({name: ("hero", bits) for name, bits in heuristic_variants(rows["heuristic"]["bits"]).items()})
    workloads = {point_set: [workload_from_trace(t, setup.model.config, point_set) for t in setup.traces]
                 for point_set in {point_set for point_set, _ in policies.values()}}
    priced = {}
    for name, (point_set, bits) in policies.items():
        priced[name] = {}
        for mode in MODES:
            cost = policy_cost(workloads[point_set], bits, setup.accel, area_mode=mode)
            priced[name][mode] = {"latency_ms": cost.latency_ms, "area_mm2": cost.area_mm2,
                                  "cost_efficiency": cost.cost_efficiency, "model_bytes": cost.model_bytes,
                                  "unit_shares": cost.reports[0].unit_shares()}
        fixed, fit = priced[name]["fixed"], priced[name]["fit"]
        print(f"{name:24s} fixed {fixed['latency_ms']:.3f} ms {fixed['area_mm2']:.3f} mm^2 | fit "
              f"{fit['latency_ms']:.3f} ms {fit['area_mm2']:.3f} mm^2, hash memory busy "
              f"{fit['unit_shares']['hash_memory']:.2f}, MLP {fit['unit_shares']['mlp']:.2f}", file=sys.stderr)
    result = {"benchmark": "area_modes", **provenance(), "scene": args.scene, "accel": args.accel, "seed": args.seed,
              "policies": priced}
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
