"""`hero-lite compare`: HERO against the baselines on one fp32 checkpoint, scene and accelerator.

Two protocols:
- matched (the default, `run_matched`): the HERO paper's comparison. CAQ-like first; then the fixed
  baselines beside it (by default `caq_snapped`, CAQ-like's bits snapped to widths the hardware runs
  without waste, and `heuristic`, a three-rule hand policy; see `baselines`); then one HERO search
  per latency fraction f, with budgets f x CAQ-like's latency and CAQ-like's model size, both priced
  on the search's own cost frame (and the same for `hero_hash8`, HERO with its hash levels frozen at
  8 bits, when asked for). The result is the fastest HERO policy whose test PSNR is at most
  `MATCH_DB` below CAQ-like's, and its latency, cost-efficiency (fit area first, fixed area second)
  and size ratios to CAQ-like; `all_matches` does the same against every baseline.
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
from hero_lite.quant.policy import QuantPolicy, model_signature
from hero_lite.runfolder import write_json_atomically, write_text_atomically
from hero_lite.search.baselines import (bitops_per_sample, caq_policy, caq_snapped_policy, fixed_policy,
                                        haq_environment, heuristic_snapped_policy, random_search)
from hero_lite.search.env import QuantEnv, freeze_points, policy_factory_for
from hero_lite.search.hero import (SearchConfig, SearchSetup, final_candidates, final_report, hero_search, make_agent,
                                   pick_final, prepare, start_bits)

DEFAULT_METHODS = ("fp32", "uniform8", "caq", "haq", "random", "hero")
# searched method -> the frozen_bits it adds to the search's: `hero_hash8` is HERO with every hash level at 8
# bits, which shows what the search gains on the MLP alone
SEARCHED = {"hero": {}, "hero_hash8": {"hash_level": 8}}
# fixed policies beside CAQ-like: its learned bits snapped to the hardware, and the hand policy
FIXED_BASELINES = ("caq_snapped", "heuristic")
METHODS = DEFAULT_METHODS + FIXED_BASELINES + ("hero_hash8",)
DEFAULT_MATCHED = ("caq", "caq_snapped", "heuristic", "hero")
ROW_KEYS = ("psnr", "latency_ms", "fps", "area_mm2", "cost_efficiency", "energy_uj", "model_bytes", "bits",
            "area_mm2_fit", "cost_efficiency_fit", "bitops_per_sample", "mean_bits", "seconds")
# the ratios of a match, the fit-area cost efficiency (area that follows the policy) first
MATCH_RATIOS = ("latency_ratio", "cost_efficiency_ratio_fit", "cost_efficiency_ratio_fixed", "model_size_ratio",
                "psnr_delta_db")
_UNIFORM = re.compile(r"^uniform(\d+)(-ptq)?$")
# HERO paper (arXiv 2510.09010), section 5: methods compared at matched quality; "matched" here is
# a test PSNR at most 0.1 dB below CAQ-like's
MATCH_DB = 0.1
DEFAULT_FRACTIONS = (0.9, 0.85, 0.76)


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names; raises ValueError naming the valid ones."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS and not _UNIFORM.match(m):
            raise ValueError(f"unknown method {m!r}; valid: {', '.join(METHODS)}, uniformK, uniformK-ptq")
        match = _UNIFORM.match(m)
        if match and not 2 <= int(match.group(1)) <= 8:
            raise ValueError(f"method {m}: K must lie in 2..8")
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods {text!r}: give each method once")
    return methods


def is_matched_method(method: str) -> bool:
    """Whether `method` can run in the matched protocol: caq, a searched method (hero, hero_hash8),
    a fixed baseline (caq_snapped, heuristic) or uniformK (K = 2..8)."""
    match = _UNIFORM.match(method) if isinstance(method, str) else None
    return method in ("caq", *SEARCHED, *FIXED_BASELINES) or (
        match is not None and match.group(2) is None and 2 <= int(match.group(1)) <= 8)


MATCHED_VALID = f"caq (required), {', '.join(SEARCHED)}, {', '.join(FIXED_BASELINES)}, uniformK (K = 2..8)"


def check_matched_methods(methods) -> list[str]:
    """The methods of a matched run, in order; raises ValueError (valid: MATCHED_VALID) unless they are
    distinct, known to the matched protocol and hold 'caq' (the anchor of the budgets)."""
    if not isinstance(methods, (list, tuple)) or not methods or not all(is_matched_method(m) for m in methods) \
            or len(set(methods)) != len(methods) or "caq" not in methods:
        raise ValueError(f"methods = {list(methods) if isinstance(methods, tuple) else methods!r}; valid: a list of "
                         f"distinct {MATCHED_VALID}")
    return list(methods)


def parse_baselines(text: str) -> list[str]:
    """The comma-separated methods that run beside CAQ-like and HERO in the matched protocol
    (caq_snapped, heuristic, uniformK, hero_hash8), or [] for 'none'; raises ValueError naming the
    valid ones."""
    if text.strip() == "none":
        return []
    methods = [m.strip() for m in text.split(",") if m.strip()]
    valid = [m for m in methods if is_matched_method(m) and m not in ("caq", "hero")]
    if not methods or valid != methods or len(set(methods)) != len(methods):
        raise ValueError(f"baselines {text!r}; valid: each once of hero_hash8, {', '.join(FIXED_BASELINES)}, "
                         "uniformK (K = 2..8), or none")
    return methods


def searched_row_name(method: str, fraction: float) -> str:
    """Row name of a searched method at latency fraction `fraction`: 'hero@0.85x', 'hero_hash8@0.9x'."""
    return f"{method}@{fraction:g}x"


def search_config_for(config: SearchConfig, method: str) -> SearchConfig:
    """`config` for the searched `method`: its frozen bits (SEARCHED) over the config's own."""
    return dataclasses.replace(config, frozen_bits={**config.frozen_bits, **SEARCHED[method]})


