"""`hero-lite search`, `run`, `compare` and `reproduce`: the HERO search and what is built on it."""

from __future__ import annotations

import json
import os
import sys

import click

from hero_lite.cli.group import UserError, cli, friendly_errors
from hero_lite.cli.options import (budgets_given, check_outputs, force_option, json_option, scene_dir_argument,
                                   search_downscale_option, search_options, search_seed_option, supersample_option,
                                   write_json)


def _search_progress(bar, state):
    def progress(episode, record):
        info = record.info
        if record.info.get("budget_met") and (state["best"] is None or record.reward > state["best"][0]):
            state["best"] = (record.reward, info.get("psnr"), info.get("latency_ms"))
        best = state["best"]
        best_text = f"best {best[1]:.2f} dB {best[2]:.3f} ms" if best else "best -"
        bar.current_item = (f"ep {episode + 1} reward {record.reward:+.3f} psnr {info.get('psnr', float('nan')):.2f} dB "
                            f"lat {info.get('latency_ms', float('nan')):.3f} ms | {best_text}")
        bar.update(1)

    return progress


def _final_progress(bar, episodes: int):
    """The last steps of a search bar (length episodes + final_candidates): the final QAT of each candidate."""
    def progress(index, count, line):
        if index == 0:
            bar.length = episodes + count
        bar.update(1, f"final QAT {index + 1}/{count} (episode {line['episode']})")

    return progress


# `run --quick`: the whole main job in under a minute on scenes/tiny, to see that everything works
QUICK_TRAIN_STEPS = 200
QUICK_SEARCH = {"episodes": 4, "qat_steps": 4, "final_qat_steps": 10, "final_candidates": 1, "val_views": 2}


def search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path, quick=False,
                  downscale=None):
    from hero_lite.search.hero import SearchConfig

    data = dict(QUICK_SEARCH) if quick else {}
    if config_path:
        data.update(read_config_file(config_path))
    # options given on the command line override the file; unset ones keep the file's or SearchConfig's defaults
    given = {"episodes": episodes, "point_set": point_set, "accel": accel, "budgets": budgets or None}
    data.update({k: v for k, v in given.items() if v is not None})
    if seed is not None:
        data["seed"] = seed
    if area_mode is not None:
        data["area_mode"] = area_mode
    if qat_steps is not None:
        data["qat_steps"] = qat_steps
    if downscale is not None:
        data["scene_downscale"] = downscale
    if reward is not None:
        data["reward"] = dict(data.get("reward", {}), kind=reward)
    try:
        return SearchConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        where = f"--config {config_path}: " if config_path else ""
        raise UserError(f"{where}{exc}") from None


