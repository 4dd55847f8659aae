"""`hero-lite train --supersample N` and `hero-lite run --supersample N`: recorded in the run folder
and the checkpoint, used by `eval` and the search, priced on a frame of every ray, bounded like the
model config, refused in one line outside its range or on a resume at another N."""

import json
from pathlib import Path

from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.cli import options
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import MAX_SUPERSAMPLE
from hero_lite.quant.run import load_any_checkpoint
from hero_lite.runfolder import MARKER, folder_digest
from tests.cli._errors import one_error_line

TINY = Path(__file__).resolve().parents[2] / "scenes" / "tiny"


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_bound_is_the_model_configs():
    assert options.MAX_SUPERSAMPLE == MAX_SUPERSAMPLE


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


def test_run_with_supersample_trains_and_searches_that_model(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "small.toml"
    config.write_text("episodes = 2\nqat_steps = 2\nqat_samples = 4096\nfinal_qat_steps = 2\nval_views = 1\n"
                      "[ddpg]\nwarmup_episodes = 1\nbatch_size = 16\n")
    result = _invoke("run", TINY, "--out", out, "--config", config, "--train-steps", 5, "--supersample", 2,
                     "--downscale", 2)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["model"]["supersample"] == 2
    quantized, hooks, _ = load_any_checkpoint(str(out / "search" / "quantized.h5"))
    assert hooks is not None
    assert quantized.config.supersample == 2
    assert (out / "test_view.png").stat().st_size > 0


def test_run_checks_the_budget_on_a_frame_of_every_ray(tmp_path):
    # tiny is 64x64: with 2x2 rays per pixel the generic frame has 128x128 rays
    result = _invoke("run", TINY, "--out", tmp_path / "run", "--latency-budget", "0.3x", "--supersample", 2)
    one_error_line(result, "out of reach on edge", "generic 128x128 frame")
    assert not (tmp_path / "run").exists()


def test_run_resume_refuses_a_checkpoint_trained_at_another_supersample(tmp_path):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / MARKER).write_text(json.dumps({"command": "run", "pid": 0}))
    (out_dir / "checkpoint.h5").write_bytes(b"")  # refused before it is read
    (out_dir / "config.json").write_text(json.dumps({"scene_digest": folder_digest(str(TINY)), "scene_downscale": 1,
                                                     "model": {"supersample": 2}}))
    one_error_line(_invoke("run", TINY, "--out", out_dir, "--resume"),
                   "was trained at --supersample 2, not 1", "use the same --supersample or another --out")
