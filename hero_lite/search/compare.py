"""`hero-lite compare`: every method on one fp32 checkpoint, scene and accelerator.

All methods share one `SearchSetup` (calibrated ranges, validation views, traced frame, cached
evaluations); each method's final policy gets the same final QAT (`SearchConfig.final_qat_steps`)
and the same test-view report (`hero.final_report`): PSNR on the test views, event-simulated
latency, area, energy and cost efficiency on test view 0, under the preset's area mode and 'fit'.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Callable

from hero_lite import viz
from hero_lite.quant.learned import BitLearningConfig
from hero_lite.quant.points import quant_points
from hero_lite.search.baselines import (bitops_per_sample, caq_policy, fixed_policy, haq_environment,
                                        random_search)
from hero_lite.quant.policy import QuantPolicy, model_signature
from hero_lite.runfolder import write_json_atomically, write_text_atomically
from hero_lite.search.env import QuantEnv, policy_factory_for
from hero_lite.search.hero import (SearchConfig, final_candidates, final_report, hero_search, make_agent, pick_final,
                                   prepare)

DEFAULT_METHODS = ("fp32", "uniform8", "caq", "haq", "random", "hero")
ROW_KEYS = ("psnr", "latency_ms", "fps", "area_mm2", "cost_efficiency", "energy_uj", "model_bytes", "bits",
            "area_mm2_fit", "cost_efficiency_fit", "bitops_per_sample", "mean_bits", "seconds")
_UNIFORM = re.compile(r"^uniform(\d+)(-ptq)?$")


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names; raises ValueError naming the valid ones."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    for m in methods:
        if m not in DEFAULT_METHODS and not _UNIFORM.match(m):
            raise ValueError(f"unknown method {m!r}; valid: {', '.join(DEFAULT_METHODS)}, uniformK, uniformK-ptq")
        match = _UNIFORM.match(m)
        if match and not 2 <= int(match.group(1)) <= 8:
            raise ValueError(f"method {m}: K must lie in 2..8")
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods {text!r}: give each method once")
    return methods


def _row(summary: dict, points, seconds: float, extra: dict | None = None) -> dict:
    bits = summary["policy"]["points"]
    quantized = [b for b in bits.values() if b != 32]
    row = {k: summary[k] for k in ("psnr", "latency_ms", "fps", "area_mm2", "cost_efficiency", "energy_uj",
                                   "model_bytes", "area_mm2_fit", "cost_efficiency_fit")}
    row.update({"bits": bits, "point_set": summary["policy"]["set"], "bitops_per_sample": bitops_per_sample(bits, points),
                "mean_bits": sum(quantized) / len(quantized) if quantized else 32.0, "seconds": seconds,
                "fp32_psnr": summary["fp32_psnr"]})
    row.update(extra or {})
    return row


def run_compare(checkpoint: str, scene_dir: str, out_dir: str, methods: list[str], config: SearchConfig,
                caq: BitLearningConfig = BitLearningConfig(), log: Callable[[str], None] = lambda m: None,
                episode_progress: Callable | None = None) -> dict:
    """Run `methods` and write compare.json, compare.md and pareto.png into `out_dir`; returns the rows."""
    setup = prepare(checkpoint, scene_dir, config)
    os.makedirs(out_dir, exist_ok=True)
    caq_config = dataclasses.replace(config, point_set="caq")
    caq_points = quant_points(setup.model.config, "caq")
    rows: dict[str, dict] = {}
    for method in methods:
        start = time.perf_counter()
        log(f"{method}: start")
        points = setup.points
        extra: dict = {}
        if method == "hero":
            summary = hero_search(checkpoint, scene_dir, os.path.join(out_dir, "hero"), config, progress=episode_progress)
            extra = {"budget_met": summary["budget_met"], "budget": summary["budget"]}
        else:
            report_config, tuned = config, None
            if method == "fp32" or _UNIFORM.match(method):
                match = _UNIFORM.match(method)
                policy = fixed_policy(setup, config.point_set, int(match.group(1)) if match else None)
                if method == "fp32" or match.group(2):
                    report_config = dataclasses.replace(config, final_qat_steps=0)
            elif method == "caq":
                policy, extra = caq_policy(setup, caq, config.seed)
                report_config, points = caq_config, caq_points
            elif method in ("haq", "random"):
                signature = model_signature(setup.model.config)
                if method == "haq":
                    env = haq_environment(setup, config)
                    agent_log = _run_agent(env, config, setup)
                else:
                    env = QuantEnv(setup.points, setup.evaluator, setup.budget, setup.reference.bits,
                                   config.reward_config(), policy_factory_for(config.point_set, signature))
                    agent_log = random_search(env, config.episodes, config.seed, progress=episode_progress)
                # the same final choice as HERO's: the best few policies re-scored after the final QAT
                candidates = final_candidates(agent_log, config.final_candidates)
                best, tuned, rescored = pick_final(setup, candidates, config, signature)
                policy = QuantPolicy(config.point_set, best["policy"], signature)
                extra = {"best_episode": best["episode"], "val_psnr": best["psnr"], "episodes": len(agent_log),
                         "final_candidates": rescored}
                if method == "haq":
                    extra["proxy_budget_met"] = best["budget_met"]  # its own BitOps/size budget
            summary = final_report(setup, policy, report_config, None, tuned=tuned)
            # whether the policy meets HERO's (simulated) budget on the search's cost frame
            extra["budget_met"] = setup.budget.met(setup.evaluator.cost(policy)) if policy.point_set == config.point_set else None
        rows[method] = _row(summary, points, time.perf_counter() - start, extra)
        log(f"{method}: {rows[method]['psnr']:.2f} dB, {rows[method]['latency_ms']:.3f} ms, "
            f"{rows[method]['model_bytes']:,} bytes ({rows[method]['seconds']:.0f} s)")
        write_compare(out_dir, rows, config, checkpoint, scene_dir)  # after every method: a kill keeps the finished ones
    return rows


def _run_agent(env: QuantEnv, config: SearchConfig, setup) -> list[dict]:
    from hero_lite.rl import run_episodes

    agent = make_agent(env, config, setup.reference.bits)
    _, records = run_episodes(env, agent, config.episodes, env_seed=config.seed)
    return [{"episode": r.episode, "reward": r.reward, **r.info} for r in records]


def write_compare(out_dir: str, rows: dict, config: SearchConfig, checkpoint: str, scene_dir: str) -> None:
    """compare.json (method -> row), compare.md (a table) and pareto.png (PSNR against latency)."""
    write_json_atomically(os.path.join(out_dir, "compare.json"), {
        "checkpoint": os.path.abspath(checkpoint), "scene": os.path.abspath(scene_dir), "accel": config.accel,
        "search": config.to_dict(), "methods": rows})
    lines = ["| method | PSNR (dB) | latency (ms) | fps | area (mm^2) | cost eff. (1/(ms mm^2)) | energy (uJ) | "
             "model (bytes) | mean bits | BitOps/sample |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in rows.items():
        lines.append(f"| {method} | {r['psnr']:.2f} | {r['latency_ms']:.3f} | {r['fps']:.0f} | {r['area_mm2']:.3f} | "
                     f"{r['cost_efficiency']:.3f} | {r['energy_uj']:.0f} | {r['model_bytes']:,} | {r['mean_bits']:.2f} | "
                     f"{r['bitops_per_sample']:.3g} |")
    write_text_atomically(os.path.join(out_dir, "compare.md"), "\n".join(lines) + "\n")
    points = [{"label": m, "latency_ms": r["latency_ms"], "psnr": r["psnr"]} for m, r in rows.items()]
    title = f"PSNR against latency ({config.accel})"
    quantized = [p["latency_ms"] for p in points if p["label"] != "fp32"]
    if "fp32" in rows and quantized and rows["fp32"]["latency_ms"] > 4 * max(quantized):
        points = [p for p in points if p["label"] != "fp32"]  # it would squash the others into a corner
        title += f"; fp32 off the chart at {rows['fp32']['latency_ms']:.2f} ms, {rows['fp32']['psnr']:.2f} dB"
    image = viz.scatter_plot(points, "latency_ms", "psnr", title, "latency (ms)", "test PSNR (dB)")
    viz.save_image(os.path.join(out_dir, "pareto.png"), image)