def read_config_file(path: str) -> dict:
    import tomllib

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {path}: file not found")
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f) if path.endswith(".toml") else json.load(f)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"--config {path} does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: the top level must be a table of settings, not {type(data).__name__}")
    return data


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@scene_dir_argument
@search_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the search in OUT from its log and saved agent.")
@search_downscale_option
@search_seed_option
@json_option
@force_option
@friendly_errors
def search(checkpoint, scene_dir, latency_budget, area_budget, energy_budget, size_budget, accel, episodes, point_set,
           area_mode, qat_steps, reward, config_path, out_dir, resume, downscale, seed, json_path, force) -> None:
    """HERO search: a DDPG agent picks bits per point; the simulator prices each policy."""
    from hero_lite.runfolder import claimed
    from hero_lite.search.hero import hero_search

    budgets = budgets_given(latency_budget, area_budget, energy_budget, size_budget)
    config = search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path,
                           downscale=downscale)
    check_outputs({"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir, "--config": config_path}, {"--json": json_path})
    state = {"best": None}
    with claimed(out_dir, "search", resume=resume, force=force), \
            click.progressbar(length=config.episodes + config.final_candidates, label="searching", file=sys.stderr,
                              item_show_func=lambda s: s) as bar:
        summary = hero_search(checkpoint, scene_dir, out_dir, config, resume=resume, progress=_search_progress(bar, state),
                              final_progress=_final_progress(bar, config.episodes))
    _echo_summary(summary, out_dir)
    if json_path:
        write_json(json_path, summary)


def _echo_summary(summary: dict, out_dir: str) -> None:
    met = "met" if summary["budget_met"] else "NOT met"
    click.echo(f"best policy (episode {summary['best_episode']}): test PSNR {summary['psnr']:.2f} dB "
               f"(fp32 {summary['fp32_psnr']:.2f}), {summary['latency_ms']:.3f} ms, {summary['area_mm2']:.3f} mm^2, "
               f"{summary['energy_uj']:.0f} uJ, {summary['model_bytes']:,} bytes; budget {met}")
    click.echo(f"wrote {os.path.join(out_dir, 'summary.json')} and best_policy.json")


@cli.command()
@scene_dir_argument
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
@search_options
@click.option("--train-steps", type=click.IntRange(min=1), default=None,
              help="fp32 training steps (skipped if OUT/checkpoint.h5 exists) [2000; --quick 200].")
@click.option("--quick", is_flag=True,
              help=f"A quick check that everything works: {QUICK_TRAIN_STEPS} training steps, "
                   f"{QUICK_SEARCH['episodes']} short episodes, one short final fine-tune (options still override).")
@click.option("--resume", is_flag=True,
              help="Continue the run in OUT: keep its checkpoint (if trained on SCENE_DIR as it is now, at the "
                   "same --downscale and --supersample), continue its search.")
@supersample_option
@search_downscale_option
@search_seed_option
@json_option
@force_option
@friendly_errors
def run(scene_dir, out_dir, latency_budget, area_budget, energy_budget, size_budget, accel, episodes, point_set,
        area_mode, qat_steps, reward, config_path, train_steps, quick, resume, supersample, downscale, seed, json_path,
        force) -> None:
    """The main job: train the fp32 NeRF, search a policy, write the summary and pictures."""
    from hero_lite.nerf.config import ModelConfig
    from hero_lite.nerf.pipeline import train_run
    from hero_lite.runfolder import claimed
    from hero_lite.search.run import check_budget_before_training, main_job, trained_checkpoint

    budgets = budgets_given(latency_budget, area_budget, energy_budget, size_budget)
    config = search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path, quick,
                           downscale)
    if train_steps is None:
        train_steps = QUICK_TRAIN_STEPS if quick else 2000
    check_outputs({"SCENE_DIR": scene_dir, "--config": config_path}, {"--json": json_path})
    with claimed(out_dir, "run", resume=resume, force=force):
        checkpoint = trained_checkpoint(out_dir, scene_dir, config.scene_downscale, supersample)
        if checkpoint is not None:
            click.echo(f"reusing {checkpoint}")
        else:
            check_budget_before_training(scene_dir, config, supersample)
            with click.progressbar(length=train_steps, label="training fp32", file=sys.stderr) as bar:
                metrics = train_run(scene_dir, out_dir, steps=train_steps, seed=config.seed,
                                    model_config=ModelConfig(supersample=supersample),
                                    progress=lambda step, stats: bar.update(1), scene_downscale=config.scene_downscale)
            click.echo(f"fp32: {metrics['steps']} steps in {metrics['train_seconds']:.0f} s, "
                       f"test PSNR {metrics['test_psnr']:.2f} dB")
        state = {"best": None}
        search_dir = os.path.join(out_dir, "search")
        with click.progressbar(length=config.episodes + config.final_candidates, label="searching", file=sys.stderr,
                               item_show_func=lambda s: s) as bar:
            summary = main_job(scene_dir, out_dir, config, search_progress=_search_progress(bar, state),
                               resume=os.path.exists(os.path.join(search_dir, "config.json")),
                               final_progress=_final_progress(bar, config.episodes))
    _echo_summary(summary, os.path.join(out_dir, "search"))
    click.echo(f"pictures: {os.path.join(out_dir, 'test_view.png')}, {os.path.join(out_dir, 'bits.png')}")
    if json_path:
        write_json(json_path, summary)


@cli.command()
@click.option("--scene", "scene", default="scenes/tiny", show_default=True,
              help="Procedural scene to regenerate: a name (tiny, primitives, lattice) or its bundled folder, "
                   "whose files are then compared with the regenerated ones.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: new, empty, or an earlier `reproduce` folder (whose outputs are replaced).")
@click.option("--check", "reference_path", type=click.Path(dir_okay=False), default=None,
              help="Reference fingerprint.json to check against: exit 0 if everything holds, 1 on drift.")
@click.option("--tolerance", "tolerance_path", type=click.Path(dir_okay=False), default=None,
              help="TOML or JSON file overriding the default tolerances (see hero_lite/search/drift.py).")
@friendly_errors
def reproduce(scene, out_dir, reference_path, tolerance_path) -> None:
    """Run the whole pipeline in miniature and write OUT/fingerprint.json; optionally check it.

    Scene generation, fp32 training, PTQ and QAT of a fixed policy, simulation on both presets and
    a short search, all seeded: digests of the images, parameters and packed models plus every
    headline number. With --check, prints a drift report (key, reference, now, allowed, verdict),
    writes OUT/drift_report.txt and exits 0 (holds), 1 (drift) or 2 (bad input).
    """
    from hero_lite.runfolder import claimed, write_text_atomically
    from hero_lite.search.drift import Tolerances, compare_fingerprints, format_report, load_fingerprint
    from hero_lite.search.reproduce import ReproduceConfig, run_miniature

    name = os.path.basename(os.path.normpath(scene))
    bundled = scene if os.path.isdir(scene) else None
    if bundled is None and os.sep in scene:
        raise UserError(f"scene folder not found: {scene}")
    config = ReproduceConfig(scene=name)
    reference = load_fingerprint(reference_path) if reference_path else None
    tolerances = Tolerances.from_file(tolerance_path) if tolerance_path else Tolerances.default()
    with claimed(out_dir, "reproduce", force=True):  # replaces an earlier reproduce run, refuses any other folder
        fingerprint = run_miniature(out_dir, config, bundled_scene=bundled,
                                    log=lambda message: click.echo(f"[reproduce] {message}", err=True))
        click.echo(f"wrote {os.path.join(out_dir, 'fingerprint.json')} in {fingerprint['seconds']:.0f} s "
                   f"(environment {fingerprint['environment_id']})")
        if reference is None:
            return
        rows = compare_fingerprints(reference, fingerprint, tolerances)
        report = format_report(rows)
        write_text_atomically(os.path.join(out_dir, "drift_report.txt"), report + "\n")
    click.echo(report)
    if any(r.verdict == "drift" for r in rows):
        click.echo(f"drift against {reference_path}", err=True)
        sys.exit(1)
    click.echo(f"reproduces {reference_path}")


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@scene_dir_argument
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--methods", default=None,
              help="Run these methods (comma-separated: fp32, uniformK, uniformK-ptq (K = 2..8), caq, caq_snapped, "
                   "heuristic, haq, random, hero, hero_hash8) under the budgets given or the default 0.8x latency, instead of the matched protocol; "
                   "for example fp32,uniform8,caq,haq,random,hero.")
