"""`hero-lite compare`: HERO against the baselines on one fp32 checkpoint, scene and accelerator.

Two protocols:
- matched (the default, `run_matched`): the HERO paper's comparison. CAQ-like first; then one HERO
  search per latency fraction f, with budgets f x CAQ-like's latency and CAQ-like's model size, both
  priced on the search's own cost frame; the result is the fastest HERO policy whose test PSNR is at
  most `MATCH_DB` below CAQ-like's, and its latency, cost-efficiency and size ratios to CAQ-like.
- methods (`run_compare`): a list of methods under one fixed budget.

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
# HERO paper (arXiv 2510.09010), section 5: methods compared at matched quality; "matched" here is
# a test PSNR at most 0.1 dB below CAQ-like's
MATCH_DB = 0.1
DEFAULT_FRACTIONS = (0.9, 0.85, 0.76)


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


def parse_fractions(text: str) -> list[float]:
    """Comma-separated latency fractions in (0, 1], each once; raises ValueError."""
    try:
        fractions = [float(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise ValueError(f"fractions {text!r}: give numbers such as 0.9,0.85,0.76") from None
    if not fractions or len(set(fractions)) != len(fractions) or not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions {text!r}: give each fraction once, each in (0, 1]")
    return fractions


def hero_row_name(fraction: float) -> str:
    """Row name of the HERO search at latency fraction `fraction`: 'hero@0.85x'."""
    return f"hero@{fraction:g}x"


def matched_budgets(caq_frame: dict, fraction: float) -> dict:
    """HERO's budgets from CAQ-like's cost on the search frame: latency fraction x CAQ-like's
    latency (ms) and CAQ-like's model size (bytes), as absolute limits."""
    return {"latency_ms": f"{fraction * caq_frame['latency_ms']:.6f}", "model_bytes": f"{caq_frame['model_bytes']:.0f}"}


def out_of_reach(budgets: dict, floor_cost: dict) -> bool:
    """Whether some limit of `budgets` (metric -> number or numeric text) lies below the cheapest
    policy's cost `floor_cost` (metric -> value in the same unit): no search can meet it."""
    return any(float(limit) < floor_cost[metric] * (1 - 1e-9) for metric, limit in budgets.items())


def caq_row(setup, caq: BitLearningConfig, config: SearchConfig) -> dict:
    """CAQ-like's compare row: bit learning (seed `config.seed`), the final QAT and test-view report,
    and its cost on the search frame under 'search_frame' (what the matched budgets are taken from)."""
    start = time.perf_counter()
    policy, extra = caq_policy(setup, caq, config.seed)
    summary = final_report(setup, policy, dataclasses.replace(config, point_set="caq"), None)
    caq_frame = setup.frame_cost(summary["policy"]["points"], "caq")
    return _row(summary, quant_points(setup.model.config, "caq"), time.perf_counter() - start,
                extra | {"search_frame": caq_frame})


def pick_match(caq: dict, heroes: dict, match_db: float = MATCH_DB) -> dict | None:
    """The fastest HERO row that met its budget and lies at most `match_db` below CAQ-like's test
    PSNR, with its ratios to CAQ-like (> 1: HERO better); None if no row qualifies.

    caq : a compare row; heroes : row name -> compare row with 'budget_met'.
    """
    matched = [(name, row) for name, row in heroes.items() if row["budget_met"] and row["psnr"] >= caq["psnr"] - match_db]
    if not matched:
        return None
    name, best = min(matched, key=lambda item: item[1]["latency_ms"])
    return {"method": name, "fraction": best["fraction"], "psnr_delta_db": best["psnr"] - caq["psnr"],
            "latency_ratio": caq["latency_ms"] / best["latency_ms"],
            "cost_efficiency_ratio": best["cost_efficiency"] / caq["cost_efficiency"],
            "cost_efficiency_ratio_fit": best["cost_efficiency_fit"] / caq["cost_efficiency_fit"],
            "model_size_ratio": caq["model_bytes"] / best["model_bytes"]}


def match_line(match: dict | None, match_db: float = MATCH_DB) -> str:
    """One sentence on the matched result, for the terminal and compare.md."""
    if match is None:
        return (f"No HERO policy met its budget within {match_db:g} dB of CAQ-like's test PSNR: try larger "
                f"fractions (--fractions) or more episodes.")
    return (f"{match['method']} against CAQ-like: {match['latency_ratio']:.2f}x faster, "
            f"{match['cost_efficiency_ratio']:.2f}x cost efficiency ({match['cost_efficiency_ratio_fit']:.2f}x with "
            f"fit area), {match['model_size_ratio']:.2f}x smaller model, {match['psnr_delta_db']:+.2f} dB.")


