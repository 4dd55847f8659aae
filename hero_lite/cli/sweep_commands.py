"""`hero-lite sweep`: the matched protocol over scenes and seeds, as jobs on local workers or a Dask cluster."""

from __future__ import annotations

import os
import sys

import click

from hero_lite.cli.group import UserError, cli, friendly_errors
from hero_lite.cli.options import force_option


@cli.command()
@click.argument("spec")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Sweep folder; running the same sweep into it again reuses every finished job.")
@click.option("--scenes-root", default="scenes", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the scenes the spec names (an entry holding a / is a scene folder itself).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Local worker processes, each with cores // N Numba threads [2].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help='Run the jobs on this Dask cluster instead of local workers (pip install "hero-lite[dask]"; '
                   "start its workers with --nthreads 1; OUT must be visible to them at the same path).")
@force_option
@friendly_errors
def sweep(spec, out_dir, scenes_root, workers, scheduler, force) -> None:
    """Run the sweep SPEC (a TOML file, or a shipped spec: headline, variants, tiny) into OUT.

    Jobs: one fp32 training per scene; per scene, accelerator and seed, CAQ-like, the spec's fixed
    baselines (caq_snapped, heuristic, uniformK), one search per searched method (hero,
    hero_hash8) and latency fraction (budgets: the fraction x CAQ-like's latency, and CAQ-like's
    size; or the heuristic's with the spec's anchor = "heuristic") and the match, the fastest HERO
    policy within 0.1 dB of CAQ-like's test PSNR. A job runs as soon as the jobs it needs are done. Each result is kept under OUT/jobs with a key of the code, the job's settings
    and its inputs: the same command again reuses finished jobs (a killed sweep resumes) and
    reruns those whose settings, inputs or code changed. Writes OUT/sweep.json, OUT/sweep.md and
    OUT/pareto_SCENE_ACCEL.png.
    """
    from hero_lite.runfolder import claimed
    from hero_lite.search.sweep import load_spec, run_sweep
    from hero_lite.search.sweep.run import make_executor

    parsed = load_spec(spec, scenes_root)
    with claimed(out_dir, "sweep", resume=True, force=force):
        try:
            executor = make_executor(workers, scheduler)
        except ImportError as exc:
            raise UserError(str(exc)) from None
        try:
            with click.progressbar(length=parsed.job_count, label=f"sweep {parsed.name}", file=sys.stderr,
                                   item_show_func=lambda s: s) as bar:
                result = run_sweep(parsed, out_dir, executor=executor,
                                   progress=lambda job_id, status: bar.update(1, f"{job_id}: {status}"))
        finally:
            executor.close()
    jobs = result["jobs"]
    runs = [a for scene in result["scenes"].values() for a in scene["accels"].values()]
    matched = sum(a["summary"]["matched_seeds"] for a in runs)
    charts = sum(1 for a in runs if a["seeds"])
    total = len(parsed.scenes) * len(parsed.accels) * len(parsed.seeds)
    click.echo(f"sweep {parsed.name}: {jobs['total']} jobs ({jobs['done']} run, {jobs['reused']} reused, "
               f"{jobs['failed']} failed, {jobs['blocked']} blocked) in {result['seconds']:.0f} s on "
               f"{result['executor']}; {matched} of {total} (scene, accelerator, seed) runs matched CAQ-like with "
               f"HERO; wrote {os.path.join(out_dir, 'sweep.json')}, sweep.md and {charts} Pareto chart(s)")
    if jobs["failed"]:
        job_id, error = next(iter(result["failed"].items()))
        raise click.ClickException(f"{jobs['failed']} job(s) failed, first {job_id}: {error}; see "
                                   f"{os.path.join(out_dir, 'sweep.md')}; the same command retries them")