@click.option("--fractions", default=None,
              help="Matched protocol: HERO's latency budgets as fractions of CAQ-like's latency [0.9,0.85,0.76].")
@click.option("--baselines", default=None,
              help="Matched protocol: what runs beside CAQ-like and HERO (comma-separated: caq_snapped, heuristic, "
                   "uniformK, hero_hash8; 'none' for nothing) [caq_snapped,heuristic].")
@click.option("--caq-mode", type=click.Choice(["mgl", "mdl"]), default="mdl", show_default=True,
              help="CAQ-like bit learning: minimal degradation (keeps the fp32 loss) or metric-guided "
                   "(down to --caq-target).")
@click.option("--caq-target", type=float, default=30.0, show_default=True, help="MGL target PSNR (dB).")
@click.option("--caq-penalty", type=float, default=1e-3, show_default=True, help="Weight of CAQ's mean-bit penalty.")
@click.option("--caq-steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="QAT steps of the bit learning (CAQ: 3000; the bit rate is scaled to match).")
@search_options
@search_downscale_option
@search_seed_option
@force_option
@friendly_errors
def compare(checkpoint, scene_dir, out_dir, methods, fractions, baselines, caq_mode, caq_target, caq_penalty, caq_steps, latency_budget,
            area_budget, energy_budget, size_budget, accel, episodes, point_set, area_mode, qat_steps, reward,
            config_path, downscale, seed, force) -> None:
    """Compare HERO with CAQ-like at matched quality; write compare.json, compare.md and pareto.png.

    By default, the HERO paper's protocol: CAQ-like learns its bit-widths first; then one HERO search
    per latency fraction f, with budgets f x CAQ-like's latency and CAQ-like's model size (both on
    the search's cost frame); the result is the fastest HERO policy within 0.1 dB of CAQ-like's test
    PSNR, and its latency, cost-efficiency (fit area, then fixed area) and model-size ratios. Beside
    them by default: caq_snapped (CAQ-like's bits snapped to widths the accelerator runs without
    waste) and heuristic (a three-rule hand policy); --baselines hero_hash8 adds HERO searches with
    every hash level at 8 bits. Every final policy gets the same final QAT and test-view report.
    With --methods, the listed methods run under one budget instead (HAQ-like and random search use
    HERO's budget and episode count).
    """
    from hero_lite.quant.learned import BitLearningConfig
    from hero_lite.runfolder import claimed
    from hero_lite.search.compare import (DEFAULT_FRACTIONS, DEFAULT_MATCHED, SEARCHED, parse_baselines, parse_fractions,
                                          parse_methods, run_compare, run_matched)

    budgets = budgets_given(latency_budget, area_budget, energy_budget, size_budget)
    if methods is None and budgets:
        raise UserError("the matched protocol takes its budgets from CAQ-like; give --methods to set them yourself")
    if methods is not None and (fractions is not None or baselines is not None):
        raise UserError(f"{'--fractions' if fractions is not None else '--baselines'} belongs to the matched protocol; "
                        "leave it out with --methods")
    matched_methods = ["caq", *parse_baselines(baselines), "hero"] if baselines is not None else list(DEFAULT_MATCHED)
    method_list = parse_methods(methods) if methods is not None else None
    fraction_list = parse_fractions(fractions) if fractions is not None else list(DEFAULT_FRACTIONS)
    config = search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path,
                           downscale=downscale)
    if method_list is None and config.point_set != "hero":
        raise UserError("the matched protocol searches HERO's point set; give --methods to compare on --set caq")
    caq = BitLearningConfig(mode=caq_mode, target_psnr=caq_target, penalty=caq_penalty, steps=caq_steps)
    if not os.path.exists(checkpoint):
        raise UserError(f"checkpoint not found: {checkpoint}")
    log = lambda message: click.echo(f"[compare] {message}", err=True)  # noqa: E731
    with claimed(out_dir, "compare", force=force):
        if method_list is None:
            searches = len(fraction_list) * sum(1 for m in matched_methods if m in SEARCHED)
            with click.progressbar(length=searches * config.episodes, label="HERO searches", file=sys.stderr,
                                   item_show_func=lambda s: s) as bar:
                result = run_matched(checkpoint, scene_dir, out_dir, config, caq, fraction_list, log=log,
                                     episode_progress=_search_progress(bar, {"best": None}), methods=matched_methods)
            rows = result["methods"]
        else:
            rows = run_compare(checkpoint, scene_dir, out_dir, method_list, config, caq, log=log)
    click.echo(open(os.path.join(out_dir, "compare.md")).read().rstrip())
    click.echo(f"wrote {os.path.join(out_dir, 'compare.json')}, compare.md and pareto.png ({len(rows)} methods)")
