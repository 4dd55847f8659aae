"""Print the headline results table (HERO against CAQ-like at matched quality) as Markdown.

    python benchmarks/results_table.py                          # print the table
    python benchmarks/results_table.py --write README.md        # replace the table in README.md
    python benchmarks/results_table.py --write README.md --write docs/results.md
    python benchmarks/results_table.py --json benchmarks/results/headline_episode_critic_100.json

Reads a headline JSON written by benchmarks/bench_compare.py (default: the committed
benchmarks/results/headline_sweep.json, from benchmarks/export_sweep.py) and prints one row per scene: how many seeds HERO
matched CAQ-like's quality in (test PSNR at most 0.1 dB below), then the mean and range over the
matched seeds of the latency ratio (CAQ / HERO), the cost-efficiency ratio (HERO / CAQ; cost
efficiency = 1 / (latency x area)) with the accelerator preset's fixed area and with on-chip
memories fitted to the packed model, the model-size ratio (CAQ / HERO) and the test PSNR of HERO's
matched policy against CAQ-like's. A line after the table names the source JSON, the command that
made it, its commit and the machine.

With --write FILE (repeatable), the text between the lines `<!-- results-table:start -->` and
`<!-- results-table:end -->` in FILE is replaced by the table (the markers stay); the file is
written atomically. Every file is checked before any is written.

Exit codes: 0 on success; 2 on bad input (unreadable or malformed JSON, a file without exactly one
start marker followed by one end marker), with one line on stderr. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_JSON = os.path.join(REPO, "benchmarks", "results", "headline_sweep.json")
START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


def _display_path(path: str) -> str:
    """`path` relative to the repository when it lies inside it, else as given (never the absolute
    path of this machine's checkout)."""
    full = os.path.abspath(path)
    if os.path.commonpath([full, REPO]) == REPO:
        return os.path.relpath(full, REPO).replace(os.sep, "/")
    return path


def load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    scenes = data.get("scenes") if isinstance(data, dict) else None
    if not isinstance(scenes, dict) or not scenes:
        raise InputError(f"{path} is not a headline JSON of bench_compare.py (no 'scenes' object)")
    for name, scene in scenes.items():
        if not isinstance(scene, dict) or not isinstance(scene.get("summary"), dict):
            raise InputError(f"{path}: scene '{name}' has no 'summary' object")
    return data


def _spread(summary: dict, key: str) -> dict | None:
    value = summary.get(key)
    if isinstance(value, dict) and all(isinstance(value.get(k), (int, float)) for k in ("mean", "min", "max")):
        return value
    return None


def _ratio(summary: dict, key: str) -> str:
    s = _spread(summary, key)
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} ({s['min']:.2f}-{s['max']:.2f})"


def _psnr(summary: dict) -> str:
    s = _spread(summary, "psnr_delta_db")
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return f"{s['mean']:+.2f} dB"
    return f"{s['mean']:+.2f} dB ({s['min']:+.2f} to {s['max']:+.2f})"


def _commit(data: dict) -> str:
    c = data.get("commit")
    if isinstance(c, dict):
        if len(set(c.values())) == 1:
            return str(next(iter(c.values())))
        return ", ".join(f"{v} ({k})" for k, v in c.items())
    return str(c) if c else "not recorded"


def _machine(data: dict) -> str:
    m = data.get("machine")
    if not isinstance(m, dict):
        return "not recorded"
    parts = []
    if m.get("cores"):
        parts.append(f"{m['cores']} cores")
    if m.get("cpu"):
        parts.append(str(m["cpu"]))
    for key, label in (("python", "Python"), ("numpy", "numpy"), ("numba", "numba")):
        if m.get(key):
            parts.append(f"{label} {m[key]}")
    if m.get("numba_threads"):
        parts.append(f"NUMBA_NUM_THREADS={m['numba_threads']}")
    return ", ".join(parts) or "not recorded"


def table(data: dict, source: str) -> str:
    """The Markdown table and its source line, without a trailing newline."""
    lines = [
        ("| scene | seeds matched | latency ratio | cost-eff. ratio, fixed area | cost-eff. ratio, fit area "
         "| model-size ratio | PSNR vs CAQ-like |"),
        "|---|---|---|---|---|---|---|",
    ]
    for name, scene in data["scenes"].items():
        s = scene["summary"]
        seeds = s.get("seeds", len(scene.get("runs", [])))
        lines.append(f"| {name} | {s.get('matched_seeds', 0)} of {seeds} | {_ratio(s, 'latency_ratio')} "
                     f"| {_ratio(s, 'cost_efficiency_ratio_fixed')} | {_ratio(s, 'cost_efficiency_ratio_fit')} "
                     f"| {_ratio(s, 'model_size_ratio')} | {_psnr(s)} |")
    command = data.get("command")
    if command:
        command = f"`{command}`" + (" (SCENE: each scene)" if "SCENE" in command else "")
    else:
        command = "a command that was not recorded"
    details = []
    if data.get("episodes"):
        details.append(f"{data['episodes']} episodes")
    fractions = data.get("fractions")
    if isinstance(fractions, list) and fractions:
        spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        anchor = "the three-rule heuristic's" if spec.get("anchor") == "heuristic" else "CAQ-like's"
        details.append("latency budgets " + ", ".join(f"{f:g}x" for f in fractions) + f" of {anchor}")
        if spec.get("widths") == "hardware":
            details.append("search over the widths the accelerator runs without waste")
    details.append("mean (range) over the matched seeds")
    lines.append("")
    lines.append(f"Source: `{source}` ({'; '.join(details)}), made by {command} at commit {_commit(data)} "
                 f"on {_machine(data)}.")
    return "\n".join(lines)


def replace_block(text: str, block: str, path: str) -> str:
    starts, ends = text.count(START), text.count(END)
    if starts != 1 or ends != 1:
        raise InputError(f"{path}: needs exactly one '{START}' and one '{END}' line "
                         f"(found {starts} and {ends})")
    head, rest = text.split(START, 1)
    if END not in rest:
        raise InputError(f"{path}: '{END}' comes before '{START}'")
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                        help="headline JSON of bench_compare.py (default: benchmarks/results/headline_sweep.json)")
    parser.add_argument("--write", action="append", default=[], metavar="FILE",
                        help="replace the table between the results-table markers in FILE (repeatable); "
                             "without it the table is printed")
    args = parser.parse_args(argv)
    try:
        block = table(load(args.json), _display_path(args.json))
        if not args.write:
            try:
                print(block)
            except BrokenPipeError:  # `... | head`: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        updates = []
        seen = set()
        for path in args.write:
            if os.path.realpath(path) in seen:
                continue
            seen.add(os.path.realpath(path))
            try:
                with open(path, encoding="utf-8", newline="") as f:
                    text = f.read()
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            updates.append((path, text, replace_block(text, block, path)))
        for path, old, new in updates:
            if new != old:
                write_atomic(path, new)
            print(f"{path}: table {'updated' if new != old else 'already up to date'}")
        return 0
    except InputError as exc:
        print(f"results_table: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
