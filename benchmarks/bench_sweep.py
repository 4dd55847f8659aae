"""Sweep overhead and parallel wall time.

    python benchmarks/bench_sweep.py [--jobs 40] [--workers 2] [--spec tiny] [--seeds N] [--dask] [--out DIR]

Prints one JSON object (with the commit, machine and command):
- overhead.local: --jobs no-op jobs (report jobs over one prepared CAQ-like result: a pick_match and
  a small result.json each) through the sweep's scheduler on --workers local worker processes:
  startup_s (until the first job is done: spawning the workers, importing hero_lite),
  per_job_s (wall time per further job, all workers together) and reuse_per_job_s (the same jobs
  again, every result present: the key check alone);
- overhead.dask (with --dask and Dask installed): the same on a LocalCluster of --workers worker
  processes with one thread each; the cluster's start and the workers' import of hero_lite (when
  the executor connects) are not counted;
- spec: wall time of every job of SPEC (a shipped spec's name or a TOML file; scenes under
  ./scenes; with --seeds N, seeds 0..N-1 instead of its own) on --workers local workers and on one
  local worker with every core's Numba threads (`run_sweep`), against the same jobs run one after
  another in this process by hand (`execute_job` in order, every core's Numba threads), and each
  job's own run time (s), after one untimed run of the spec that fills Numba's cache. `--spec none`
  skips it.
Job folders go to a temporary folder (removed at the end) unless --out is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/common.py


def noop_jobs(out_dir: str, count: int, code: str) -> list:
    """A finished CAQ-like job (its result.json written here, with its key) and `count` report jobs
    that read it."""
    from hero_lite.runfolder import write_json_atomically
    from hero_lite.search.sweep.jobs import RESULT, Job, job_key

    caq = Job("caq", "x-s0", {"noop": True})
    row = {"psnr": 20.0, "latency_ms": 2.0, "cost_efficiency": 0.25, "cost_efficiency_fit": 0.5, "model_bytes": 100}
    write_json_atomically(os.path.join(caq.folder(out_dir), RESULT), {
        "id": caq.id, "key": job_key(caq, code, {}), "result": {"row": row, "floor_cost": {}}})
    return [caq, *[Job("report", f"x-s{i}", {"match_db": 0.1}, (caq.id,)) for i in range(1, count + 1)]]


def overhead(executor, out_dir: str, count: int) -> dict:
    """startup_s, per_job_s and reuse_per_job_s of `count` no-op jobs on `executor`."""
    from hero_lite.search.sweep.jobs import code_version
    from hero_lite.search.sweep.run import run_jobs

    code = code_version()
    jobs = noop_jobs(out_dir, count, code)
    times = []
    start = time.perf_counter()
    outcome = run_jobs(jobs, out_dir, executor, code, progress=lambda job_id, status: times.append(time.perf_counter()))
    assert all(o["status"] in ("done", "reused") for o in outcome.values()), outcome
    first = times[1]  # times[0]: the prepared CAQ-like result, reused without a task
    start_again = time.perf_counter()
    again = run_jobs(jobs, out_dir, executor, code)
    reuse = time.perf_counter() - start_again
    assert all(o["status"] == "reused" for o in again.values())
    return {"jobs": count, "startup_s": first - start, "per_job_s": (times[-1] - first) / max(1, count - 1),
            "reuse_per_job_s": reuse / count}


def by_hand(spec, out_dir: str) -> dict:
    """Every job of `spec` in this process, one after another: wall seconds and each job's seconds."""
    from hero_lite.search.sweep import build_jobs, code_version, execute_job, job_key
    from hero_lite.search.sweep.jobs import read_result
    from hero_lite.search.sweep.run import job_payload

    jobs, code, digests = build_jobs(spec), code_version(), {}
    start = time.perf_counter()
    for job in jobs:
        key = job_key(job, code, {dep: digests[dep] for dep in job.deps})
        digests[job.id] = execute_job(job_payload(job, key, code, out_dir, len(os.sched_getaffinity(0))))["digest"]
    wall = time.perf_counter() - start
    return {"wall_s": wall, "job_s": {job.id: read_result(job.folder(out_dir))["seconds"] for job in jobs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=40, help="no-op jobs of the overhead measurement (0: skip it)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spec", default="tiny", help="spec of the wall-time measurement ('none': skip it)")
    parser.add_argument("--seeds", type=int, default=None, help="run SPEC with seeds 0..N-1 instead of its own")
    parser.add_argument("--dask", action="store_true", help="also measure the overhead on a local Dask cluster")
    parser.add_argument("--out", default=None, help="folder for the job folders [a temporary folder]")
    args = parser.parse_args()

    from common import provenance, repo_path

    from hero_lite.search.sweep import build_jobs, load_spec, run_sweep
    from hero_lite.search.sweep.jobs import read_result
    from hero_lite.search.sweep.run import DaskExecutor, LocalExecutor

    out = args.out or tempfile.mkdtemp(prefix="bench_sweep_")
    result = {"benchmark": "sweep", **provenance(), "workers": args.workers, "overhead": {}}
    if args.jobs:
        executor = LocalExecutor(args.workers)
        try:
            result["overhead"]["local"] = overhead(executor, os.path.join(out, "noop_local"), args.jobs)
        finally:
            executor.close()
        if args.dask:
            import distributed

            with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                          host="127.0.0.1", dashboard_address=None) as cluster:
                executor = DaskExecutor(cluster.scheduler_address)
                try:
                    result["overhead"]["dask"] = overhead(executor, os.path.join(out, "noop_dask"), args.jobs)
                finally:
                    executor.close()
    if args.spec != "none":
        spec = load_spec(args.spec, repo_path("scenes"))
        if args.seeds:
            spec = dataclasses.replace(spec, seeds=tuple(range(args.seeds)))
        result["spec"] = {"name": spec.name, "seeds": list(spec.seeds), "jobs": spec.job_count}
        # One untimed run first, so every timed run finds Numba's cache warm (a fresh clone has none).
        run_sweep(spec, os.path.join(out, "warm_up"), workers=1)
        for label, workers in (("pool", args.workers), ("pool_1_worker", 1)):
            start = time.perf_counter()
            sweep = run_sweep(spec, os.path.join(out, label), workers=workers)
            result["spec"][f"{label}_wall_s"] = time.perf_counter() - start
            assert sweep["jobs"]["failed"] == 0, sweep["failed"]
            result["spec"][f"{label}_job_s"] = {job.id: read_result(job.folder(os.path.join(out, label)))["seconds"]
                                                for job in build_jobs(spec)}
        hand = by_hand(spec, os.path.join(out, "by_hand"))
        result["spec"].update({"by_hand_wall_s": hand["wall_s"], "by_hand_job_s": hand["job_s"],
                               "speedup": hand["wall_s"] / result["spec"]["pool_wall_s"],
                               "speedup_1_worker": hand["wall_s"] / result["spec"]["pool_1_worker_wall_s"]})
    result["out"] = out if args.out else None
    if not args.out:
        shutil.rmtree(out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
