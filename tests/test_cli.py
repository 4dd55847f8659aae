"""The `hero-lite` command line: help, version, scene/train/eval/render, and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hero_lite import __version__
from hero_lite.cli import cli

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "scenes" / "tiny"


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def test_version_and_help():
    assert __version__ in run("--version").output
    out = run("--help").output
    for command in ("scene", "train", "eval", "render"):
        assert command in out
    for command in (["scene", "make"], ["train"], ["eval"], ["render"]):
        result = run(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "hero_lite", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = run("train", TINY, "--out", run_dir, "--steps", 20, "--seed", 3, "--json", run_dir / "out.json")
    assert result.exit_code == 0, result.output
    return run_dir


def test_train_writes_checkpoint_and_metrics(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in ("test_psnr", "val_psnr", "steps", "train_seconds", "samples_per_s"):
        assert key in metrics
    assert metrics["steps"] == 20
    assert (trained_run / "checkpoint.h5").is_file()
    assert json.loads((trained_run / "out.json").read_text())["steps"] == 20
    config = json.loads((trained_run / "config.json").read_text())
    assert config["seed"] == 3 and "model" in config and "train" in config
    # no temporary files left behind
    assert not [p for p in os.listdir(trained_run) if ".tmp" in p]


def test_eval_and_render(trained_run, tmp_path):
    ckpt = trained_run / "checkpoint.h5"
    result = run("eval", ckpt, TINY, "--json", tmp_path / "eval.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report) >= {"psnr", "ssim", "per_view"}
    assert len(report["per_view"]) == 8  # tiny has 8 test views
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert report["psnr"] == pytest.approx(metrics["test_psnr"], abs=1e-9)  # same model, same views
    result = run("render", ckpt, TINY, "--out", tmp_path / "img", "--views", 2)
    assert result.exit_code == 0, result.output
    assert sorted(n for n in os.listdir(tmp_path / "img") if n != ".hero-lite") == [
        "test_000_error.png", "test_000_gt.png", "test_000_pred.png",
        "test_001_error.png", "test_001_gt.png", "test_001_pred.png",
    ]


def test_scene_make(tmp_path):
    result = run("scene", "make", "tiny", "--out", tmp_path / "s", "--res", 16, "--train", 2, "--val", 1, "--test", 1)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "transforms_train.json").is_file()
    assert (tmp_path / "s" / "test" / "r_0.png").is_file()


@pytest.mark.parametrize("args, needle", [
    (["eval", "missing.h5", TINY], "checkpoint not found"),
    (["train", TINY, "--out", "x"], "exactly one of --steps"),
    (["train", TINY, "--out", "x", "--steps", 5, "--seconds", 2], "exactly one of --steps"),
    (["scene", "make", "tiny", "--out", "x", "--res", 2], "res"),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code != 0
    assert needle in result.output
    assert "Traceback" not in result.output


def test_corrupt_checkpoint_and_scene(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    result = CliRunner().invoke(cli, ["eval", str(bad), str(TINY)])
    assert result.exit_code == 2 and "not a readable HDF5 file" in result.output
    empty_scene = tmp_path / "empty"
    empty_scene.mkdir()
    result = CliRunner().invoke(cli, ["train", str(empty_scene), "--out", str(tmp_path / "r"), "--steps", 1])
    assert result.exit_code == 2 and "transforms_train.json" in result.output
    assert not (tmp_path / "r" / "checkpoint.h5").exists()


def test_an_internal_failure_is_one_line_and_debug_shows_the_traceback(monkeypatch, tmp_path):
    import hero_lite.scenes

    def broken(*args, **kwargs):
        raise ZeroDivisionError("something inside broke")

    monkeypatch.setattr(hero_lite.scenes, "make_scene", broken)
    monkeypatch.delenv("HERO_LITE_DEBUG", raising=False)
    args = ["scene", "make", "tiny", "--out", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]  # after the progress bar's label
    assert last.startswith("Error: internal error (ZeroDivisionError: something inside broke)")
    assert "--debug" in last and "Traceback (most recent" not in result.output and sum(l.startswith("Error") for l in result.output.splitlines()) == 1
    for debug_args, env in ((["--debug"], {}), ([], {"HERO_LITE_DEBUG": "1"})):
        result = CliRunner(env=env).invoke(cli, [*debug_args, *args])
        assert isinstance(result.exception, ZeroDivisionError)  # raised, so click's runner (or Python) shows it


def test_the_installed_command_prints_usage_errors_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hero_lite", "train", str(TINY), "--out", str(tmp_path / "r"),
                          "--steps", "zero"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "Error: Invalid value for '--steps': 'zero' is not a valid integer range. (see 'hero-lite train --help')"]
    out = subprocess.run([sys.executable, "-m", "hero_lite", "--debug", "--version"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and __version__ in out.stdout
