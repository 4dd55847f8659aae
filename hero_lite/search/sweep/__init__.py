"""`hero-lite sweep`: the matched protocol (HERO against CAQ-like and the hardware-aware baselines)
over scenes, accelerators and seeds, as jobs.

A spec (`spec.py`, TOML) names scenes, accelerators, seeds, methods and latency fractions; `jobs.py`
turns it into train, caq, baseline, search and report jobs with content keys; `run.py` runs them on
a local process pool or a Dask cluster, reuses every result whose key still holds (a killed sweep
resumes), and writes DIR/sweep.json, sweep.md and a Pareto chart per scene and accelerator.
docs/sweep.md has the details.
"""

from hero_lite.search.sweep.jobs import (
    Job,
    build_jobs,
    code_version,
    execute_job,
    job_key,
)
from hero_lite.search.sweep.run import DaskExecutor, LocalExecutor, run_jobs, run_sweep
from hero_lite.search.sweep.spec import SweepSpec, load_spec, parse_spec, shipped_specs

__all__ = ["DaskExecutor", "Job", "LocalExecutor", "SweepSpec", "build_jobs", "code_version", "execute_job", "job_key",
    "load_spec", "parse_spec", "run_jobs", "run_sweep", "shipped_specs"]
