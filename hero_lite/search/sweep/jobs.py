"""The jobs of a sweep, their keys, and the function that runs one job in a worker process.

Jobs and what each reads (`build_jobs`); RUN is SCENE-ACCEL-sSEED (ACCEL: the accelerator's label):
- `train/SCENE`: one fp32 checkpoint per scene (`train_run`), in jobs/train/SCENE/run;
- `caq/RUN` after train: CAQ-like's bit learning, final QAT and test-view report, and its
  cost on the search's frame (as `compare.run_matched` does); a compare row (`compare._row`);
- `baseline/RUN-METHOD` after train (and caq for caq_snapped): uniformK, heuristic or caq_snapped
  (`compare.baseline_row`), the same final QAT and report, and its cost on the search frame;
- `search/RUN-fF` (hero) and `search/RUN-hero_hash8-fF` after train and the anchor (caq, or
  baseline/RUN-heuristic with the spec's anchor = "heuristic"): a search in jobs/search/NAME/run
  with budgets F x the anchor's latency and size_fraction x its size on the search frame
  (`matched_budgets`); skipped when those lie below the cheapest policy's cost, as in `run_matched`;
- `report/RUN` after the others of its scene, accelerator and seed: the rows, `pick_match` (hero
  against CAQ-like) and `all_matches`.

Key of a job: SHA-256 of (code version, the job's config, the digests of its dependencies'
results). The config holds what the job's result depends on (settings, the scene's file digest, the
accelerator's resolved config), never a path, so a moved checkout keeps its results. A result
(DIR/jobs/KIND/NAME/result.json, written last and atomically) with the job's key is reused; any
other content of the folder is cleared before the job runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import hero_lite
from hero_lite.runfolder import folder_digest, write_json_atomically

KINDS = ("train", "caq", "baseline", "search", "report")
# SearchConfig fields that only the agent's episodes read: CAQ-like and the baselines do not depend on them
AGENT_ONLY = ("episodes", "ddpg", "reward", "start", "final_candidates", "widths")
RESULT = "result.json"
LOG = "jobs.log"


@dataclass(frozen=True)
class Job:
    """One step of a sweep.

    kind : one of KINDS; name : SCENE, RUN, RUN-fF, RUN-hero_hash8-fF or RUN-METHOD (RUN:
    SCENE-ACCEL-sSEED);
    config : everything the result depends on besides the code and the dependencies (enters the key);
    deps : ids of the jobs whose results this one reads; scene_dir : the scene folder (not in the key).
    """

    kind: str
    name: str
    config: dict
    deps: tuple[str, ...] = ()
    scene_dir: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    def folder(self, out_dir: str) -> str:
        """DIR/jobs/KIND/NAME (DIR/jobs/ID): the job's result.json and run folder."""
        return os.path.join(out_dir, "jobs", self.kind, self.name)


def build_jobs(spec) -> list[Job]:
    """Every job of `spec` (a SweepSpec), each after its dependencies."""
    from hero_lite.search.compare import MATCH_DB

    jobs = []
    for label, scene_dir in spec.scenes:
        scene = {"scene_digest": folder_digest(scene_dir), "scene_downscale": spec.search.scene_downscale}
        train = Job("train", label, {**scene, "steps": spec.train_steps, "seed": spec.train_seed}, (), scene_dir)
        jobs.append(train)
        for accel_label, accel in spec.accels:
            search = dataclasses.replace(spec.search, accel=accel).to_dict()
            shared = {k: v for k, v in search.items() if k not in AGENT_ONLY}
            digest = accel_digest(accel)
            for seed in spec.seeds:
                base = f"{label}-{accel_label}-s{seed}"
                inputs = {**scene, "accel_digest": digest, "seed": seed}
                caq = Job("caq", base, {**inputs, "search": {**shared, "seed": seed},
                                        "caq": dataclasses.asdict(spec.caq)}, (train.id,), scene_dir)
                baselines = [Job("baseline", f"{base}-{method}",
                                 {**inputs, "method": method, "search": {**shared, "seed": seed}},
                                 (train.id, caq.id) if method == "caq_snapped" else (train.id,), scene_dir)
                             for method in spec.baselines]
                anchor = caq.id if spec.anchor == "caq" else f"baseline/{base}-{spec.anchor}"
                searches = [Job("search", f"{base}{'' if method == 'hero' else '-' + method}-f{fraction:g}",
                                {**inputs, "method": method, "fraction": fraction, "anchor": spec.anchor,
                                 **({"size_fraction": spec.size_fraction} if spec.size_fraction != 1.0 else {}),
                                 "search": {**search, "seed": seed}},
                                (train.id, anchor), scene_dir)
                            for method in spec.searched for fraction in spec.fractions]
                report = Job("report", base, {"scene": label, "accel": accel_label, "seed": seed, "match_db": MATCH_DB},
                             (caq.id, *[j.id for j in baselines + searches]), scene_dir)
                jobs += [caq, *baselines, *searches, report]
    return jobs


def accel_digest(accel: str) -> str:
    """SHA-256 of the resolved accelerator config (a preset name or a TOML path)."""
    from hero_lite.accel import load_config

    return hashlib.sha256(json.dumps(load_config(accel).to_dict(), sort_keys=True).encode()).hexdigest()


