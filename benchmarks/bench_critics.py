"""The two critics head to head on the real search: same scene, seed and budget, one run each.

    python benchmarks/bench_critics.py [--scenes primitives,lattice] [--seeds 0,1,2]
        [--critics step,episode] [--out runs/critic100]

Every run is `hero_search` with default settings (100 episodes, latency budget 0.8x uniform 8-bit,
reference start, actor lr 1e-5) except `ddpg={"critic": C}`, on the benchmark checkpoint of the scene
(runs/bench/SCENE/checkpoint.h5, as bench_compare.py). Reported per run: the best validation reward
the search found (what the agent maximises: 30-step QAT, 4 validation views at half resolution) and
the final report of its final policy (the search's choice among its best 3 after the 300-step QAT;
20 test views): test PSNR, latency, model size, the median agent time per episode. A finished run
folder (OUT/SCENE_sSEED_CRITIC/summary.json) is reused; one with agent.h5 but no summary resumes.
Prints one JSON object and writes it to OUT/critics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import provenance, repo_path, search_in  # noqa: E402


def _best_validation(log_path: str) -> dict:
    """The episode with the highest reward among those that met the budget."""
    with open(log_path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    met = [line for line in lines if line["budget_met"]]
    best = max(met, key=lambda line: line["reward"])
    return {"reward": best["reward"], "psnr": best["psnr"], "latency_ms": best["latency_ms"],
            "episode": best["episode"], "episodes_meeting_budget": len(met), "episodes": len(lines),
            "agent_seconds_median": statistics.median(line["agent_seconds"] for line in lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", default="primitives,lattice")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--critics", default="step,episode")
    parser.add_argument("--out", default=repo_path("runs", "critic100"))
    args = parser.parse_args()

    from hero_lite.search.hero import SearchConfig

    critics = args.critics.split(",")
    result = {"benchmark": "critics", **provenance(), "critics": critics, "runs": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for scene in args.scenes.split(","):
            for critic in critics:
                out_dir = os.path.join(args.out, f"{scene}_s{seed}_{critic}")
                summary = search_in(repo_path("runs", "bench", scene, "checkpoint.h5"), repo_path("scenes", scene),
                                    out_dir, SearchConfig(seed=seed, ddpg={"critic": critic}))
                test = {k: summary[k] for k in ("psnr", "latency_ms", "model_bytes", "cost_efficiency",
                                                "cost_efficiency_fit", "budget_met")}
                run = {"scene": scene, "seed": seed, "critic": critic, "test": test,
                       "validation": _best_validation(os.path.join(out_dir, "episodes.jsonl"))}
                result["runs"].append(run)
                print(f"{scene} seed {seed} {critic}: {test['psnr']:.2f} dB {test['latency_ms']:.3f} ms",
                      file=sys.stderr)
    if len(critics) == 2:
        first, second = critics
        by_key = {(r["scene"], r["seed"], r["critic"]): r for r in result["runs"]}
        pairs = [(by_key[(s, d, first)], by_key[(s, d, second)]) for (s, d, c) in by_key if c == first]
        result["pairs"] = {
            f"{second}_higher_test_psnr": sum(b["test"]["psnr"] > a["test"]["psnr"] for a, b in pairs),
            f"{second}_lower_test_latency": sum(b["test"]["latency_ms"] < a["test"]["latency_ms"] for a, b in pairs),
            f"{second}_higher_validation_reward": sum(b["validation"]["reward"] > a["validation"]["reward"]
                                                      for a, b in pairs),
            "pairs": len(pairs),
            f"test_psnr_{second}_minus_{first}_db": [b["test"]["psnr"] - a["test"]["psnr"] for a, b in pairs],
        }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "critics.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