def run_matched(checkpoint: str, scene_dir: str, out_dir: str, config: SearchConfig,
                caq: BitLearningConfig = BitLearningConfig(), fractions=DEFAULT_FRACTIONS,
                log: Callable[[str], None] = lambda m: None, episode_progress: Callable | None = None) -> dict:
    """The paper's protocol (see the module docstring); writes compare.json, compare.md and
    pareto.png into `out_dir`, HERO's run folders under `out_dir`/hero@Fx. `config.budgets` is
    replaced by the matched budgets. Returns {'methods': rows, 'match': pick_match(...),
    'skipped_fractions': the fractions whose budgets no policy can meet}."""
    config = dataclasses.replace(config, budgets={})  # each HERO search gets its budgets from CAQ-like's cost
    setup = prepare(checkpoint, scene_dir, config)
    os.makedirs(out_dir, exist_ok=True)
    rows: dict[str, dict] = {}
    log("caq: start")
    rows["caq"] = caq_row(setup, caq, config)
    caq_frame = rows["caq"]["search_frame"]
    log(f"caq: {rows['caq']['psnr']:.2f} dB, {rows['caq']['latency_ms']:.3f} ms, {rows['caq']['model_bytes']:,} bytes "
        f"({rows['caq']['seconds']:.0f} s)")
    match = None
    # a budget below the cheapest policy's cost (every point at its minimum bits) cannot be met: skip it
    skipped = [f for f in fractions if out_of_reach(matched_budgets(caq_frame, f), setup.floor_cost)]
    for fraction in skipped:
        log(f"{hero_row_name(fraction)}: skipped, its budgets lie below the cheapest policy's cost "
            f"({setup.floor_cost['latency_ms']:.4g} ms, {setup.floor_cost['model_bytes']:,.0f} bytes)")
    protocol = {"name": "matched", "fractions": list(fractions), "skipped_fractions": skipped, "match_db": MATCH_DB,
                "match": None}
    write_compare(out_dir, rows, config, checkpoint, scene_dir, protocol=protocol)
    for fraction in [f for f in fractions if f not in skipped]:
        name = hero_row_name(fraction)
        start = time.perf_counter()
        budgets = matched_budgets(caq_frame, fraction)
        log(f"{name}: start (budgets {budgets['latency_ms']} ms, {budgets['model_bytes']} bytes on the search frame)")
        hero_config = dataclasses.replace(config, budgets=budgets)
        summary = hero_search(checkpoint, scene_dir, os.path.join(out_dir, name), hero_config, progress=episode_progress)
        rows[name] = _row(summary, setup.points, time.perf_counter() - start,
                          {"budget_met": summary["budget_met"], "budget": summary["budget"], "fraction": fraction})
        log(f"{name}: {rows[name]['psnr']:.2f} dB, {rows[name]['latency_ms']:.3f} ms, {rows[name]['model_bytes']:,} bytes "
            f"({rows[name]['seconds']:.0f} s)")
        match = pick_match(rows["caq"], {k: v for k, v in rows.items() if k != "caq"})
        protocol["match"] = match
        write_compare(out_dir, rows, config, checkpoint, scene_dir, protocol=protocol)
    return {"methods": rows, "match": match, "skipped_fractions": skipped}


def _run_agent(env: QuantEnv, config: SearchConfig, setup) -> list[dict]:
    from hero_lite.rl import run_episodes

    agent = make_agent(env, config, setup.reference.bits)
    _, records = run_episodes(env, agent, config.episodes, env_seed=config.seed)
    return [{"episode": r.episode, "reward": r.reward, **r.info} for r in records]


def write_compare(out_dir: str, rows: dict, config: SearchConfig, checkpoint: str, scene_dir: str,
                  protocol: dict | None = None) -> None:
    """compare.json (method -> row, and the protocol), compare.md (a table, and the matched result)
    and pareto.png (PSNR against latency)."""
    protocol = protocol or {"name": "methods"}
    write_json_atomically(os.path.join(out_dir, "compare.json"), {
        "checkpoint": os.path.abspath(checkpoint), "scene": os.path.abspath(scene_dir), "accel": config.accel,
        "search": config.to_dict(), "protocol": protocol, "methods": rows})
    lines = ["| method | PSNR (dB) | latency (ms) | fps | area (mm^2) | cost eff. (1/(ms mm^2)) | energy (uJ) | "
             "model (bytes) | mean bits | BitOps/sample |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in rows.items():
        lines.append(f"| {method} | {r['psnr']:.2f} | {r['latency_ms']:.3f} | {r['fps']:.0f} | {r['area_mm2']:.3f} | "
                     f"{r['cost_efficiency']:.3f} | {r['energy_uj']:.0f} | {r['model_bytes']:,} | {r['mean_bits']:.2f} | "
                     f"{r['bitops_per_sample']:.3g} |")
    if protocol["name"] == "matched" and len(rows) > 1:
        lines += ["", match_line(protocol["match"], protocol["match_db"])]
    write_text_atomically(os.path.join(out_dir, "compare.md"), "\n".join(lines) + "\n")
    points = [{"label": m, "latency_ms": r["latency_ms"], "psnr": r["psnr"]} for m, r in rows.items()]
    title = f"PSNR against latency ({config.accel})"
    quantized = [p["latency_ms"] for p in points if p["label"] != "fp32"]
    if "fp32" in rows and quantized and rows["fp32"]["latency_ms"] > 4 * max(quantized):
        points = [p for p in points if p["label"] != "fp32"]  # it would squash the others into a corner
        title += f"; fp32 off the chart at {rows['fp32']['latency_ms']:.2f} ms, {rows['fp32']['psnr']:.2f} dB"
    image = viz.scatter_plot(points, "latency_ms", "psnr", title, "latency (ms)", "test PSNR (dB)")
    viz.save_image(os.path.join(out_dir, "pareto.png"), image)
