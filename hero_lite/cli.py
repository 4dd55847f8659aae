"""The `hero-lite` command line: thin click commands over the library.

Every command parses its options, builds configs, calls one library function and prints a
summary. Library errors (`ValueError`, `TypeError`, `OSError`) become one clear line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import click

from hero_lite import __version__


class UserError(click.ClickException):
    """A bad input reported as one line, exit code 2 (like click's usage errors)."""

    exit_code = 2


class InternalError(click.ClickException):
    """A failure of hero-lite itself, reported as one line (exit code 1); --debug shows the traceback."""

    exit_code = 1


def _debugging() -> bool:
    """--debug on the command line or HERO_LITE_DEBUG=1 in the environment."""
    ctx = click.get_current_context(silent=True)
    flag = ctx is not None and ctx.find_root().params.get("debug", False)
    return flag or os.environ.get("HERO_LITE_DEBUG", "") not in ("", "0")


def _friendly_errors(fn):
    """Turn library errors into one clear line and exit code 2, and any other failure into one line
    and exit code 1 (the traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ValueError, TypeError, KeyError, OSError) as exc:
            if _debugging():
                raise
            message = str(exc) or exc.__class__.__name__
            if isinstance(exc, KeyError):
                message = f"missing key {message}"
            raise UserError(message) from None
        except Exception as exc:
            if _debugging():
                raise
            raise InternalError(f"internal error ({exc.__class__.__name__}: {exc}); rerun with --debug "
                                "(or HERO_LITE_DEBUG=1) for the traceback") from None

    return wrapper


def write_json(path: str, payload: dict) -> None:
    """Write `payload` as JSON to `path` atomically (a temp file, then rename)."""
    from hero_lite.runfolder import write_json_atomically

    write_json_atomically(path, payload)


class _OneLineErrors(click.Group):
    """click's group, with a usage error printed as one line that points to --help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(name="hero-lite", cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hero-lite")
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure (also HERO_LITE_DEBUG=1).")
def cli(debug) -> None:
    """Hardware-aware mixed-precision quantization of NeRFs, on a CPU.

    Train an Instant-NGP-style NeRF, quantize it, simulate it on a NeRF accelerator and search
    bit-widths with a DDPG agent (the HERO method, arXiv 2510.09010).
    """


# ---------------------------------------------------------------------------- shared options


def seed_option(fn):
    return click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same numbers).")(fn)


def search_seed_option(fn):
    return click.option("--seed", type=int, default=None,
                        help="Random seed (same seed, same numbers) [the --config file's, else 0].")(fn)


def json_option(fn):
    return click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                        help="Also write the command's result as JSON to this file.")(fn)


def force_option(fn):
    return click.option("--force", is_flag=True, help="Replace an earlier run of this command in --out.")(fn)


def check_outputs(inputs: dict, outputs: dict, force: bool = False) -> None:
    """Refuse, before any work, an output file that is an input, a symlink or a folder, or that
    exists without --force (an earlier JSON or PNG result is replaced).

    inputs : name -> path of each file or folder the command reads; outputs : option -> path.
    """
    from hero_lite.runfolder import check_output_file

    for option, path in outputs.items():
        check_output_file(path, inputs, option, force=force)


def _existing_dir(fn):
    return click.argument("scene_dir", type=click.Path(exists=True, file_okay=False))(fn)


# ---------------------------------------------------------------------------- scene


@cli.group()
def scene() -> None:
    """Procedural ground-truth scenes in the Blender (NeRF-synthetic) format."""


