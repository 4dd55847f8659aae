"""`hero-lite train --supersample N`: recorded in the run folder and the checkpoint, used by
`eval`, bounded like the model config, and refused in one line outside its range."""

import json
from pathlib import Path

from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.cli import model_commands
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import MAX_SUPERSAMPLE

TINY = Path(__file__).resolve().parents[2] / "scenes" / "tiny"


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_bound_is_the_model_configs():
    assert model_commands.MAX_SUPERSAMPLE == MAX_SUPERSAMPLE


def test_train_with_supersample_records_it_and_eval_renders_with_it(tmp_path):
    run_dir = tmp_path / "run"
    result = _invoke("train", TINY, "--out", run_dir, "--steps", 3, "--supersample", 2, "--downscale", 2)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "config.json").read_text())["model"]["supersample"] == 2
    model, _ = load_checkpoint(run_dir / "checkpoint.h5")
    assert model.config.supersample == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result = _invoke("eval", run_dir / "checkpoint.h5", TINY, "--downscale", 2, "--json", tmp_path / "eval.json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert abs(evaluation["psnr"] - metrics["test_psnr"]) < 1e-9


def test_supersample_out_of_range_is_one_error_line(tmp_path):
    result = _invoke("train", TINY, "--out", tmp_path / "run", "--steps", 1, "--supersample", 5)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--supersample" in result.output and "1<=x<=4" in result.output
    assert not (tmp_path / "run").exists()
