"""Copy a finished `hero-lite sweep` into a results JSON that can be committed and tabled.

    python benchmarks/export_sweep.py runs/headline --out benchmarks/results/headline_sweep.json \
        --commit e0d00e4 --command "hero-lite sweep headline --out runs/headline --workers 2"
    python benchmarks/results_table.py --json benchmarks/results/headline_sweep.json

Reads DIR/sweep.json, DIR/jobs.log and every job's result.json. Writes one JSON object with:
- commit, command (as given), machine (cores, CPU, Python, numpy, numba of the machine running this
  script: run it where the sweep ran), spec (name, seeds, methods, fractions, episodes, accelerators,
  the budgets' anchor, size fraction and search widths);
- scenes: one entry per scene (per scene and accelerator, `SCENE on ACCEL`, when the spec has more
  than one accelerator), each with `summary` (HERO's match against CAQ-like: seeds, matched_seeds,
  mean/min/max of latency_ratio, cost_efficiency_ratio_fit, cost_efficiency_ratio_fixed,
  model_size_ratio, psnr_delta_db: the keys `results_table.py` reads), `matches` (every searched
  method against every anchor), `row_means`, `seeds` (rows with bits, match, matches per seed) and
  `train` (steps, seconds, test PSNR of the fp32 checkpoint);
- jobs: per kind the count, min, median and max of the job seconds; and per run of the sweep (a run
  starts at a jobs.log `start` event more than 30 s after the previous event of an earlier process
  group) its wall seconds, job seconds finished in it, and the packing ratio wall / (job seconds /
  workers).
Sweeps written before specs had accelerators (one `edge` per scene, the fixed-area ratio named
cost_efficiency_ratio) are read too. Absolute paths of the machine that ran the sweep are not copied.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/common.py
import common

FIXED = "cost_efficiency_ratio_fixed"
# sweeps before the fixed-area key got its suffix call it cost_efficiency_ratio
OLD_FIXED = "cost_efficiency_ratio"


def _normalize_ratios(record: dict | None) -> dict | None:
    if not isinstance(record, dict):
        return record
    out = dict(record)
    if FIXED not in out and OLD_FIXED in out:
        out[FIXED] = out.pop(OLD_FIXED)
    return out


def machine(workers: int) -> dict:
    """common.machine(), with the Numba threads each of the sweep's `workers` local workers had."""
    info = common.machine()
    info["numba_threads"] = max(1, (os.cpu_count() or 1) // workers)
    return info


def read_log(path: str) -> list[dict]:
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return events


def runs_of(events: list[dict], workers: int) -> list[dict]:
    """Split the log into runs of the sweep (a run starts with an event of a new worker process more
    than 30 s after the previous event) and measure each: wall seconds from its first start to its
    last event, the seconds of the jobs finished in it, and wall / (those seconds / workers)."""
    runs: list[list[dict]] = []
    pids: set = set()
    last_time = None
    for event in events:
        if last_time is None or (event["pid"] not in pids and event["time"] - last_time > 30):
            runs.append([])
        pids.add(event["pid"])
        runs[-1].append(event)
        last_time = event["time"]
    measured = []
    for run in runs:
        starts = [e["time"] for e in run if e["event"] == "start"]
        done = [e for e in run if e["event"] == "done"]
        if not starts or not done:
            continue
        wall = max(e["time"] for e in run) - min(starts)
        job_seconds = sum(e["seconds"] for e in done)
        unfinished = sorted({e["id"] for e in run if e["event"] == "start"} - {e["id"] for e in done})
        measured.append({"wall_seconds": wall, "job_seconds": job_seconds, "jobs_done": len(done),
                         "packing_ratio": wall / (job_seconds / workers) if job_seconds else None,
                         "unfinished_jobs": unfinished})
    return measured


def job_stats(sweep_dir: str) -> dict:
    by_kind: dict[str, list[float]] = {}
    jobs_dir = os.path.join(sweep_dir, "jobs")
    for kind in sorted(os.listdir(jobs_dir)):
        for name in sorted(os.listdir(os.path.join(jobs_dir, kind))):
            path = os.path.join(jobs_dir, kind, name, "result.json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    by_kind.setdefault(kind, []).append(json.load(f)["seconds"])
    return {kind: {"count": len(v), "min": min(v), "median": statistics.median(v), "max": max(v)}
            for kind, v in by_kind.items()}


def export(sweep_dir: str, commit: str, command: str, workers: int) -> dict:
    with open(os.path.join(sweep_dir, "sweep.json"), encoding="utf-8") as f:
        sweep = json.load(f)
    spec = sweep["spec"]
    accels = spec.get("accels", {"edge": "edge"})
    several = len(accels) > 1
    scenes = {}
    for label, scene in sweep["scenes"].items():
        train = scene.get("train") or {}
        for accel_label, result in scene.get("accels", {"edge": scene}).items():
            seeds = {seed: {"rows": r["rows"], "match": _normalize_ratios(r.get("match")),
                            "matches": {m: {a: _normalize_ratios(x) for a, x in by.items()}
                                        for m, by in r.get("matches", {}).items()},
                            "skipped_fractions": r.get("skipped_fractions", [])}
                     for seed, r in result["seeds"].items()}
            scenes[f"{label} on {accel_label}" if several else label] = {
                "accel": accel_label, "summary": _normalize_ratios(result["summary"]),
                "matches": {m: {a: _normalize_ratios(s) for a, s in by.items()} for m, by in result.get("matches", {}).items()},
                "row_means": result.get("row_means", {}), "seeds": seeds,
                "train": {k: train.get(k) for k in ("steps", "train_seconds", "val_psnr", "test_psnr")}}
    return {"benchmark": "sweep", "commit": commit, "command": command, "machine": machine(workers),
            "spec": {"name": spec["name"], "scenes": sorted(spec["scenes"]), "accels": accels,
                     "seeds": spec["seeds"], "methods": spec["methods"], "train": spec["train"],
                     "anchor": spec.get("anchor", "caq"), "size_fraction": spec.get("size_fraction", 1.0),
                     "widths": spec["search"].get("widths", "all")},
            "episodes": spec["search"]["episodes"], "fractions": spec["fractions"], "match_db": sweep["match_db"],
            "jobs": {"count": sweep["jobs"], "seconds_by_kind": job_stats(sweep_dir),
                     "runs": runs_of(read_log(os.path.join(sweep_dir, "jobs.log")), workers)},
            "scenes": scenes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir")
    parser.add_argument("--out", required=True)
    parser.add_argument("--commit", required=True, help="commit the sweep ran at")
    parser.add_argument("--command", required=True, help="the command that ran the sweep")
    parser.add_argument("--workers", type=int, default=2, help="local workers of the sweep [2]")
    args = parser.parse_args(argv)
    try:
        data = export(args.sweep_dir, args.commit, args.command, args.workers)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        print(f"export_sweep: cannot read the sweep in {args.sweep_dir}: {exc}", file=sys.stderr)
        return 2
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
