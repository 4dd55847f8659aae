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
from hero_lite.search.compare import MATCH_DB, MATCH_RATIOS
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
from hero_lite.search.sweep.spec import ANCHORS

ATTEMPTS = 3  # runs of a job whose worker died, as Dask's default allowed-failures
RATIOS = MATCH_RATIOS  # the fit-area cost-efficiency ratio first: area that follows the policy
# the row values averaged per method over the seeds
ROW_MEANS = ("psnr", "latency_ms", "cost_efficiency_fit", "cost_efficiency", "model_bytes")
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
    """Run every job of `spec` (a SweepSpec) and write DIR/sweep.json, sweep.md and pareto_SCENE_ACCEL.png.

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
    """Summary over seeds: seeds, matched_seeds, and mean/min/max of each ratio (RATIOS) over the
    matched seeds."""
    found = [m for m in matches if m is not None]
    summary: dict = {"seeds": len(matches), "matched_seeds": len(found)}
    for key in RATIOS:
        values = [m[key] for m in found]
        if values:
            summary[key] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
    return summary


def row_means(seeds: dict) -> dict:
    """Row name -> {'seeds': how many seeds have the row, and the mean of each ROW_MEANS value over them}."""
    names = list(dict.fromkeys(name for result in seeds.values() for name in result["rows"]))
    means = {}
    for name in names:
        rows = [result["rows"][name] for result in seeds.values() if name in result["rows"]]
        means[name] = {"seeds": len(rows), **{key: statistics.fmean(r[key] for r in rows) for key in ROW_MEANS}}
    return means


def summarize_matches(seeds: dict) -> dict:
    """searched method -> anchor -> `summarize` over the seeds (a seed without that pair counts as
    unmatched)."""
    pairs = list(dict.fromkeys((m, anchor) for result in seeds.values()
                               for m, by_anchor in result.get("matches", {}).items() for anchor in by_anchor))
    summaries: dict = {}
    for method, anchor in pairs:
        matches = [result.get("matches", {}).get(method, {}).get(anchor) for result in seeds.values()]
        summaries.setdefault(method, {})[anchor] = summarize(matches)
    return summaries


def write_sweep(spec, jobs: list[Job], outcome: dict, out_dir: str, code: str, seconds: float,
                executor: str = "") -> dict:
    """sweep.json (the spec, every job's status; per scene the training and, per accelerator, per
    seed the rows, match and matches, and the summaries), sweep.md (tables per scene and
    accelerator) and pareto_SCENE_ACCEL.png (test PSNR against latency)."""
    scenes, by_id = {}, {job.id: job for job in jobs}
    for label, scene_dir in spec.scenes:
        train = read_result(by_id[f"train/{label}"].folder(out_dir))
        accels = {}
        for accel_label, accel in spec.accels:
            seeds = {}
            for seed in spec.seeds:
                report = f"report/{label}-{accel_label}-s{seed}"
                record = read_result(by_id[report].folder(out_dir))
                if outcome.get(report, {}).get("status") in ("done", "reused") and record is not None:
                    seeds[str(seed)] = record["result"]
            accels[accel_label] = {"accel": accel, "seeds": seeds,
                                   "summary": summarize([s["match"] for s in seeds.values()]),
                                   "matches": summarize_matches(seeds), "row_means": row_means(seeds)}
        scenes[label] = {"scene": os.path.abspath(scene_dir), "train": train["result"] if train else None,
                         "accels": accels}
    counts = Counter(o["status"] for o in outcome.values())
    failed = {job_id: o.get("error", "") for job_id, o in outcome.items() if o["status"] == "failed"}
    sweep = {"spec": spec.to_dict(), "code_version": code, "match_db": MATCH_DB, "executor": executor,
             "seconds": seconds, "jobs": {"total": len(jobs), **{s: counts.get(s, 0) for s in
                                                                 ("done", "reused", "failed", "blocked")}},
             "failed": failed, "scenes": scenes}
    write_json_atomically(os.path.join(out_dir, "sweep.json"), sweep)
    write_text_atomically(os.path.join(out_dir, "sweep.md"), sweep_markdown(sweep))
    for label, scene in scenes.items():
        for accel_label, result in scene["accels"].items():
            if result["seeds"]:
                viz.save_image(os.path.join(out_dir, f"pareto_{label}_{accel_label}.png"),
                               pareto_chart(label, result, accel_label))
    return sweep


def _ratios(values: dict | None, get=lambda v, k: v[k]) -> str:
    if not values:
        return " | ".join("-" for _ in RATIOS)
    return " | ".join(f"{get(values, k):+.2f}" if k == "psnr_delta_db" else f"{get(values, k):.2f}" for k in RATIOS)


def _size_limit(size_fraction: float) -> str:
    return "its model size at most" if size_fraction == 1.0 else f"{size_fraction:g} x its model size at most"


def sweep_markdown(sweep: dict) -> str:
    """sweep.md: per scene and accelerator, one line per seed (HERO's match against CAQ-like and its
    ratios) and the mean; each method's mean row; the mean ratios of every searched method against
    every anchor (CAQ-like and the fixed baselines)."""
    spec = sweep["spec"]
    lines = [f"# Sweep `{spec['name']}`: HERO against CAQ-like at matched quality", "",
             (f"Seeds {', '.join(map(str, spec['seeds']))}; methods {', '.join(spec['methods'])}; the searches' "
              f"latency budgets {', '.join(f'{f:g}' for f in spec['fractions']) or '-'} x "
              f"{ANCHORS[spec.get('anchor', 'caq')]}'s latency, {_size_limit(spec.get('size_fraction', 1.0))}; "
              f"{spec['search']['episodes']} episodes; accelerators {', '.join(f'`{a}`' for a in spec['accels'])}. "
              f"A match is the fastest searched policy that met its budget within {sweep['match_db']:g} dB of the "
              "anchor's test PSNR; ratios > 1 favour the searched policy; cost efficiency first with fit area (the "
              "grid memory sized to the policy), then with the preset's fixed area."), ""]
    ratio_header = ("latency ratio | cost eff. ratio (fit area) | cost eff. ratio (fixed area) | model size ratio | "
                    "PSNR delta (dB)")
    for label, scene in sweep["scenes"].items():
        for accel_label, result in scene["accels"].items():
            title = f"## {label} on {accel_label}"
            if not result["seeds"]:
                lines += [title, "", "No results yet.", ""]
                continue
            lines += [title, "", f"| seed | match | {ratio_header} | CAQ-like PSNR (dB) | CAQ-like latency (ms) |",
                      "|" + "---|" * 9]
            for seed, seed_result in result["seeds"].items():
                match, caq = seed_result["match"], seed_result["rows"]["caq"]
                lines.append(f"| {seed} | {match['method'] if match else 'none'} | {_ratios(match)} | "
                             f"{caq['psnr']:.2f} | {caq['latency_ms']:.3f} |")
            summary = result["summary"]
            means = _ratios(summary if summary["matched_seeds"] else None, lambda v, k: v[k]["mean"])
            lines += [f"| mean | {summary['matched_seeds']} of {summary['seeds']} seeds matched | {means} | | |", ""]
            lines += ["Mean over the seeds of each row:", "",
                      ("| row | seeds | PSNR (dB) | latency (ms) | cost eff., fit area (1/(ms mm^2)) | "
                       "cost eff., fixed area (1/(ms mm^2)) | model (bytes) |"), "|" + "---|" * 7]
            for name, m in result["row_means"].items():
                lines.append(f"| {name} | {m['seeds']} | {m['psnr']:.2f} | {m['latency_ms']:.3f} | "
                             f"{m['cost_efficiency_fit']:.3f} | {m['cost_efficiency']:.3f} | {m['model_bytes']:,.0f} |")
            lines += ["", "Matches against each anchor (means over the matched seeds):", "",
                      f"| searched | anchor | seeds matched | {ratio_header} |", "|" + "---|" * 8]
            for method, by_anchor in result["matches"].items():
                for anchor, s in by_anchor.items():
                    lines.append(f"| {method} | {anchor} | {s['matched_seeds']} of {s['seeds']} | "
                                 f"{_ratios(s if s['matched_seeds'] else None, lambda v, k: v[k]['mean'])} |")
            lines += ["", f"![PSNR against latency, {label} on {accel_label}](pareto_{label}_{accel_label}.png)", ""]
    if sweep["failed"]:
        lines += ["## Failed jobs", ""] + [f"- `{job_id}`: {error}" for job_id, error in sweep["failed"].items()] + [""]
    return "\n".join(lines)


_COLORS = {"caq": (200, 40, 40), "caq_snapped": (230, 140, 20), "heuristic": (40, 150, 60), "hero": (30, 90, 200),
           "hero_hash8": (140, 60, 190), "uniform": (120, 120, 120)}


def pareto_chart(label: str, result: dict, accel: str):
    """Test PSNR (dB) against latency (ms) of every row of every seed of one scene on one accelerator:
    CAQ-like red ('caq s0'), caq_snapped orange, heuristic green, uniform grey ('u8 s0'), HERO blue
    and hero_hash8 purple (labelled by latency fraction and seed, '0.85x s0', 'h8 0.85x s0')."""
    points = []
    for seed, seed_result in result["seeds"].items():
        for name, row in seed_result["rows"].items():
            family = name.split("@")[0] if "@" in name else ("uniform" if name.startswith("uniform") else name)
            short = {"hero": f"{row.get('fraction', 0):g}x", "hero_hash8": f"h8 {row.get('fraction', 0):g}x",
                     "uniform": name.replace("uniform", "u"), "caq_snapped": "snap", "heuristic": "hand"}
            points.append({"label": f"{short.get(family, family)} s{seed}", "latency_ms": row["latency_ms"],
                           "psnr": row["psnr"], "color": _COLORS.get(family, _COLORS["uniform"])})
    title = (f"{label} on {accel}: test PSNR against latency; red CAQ-like, orange snapped, green hand policy, "
             "blue HERO, purple HERO hash 8, grey uniform")
    return viz.scatter_plot(points, "latency_ms", "psnr", title, "latency (ms)", "test PSNR (dB)")
