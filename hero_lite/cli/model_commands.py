"""`hero-lite train`, `eval` and `render`: the fp32 NeRF."""

from __future__ import annotations

import os
import sys
import time

import click

from hero_lite.cli.group import UserError, cli, friendly_errors
from hero_lite.cli.options import (check_outputs, downscale_option, force_option, json_option, scene_dir_argument,
                                   seed_option, supersample_option, write_json)


MAX_TRAIN_SECONDS = 30 * 24 * 3600.0  # a month: beyond it, --seconds is a typo


@cli.command()
@scene_dir_argument
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False), help="Run folder for checkpoint.h5 and metrics.json.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Train for this many steps (bit-reproducible).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=MAX_TRAIN_SECONDS), default=None,
              help="Train for this much wall-clock time.")
@supersample_option
@downscale_option
@seed_option
@json_option
@force_option
@friendly_errors
def train(scene_dir, run_dir, steps, seconds, supersample, downscale, seed, json_path, force) -> None:
    """Train the fp32 NeRF on SCENE_DIR and evaluate it on the val and test views."""
    from hero_lite.runfolder import claimed

    if (steps is None) == (seconds is None):
        raise UserError("give exactly one of --steps N and --seconds S")
    check_outputs({"SCENE_DIR": scene_dir}, {"--json": json_path})
    with claimed(run_dir, "train", force=force):
        metrics = _train_with_progress(scene_dir, run_dir, steps, seconds, seed, downscale, supersample)
    click.echo(f"{metrics['steps']} steps in {metrics['train_seconds']:.1f} s ({metrics['samples_per_s'] / 1e6:.2f} M samples/s); "
               f"val PSNR {metrics['val_psnr']:.2f} dB, test PSNR {metrics['test_psnr']:.2f} dB, "
               f"SSIM {metrics['test_ssim']:.4f}")
    click.echo(f"wrote {os.path.join(run_dir, 'checkpoint.h5')} and metrics.json")
    if json_path:
        write_json(json_path, metrics)


def _train_with_progress(scene_dir, run_dir, steps, seconds, seed, downscale, supersample=1) -> dict:
    """`train_run` with a progress bar (steps, or tenths of a second for --seconds)."""
    from hero_lite.nerf.config import ModelConfig
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

        return train_run(scene_dir, run_dir, steps=steps, seconds=seconds, seed=seed, progress=progress,
                         scene_downscale=downscale, model_config=ModelConfig(supersample=supersample))


def load_any_checkpoint(path: str):
    """(model, hooks, metadata) of an fp32 or quantized checkpoint."""
    from hero_lite.quant.run import load_any_checkpoint

    return load_any_checkpoint(path)


@cli.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@scene_dir_argument
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@downscale_option
@json_option
@friendly_errors
def eval_command(checkpoint, scene_dir, split, downscale, json_path) -> None:
    """PSNR and SSIM of CHECKPOINT on the views of SCENE_DIR (white background)."""
    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.scenes import load_scene

    check_outputs({"CHECKPOINT": checkpoint, "SCENE_DIR": scene_dir}, {"--json": json_path})
    model, hooks, _ = load_any_checkpoint(checkpoint)
    views = load_scene(scene_dir, split, downscale)
    with click.progressbar(length=views.n_views, label=f"rendering {split} views", file=sys.stderr) as bar:
        result = evaluate(model, views, hooks=hooks, progress=bar.update)
    click.echo(f"{split}: PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f} over {views.n_views} views "
               f"({result.rays_per_s / 1e3:.0f}k rays/s)")
    if json_path:
        write_json(json_path, {"checkpoint": os.path.abspath(checkpoint), "split": split, "downscale": downscale,
                               **result.to_dict()})


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@scene_dir_argument
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the PNGs.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--views", "max_views", type=click.IntRange(min=1), default=None, help="Render only the first N views.")
@downscale_option
@force_option
@friendly_errors
def render(checkpoint, scene_dir, out_dir, split, max_views, downscale, force) -> None:
    """Render CHECKPOINT: prediction, ground truth and error map PNGs per view."""
    from hero_lite import viz
    from hero_lite.nerf.evaluate import render_view
    from hero_lite.nerf.metrics import psnr
    from hero_lite.runfolder import claimed
    from hero_lite.scenes import load_scene

    model, hooks, _ = load_any_checkpoint(checkpoint)
    views = load_scene(scene_dir, split, downscale)
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