@scene.command("make")
@click.argument("name", type=click.Choice(["primitives", "lattice", "tiny"]))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the scene to.")
@click.option("--res", type=int, default=None, help="Image width and height in pixels [scene default: 100, tiny 64].")
@click.option("--train", "n_train", type=int, default=None, help="Training views [scene default].")
@click.option("--val", "n_val", type=int, default=None, help="Validation views [scene default].")
@click.option("--test", "n_test", type=int, default=None, help="Test views [scene default].")
@seed_option
@_friendly_errors
def scene_make(name, out_dir, res, n_train, n_val, n_test, seed) -> None:
    """Render the procedural scene NAME into OUT (transforms_*.json and PNGs).

    The same seed regenerates the bundled scenes bit for bit.
    """
    from hero_lite.scenes import make_scene
    from hero_lite.scenes.synth import scene_defaults

    defaults = scene_defaults(name)
    total = sum(v if v is not None else defaults[k] for k, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)))
    with click.progressbar(length=total, label=f"rendering {name}", file=sys.stderr) as bar:
        summary = make_scene(name, out_dir, res=res, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed,
                             progress=bar.update)
    counts = summary["counts"]
    click.echo(f"wrote {out_dir}: {summary['res']}x{summary['res']} px, {counts['train']} train / {counts['val']} val / "
               f"{counts['test']} test views in {summary['seconds']:.1f} s")


# ---------------------------------------------------------------------------- train / eval / render

MAX_TRAIN_SECONDS = 30 * 24 * 3600.0  # a month: beyond it, --seconds is a typo


@cli.command()
@_existing_dir
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False), help="Run folder for checkpoint.h5 and metrics.json.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Train for this many steps (bit-reproducible).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=MAX_TRAIN_SECONDS), default=None,
              help="Train for this much wall-clock time.")
@seed_option
@json_option
@force_option
@_friendly_errors
def train(scene_dir, run_dir, steps, seconds, seed, json_path, force) -> None:
    """Train the fp32 NeRF on SCENE_DIR and evaluate it on the val and test views."""
    from hero_lite.runfolder import claimed

    if (steps is None) == (seconds is None):
        raise UserError("give exactly one of --steps N and --seconds S")
    check_outputs({"SCENE_DIR": scene_dir}, {"--json": json_path})
    with claimed(run_dir, "train", force=force):
        metrics = _train_with_progress(scene_dir, run_dir, steps, seconds, seed)
    click.echo(f"{metrics['steps']} steps in {metrics['train_seconds']:.1f} s ({metrics['samples_per_s'] / 1e6:.2f} M samples/s); "
               f"val PSNR {metrics['val_psnr']:.2f} dB, test PSNR {metrics['test_psnr']:.2f} dB, "
               f"SSIM {metrics['test_ssim']:.4f}")
    click.echo(f"wrote {os.path.join(run_dir, 'checkpoint.h5')} and metrics.json")
    if json_path:
        write_json(json_path, metrics)


def _train_with_progress(scene_dir, run_dir, steps, seconds, seed) -> dict:
    """`train_run` with a progress bar (steps, or tenths of a second for --seconds)."""
    from hero_lite.nerf.pipeline import train_run

    state = {"shown": 0}
    length = steps if steps is not None else int(seconds * 10)
    start = time.perf_counter()
    with click.progressbar(length=length, label="training", file=sys.stderr, show_pos=steps is not None,
                           item_show_func=lambda s: s) as bar:

        def progress(step, stats):
            done = step if steps is not None else min(int((time.perf_counter() - start) * 10), length)
            bar.current_item = (f"step {step} loss {stats.loss:.5f} psnr {stats.psnr:.2f} dB "
                                f"{stats.n_samples / 1e3:.0f}k samples")
            bar.update(done - state["shown"])
            state["shown"] = done

        return train_run(scene_dir, run_dir, steps=steps, seconds=seconds, seed=seed, progress=progress)


def _load_any_checkpoint(path: str):
    """(model, hooks, metadata) of an fp32 or quantized checkpoint."""
    from hero_lite.quant.run import load_any_checkpoint

    return load_any_checkpoint(path)


# ---------------------------------------------------------------------------- quantization


def policy_options(fn):
    """--policy P.json | --uniform B | --hash-bits B --mlp-bits B (shared by quantize and simulate)."""
    fn = click.option("--mlp-bits", type=int, default=None, help="Bits of every MLP weight and activation.")(fn)
    fn = click.option("--hash-bits", type=int, default=None, help="Bits of every hash level (with --mlp-bits).")(fn)
    fn = click.option("--uniform", type=int, default=None, help="The same bits everywhere (32 = unquantized).")(fn)
    fn = click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
                      help="Policy JSON: {\"set\": ..., \"points\": {name: bits}}.")(fn)
    return fn