@functools.cache
def code_version() -> str:
    """SHA-256 over the installed hero_lite package's .py files and accelerator presets (relative
    path and bytes, sorted by path); computed once per process."""
    root = Path(hero_lite.__file__).resolve().parent
    digest = hashlib.sha256()
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and (p.suffix == ".py" or (p.suffix == ".toml" and p.parent.name == "presets"))]
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def job_key(job: Job, code: str, dep_digests: dict[str, str]) -> str:
    """SHA-256 of (code version, job config, dependency id -> result digest), as canonical JSON."""
    text = json.dumps({"code": code, "id": job.id, "config": job.config, "deps": dep_digests}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def result_digest(record: dict) -> str:
    """SHA-256 of a result record (canonical JSON); it enters the keys of the jobs that read it."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def read_result(folder: str) -> dict | None:
    """The result record in `folder`, or None when there is none (or it does not parse)."""
    try:
        with open(os.path.join(folder, RESULT)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def limit_numba_threads(threads: int) -> int:
    """Give this process (or, once Numba's pool runs, this thread) `threads` Numba threads.

    Before Numba is imported: sets NUMBA_NUM_THREADS, which sizes its pool. Imported but its pool not
    started yet: also re-reads the variable. Pool running: `numba.set_num_threads` (per thread, at
    most the pool's size, and at most a NUMBA_NUM_THREADS the user set before Numba was imported).
    Returns the threads parallel kernels of this thread will use.
    """
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
        return threads
    from numba.np.ufunc import parallel

    if not parallel._is_initialized:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
        numba.config.reload_config()
    # Numba checks set_num_threads against the thread count it read when it was imported, which a
    # user's NUMBA_NUM_THREADS may have made smaller than `threads`.
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS, parallel.NUM_THREADS)))
    return numba.get_num_threads()


def execute_job(payload: dict) -> dict:
    """Run one job in this process and write its result; the function every executor calls.

    payload : plain data (pickles): id, kind, key, code (the sweep's code version), config,
        scene_dir, folder (the job's folder), deps (dependency id -> its folder), out_dir (the sweep
        folder), threads (Numba threads).
    Returns {'id', 'status': 'done' | 'reused', 'digest': the result's digest}. A result with the same
    key is reused (a task that runs again after its worker died, or a resumed sweep). Otherwise
    the folder is cleared, the job runs, result.json is written last, and DIR/jobs.log gets a
    'start' and a 'done' line.
    """
    limit_numba_threads(payload["threads"])
    if code_version() != payload["code"]:  # a Dask worker with another hero-lite would mislabel its results
        raise ValueError(f"{socket.gethostname()} runs other hero-lite code (version {code_version()[:12]}, the "
                         f"sweep's {payload['code'][:12]}); install the same hero-lite on every worker")
    folder = payload["folder"]
    existing = read_result(folder)
    if existing is not None and existing.get("key") == payload["key"]:
        return {"id": payload["id"], "status": "reused", "digest": result_digest(existing)}
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    _log(payload, "start")
    start = time.perf_counter()
    deps = {dep: read_result(path) for dep, path in payload["deps"].items()}
    missing = [dep for dep, record in deps.items() if record is None]
    if missing:
        raise FileNotFoundError(f"{payload['id']}: the result of {missing[0]} is missing from "
                                f"{payload['deps'][missing[0]]}")
    result = _RUNNERS[payload["kind"]](payload, {dep: record["result"] for dep, record in deps.items()})
    seconds = time.perf_counter() - start
    record = {"id": payload["id"], "key": payload["key"], "config": payload["config"],
              "deps": {dep: result_digest(r) for dep, r in deps.items()}, "result": result, "seconds": seconds}
    write_json_atomically(os.path.join(folder, RESULT), record)
    _log(payload, "done", seconds=seconds)
    return {"id": payload["id"], "status": "done", "digest": result_digest(record)}


def _log(payload: dict, event: str, **extra) -> None:
    """Append one line to DIR/jobs.log (one write of a short line: appends from workers do not mix)."""
    line = json.dumps({"event": event, "id": payload["id"], "key": payload["key"][:16], "host": socket.gethostname(),
                       "pid": os.getpid(), "time": time.time(), **extra}) + "\n"
    with open(os.path.join(payload["out_dir"], LOG), "a") as f:
        f.write(line)


def _checkpoint(payload: dict, deps: dict) -> str:
    [train] = [r for dep, r in deps.items() if dep.startswith("train/")]
    return os.path.join(payload["out_dir"], train["checkpoint"])


def _floor_cost(setup) -> dict:
    """The cheapest policy's latency (ms), area (mm^2), energy (uJ) and model bytes on the search
    frame of `setup` (a SearchSetup): below it a search's budgets are out of reach."""
    return {m: setup.floor_cost[m] for m in ("latency_ms", "area_mm2", "energy_uj", "model_bytes")}


def _run_train(payload: dict, deps: dict) -> dict:
    from hero_lite.nerf.pipeline import train_run

    config, run_dir = payload["config"], os.path.join(payload["folder"], "run")
    metrics = train_run(payload["scene_dir"], run_dir, steps=config["steps"], seed=config["seed"],
                        scene_downscale=config["scene_downscale"])
    return {"checkpoint": os.path.relpath(os.path.join(run_dir, "checkpoint.h5"), payload["out_dir"]),
            **{k: metrics[k] for k in ("steps", "train_seconds", "val_psnr", "test_psnr")}}


def _run_caq(payload: dict, deps: dict) -> dict:
    """CAQ-like as `compare.run_matched` runs it: its compare row, with its cost on the search frame."""
    from hero_lite.quant.learned import BitLearningConfig
    from hero_lite.search.compare import caq_row
    from hero_lite.search.hero import SearchConfig, prepare

    config = SearchConfig.from_dict(payload["config"]["search"])
    setup = prepare(_checkpoint(payload, deps), payload["scene_dir"], config)
    row = caq_row(setup, BitLearningConfig(**payload["config"]["caq"]), config)
    return {"row": row, "floor_cost": _floor_cost(setup)}


def _run_baseline(payload: dict, deps: dict) -> dict:
    """A fixed baseline (uniformK, heuristic, or caq_snapped from the caq job's learned bits), the
    same final QAT and report as every method (`compare.baseline_row`)."""
    from hero_lite.search.compare import baseline_row
    from hero_lite.search.hero import SearchConfig, prepare

    config = SearchConfig.from_dict(payload["config"]["search"])
    setup = prepare(_checkpoint(payload, deps), payload["scene_dir"], config)
    method = payload["config"]["method"]
    caq = [r for dep, r in deps.items() if dep.startswith("caq/")]
    caq_bits = caq[0]["row"]["bits"] if caq else None
    row = baseline_row(setup, method, config, caq_bits)
    row["search_frame"] = setup.frame_cost(row["bits"], row["point_set"])
    return {"method": method, "row": row, "floor_cost": _floor_cost(setup)}


def _run_search(payload: dict, deps: dict) -> dict:
    """A search (hero, or hero_hash8 with its hash levels frozen at 8 bits) under budgets from the
    anchor's cost on the search frame (its caq or baseline dependency); skipped when they lie below
    the cheapest policy's cost (checked against the unfrozen floor first, then by the search itself,
    which refuses a budget its frozen floor misses)."""
    from hero_lite.nerf.checkpoint import load_checkpoint
    from hero_lite.quant.points import quant_points
    from hero_lite.search.budget import BudgetUnreachable
    from hero_lite.search.compare import _row, matched_budgets, out_of_reach, search_config_for
    from hero_lite.search.hero import SearchConfig, hero_search

    fraction = payload["config"]["fraction"]
    method = payload["config"].get("method", "hero")
    [anchor] = [r for dep, r in deps.items() if not dep.startswith("train/")]
    budgets = matched_budgets(anchor["row"]["search_frame"], fraction, payload["config"].get("size_fraction", 1.0))
    skipped = {"method": method, "fraction": fraction, "skipped": True, "budgets": budgets,
               "floor_cost": anchor["floor_cost"]}
    if out_of_reach(budgets, anchor["floor_cost"]):
        return skipped
    config = dataclasses.replace(search_config_for(SearchConfig.from_dict(payload["config"]["search"]), method),
                                 budgets=budgets)
    checkpoint = _checkpoint(payload, deps)
    start = time.perf_counter()
    try:
        summary = hero_search(checkpoint, payload["scene_dir"], os.path.join(payload["folder"], "run"), config)
    except BudgetUnreachable as exc:  # the frozen points' floor lies above the budget
        return {**skipped, "reason": str(exc)}
    points = quant_points(load_checkpoint(checkpoint)[0].config, config.point_set)
    row = _row(summary, points, time.perf_counter() - start,
               {"budget_met": summary["budget_met"], "budget": summary["budget"], "fraction": fraction})
    return {"method": method, "fraction": fraction, "skipped": False, "row": row}


def _run_report(payload: dict, deps: dict) -> dict:
    """The rows of one scene, accelerator and seed (caq, the baselines, METHOD@Fx in spec order),
    `pick_match` of hero against CAQ-like ('match', None without hero), `all_matches` ('matches')
    and per searched method the skipped fractions."""
    from hero_lite.search.compare import all_matches, searched_row_name

    rows, skipped = {}, {}
    for dep, result in deps.items():
        kind = dep.split("/")[0]
        if kind == "search":
            method = result.get("method", "hero")
            skipped.setdefault(method, [])
            if result["skipped"]:
                skipped[method].append(result["fraction"])
            else:
                rows[searched_row_name(method, result["fraction"])] = result["row"]
        else:
            rows[result.get("method", "caq")] = result["row"]
    matches = all_matches(rows, payload["config"]["match_db"])
    return {"rows": rows, "match": matches.get("hero", {}).get("caq"), "matches": matches, "skipped_fractions": skipped}


_RUNNERS = {"train": _run_train, "caq": _run_caq, "baseline": _run_baseline, "search": _run_search,
            "report": _run_report}