def baseline_policy(setup: SearchSetup, method: str, caq_bits: dict[str, int] | None = None) -> QuantPolicy:
    """The fixed policy of a baseline: fp32, uniformK[-ptq] (HERO's set), heuristic (the three rules
    at the accelerator's widths, `heuristic_snapped_policy`) or caq_snapped (`caq_bits`, CAQ-like's
    learned bits, snapped to the search's accelerator by `caq_snapped_policy`)."""
    config = setup.model.config
    if method == "heuristic":
        return heuristic_snapped_policy(setup)
    if method == "caq_snapped":
        if caq_bits is None:
            raise ValueError("caq_snapped needs CAQ-like's learned bits; run caq first")
        return caq_snapped_policy(setup, QuantPolicy("caq", dict(caq_bits), model_signature(config)))
    match = _UNIFORM.match(method)
    if method != "fp32" and match is None:
        raise ValueError(f"baseline {method!r}; valid: fp32, uniformK, uniformK-ptq, heuristic, caq_snapped")
    return fixed_policy(setup, "hero", int(match.group(1)) if match else None)


def baseline_row(setup: SearchSetup, method: str, config: SearchConfig, caq_bits: dict[str, int] | None = None) -> dict:
    """A fixed baseline's compare row (`baseline_policy`): the final QAT (none for fp32 and
    uniformK-ptq) and the test-view report, as every method gets; caq_snapped's row also holds the
    learned bits it came from under 'learned_bits'."""
    start = time.perf_counter()
    policy = baseline_policy(setup, method, caq_bits)
    report_config = dataclasses.replace(config, point_set=policy.point_set)
    if method == "fp32" or method.endswith("-ptq"):
        report_config = dataclasses.replace(report_config, final_qat_steps=0)
    summary = final_report(setup, policy, report_config, None)
    extra = {"learned_bits": dict(caq_bits)} if method == "caq_snapped" else {}
    return _row(summary, quant_points(setup.model.config, policy.point_set), time.perf_counter() - start, extra)


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
    """Run `methods` and write compare.json, compare.md and pareto.png into `out_dir`; returns the rows.
    caq_snapped snaps the bits of the caq row when one ran before it, else learns CAQ-like's bits itself."""
    setup = prepare(checkpoint, scene_dir, config)
    os.makedirs(out_dir, exist_ok=True)
    rows: dict[str, dict] = {}
    for method in methods:
        start = time.perf_counter()
        log(f"{method}: start")
        extra: dict = {}
        if method in SEARCHED:
            summary = hero_search(checkpoint, scene_dir, os.path.join(out_dir, method), search_config_for(config, method),
                                  progress=episode_progress)
            rows[method] = _row(summary, setup.points, time.perf_counter() - start,
                                {"budget_met": summary["budget_met"], "budget": summary["budget"]})
        elif method == "caq":
            rows[method] = caq_row(setup, caq, config)
        elif method == "fp32" or _UNIFORM.match(method) or method in FIXED_BASELINES:
            caq_bits = None
            if method == "caq_snapped":
                caq_bits = rows["caq"]["bits"] if "caq" in rows else caq_policy(setup, caq, config.seed)[0].bits
            rows[method] = baseline_row(setup, method, config, caq_bits)
        else:  # haq, random
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
            summary = final_report(setup, policy, config, None, tuned=tuned)
            rows[method] = _row(summary, setup.points, time.perf_counter() - start, extra)
        row = rows[method]
        if method not in SEARCHED:
            row["seconds"] = time.perf_counter() - start
            # whether the policy meets HERO's (simulated) budget on the search's cost frame
            policy = QuantPolicy(row["point_set"], row["bits"], model_signature(setup.model.config))
            row["budget_met"] = setup.budget.met(setup.evaluator.cost(policy)) if row["point_set"] == config.point_set \
                else None
        log(f"{method}: {row['psnr']:.2f} dB, {row['latency_ms']:.3f} ms, {row['model_bytes']:,} bytes "
            f"({row['seconds']:.0f} s)")
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
    return searched_row_name("hero", fraction)