def policy_source(policy_path, uniform, hash_bits, mlp_bits, point_set="hero"):
    """A callable config -> QuantPolicy from the policy options, or a UserError if they conflict."""
    from hero_lite.quant.policy import QuantPolicy, uniform_policy

    given = [policy_path is not None, uniform is not None, hash_bits is not None or mlp_bits is not None]
    if sum(given) != 1:
        raise UserError("give exactly one of --policy P.json, --uniform B, or --hash-bits B --mlp-bits B")
    if policy_path is not None:
        return lambda config: QuantPolicy.load(policy_path, config)
    if uniform is not None:
        return lambda config: uniform_policy(config, uniform, uniform, point_set)
    if hash_bits is None or mlp_bits is None:
        raise UserError("--hash-bits and --mlp-bits go together")
    return lambda config: uniform_policy(config, hash_bits, mlp_bits, point_set)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="hero: one point per hash level; caq: CAQ's 15 quantizers.")
@json_option
@_friendly_errors
def points(checkpoint, point_set, json_path) -> None:
    """List the quantization points of CHECKPOINT's model."""
    from hero_lite.quant.points import quant_points

    check_outputs({"CHECKPOINT": checkpoint}, {"--json": json_path})
    model, _, _ = _load_any_checkpoint(checkpoint)
    pts = quant_points(model.config, point_set)
    click.echo(f"{'name':<20} {'kind':<11} {'scheme':<11} {'shape':<14} {'elements':>9} {'per sample':>10} bits")
    for p in pts:
        shape = "x".join(str(d) for d in p.shape)
        click.echo(f"{p.name:<20} {p.kind:<11} {p.scheme:<11} {shape:<14} {p.n_elements:>9} {p.per_sample:>10} "
                   f"{p.min_bits}-{p.max_bits}|32")
    if json_path:
        write_json(json_path, {"set": point_set, "points": [p.to_dict() for p in pts]})


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@_existing_dir
@policy_options
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="Point set of the --uniform/--hash-bits shorthands.")
@click.option("--qat-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Quantization-aware fine-tuning steps after calibration.")
@click.option("--calibration", type=click.Choice(["minmax", "percentile"]), default="minmax", show_default=True)
@click.option("--per-channel", is_flag=True, help="Per-output-channel scales for MLP weights.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Quantized checkpoint (.h5).")
@seed_option
@json_option
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@_friendly_errors
def quantize(checkpoint, scene_dir, policy_path, uniform, hash_bits, mlp_bits, point_set, qat_steps, calibration,
             per_channel, out_path, seed, json_path, force) -> None:
    """Quantize CHECKPOINT with a policy, evaluate test PSNR and export a bit-packed model."""
    from hero_lite.quant.run import quantize_run

    inputs = {"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir, "--policy": policy_path}
    check_outputs(inputs, {"--out": out_path}, force)
    check_outputs({**inputs, "--out": out_path}, {"--json": json_path})
    source = policy_source(policy_path, uniform, hash_bits, mlp_bits, point_set)
    with click.progressbar(length=qat_steps, label="QAT", file=sys.stderr) as bar:
        result = quantize_run(checkpoint, scene_dir, source, out_path, qat_steps=qat_steps, calibration=calibration,
                              seed=seed, per_channel=per_channel, progress=lambda step, stats: bar.update(1))
    click.echo(f"test PSNR {result['psnr']:.2f} dB (fp32 {result['fp32_psnr']:.2f} dB), "
               f"{result['model_bytes']:,} bytes ({result['compression']:.1f}x smaller than fp32); wrote {out_path}")
    if json_path:
        write_json(json_path, result)


@cli.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@_existing_dir
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@json_option
@_friendly_errors
def eval_command(checkpoint, scene_dir, split, json_path) -> None:
    """PSNR and SSIM of CHECKPOINT on the views of SCENE_DIR (white background)."""
    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.scenes import load_scene

    check_outputs({"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir}, {"--json": json_path})
    model, hooks, _ = _load_any_checkpoint(checkpoint)
    views = load_scene(scene_dir, split)
    with click.progressbar(length=views.n_views, label=f"rendering {split} views", file=sys.stderr) as bar:
        result = evaluate(model, views, hooks=hooks, progress=bar.update)
    click.echo(f"{split}: PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f} over {views.n_views} views "
               f"({result.rays_per_s / 1e3:.0f}k rays/s)")
    if json_path:
        write_json(json_path, {"checkpoint": os.path.abspath(checkpoint), "split": split, **result.to_dict()})


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@_existing_dir
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the PNGs.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--views", "max_views", type=click.IntRange(min=1), default=None, help="Render only the first N views.")
@force_option
@_friendly_errors
def render(checkpoint, scene_dir, out_dir, split, max_views, force) -> None:
    """Render CHECKPOINT: prediction, ground truth and error map PNGs per view."""
    from hero_lite import viz
    from hero_lite.nerf.evaluate import render_view
    from hero_lite.nerf.metrics import psnr
    from hero_lite.runfolder import claimed
    from hero_lite.scenes import load_scene

    model, hooks, _ = _load_any_checkpoint(checkpoint)
    views = load_scene(scene_dir, split)
    targets = views.rgb((1.0, 1.0, 1.0))
    n = views.n_views if max_views is None else min(max_views, views.n_views)
    scores = []
    with claimed(out_dir, "render", force=force), click.progressbar(range(n), label="rendering", file=sys.stderr) as bar:
        for k in bar:
            image, _ = render_view(model, views.poses[k], views.focal, views.height, views.width, hooks=hooks)
            viz.save_png(os.path.join(out_dir, f"{split}_{k:03d}_pred.png"), image)
            viz.save_png(os.path.join(out_dir, f"{split}_{k:03d}_gt.png"), targets[k])
            viz.save_png(os.path.join(out_dir, f"{split}_{k:03d}_error.png"), viz.error_map(image, targets[k]))
            scores.append(psnr(image, targets[k]))
    click.echo(f"wrote {3 * n} PNGs to {out_dir} (mean PSNR {sum(scores) / len(scores):.2f} dB)")


# ---------------------------------------------------------------------------- simulation


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False), required=False)
@click.argument("scene_dir", type=click.Path(exists=True, file_okay=False), required=False)
@policy_options
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="Point set of the --uniform/--hash-bits shorthands.")
@click.option("--accel", "accel", default="edge", show_default=True, help="Preset (edge, server) or a .toml file.")
@click.option("--views", type=click.IntRange(min=1), default=1, show_default=True,
              help="Average this many test views (cold caches per frame).")
