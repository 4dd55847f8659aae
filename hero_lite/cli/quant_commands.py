"""`hero-lite points`, `quantize` and `simulate`: quantization points, policies and their cost."""

from __future__ import annotations

import sys

import click

from hero_lite.cli.group import UserError, cli, friendly_errors
from hero_lite.cli.model_commands import load_any_checkpoint
from hero_lite.cli.options import (check_outputs, downscale_option, json_option, policy_options, policy_source,
                                   scene_dir_argument, seed_option, write_json)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="hero: one point per hash level; caq: CAQ's 15 quantizers.")
@json_option
@friendly_errors
def points(checkpoint, point_set, json_path) -> None:
    """List the quantization points of CHECKPOINT's model."""
    from hero_lite.quant.points import quant_points

    check_outputs({"CHECKPOINT": checkpoint}, {"--json": json_path})
    model, _, _ = load_any_checkpoint(checkpoint)
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
@scene_dir_argument
@policy_options
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="Point set of the --uniform/--hash-bits shorthands.")
@click.option("--qat-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Quantization-aware fine-tuning steps after calibration.")
@click.option("--calibration", type=click.Choice(["minmax", "percentile"]), default="minmax", show_default=True)
@click.option("--per-channel", is_flag=True, help="Per-output-channel scales for MLP weights.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Quantized checkpoint (.h5).")
@downscale_option
@seed_option
@json_option
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@friendly_errors
def quantize(checkpoint, scene_dir, policy_path, uniform, hash_bits, mlp_bits, point_set, qat_steps, calibration,
             per_channel, out_path, downscale, seed, json_path, force) -> None:
    """Quantize CHECKPOINT with a policy, evaluate test PSNR and export a bit-packed model."""
    from hero_lite.quant.run import quantize_run

    inputs = {"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir, "--policy": policy_path}
    check_outputs(inputs, {"--out": out_path}, force)
    check_outputs({**inputs, "--out": out_path}, {"--json": json_path})
    source = policy_source(policy_path, uniform, hash_bits, mlp_bits, point_set)
    with click.progressbar(length=qat_steps, label="QAT", file=sys.stderr) as bar:
        result = quantize_run(checkpoint, scene_dir, source, out_path, qat_steps=qat_steps, calibration=calibration,
                              seed=seed, per_channel=per_channel, progress=lambda step, stats: bar.update(1),
                              scene_downscale=downscale)
    click.echo(f"test PSNR {result['psnr']:.2f} dB (fp32 {result['fp32_psnr']:.2f} dB), "
               f"{result['model_bytes']:,} bytes ({result['compression']:.1f}x smaller than fp32); wrote {out_path}")
    if json_path:
        write_json(json_path, result)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False), required=False)
@click.argument("scene_dir", type=click.Path(exists=True, file_okay=False), required=False)
@policy_options
@click.option("--set", "point_set", type=click.Choice(["hero", "caq"]), default="hero", show_default=True,
              help="Point set of the --uniform/--hash-bits shorthands.")
@click.option("--accel", "accel", default="edge", show_default=True, help="Preset (edge, server, or a variant such as edge_2arrays; docs/accelerator.md) or a .toml file.")
@click.option("--views", type=click.IntRange(min=1), default=1, show_default=True,
              help="Average this many test views (cold caches per frame).")
@click.option("--area-mode", type=click.Choice(["fixed", "fit"]), default=None,
              help="Area: the preset's SRAM sizes (fixed) or grid SRAM sized to the policy's tables (fit).")
@click.option("--sampled", is_flag=True, help="Sample the hash-memory pass (about 10x faster, within a few %).")
@click.option("--full-size", is_flag=True, help="Simulate the samples on Instant-NGP's full grid (T=2^19, N_max=2048).")
@click.option("--synthetic", is_flag=True, help="A generated frame (a sphere), no checkpoint needed: for teaching.")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False), default=None,
              help="Draw a Gantt chart of unit activity (first view) to this PNG.")
@downscale_option
@json_option
@friendly_errors
def simulate(checkpoint, scene_dir, policy_path, uniform, hash_bits, mlp_bits, point_set, accel, views, area_mode,
             sampled, full_size, synthetic, timeline_path, downscale, json_path) -> None:
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
        if checkpoint or scene_dir or downscale != 1:
            raise UserError("--synthetic takes no CHECKPOINT, SCENE_DIR or --downscale")
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
        test = load_scene(scene_dir, "test", downscale)
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