def matched_budgets(caq_frame: dict, fraction: float, size_fraction: float = 1.0) -> dict:
    """HERO's budgets from CAQ-like's (or another anchor's) cost on the search frame: latency
    fraction x its latency (ms) and size_fraction x its model size (bytes), as absolute limits."""
    return {"latency_ms": f"{fraction * caq_frame['latency_ms']:.6f}",
            "model_bytes": f"{size_fraction * caq_frame['model_bytes']:.0f}"}


def out_of_reach(budgets: dict, floor_cost: dict) -> bool:
    """Whether some limit of `budgets` (metric -> number or numeric text) lies below the cheapest
    policy's cost `floor_cost` (metric -> value in the same unit): no search can meet it."""
    return any(float(limit) < floor_cost[metric] * (1 - 1e-9) for metric, limit in budgets.items())


def search_floor_cost(setup: SearchSetup, method: str) -> dict:
    """The cheapest policy's cost on the search frame for the searched `method` (every point at its
    minimum bits, frozen points at their bits): below it, no budget can be met."""
    if not SEARCHED[method]:
        return setup.floor_cost
    points = freeze_points(setup.points, SEARCHED[method])
    return setup.frame_cost({p.name: p.min_bits for p in points}, setup.reference.point_set)


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
    """The fastest searched row that met its budget and lies at most `match_db` below the anchor
    `caq`'s test PSNR (CAQ-like's, or any other row's), with its ratios to the anchor (> 1: the
    searched row is better); None if no row qualifies.

    caq : a compare row; heroes : row name -> compare row with 'budget_met'.
    Ratios (MATCH_RATIOS): latency and model size anchor / searched; cost efficiency searched /
    anchor with fit area (the headline: the on-chip grid memory sized to each policy) and with the
    preset's fixed area; psnr_delta_db searched - anchor.
    """
    matched = [(name, row) for name, row in heroes.items() if row["budget_met"] and row["psnr"] >= caq["psnr"] - match_db]
    if not matched:
        return None
    name, best = min(matched, key=lambda item: item[1]["latency_ms"])
    return {"method": name, "fraction": best["fraction"], "psnr_delta_db": best["psnr"] - caq["psnr"],
            "latency_ratio": caq["latency_ms"] / best["latency_ms"],
            "cost_efficiency_ratio_fit": best["cost_efficiency_fit"] / caq["cost_efficiency_fit"],
            "cost_efficiency_ratio_fixed": best["cost_efficiency"] / caq["cost_efficiency"],
            "model_size_ratio": caq["model_bytes"] / best["model_bytes"]}