@click.option("--area-mode", type=click.Choice(["fixed", "fit"]), default=None,
              help="Area: the preset's SRAM sizes (fixed) or grid SRAM sized to the policy's tables (fit).")
@click.option("--sampled", is_flag=True, help="Sample the hash-memory pass (about 10x faster, within a few %).")
@click.option("--full-size", is_flag=True, help="Simulate the samples on Instant-NGP's full grid (T=2^19, N_max=2048).")
@click.option("--synthetic", is_flag=True, help="A generated frame (a sphere), no checkpoint needed: for teaching.")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False), default=None,
              help="Draw a Gantt chart of unit activity (first view) to this PNG.")
@json_option
@_friendly_errors
def simulate(checkpoint, scene_dir, policy_path, uniform, hash_bits, mlp_bits, point_set, accel, views, area_mode,
             sampled, full_size, synthetic, timeline_path, json_path) -> None:
    """Latency, area, energy and cost efficiency of a policy on a NeRF accelerator.

    Traces test views of SCENE_DIR with CHECKPOINT (the model's own marching and hash indices) and
    runs the event-driven simulator; or, with --synthetic, a generated frame.
    """
    from hero_lite.accel import DEFAULT_SAMPLE_FRACTION, load_config, synthetic_workload
    from hero_lite.search.cost import policy_cost

    inputs = {"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir, "--policy": policy_path, "--accel": accel}
    check_outputs(inputs, {"--timeline": timeline_path, "--json": json_path})
    check_outputs({**inputs, "--timeline": timeline_path}, {"--json": json_path})
    config = load_config(accel)
    source = policy_source(policy_path, uniform, hash_bits, mlp_bits, point_set)
    if synthetic:
        if checkpoint or scene_dir:
            raise UserError("--synthetic takes no CHECKPOINT or SCENE_DIR")
        from hero_lite.nerf.config import ModelConfig

        model_config = ModelConfig()
        policy = source(model_config)
        if policy.point_set != "hero":
            raise UserError("--synthetic frames use the hero point set")
        workloads = [synthetic_workload()]
    else:
        if not checkpoint or not scene_dir:
            raise UserError("give CHECKPOINT and SCENE_DIR, or --synthetic")
        from hero_lite.quant.run import load_any_checkpoint
        from hero_lite.scenes import load_scene
        from hero_lite.search.workload import trace_views, workload_from_trace

        model, hooks, _ = load_any_checkpoint(checkpoint)
        policy = source(model.config)
        test = load_scene(scene_dir, "test")
        traces = trace_views(model, test, tuple(range(min(views, test.n_views))), hooks=hooks)
        workloads = [workload_from_trace(t, model.config, policy.point_set, full_size) for t in traces]
    cost = policy_cost(workloads, policy, config, area_mode=area_mode,
                       sample_fraction=DEFAULT_SAMPLE_FRACTION if sampled else None, timeline=timeline_path is not None)
    first = cost.reports[0]
    shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(first.unit_shares().items(), key=lambda kv: -kv[1])[:4])
    click.echo(f"{config.name}: {cost.latency_ms:.3f} ms ({cost.fps:.0f} fps), {cost.area_mm2:.3f} mm^2, "
               f"{cost.energy_uj:.1f} uJ, cost efficiency {cost.cost_efficiency:.3f} /(ms mm^2), "
               f"model {cost.model_bytes:,} bytes; busy: {shares}")
    if timeline_path:
        from hero_lite import viz

        image = viz.gantt_chart(first.timeline, first.total_cycles,
                                f"{config.name}: unit activity over one frame ({first.total_cycles:,} cycles)")
        viz.save_image(timeline_path, image)
        click.echo(f"wrote {timeline_path}")
    if json_path:
        write_json(json_path, {"accel": config.name, "policy": policy.to_dict(), **cost.to_dict(with_reports=True)})


