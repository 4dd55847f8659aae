"""Running a sweep: the executors, the scheduling of jobs after their dependencies, the summary files.

Executors: a local pool of spawned worker processes (`concurrent.futures.ProcessPoolExecutor`), or
an existing Dask cluster (`dask.distributed.Client`, optional: `pip install "hero-lite[dask]"`).
Either runs one job per task through `jobs.execute_job`; the sweep folder must be visible to every
worker at the same path. Each worker gets cores // workers Numba threads (at least 1).

The scheduler submits a job as soon as its dependencies have results; a job whose result.json holds
its key is reused without a task. A failed job blocks the jobs that need it; every other job still
runs, and a later run of the same sweep retries the failed ones.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from hero_lite import viz
from hero_lite.runfolder import write_json_atomically, write_text_atomically
from hero_lite.search.compare import MATCH_DB
from hero_lite.search.sweep.jobs import (
    Job,
    build_jobs,
    code_version,
    execute_job,
    job_key,
    limit_numba_threads,
    read_result,
    result_digest,
)

ATTEMPTS = 3  # runs of a job whose worker died, as Dask's default allowed-failures
RATIOS = ("latency_ratio", "cost_efficiency_ratio", "cost_efficiency_ratio_fit", "model_size_ratio", "psnr_delta_db")
DASK_HINT = 'pip install "hero-lite[dask]"'


def worker_threads(cores: int, workers: int) -> int:
    """Numba threads per worker: cores // workers, at least 1."""
    return max(1, cores // workers)


class LocalExecutor:
    """`workers` spawned processes on this machine, each with cores // workers Numba threads.

    A worker process that dies (killed, out of memory) breaks the pool, and every job running in it
    fails with BrokenProcessPool (`lost_worker`); the next submit starts a new pool.
    """

    def __init__(self, workers: int = 2):
        if workers < 1:
            raise ValueError(f"--workers {workers}; valid: an integer >= 1")
        self.workers = workers
        self.threads = worker_threads(len(os.sched_getaffinity(0)), workers)
        self.description = f"{workers} local worker{'s' if workers > 1 else ''} x {self.threads} thread(s)"
        self._pool = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=limit_numba_threads, initargs=(self.threads,))

    def submit(self, payload: dict):
        try:
            return self._pool.submit(execute_job, payload)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False)
            self._pool = self._start()
            return self._pool.submit(execute_job, payload)

    @staticmethod
    def lost_worker(error: BaseException) -> bool:
        """Whether a job failed because its worker process died (worth running again)."""
        return isinstance(error, BrokenProcessPool)

    def wait(self, futures) -> set:
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done

    def result(self, future) -> dict:
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskExecutor:
    """The workers of a running Dask cluster (`dask scheduler`; `dask worker ADDRESS --nthreads 1`).

    Each task sets its worker's Numba threads (`limit_numba_threads`) to a host's cores divided by
    the workers on that host, the smallest over the hosts at connection time. A task's result is
    read as soon as it finishes and then released, so a worker lost later holds nothing the sweep
    still needs: Dask never recomputes a finished job (and one that it retries after a lost worker
    finds its result.json, if it had written one, and reuses it).
    """

    def __init__(self, address: str, connect_seconds: float = 30.0):
        try:
            import distributed
        except ImportError:
            raise ImportError(f"--scheduler needs Dask, which is not installed: {DASK_HINT}") from None
        self._wait = distributed.wait
        try:
            self._client = distributed.Client(address, timeout=connect_seconds)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {address}: cannot connect ({exc})") from None
        try:
            self._client.wait_for_workers(1, timeout=connect_seconds)
        except TimeoutError:
            self._client.close()
            raise ValueError(f"--scheduler {address}: no worker joined within {connect_seconds:.0f} s; start some "
                             f"with `dask worker {address} --nworkers N --nthreads 1`") from None
        hosts = self._client.run(host_cores)  # worker address -> (host name, cores)
        per_host = Counter(host for host, _ in hosts.values())
        self.threads = min(worker_threads(cores, per_host[host]) for host, cores in hosts.values())
        self.description = f"Dask at {address} ({len(hosts)} workers x {self.threads} thread(s))"

    def submit(self, payload: dict):
        return self._client.submit(execute_job, payload, key=f"sweep-{payload['id']}-{payload['key'][:12]}")

    def wait(self, futures) -> set:
        return self._wait(list(futures), return_when="FIRST_COMPLETED").done

    def result(self, future) -> dict:
        try:
            return future.result()
        finally:
            future.release()

    @staticmethod
    def lost_worker(error: BaseException) -> bool:
        """False: Dask itself runs a lost worker's task again (distributed.scheduler.allowed-failures)."""
        return False

    def close(self) -> None:
        self._client.close()


def host_cores() -> tuple[str, int]:
    """(host name, usable cores) of the calling process."""
    return socket.gethostname(), len(os.sched_getaffinity(0))