def all_matches(rows: dict, match_db: float = MATCH_DB) -> dict:
    """searched method -> anchor row name -> `pick_match` of that method's rows (NAME@Fx) against the
    anchor, for every searched method with rows and every anchor (each row without '@': caq and
    the fixed baselines)."""
    anchors = [name for name in rows if "@" not in name]
    searched = [m for m in SEARCHED if any(name.startswith(m + "@") for name in rows)]
    return {m: {anchor: pick_match(rows[anchor], {n: r for n, r in rows.items() if n.startswith(m + "@")}, match_db)
                for anchor in anchors} for m in searched}


def match_line(match: dict | None, match_db: float = MATCH_DB, anchor: str = "CAQ-like") -> str:
    """One sentence on a matched result against `anchor`, for the terminal and compare.md."""
    if match is None:
        return (f"No HERO policy met its budget within {match_db:g} dB of {anchor}'s test PSNR: try larger "
                f"fractions (--fractions) or more episodes.")
    return (f"{match['method']} against {anchor}: {match['latency_ratio']:.2f}x faster, "
            f"{match['cost_efficiency_ratio_fit']:.2f}x cost efficiency with fit area "
            f"({match['cost_efficiency_ratio_fixed']:.2f}x with fixed area), {match['model_size_ratio']:.2f}x smaller "
            f"model, {match['psnr_delta_db']:+.2f} dB.")


def run_matched(checkpoint: str, scene_dir: str, out_dir: str, config: SearchConfig,
                caq: BitLearningConfig = BitLearningConfig(), fractions=DEFAULT_FRACTIONS,
                log: Callable[[str], None] = lambda m: None, episode_progress: Callable | None = None,
                methods=DEFAULT_MATCHED) -> dict:
    """The paper's protocol (see the module docstring); writes compare.json, compare.md and
    pareto.png into `out_dir`, the searches' run folders under `out_dir`/METHOD@Fx. `config.budgets`
    is replaced by the matched budgets.

    methods : `check_matched_methods`; CAQ-like runs first, then the fixed baselines (caq_snapped,
        heuristic, uniformK) in the given order, then each searched method (hero, hero_hash8) at
        every fraction.
    Returns {'methods': rows, 'match': hero against CAQ-like (`pick_match`, None without hero),
    'matches': `all_matches`, 'skipped_fractions': searched method -> the fractions whose budgets
    no policy of that method can meet}."""
    methods = check_matched_methods(methods)
    config = dataclasses.replace(config, budgets={})  # each search gets its budgets from CAQ-like's cost
    setup = prepare(checkpoint, scene_dir, config)
    os.makedirs(out_dir, exist_ok=True)
    rows: dict[str, dict] = {}
    log("caq: start")
    rows["caq"] = caq_row(setup, caq, config)
    caq_frame = rows["caq"]["search_frame"]
    log(f"caq: {rows['caq']['psnr']:.2f} dB, {rows['caq']['latency_ms']:.3f} ms, {rows['caq']['model_bytes']:,} bytes "
        f"({rows['caq']['seconds']:.0f} s)")
    searched = [m for m in methods if m in SEARCHED]
    # a budget below the cheapest policy's cost (every point at its minimum bits) cannot be met: skip it
    skipped = {}
    for method in searched:
        floor = search_floor_cost(setup, method)
        skipped[method] = [f for f in fractions if out_of_reach(matched_budgets(caq_frame, f), floor)]
        for fraction in skipped[method]:
            log(f"{searched_row_name(method, fraction)}: skipped, its budgets lie below the cheapest policy's cost "
                f"({floor['latency_ms']:.4g} ms, {floor['model_bytes']:,.0f} bytes)")
    protocol = {"name": "matched", "methods": methods, "fractions": list(fractions), "skipped_fractions": skipped,
                "match_db": MATCH_DB, "match": None, "matches": {}}

    def write() -> None:
        protocol["matches"] = all_matches(rows)
        protocol["match"] = protocol["matches"].get("hero", {}).get("caq")
        write_compare(out_dir, rows, config, checkpoint, scene_dir, protocol=protocol)

    write()
    for method in [m for m in methods if m != "caq" and m not in SEARCHED]:
        log(f"{method}: start")
        rows[method] = baseline_row(setup, method, config, rows["caq"]["bits"] if method == "caq_snapped" else None)
        log(f"{method}: {rows[method]['psnr']:.2f} dB, {rows[method]['latency_ms']:.3f} ms, "
            f"{rows[method]['model_bytes']:,} bytes ({rows[method]['seconds']:.0f} s)")
        write()
    for method in searched:
        for fraction in [f for f in fractions if f not in skipped[method]]:
            name = searched_row_name(method, fraction)
            start = time.perf_counter()
            budgets = matched_budgets(caq_frame, fraction)
            log(f"{name}: start (budgets {budgets['latency_ms']} ms, {budgets['model_bytes']} bytes on the search frame)")
            method_config = dataclasses.replace(search_config_for(config, method), budgets=budgets)
            summary = hero_search(checkpoint, scene_dir, os.path.join(out_dir, name), method_config,
                                  progress=episode_progress)
            rows[name] = _row(summary, setup.points, time.perf_counter() - start,
                              {"budget_met": summary["budget_met"], "budget": summary["budget"], "fraction": fraction})
            log(f"{name}: {rows[name]['psnr']:.2f} dB, {rows[name]['latency_ms']:.3f} ms, "
                f"{rows[name]['model_bytes']:,} bytes ({rows[name]['seconds']:.0f} s)")
            write()
    return {"methods": rows, "match": protocol["match"], "matches": protocol["matches"], "skipped_fractions": skipped}