# ---------------------------------------------------------------------------- search


def _check_budget(ctx, param, value):
    """A budget option's value as given, once it parses (a number > 0, or such a number and 'x')."""
    if value is None:
        return None
    from hero_lite.search.budget import parse_limit

    try:
        parse_limit(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("budget ", "", 1), ctx=ctx, param=param) from None
    return value


def budget_options(fn):
    """--latency-budget / --area-budget / --energy-budget / --size-budget, absolute or 'Nx' relative."""
    for name, unit in (("size", "bytes"), ("energy", "uJ"), ("area", "mm^2"), ("latency", "ms")):
        fn = click.option(f"--{name}-budget", default=None, metavar="LIMIT", callback=_check_budget,
                          help=f"Limit on {name} ({unit}), or e.g. 0.8x of the reference policy (uniform 8-bit)"
                               + (" [0.8x]." if name == "latency" else "."))(fn)
    return fn


def _budgets(latency_budget, area_budget, energy_budget, size_budget):
    """The budgets given on the command line ({} if none: the config file's or the default 0.8x latency)."""
    budgets = {"latency_ms": latency_budget, "area_mm2": area_budget, "energy_uj": energy_budget,
               "model_bytes": size_budget}
    return {k: v for k, v in budgets.items() if v is not None}


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


