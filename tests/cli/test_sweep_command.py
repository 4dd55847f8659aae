"""`hero-lite sweep`: listed in --help, one-line errors (exit 2) for a bad spec or bad options before
any folder is made, the Dask hint when Dask is missing, exit 1 naming the first failed job, and no
Dask import unless --scheduler asks for it. The sweeps that run are in tests/search/test_sweep.py."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from tests.cli._errors import one_error_line

SPEC = """scenes = ["{scene}"]
seeds = [0]
fractions = [0.9]
[train]
steps = 5
[search]
episodes = 2
"""


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def spec(tmp_path):
    """A spec file over `scene`, a folder under tmp_path/scenes (its transforms do not parse)."""
    (tmp_path / "scenes" / "broken").mkdir(parents=True)
    (tmp_path / "scenes" / "broken" / "transforms_train.json").write_text("{")
    path = tmp_path / "sweep.toml"
    path.write_text(SPEC.format(scene="broken"))
    return path


def test_sweep_is_listed_with_its_options():
    assert "sweep" in _invoke("--help").output
    text = _invoke("sweep", "--help").output
    for option in ("--out", "--scenes-root", "--workers N", "--scheduler tcp://HOST:PORT", "--force"):
        assert option in text
    assert "headline" in text and "hero-lite[dask]" in text


@pytest.mark.parametrize("extra, text, needles", [
    ([], 'scenes = ["broken"]\nseeds = [0]\nepisodes = 3\n', ["unknown key 'episodes'", "valid keys: scenes, seeds"]),
    ([], 'scenes = ["missing"]\nseeds = [0]\n', ["scenes entry 'missing' is not a folder under --scenes-root"]),
    ([], 'scenes = ["broken"\n', ["not valid TOML"]),
    (["--workers", 2, "--scheduler", "tcp://127.0.0.1:8786"], None, ["--workers belongs to the local pool"]),
])
def test_a_bad_spec_or_option_is_one_line_and_makes_no_folder(tmp_path, spec, extra, text, needles):
    if text is not None:
        spec.write_text(text)
    out = tmp_path / "out"
    result = _invoke("sweep", spec, "--out", out, "--scenes-root", tmp_path / "scenes", *extra)
    one_error_line(result, *needles)
    assert not out.exists()


def test_an_unknown_spec_names_the_shipped_ones(tmp_path):
    one_error_line(_invoke("sweep", "headlin", "--out", tmp_path / "out"), "spec headlin: no such file",
                   "shipped: headline, tiny, variants")


def test_a_missing_dask_gives_the_install_line(tmp_path, spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    out = tmp_path / "out"
    result = _invoke("sweep", spec, "--out", out, "--scenes-root", tmp_path / "scenes",
                     "--scheduler", "tcp://127.0.0.1:1")
    one_error_line(result, "--scheduler needs Dask", 'pip install "hero-lite[dask]"')
    assert not out.exists()


def test_another_commands_folder_is_refused(tmp_path, spec):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".hero-lite").write_text(json.dumps({"command": "train"}))
    (out / "checkpoint.h5").write_bytes(b"")
    one_error_line(_invoke("sweep", spec, "--out", out, "--scenes-root", tmp_path / "scenes"),
                   "holds a `train` folder")


def test_a_failed_job_exits_1_naming_it_and_blocks_the_jobs_that_need_it(tmp_path, spec):
    out = tmp_path / "out"
    result = _invoke("sweep", spec, "--out", out, "--scenes-root", tmp_path / "scenes", "--workers", 1)
    one_error_line(result, "1 job(s) failed, first train/broken:", "the same command retries them", code=1)
    assert "(0 run, 0 reused, 1 failed, 3 blocked)" in result.stdout
    sweep = json.loads((out / "sweep.json").read_text())
    assert list(sweep["failed"]) == ["train/broken"] and "transforms_train.json" in sweep["failed"]["train/broken"]
    assert "## Failed jobs" in (out / "sweep.md").read_text()
    assert not list(out.glob("pareto_*.png")) and not (out / "jobs" / "train" / "broken" / "result.json").exists()


def test_importing_hero_lite_and_the_sweep_needs_no_dask():
    code = ("import sys, hero_lite.cli, hero_lite.search.sweep; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