def _run_agent(env: QuantEnv, config: SearchConfig, setup) -> list[dict]:
    from hero_lite.rl import run_episodes

    agent = make_agent(env, config, start_bits(setup, config))
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
    lines = [("| method | PSNR (dB) | latency (ms) | fps | cost eff., fit area (1/(ms mm^2)) | area, fit (mm^2) | "
              "cost eff., fixed area (1/(ms mm^2)) | area, fixed (mm^2) | energy (uJ) | model (bytes) | mean bits | "
              "BitOps/sample |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in rows.items():
        lines.append(f"| {method} | {r['psnr']:.2f} | {r['latency_ms']:.3f} | {r['fps']:.0f} | "
                     f"{r['cost_efficiency_fit']:.3f} | {r['area_mm2_fit']:.3f} | {r['cost_efficiency']:.3f} | "
                     f"{r['area_mm2']:.3f} | {r['energy_uj']:.0f} | {r['model_bytes']:,} | {r['mean_bits']:.2f} | "
                     f"{r['bitops_per_sample']:.3g} |")
    matches = protocol.get("matches", {})
    if protocol["name"] == "matched" and "hero" in matches:
        lines += ["", match_line(protocol["match"], protocol["match_db"])]
    others = [(m, anchor, match) for m, by_anchor in matches.items() for anchor, match in by_anchor.items()
              if (m, anchor) != ("hero", "caq")]
    if others:
        lines += ["", (f"Other matches (the fastest searched row within {protocol['match_db']:g} dB of the anchor's "
                       "test PSNR):"), ""]
        lines += [f"- {match_line(match, protocol['match_db'], anchor)}" if match is not None
                  else f"- {m} against {anchor}: no row within {protocol['match_db']:g} dB." for m, anchor, match in others]
    write_text_atomically(os.path.join(out_dir, "compare.md"), "\n".join(lines) + "\n")
    points = [{"label": m, "latency_ms": r["latency_ms"], "psnr": r["psnr"]} for m, r in rows.items()]
    title = f"PSNR against latency ({config.accel})"
    quantized = [p["latency_ms"] for p in points if p["label"] != "fp32"]
    if "fp32" in rows and quantized and rows["fp32"]["latency_ms"] > 4 * max(quantized):
        points = [p for p in points if p["label"] != "fp32"]  # it would squash the others into a corner
        title += f"; fp32 off the chart at {rows['fp32']['latency_ms']:.2f} ms, {rows['fp32']['psnr']:.2f} dB"
    image = viz.scatter_plot(points, "latency_ms", "psnr", title, "latency (ms)", "test PSNR (dB)")
    viz.save_image(os.path.join(out_dir, "pareto.png"), image)