def _search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path, quick=False):
    from hero_lite.search.hero import SearchConfig

    data = dict(QUICK_SEARCH) if quick else {}
    if config_path:
        data.update(_read_config_file(config_path))
    # options given on the command line override the file; unset ones keep the file's or SearchConfig's defaults
    given = {"episodes": episodes, "point_set": point_set, "accel": accel, "budgets": budgets or None}
    data.update({k: v for k, v in given.items() if v is not None})
    if seed is not None:
        data["seed"] = seed
    if area_mode is not None:
        data["area_mode"] = area_mode
    if qat_steps is not None:
        data["qat_steps"] = qat_steps
    if reward is not None:
        data["reward"] = dict(data.get("reward", {}), kind=reward)
    try:
        return SearchConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        where = f"--config {config_path}: " if config_path else ""
        raise UserError(f"{where}{exc}") from None


def _read_config_file(path: str) -> dict:
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


def search_options(fn):
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                      help="SearchConfig as TOML or JSON (command-line options override it).")(fn)
    fn = click.option("--reward", type=click.Choice(["psnr", "multi"]), default=None,
                      help="psnr: 0.1 x PSNR change under the budget; multi: also -log latency (see docs).")(fn)
    fn = click.option("--qat-steps", type=click.IntRange(min=0), default=None, help="Fine-tune steps per episode [30].")(fn)
    fn = click.option("--area-mode", type=click.Choice(["fixed", "fit"]), default=None)(fn)
    fn = click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default=None,
                      help="Point set [hero].")(fn)
    fn = click.option("--episodes", type=click.IntRange(min=1), default=None, help="Search episodes [100].")(fn)
    fn = click.option("--accel", default=None, help="Preset (edge, server) or a .toml file [edge].")(fn)
    return budget_options(fn)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@_existing_dir
@search_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the search in OUT from its log and saved agent.")
@search_seed_option
@json_option
@force_option
@_friendly_errors
def search(checkpoint, scene_dir, latency_budget, area_budget, energy_budget, size_budget, accel, episodes, point_set,
           area_mode, qat_steps, reward, config_path, out_dir, resume, seed, json_path, force) -> None:
    """HERO search: a DDPG agent picks bits per point; the simulator prices each policy."""
    from hero_lite.runfolder import claimed
    from hero_lite.search.hero import hero_search

    budgets = _budgets(latency_budget, area_budget, energy_budget, size_budget)
    config = _search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path)
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
@_existing_dir
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
@search_options
@click.option("--train-steps", type=click.IntRange(min=1), default=None,
              help="fp32 training steps (skipped if OUT/checkpoint.h5 exists) [2000; --quick 200].")
@click.option("--quick", is_flag=True,
              help=f"A quick check that everything works: {QUICK_TRAIN_STEPS} training steps, "
                   f"{QUICK_SEARCH['episodes']} short episodes, one short final fine-tune (options still override).")
@click.option("--resume", is_flag=True,
              help="Continue the run in OUT: keep its checkpoint (if trained on SCENE_DIR as it is now), "
                   "continue its search.")
@search_seed_option
@json_option
@force_option
@_friendly_errors
def run(scene_dir, out_dir, latency_budget, area_budget, energy_budget, size_budget, accel, episodes, point_set,
        area_mode, qat_steps, reward, config_path, train_steps, quick, resume, seed, json_path, force) -> None:
    """The main job: train the fp32 NeRF, search a policy, write the summary and pictures."""
    from hero_lite.nerf.pipeline import train_run
    from hero_lite.runfolder import claimed
    from hero_lite.search.run import check_budget_before_training, main_job, trained_checkpoint

    budgets = _budgets(latency_budget, area_budget, energy_budget, size_budget)
    config = _search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path, quick)
    if train_steps is None:
        train_steps = QUICK_TRAIN_STEPS if quick else 2000
    check_outputs({"SCENE_DIR": scene_dir, "--config": config_path}, {"--json": json_path})
    with claimed(out_dir, "run", resume=resume, force=force):
        checkpoint = trained_checkpoint(out_dir, scene_dir)
        if checkpoint is not None:
            click.echo(f"reusing {checkpoint}")
        else:
            check_budget_before_training(scene_dir, config)
            with click.progressbar(length=train_steps, label="training fp32", file=sys.stderr) as bar:
                metrics = train_run(scene_dir, out_dir, steps=train_steps, seed=config.seed,
                                    progress=lambda step, stats: bar.update(1))
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


# ---------------------------------------------------------------------------- reproduce


