"""The docs run: every command of docs/lab.md and the Python example of docs/api.md, on the tiny scene.

docs/lab.md is a course lab on scenes/primitives with settings sized for a laptop. This test
reads its ```bash blocks, swaps the scene for the tiny one, shrinks the step, episode and QAT
counts, runs each command in order (`python -m hero_lite ...`, in a temporary folder) and checks
that it exits as the lab says (0, or the code a `# exits N` comment names) and that every file
the lab names under `runs/lab/` exists afterwards. Lines `cat > FILE <<'EOF'` ... `EOF` in a
bash block write FILE (the test writes it itself; no shell is involved). docs/api.md's ```python
blocks run, concatenated, as one script with the tiny scene's path swapped in.

The tiny scene is scenes/tiny regenerated smaller (`make_scene("tiny", res=16)`, 8 train, 2 val and
2 test views; the same procedural scene): a model trained for 20 steps has not pruned its
occupancy grid yet (that starts after 256 steps) and marches about 100 samples per ray, so the
64x64 views would make every rendering command take 10-30 s. Both tests take about 75 s on 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# the checkout's docs (CI runs the tests from a copy of tests/ and scenes/ and names the checkout)
SOURCE = Path(os.environ.get("HERO_LITE_SOURCE", Path(__file__).resolve().parents[1]))
DOCS = SOURCE / "docs"

# the tiny scene, smaller (see the module docstring)
TINY_SMALL = {"res": 16, "n_train": 8, "n_val": 2, "n_test": 2}
# option -> value on the tiny scene (the lab's values are for scenes/primitives on a laptop)
SHRINK = {"--steps": "20", "--train-steps": "20", "--episodes": "2", "--qat-steps": "2", "--caq-steps": "2"}
# search and compare also get this SearchConfig file (unless a command brings its own --config): the
# final fine-tune, the candidate count and the validation views have no command-line option
SMALL_SEARCH = 'final_qat_steps = 2\nfinal_candidates = 2\nval_views = 1\nqat_samples = 4096\n'
SEARCHING = ("search", "compare", "run")
# options a command gets on the tiny scene when the lab leaves them at their (large) defaults
DEFAULTS = {"compare": {"--caq-steps": "2"}}
# keyword arguments of docs/api.md's example -> value on the tiny scene
API_SHRINK = {"steps": 20, "qat_steps": 2, "final_qat_steps": 2, "episodes": 2}
LAB_PATH = re.compile(r"`(runs/lab/[^`*<>{} ]+)`")
EXITS = re.compile(r"#\s*exits\s+(\d+)")


@dataclass
class Step:
    """One command of a bash block (argv after `hero-lite`), or a file a heredoc writes."""

    argv: list[str] = field(default_factory=list)
    expect_code: int = 0
    write_path: str | None = None
    write_text: str = ""
    line: str = ""


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of a Markdown text, in order."""
    return re.findall(rf"^```{language}[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.MULTILINE | re.DOTALL)


def lab_steps(text: str) -> list[Step]:
    """Every command of the ```bash blocks: continuation lines joined, comments dropped, heredocs kept."""
    steps: list[Step] = []
    for block in fenced_blocks(text, "bash"):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].rstrip()
            i += 1
            heredoc = re.match(r"^cat\s*>\s*(\S+)\s*<<\s*'?(\w+)'?\s*$", line)
            if heredoc:
                path, end = heredoc.groups()
                body = []
                while i < len(lines) and lines[i].strip() != end:
                    body.append(lines[i])
                    i += 1
                i += 1  # the end marker
                steps.append(Step(write_path=path, write_text="\n".join(body) + "\n", line=line))
                continue
            while line.endswith("\\") and i < len(lines):
                line = line[:-1] + " " + lines[i].strip()
                i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = EXITS.search(line)
            argv = shlex.split(line, comments=True)
            assert argv[0] == "hero-lite", f"docs/lab.md: a bash block runs something other than hero-lite: {line}"
            steps.append(Step(argv=argv[1:], expect_code=int(match.group(1)) if match else 0, line=line))
    return steps


def shrink(argv: list[str], tiny: Path, search_config: Path) -> list[str]:
    """The command on the tiny scene with small settings (`scene make` makes the small tiny scene)."""
    out = []
    for k, arg in enumerate(argv):
        if k > 0 and argv[k - 1] in SHRINK:
            arg = SHRINK[argv[k - 1]]
        elif arg.rstrip("/") == "scenes/primitives":
            arg = str(tiny)
        elif k == 2 and argv[:2] == ["scene", "make"]:
            arg = "tiny"
        out.append(arg)
    if out[:2] == ["scene", "make"]:
        for key, value in TINY_SMALL.items():
            option = "--" + key.removeprefix("n_")
            if option not in out:
                out += [option, str(value)]
    if out and out[0] in SEARCHING and "--config" not in out:
        out += ["--config", str(search_config)]
    for option, value in DEFAULTS.get(out[0] if out else "", {}).items():
        if option not in out:
            out += [option, value]
    return out


def shrink_python(code: str, tiny: Path) -> str:
    """docs/api.md's example on the tiny scene (for "scenes/tiny"), with fewer steps and episodes."""
    code = code.replace('"scenes/tiny"', repr(str(tiny)))
    return re.sub(r"\b(" + "|".join(API_SHRINK) + r")=\d+", lambda m: f"{m.group(1)}={API_SHRINK[m.group(1)]}", code)


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory) -> Path:
    """scenes/tiny, regenerated at 16x16 with fewer views."""
    from hero_lite.scenes import make_scene

    path = tmp_path_factory.mktemp("docs") / "tiny"
    make_scene("tiny", path, seed=0, **TINY_SMALL)
    return path


def test_lab_parses():
    """The parser sees the lab's pipeline (quick: no command runs)."""
    steps = lab_steps((DOCS / "lab.md").read_text())
    commands = {s.argv[0] for s in steps if s.argv}
    assert {"scene", "train", "eval", "render", "points", "quantize", "simulate", "search", "compare"} <= commands
    assert any("--timeline" in s.argv for s in steps)
    assert any(s.write_path for s in steps)


@pytest.mark.slow
def test_lab_commands_run_on_tiny(tmp_path, tiny_scene):
    text = (DOCS / "lab.md").read_text()
    steps = lab_steps(text)
    search_config = tmp_path / "tiny_search.toml"
    search_config.write_text(SMALL_SEARCH)
    work = tmp_path / "lab"
    work.mkdir()
    for step in steps:
        if step.write_path is not None:
            target = work / step.write_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.write_text)
            continue
        argv = shrink(step.argv, tiny_scene, search_config)
        result = subprocess.run([sys.executable, "-m", "hero_lite", *argv], cwd=work, capture_output=True, text=True,
                                timeout=300, check=False)
        assert result.returncode == step.expect_code, (
            f"docs/lab.md: `{step.line}` exited {result.returncode} on the tiny scene (expected {step.expect_code})\n"
            f"argv: {argv}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}")
    named = sorted(set(LAB_PATH.findall(text)))
    assert named, "docs/lab.md names no output file under runs/lab/"
    missing = [p for p in named if not (work / p).exists()]
    assert not missing, f"docs/lab.md names files its commands did not write: {missing}"


@pytest.mark.slow
def test_api_example_runs_on_tiny(tmp_path, tiny_scene):
    blocks = fenced_blocks((DOCS / "api.md").read_text(), "python")
    assert blocks, "docs/api.md has no ```python block"
    code = shrink_python("\n".join(blocks), tiny_scene)
    script = tmp_path / "api_example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, f"docs/api.md's example failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