def run_jobs(jobs: list[Job], out_dir: str, executor, code: str | None = None,
             progress: Callable[[str, str], None] | None = None) -> dict[str, dict]:
    """Run `jobs` (each after its dependencies) on `executor`; reuse results that hold their key.

    progress(job_id, status) follows each job; status is 'done', 'reused', 'failed' or 'blocked'
    (a dependency failed). A job whose worker died runs again, up to ATTEMPTS runs in all. Returns
    job id -> {'status', 'key', 'digest' or 'error'}.
    """
    code = code or code_version()
    progress = progress or (lambda job_id, status: None)
    outcome: dict[str, dict] = {}
    waiting, running, payloads, attempts = list(jobs), {}, {}, Counter()

    def settle(job_id: str, status: str, **info) -> None:
        outcome[job_id] = {**outcome.get(job_id, {}), "status": status, **info}
        progress(job_id, status)

    while waiting or running:
        changed = True
        while changed:  # reusing a result can make the next job ready at once
            changed = False
            for job in list(waiting):
                states = [outcome.get(dep, {}).get("status") for dep in job.deps]
                if any(s in ("failed", "blocked") for s in states):
                    waiting.remove(job)
                    settle(job.id, "blocked")
                    changed = True
                elif all(s in ("done", "reused") for s in states):
                    waiting.remove(job)
                    key = job_key(job, code, {dep: outcome[dep]["digest"] for dep in job.deps})
                    folder = job.folder(out_dir)
                    existing = read_result(folder)
                    if existing is not None and existing.get("key") == key:
                        settle(job.id, "reused", key=key, digest=result_digest(existing))
                        changed = True
                    else:
                        outcome[job.id] = {"key": key}
                        payloads[job.id] = job_payload(job, key, code, out_dir, executor.threads)
                        running[executor.submit(payloads[job.id])] = job.id
                        attempts[job.id] += 1
        if not running:
            break
        for future in executor.wait(running):
            job_id = running.pop(future)
            try:
                result = executor.result(future)
            # the job's own error, or a lost worker: reported, and the jobs that need it blocked
            except Exception as exc:  # noqa: BLE001
                if executor.lost_worker(exc) and attempts[job_id] < ATTEMPTS:
                    running[executor.submit(payloads[job_id])] = job_id
                    attempts[job_id] += 1
                    continue
                message = (str(exc).strip().splitlines() or [""])[0]
                settle(job_id, "failed", error=f"{exc.__class__.__name__}: {message}")
            else:
                settle(job_id, result["status"], digest=result["digest"])
    return outcome


def job_payload(job: Job, key: str, code: str, out_dir: str, threads: int) -> dict:
    """The plain data `execute_job` gets for `job` (its folders as absolute paths under `out_dir`)."""
    out_dir = os.path.abspath(out_dir)
    return {"id": job.id, "kind": job.kind, "key": key, "code": code, "config": job.config,
            "scene_dir": os.path.abspath(job.scene_dir), "folder": job.folder(out_dir), "out_dir": out_dir,
            "threads": threads, "deps": {dep: os.path.join(out_dir, "jobs", dep) for dep in job.deps}}


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """A DaskExecutor for a scheduler address, else a LocalExecutor with `workers` (default 2)."""
    if scheduler is not None:
        if workers is not None:
            raise ValueError("--workers belongs to the local pool; with --scheduler, the Dask cluster's workers run "
                             "the jobs")
        return DaskExecutor(scheduler)
    return LocalExecutor(2 if workers is None else workers)


def run_sweep(spec, out_dir: str, workers: int | None = None, scheduler: str | None = None,
              progress: Callable[[str, str], None] | None = None, executor=None) -> dict:
    """Run every job of `spec` (a SweepSpec) and write DIR/sweep.json, sweep.md and pareto_SCENE.png.

    executor : a LocalExecutor or DaskExecutor to use (closed by the caller), else one is made from
    `workers` / `scheduler` (and closed here). Returns the content of sweep.json.
    """
    jobs = build_jobs(spec)
    os.makedirs(out_dir, exist_ok=True)
    code = code_version()
    start = time.perf_counter()
    own = executor is None
    executor = executor or make_executor(workers, scheduler)
    try:
        outcome = run_jobs(jobs, out_dir, executor, code, progress)
    finally:
        if own:
            executor.close()
    return write_sweep(spec, jobs, outcome, out_dir, code, time.perf_counter() - start, executor.description)


def summarize(matches: list[dict | None]) -> dict:
    """Per-scene summary over seeds: seeds, matched_seeds, and mean/min/max of each ratio (RATIOS)
    over the matched seeds."""
    found = [m for m in matches if m is not None]
    summary: dict = {"seeds": len(matches), "matched_seeds": len(found)}
    for key in RATIOS:
        values = [m[key] for m in found]
        if values:
            summary[key] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
    return summary