@cli.command()
@click.option("--scene", "scene", default="scenes/tiny", show_default=True,
              help="Procedural scene to regenerate: a name (tiny, primitives, lattice) or its bundled folder, "
                   "whose files are then compared with the regenerated ones.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: new, empty, or an earlier `reproduce` folder (whose outputs are replaced).")
@click.option("--check", "reference_path", type=click.Path(dir_okay=False), default=None,
              help="Reference fingerprint.json to check against: exit 0 if everything holds, 1 on drift.")
@click.option("--tolerance", "tolerance_path", type=click.Path(dir_okay=False), default=None,
              help="TOML or JSON file overriding the default tolerances (see hero_lite/search/reproduce.py).")
@_friendly_errors
def reproduce(scene, out_dir, reference_path, tolerance_path) -> None:
    """Run the whole pipeline in miniature and write OUT/fingerprint.json; optionally check it.

    Scene generation, fp32 training, PTQ and QAT of a fixed policy, simulation on both presets and
    a short search, all seeded: digests of the images, parameters and packed models plus every
    headline number. With --check, prints a drift report (key, reference, now, allowed, verdict),
    writes OUT/drift_report.txt and exits 0 (holds), 1 (drift) or 2 (bad input).
    """
    from hero_lite.runfolder import claimed, write_text_atomically
    from hero_lite.search.reproduce import (ReproduceConfig, Tolerances, compare_fingerprints, format_report,
                                            load_fingerprint, run_miniature)

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


# ---------------------------------------------------------------------------- compare


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@_existing_dir
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--methods", default="fp32,uniform8,caq,haq,random,hero", show_default=True,
              help="Comma-separated: fp32, uniformK, uniformK-ptq (K = 2..8), caq, haq, random, hero.")
@click.option("--caq-mode", type=click.Choice(["mgl", "mdl"]), default="mdl", show_default=True,
              help="CAQ-like bit learning: minimal degradation (keeps the fp32 loss) or metric-guided "
                   "(down to --caq-target).")
@click.option("--caq-target", type=float, default=30.0, show_default=True, help="MGL target PSNR (dB).")
@click.option("--caq-penalty", type=float, default=1e-3, show_default=True, help="Weight of CAQ's mean-bit penalty.")
@click.option("--caq-steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="QAT steps of the bit learning (CAQ: 3000; the bit rate is scaled to match).")
@search_options
@search_seed_option
@force_option
@_friendly_errors
def compare(checkpoint, scene_dir, out_dir, methods, caq_mode, caq_target, caq_penalty, caq_steps, latency_budget,
            area_budget, energy_budget, size_budget, accel, episodes, point_set, area_mode, qat_steps, reward,
            config_path, seed, force) -> None:
    """Run HERO and the baselines on one checkpoint; write compare.json, compare.md and pareto.png.

    Every method's final policy gets the same final QAT and the same test-view report. HAQ-like and
    random search use HERO's budget ratios and episode count.
    """
    from hero_lite.quant.learned import BitLearningConfig
    from hero_lite.runfolder import claimed
    from hero_lite.search.compare import parse_methods, run_compare

    method_list = parse_methods(methods)
    budgets = _budgets(latency_budget, area_budget, energy_budget, size_budget)
    config = _search_config(episodes, point_set, accel, area_mode, budgets, qat_steps, reward, seed, config_path)
    caq = BitLearningConfig(mode=caq_mode, target_psnr=caq_target, penalty=caq_penalty, steps=caq_steps)
    if not os.path.exists(checkpoint):
        raise UserError(f"checkpoint not found: {checkpoint}")
    with claimed(out_dir, "compare", force=force):
        rows = run_compare(checkpoint, scene_dir, out_dir, method_list, config, caq,
                           log=lambda message: click.echo(f"[compare] {message}", err=True))
    click.echo(open(os.path.join(out_dir, "compare.md")).read().rstrip())
    click.echo(f"wrote {os.path.join(out_dir, 'compare.json')}, compare.md and pareto.png ({len(rows)} methods)")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hero-lite")


if __name__ == "__main__":
    sys.exit(main())
