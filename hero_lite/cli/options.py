"""Options shared by several commands, defined once (as rasterio's `rio/options.py` does), and the
checks every command makes on its outputs before any work."""

from __future__ import annotations

import click

from hero_lite.cli.group import UserError


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


def scene_dir_argument(fn):
    return click.argument("scene_dir", type=click.Path(exists=True, file_okay=False))(fn)


_DOWNSCALE_HELP = ("Read SCENE_DIR's images at 1/N of their size: N divides the width and height, each NxN block "
                   "is area-averaged (premultiplied alpha), the focal length is divided by N. 8 reads "
                   "NeRF-synthetic's 800x800 views at 100x100.")


MAX_SUPERSAMPLE = 4  # hero_lite.nerf.config.MAX_SUPERSAMPLE (not imported: --help stays fast)


def supersample_option(fn):
    """--supersample N of the commands that train a model (`ModelConfig.supersample`)."""
    return click.option("--supersample", type=click.IntRange(1, MAX_SUPERSAMPLE), default=1, show_default=True,
                        help="Rays per pixel along each axis: train and render every pixel as the mean of N x N rays "
                             "(2 for detail about a pixel wide; N^2 times the rays, and the latency, of a frame).")(fn)


def downscale_option(fn):
    """--downscale N of every command that reads a scene (`hero_lite.scenes.load_scene`'s downscale)."""
    return click.option("--downscale", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
                        help=_DOWNSCALE_HELP)(fn)


def search_downscale_option(fn):
    """--downscale N of the search commands, stored as SearchConfig.scene_downscale: unset keeps the
    --config file's value (else 1); a resume must give the same."""
    return click.option("--downscale", type=click.IntRange(min=1), default=None, metavar="N",
                        help=_DOWNSCALE_HELP + " Recorded in the run folder; --resume needs the same N "
                                               "[the --config file's scene_downscale, else 1].")(fn)


def write_json(path: str, payload: dict) -> None:
    """Write `payload` as JSON to `path` atomically (a temp file, then rename)."""
    from hero_lite.runfolder import write_json_atomically

    write_json_atomically(path, payload)


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


def budgets_given(latency_budget, area_budget, energy_budget, size_budget):
    """The budgets given on the command line ({} if none: the config file's or the default 0.8x latency)."""
    budgets = {"latency_ms": latency_budget, "area_mm2": area_budget, "energy_uj": energy_budget,
               "model_bytes": size_budget}
    return {k: v for k, v in budgets.items() if v is not None}


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
    fn = click.option("--accel", default=None, help="Preset (edge, server, or a variant such as edge_2arrays; docs/accelerator.md) or a .toml file [edge].")(fn)
    return budget_options(fn)
