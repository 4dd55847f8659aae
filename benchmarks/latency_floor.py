"""How fast any policy can be: the latency floor of each accelerator of a sweep, against its rows.

    python benchmarks/latency_floor.py runs/variants_hw runs/edge_fulltables \
        --out benchmarks/results/latency_floor.json

Reads finished `hero-lite sweep` folders (sweep.json and each scene's fp32 checkpoint) and prices,
on the search frame (validation view 0, as the searches do) and on the report frame (test view 0,
traced with the fp32 model), on Instant-NGP's full-size grid when the spec's search sets
full_size, for every accelerator and seed of the sweep:
- the floor: every point at the narrowest width the accelerator runs (`widths.hardware_widths`:
  hash levels and MLP at 2 bits on the bundled presets), whatever it does to quality;
- each row of the sweep (caq, caq_snapped, heuristic, hero@F, ...) at its bits.
`best_ratio` = row latency / floor latency is the largest latency ratio any policy can reach over
that row on that accelerator and frame. Prints and writes one JSON object: provenance, and per
sweep, scene, accelerator, frame and seed the latencies (ms) and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance  # noqa: E402


def floor_bits(model_config, accel) -> dict[str, int]:
    """Every point of HERO's set at the narrowest width `accel` runs (point name -> bits)."""
    from hero_lite.search.hero import SearchConfig, search_points

    return {p.name: min(p.choices()) for p in search_points(model_config, SearchConfig(widths="hardware"), accel)}


def price_sweep(sweep_dir: str) -> dict:
    """Per scene, accelerator and seed: the floor's and each row's latency on the search frame (ms)."""
    from hero_lite.search.cost import policy_cost
    from hero_lite.search.hero import SearchConfig, prepare
    from hero_lite.search.workload import trace_views, workload_from_trace

    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        sweep = json.load(f)
    spec_search = sweep["spec"]["search"]
    full_size = bool(spec_search.get("full_size", False))
    out = {"spec": sweep["spec"]["name"], "full_size": full_size, "scenes": {}}
    for scene_name, scene in sweep["scenes"].items():
        checkpoint = os.path.join(sweep_dir, scene["train"]["checkpoint"])
        out["scenes"][scene_name] = {}
        for accel_name, accel_entry in scene["accels"].items():
            config = SearchConfig(accel=accel_name, scene_downscale=spec_search.get("scene_downscale", 1),
                                  full_size=full_size, budgets={"latency_ms": "1.0x"})
            setup = prepare(checkpoint, sweep["spec"]["scenes"][scene_name], config)
            frames = {"search": setup.traces, "test": trace_views(setup.model, setup.test_scene, (0,))}
            priced = {}
            for frame, traces in frames.items():
                workloads = {s: [workload_from_trace(t, setup.model.config, s, full_size) for t in traces]
                             for s in ("hero", "caq")}
                floor = policy_cost(workloads["hero"], floor_bits(setup.model.config, setup.accel), setup.accel).latency_ms
                seeds = {}
                for seed, entry in accel_entry["seeds"].items():
                    rows = {}
                    for name, row in entry["rows"].items():
                        latency = policy_cost(workloads[row["point_set"]], row["bits"], setup.accel).latency_ms
                        rows[name] = {"latency_ms": latency, "best_ratio": latency / floor}
                    seeds[seed] = rows
                priced[frame] = {"floor_latency_ms": floor, "seeds": seeds}
                snapped = [r["caq_snapped"]["best_ratio"] for r in seeds.values() if "caq_snapped" in r]
                print(f"{scene_name} on {accel_name}, {frame} frame: floor {floor:.3f} ms; at most "
                      + ", ".join(f"{x:.2f}x" for x in snapped) + " over caq_snapped per seed")
            out["scenes"][scene_name][accel_name] = priced
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args()
    result = {"provenance": provenance(), "sweeps": [price_sweep(d) for d in args.sweep_dirs]}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