def write_sweep(spec, jobs: list[Job], outcome: dict, out_dir: str, code: str, seconds: float,
                executor: str = "") -> dict:
    """sweep.json (the spec, every job's status, per scene: training, per seed rows and match,
    summary), sweep.md (a table per scene) and pareto_SCENE.png (test PSNR against latency)."""
    scenes, by_id = {}, {job.id: job for job in jobs}
    for label, scene_dir in spec.scenes:
        train = read_result(by_id[f"train/{label}"].folder(out_dir))
        seeds = {}
        for seed in spec.seeds:
            status = outcome.get(f"report/{label}-s{seed}", {}).get("status")
            record = read_result(by_id[f"report/{label}-s{seed}"].folder(out_dir))
            if status in ("done", "reused") and record is not None:
                seeds[str(seed)] = record["result"]
        scenes[label] = {"scene": os.path.abspath(scene_dir), "train": train["result"] if train else None,
                         "seeds": seeds, "summary": summarize([s["match"] for s in seeds.values()])}
    counts = Counter(o["status"] for o in outcome.values())
    failed = {job_id: o.get("error", "") for job_id, o in outcome.items() if o["status"] == "failed"}
    sweep = {"spec": spec.to_dict(), "code_version": code, "match_db": MATCH_DB, "executor": executor,
             "seconds": seconds, "jobs": {"total": len(jobs), **{s: counts.get(s, 0) for s in
                                                                 ("done", "reused", "failed", "blocked")}},
             "failed": failed, "scenes": scenes}
    write_json_atomically(os.path.join(out_dir, "sweep.json"), sweep)
    write_text_atomically(os.path.join(out_dir, "sweep.md"), sweep_markdown(sweep))
    for label, scene in scenes.items():
        if scene["seeds"]:
            viz.save_image(os.path.join(out_dir, f"pareto_{label}.png"), pareto_chart(label, scene, spec.search.accel))
    return sweep


def sweep_markdown(sweep: dict) -> str:
    """sweep.md: per scene, one line per seed (the match and its ratios to CAQ-like) and the mean."""
    spec = sweep["spec"]
    lines = [f"# Sweep `{spec['name']}`: HERO against CAQ-like at matched quality", "",
             (f"Seeds {', '.join(map(str, spec['seeds']))}; HERO's latency budgets "
             f"{', '.join(f'{f:g}' for f in spec['fractions']) or '-'} x CAQ-like's; {spec['search']['episodes']} "
             f"episodes; accelerator `{spec['search']['accel']}`. A match is the fastest HERO policy that met its "
             f"budget within {sweep['match_db']:g} dB of CAQ-like's test PSNR; ratios > 1 favour HERO."), ""]
    header = ("| seed | match | latency ratio | cost eff. ratio | cost eff. ratio (fit area) | model size ratio | "
              "PSNR delta (dB) | CAQ-like PSNR (dB) | CAQ-like latency (ms) |")
    for label, scene in sweep["scenes"].items():
        if not scene["seeds"]:
            lines += [f"## {label}", "", "No results yet.", ""]
            continue
        lines += [f"## {label}", "", header, "|" + "---|" * 9]
        for seed, result in scene["seeds"].items():
            match, caq = result["match"], result["rows"]["caq"]
            ratios = " | ".join(f"{match[k]:+.2f}" if k == "psnr_delta_db" else f"{match[k]:.2f}" for k in RATIOS) \
                if match else " | ".join("-" for _ in RATIOS)
            lines.append(f"| {seed} | {match['method'] if match else 'none'} | {ratios} | {caq['psnr']:.2f} | "
                         f"{caq['latency_ms']:.3f} |")
        summary = scene["summary"]
        means = " | ".join(f"{summary[k]['mean']:+.2f}" if k == "psnr_delta_db" else f"{summary[k]['mean']:.2f}"
                           for k in RATIOS) if summary["matched_seeds"] else " | ".join("-" for _ in RATIOS)
        lines += [f"| mean | {summary['matched_seeds']} of {summary['seeds']} seeds matched | {means} | | |", "",
                  f"![PSNR against latency, {label}](pareto_{label}.png)", ""]
    if sweep["failed"]:
        lines += ["## Failed jobs", ""] + [f"- `{job_id}`: {error}" for job_id, error in sweep["failed"].items()] + [""]
    return "\n".join(lines)


_COLORS = {"caq": (200, 40, 40), "hero": (30, 90, 200), "uniform": (120, 120, 120)}


def pareto_chart(label: str, scene: dict, accel: str):
    """Test PSNR (dB) against latency (ms): CAQ-like (red, 'caq s0'), every HERO row (blue, '0.85x s0':
    its latency fraction and seed) and every uniform row (grey, 'u8 s0') of every seed."""
    points = []
    for seed, result in scene["seeds"].items():
        for name, row in result["rows"].items():
            family = "hero" if name.startswith("hero@") else "caq" if name == "caq" else "uniform"
            short = {"hero": f"{row.get('fraction', 0):g}x", "caq": "caq", "uniform": name.replace("uniform", "u")}
            points.append({"label": f"{short[family]} s{seed}", "latency_ms": row["latency_ms"], "psnr": row["psnr"],
                           "color": _COLORS[family]})
    title = f"{label}: test PSNR against latency ({accel}); red CAQ-like, blue HERO (latency fraction), grey uniform"
    return viz.scatter_plot(points, "latency_ms", "psnr", title, "latency (ms)", "test PSNR (dB)")
