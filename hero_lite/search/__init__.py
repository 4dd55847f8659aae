"""The glue: a search environment over the quantization points with hardware feedback from the
simulator, the HERO search, its baselines and the comparison, the main job and the
reproducibility check.

    from hero_lite.search import SearchConfig, hero_search
    summary = hero_search("runs/p/checkpoint.h5", "scenes/primitives", "runs/p/search",
                          SearchConfig(budgets={"latency_ms": "0.8x"}))
    summary["psnr"], summary["latency_ms"]    # dB, ms

Imports `quant`, `nerf`, `scenes`, `accel` and `rl`; only the command line imports it.
"""

from hero_lite.search.budget import Budget, enforce_budget, parse_limit
from hero_lite.search.baselines import caq_snapped_policy, heuristic_snapped_policy
from hero_lite.search.compare import (all_matches, baseline_row, parse_fractions, parse_methods, pick_match,
                                      run_compare, run_matched)
from hero_lite.search.cost import PolicyCost, policy_cost
from hero_lite.search.env import QuantEnv, RewardConfig, freeze_points
from hero_lite.search.evaluator import PolicyEvaluator
from hero_lite.search.drift import compare_fingerprints
from hero_lite.search.hero import SearchConfig, SearchSetup, hero_search, prepare
from hero_lite.search.heuristic import heuristic_policy
from hero_lite.search.reproduce import ReproduceConfig, run_miniature
from hero_lite.search.run import main_job
from hero_lite.search.widths import hardware_widths, snap_to_hardware, with_hardware_widths
from hero_lite.search.workload import trace_workload, workload_from_trace

__all__ = [
    "Budget",
    "PolicyCost",
    "PolicyEvaluator",
    "QuantEnv",
    "ReproduceConfig",
    "RewardConfig",
    "SearchConfig",
    "SearchSetup",
    "all_matches",
    "baseline_row",
    "caq_snapped_policy",
    "compare_fingerprints",
    "enforce_budget",
    "freeze_points",
    "hardware_widths",
    "hero_search",
    "heuristic_policy",
    "heuristic_snapped_policy",
    "main_job",
    "parse_fractions",
    "parse_limit",
    "parse_methods",
    "pick_match",
    "policy_cost",
    "prepare",
    "run_compare",
    "run_matched",
    "run_miniature",
    "snap_to_hardware",
    "trace_workload",
    "with_hardware_widths",
    "workload_from_trace",
]
