"""`hero-lite scene make`: procedural scenes in the Blender format."""

from __future__ import annotations

import sys

import click

from hero_lite.cli.group import cli, friendly_errors
from hero_lite.cli.options import seed_option
from hero_lite.scenes.synth import SCENE_NAMES


@cli.group()
def scene() -> None:
    """Procedural ground-truth scenes in the Blender (NeRF-synthetic) format."""


@scene.command("make")
@click.argument("name", type=click.Choice(SCENE_NAMES))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the scene to.")
@click.option("--res", type=int, default=None, help="Image width and height in pixels [scene default: 100, tiny 64].")
@click.option("--train", "n_train", type=int, default=None, help="Training views [scene default].")
@click.option("--val", "n_val", type=int, default=None, help="Validation views [scene default].")
@click.option("--test", "n_test", type=int, default=None, help="Test views [scene default].")
@seed_option
@friendly_errors
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
