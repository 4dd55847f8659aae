"""The headline experiment: HERO against CAQ-like at matched quality.

    python benchmarks/bench_compare.py [--scenes primitives,lattice] [--seeds 0,1,2]
        [--fractions 0.85,0.76] [--episodes 100] [--out runs/headline]

Protocol, per scene (edge preset, one fp32 checkpoint per scene shared by every method) and seed:
1. CAQ-like: learn bit-widths (defaults of `hero-lite compare`), final QAT, test-view report.
2. HERO: searches with a latency budget of f x CAQ's latency for each fraction f, and CAQ's model
   size as a size budget, each followed by the same final QAT and report. Both limits are CAQ's
   costs on the search's own cost frame (validation view 0; the test views never reach a search).
3. Keep the fastest HERO policy whose test PSNR is at most 0.1 dB below CAQ's; report latency ratio
   (CAQ / HERO), cost-efficiency ratio (HERO / CAQ) under the 'fixed' and 'fit' area modes and
   model-size ratio (CAQ / HERO).
Prints one JSON object (every run, the matches, mean and spread per scene) and writes it to
OUT/headline.json; a run folder per search under OUT. Checkpoints: runs/bench/SCENE/checkpoint.h5,
trained (1200 steps, seed 0) if missing. A search folder without summary.json but with agent.h5 resumes;
OUT/SCENE_sSEED_caq.json keeps a finished CAQ-like row for reuse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance, repo_path, search_in  # noqa: E402

MATCH_DB = 0.1


def _checkpoint(scene: str) -> str:
    from hero_lite.nerf.pipeline import train_run

    run_dir = repo_path("runs", "bench", scene)
    path = os.path.join(run_dir, "checkpoint.h5")
    if not os.path.exists(path):
        print(f"training {scene} (1200 steps)", file=sys.stderr)
        train_run(repo_path("scenes", scene), run_dir, steps=1200, seed=0)
    return path


def _numbers(summary: dict) -> dict:
    from hero_lite.nerf.config import ModelConfig
    from hero_lite.quant.points import quant_points
    from hero_lite.search.baselines import bitops_per_sample

    keys = ("psnr", "fp32_psnr", "latency_ms", "area_mm2", "cost_efficiency", "area_mm2_fit", "cost_efficiency_fit",
            "energy_uj", "model_bytes")
    bits = summary["policy"]["points"]
    points = quant_points(ModelConfig(), summary["policy"]["set"])
    return {k: summary[k] for k in keys} | {"bits": bits, "unit_shares": summary.get("unit_shares"),
                                            "bitops_per_sample": bitops_per_sample(bits, points)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", default="primitives,lattice")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fractions", default="0.85,0.76")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--out", default=repo_path("runs", "headline"))
    parser.add_argument("--ddpg", default="{}", help="DDPGConfig overrides for HERO's searches, as JSON "
                        "(for example '{\"critic\": \"step\"}' for HAQ's critic)")
    parser.add_argument("--penalties", default="1e-4,1e-3,1e-2",
                        help="CAQ-like penalty sweep on the first scene, seed 0 (empty: skip)")
    args = parser.parse_args()

    from hero_lite.quant.learned import BitLearningConfig
    from hero_lite.search.baselines import caq_policy
    from hero_lite.search.hero import SearchConfig, final_report, prepare

    fractions = [float(f) for f in args.fractions.split(",")]
    result = {"benchmark": "headline", **provenance(), "episodes": args.episodes,
              "ddpg": json.loads(args.ddpg),
              "fractions": fractions, "scenes": {}}
    os.makedirs(args.out, exist_ok=True)
    from hero_lite.nerf.config import ModelConfig
    from hero_lite.quant.policy import uniform_policy
    from hero_lite.quant.points import quant_points
    from hero_lite.search.baselines import bitops_per_sample

    uniform8_bitops = bitops_per_sample(uniform_policy(ModelConfig(), 8, 8).bits, quant_points(ModelConfig(), "hero"))
    result["uniform8_bitops_per_sample"] = uniform8_bitops
    for scene_index, scene in enumerate(args.scenes.split(",")):
        scene_dir = repo_path("scenes", scene)
        checkpoint = _checkpoint(scene)
        runs = []
        if scene_index == 0 and args.penalties:
            setup = prepare(checkpoint, scene_dir, SearchConfig(seed=0))
            sweep = []
            for penalty in [float(p) for p in args.penalties.split(",")]:
                policy, info = caq_policy(setup, BitLearningConfig(penalty=penalty), 0)
                row = _numbers(final_report(setup, policy, SearchConfig(point_set="caq"), None))
                sweep.append({"penalty": penalty, "mean_bits": info["mean_bits"], "psnr": row["psnr"],
                              "fp32_psnr": row["fp32_psnr"], "bitops_vs_uniform8": row["bitops_per_sample"] / uniform8_bitops,
                              "latency_ms": row["latency_ms"], "bits": row["bits"]})
                print(f"caq penalty {penalty}: mean bits {info['mean_bits']:.2f}, {row['psnr']:.2f} dB", file=sys.stderr)
            result["caq_penalty_sweep"] = {"scene": scene, "rows": sweep}
        for seed in [int(s) for s in args.seeds.split(",")]:
            start = time.perf_counter()
            base = SearchConfig(episodes=args.episodes, seed=seed)
            setup = prepare(checkpoint, scene_dir, base)
            caq_path = os.path.join(args.out, f"{scene}_s{seed}_caq.json")
            if os.path.exists(caq_path):  # CAQ-like is deterministic for a seed: a finished one is reused
                with open(caq_path) as f:
                    caq = json.load(f)
            else:
                policy, info = caq_policy(setup, BitLearningConfig(), seed)
                caq = _numbers(final_report(setup, policy, SearchConfig(point_set="caq", seed=seed), None)) | {
                    "mean_bits": info["mean_bits"], "seconds": time.perf_counter() - start}
                caq["search_frame"] = setup.frame_cost(caq["bits"], "caq")
                with open(caq_path, "w") as f:
                    json.dump(caq, f)
            print(f"{scene} seed {seed} caq: {caq['psnr']:.2f} dB {caq['latency_ms']:.3f} ms", file=sys.stderr)
            caq_frame = caq["search_frame"]
            heroes = []
            for fraction in fractions:
                start = time.perf_counter()
                limit = f"{fraction * caq_frame['latency_ms']:.6f}"
                config = SearchConfig(episodes=args.episodes, seed=seed, ddpg=json.loads(args.ddpg),
                                      budgets={"latency_ms": limit, "model_bytes": f"{caq_frame['model_bytes']:.0f}"})
                out_dir = os.path.join(args.out, f"{scene}_s{seed}_f{fraction:g}")
                summary = search_in(checkpoint, scene_dir, out_dir, config)
                hero = _numbers(summary) | {"fraction": fraction, "budget_ms": float(limit),
                                            "budget_met": summary["budget_met"], "seconds": time.perf_counter() - start}
                heroes.append(hero)
                print(f"{scene} seed {seed} hero f={fraction}: {hero['psnr']:.2f} dB {hero['latency_ms']:.3f} ms",
                      file=sys.stderr)
            matched = [h for h in heroes if h["psnr"] >= caq["psnr"] - MATCH_DB and h["budget_met"]]
            best = min(matched, key=lambda h: h["latency_ms"]) if matched else None
            run = {"seed": seed, "caq": caq, "hero": heroes, "match": None}
            if best is not None:
                run["match"] = {
                    "fraction": best["fraction"],
                    "psnr_delta_db": best["psnr"] - caq["psnr"],
                    "latency_ratio": caq["latency_ms"] / best["latency_ms"],
                    "cost_efficiency_ratio_fixed": best["cost_efficiency"] / caq["cost_efficiency"],
                    "cost_efficiency_ratio_fit": best["cost_efficiency_fit"] / caq["cost_efficiency_fit"],
                    "model_size_ratio": caq["model_bytes"] / best["model_bytes"],
                }
            runs.append(run)
            with open(os.path.join(args.out, "headline.partial.json"), "w") as f:
                json.dump(result | {"scenes": {**result["scenes"], scene: {"runs": runs}}}, f, indent=1)
        matches = [r["match"] for r in runs if r["match"]]
        summary = {"matched_seeds": len(matches), "seeds": len(runs)}
        for key in ("latency_ratio", "cost_efficiency_ratio_fixed", "cost_efficiency_ratio_fit", "model_size_ratio",
                    "psnr_delta_db"):
            values = [m[key] for m in matches]
            if values:
                summary[key] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
        result["scenes"][scene] = {"runs": runs, "summary": summary}
    with open(os.path.join(args.out, "headline.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
