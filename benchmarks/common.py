"""Shared helpers of the benchmark scripts: machine description, commit, JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys


def machine() -> dict:
    """Cores, CPU model, Python and library versions, thread settings."""
    import numba
    import numpy

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "platform": platform.platform(),
    }


def commit() -> str:
    """The current git commit (with '+dirty' when the tree has changes), or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def relative(path: str) -> str:
    """`path` relative to the repository when it lies inside it (results never carry a path of the
    machine that made them), else its base name."""
    root = repo_path()
    full = os.path.abspath(path)
    return os.path.relpath(full, root) if full.startswith(root + os.sep) else os.path.basename(full)


def provenance() -> dict:
    """commit, machine and command of this benchmark run, for its JSON result."""
    script = relative(sys.argv[0])
    return {"commit": commit(), "machine": machine(),
            "command": " ".join(["python", script, *(relative(a) if os.path.isabs(a) else a for a in sys.argv[1:])])}


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run `python <this script> args` and parse the JSON object it prints last."""
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def repo_path(*parts: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)


def search_in(checkpoint: str, scene_dir: str, out_dir: str, config) -> dict:
    """The summary of the search in `out_dir`: read if finished, resumed if interrupted before its
    summary (agent.h5 present), run otherwise."""
    from hero_lite.search.hero import hero_search

    summary_path = os.path.join(out_dir, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            return json.load(f)
    return hero_search(checkpoint, scene_dir, out_dir, config, resume=os.path.exists(os.path.join(out_dir, "agent.h5")))
