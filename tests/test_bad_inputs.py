"""Bad inputs through the command line: one clear error line naming the file or option, exit code 2,
no traceback, nothing written, and no hang or huge allocation before the error."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.nerf.checkpoint import save_checkpoint
from hero_lite.nerf.config import HashGridConfig, ModelConfig
from hero_lite.nerf.model import NGPModel
from hero_lite.quant.export import save_quantized
from hero_lite.quant.fakequant import FakeQuantHooks
from hero_lite.quant.policy import uniform_policy

TINY = Path(__file__).resolve().parents[1] / "scenes" / "tiny"
SMALL = ModelConfig(grid=HashGridConfig(n_levels=3, log2_table_size=8, base_res=4, max_res=16), hidden_width=16,
                    geo_feat=8, occupancy_res=8, step_size=0.05)


def _fails_cleanly(args, *needles):
    """Run the CLI; assert exit 2, one 'Error:' line on stderr holding every needle, no traceback."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.fixture
def small_checkpoint(tmp_path):
    """An untrained fp32 checkpoint of a small model over the tiny scene's box (fast to make)."""
    model = NGPModel.create(SMALL, np.float32([[-1.5] * 3, [1.5] * 3]), np.random.default_rng(0))
    path = tmp_path / "small.h5"
    save_checkpoint(path, model, {"steps": 0})
    return path


@pytest.fixture
def tiny_copy(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    return folder


def _edit(path, edit):
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("args, needles", [
    (["--res", 100000], ["res must be an integer in [8, 4096], got 100000"]),
    (["--res", 4096, "--train", 100], ["train split of 100 views at res 4096 would need 25.0 GiB", "at most 8 GiB"]),
    (["--train", 10**9], ["n_train must be an integer in [1, 10000]"]),
])
def test_scene_make_sizes_are_bounded_before_allocating(tmp_path, args, needles):
    out = tmp_path / "scene"
    _fails_cleanly(["scene", "make", "tiny", "--out", out, *args], *needles)
    assert not out.exists()


# ----------------------------------------------------------------------------- scenes


def _zero_pose(meta):
    meta["frames"][0]["transform_matrix"] = [[0.0] * 4 for _ in range(4)]


def test_eval_on_a_zero_pose_fails_at_once(small_checkpoint, tiny_copy):
    # this scene used to pass validation, give NaN rays and march for 11 minutes
    _edit(tiny_copy / "transforms_test.json", _zero_pose)
    _fails_cleanly(["eval", small_checkpoint, tiny_copy], "transforms_test.json", "frames[0]", "transform_matrix")


def test_train_on_a_zero_pose_writes_nothing(tiny_copy, tmp_path):
    _edit(tiny_copy / "transforms_train.json", _zero_pose)
    run = tmp_path / "run"
    _fails_cleanly(["train", tiny_copy, "--out", run, "--steps", 1], "transforms_train.json", "frames[0]")
    assert not run.exists()


def test_train_on_a_huge_aabb_writes_nothing(tiny_copy, tmp_path):
    # +-1e30 once made training allocate 48 GiB of samples
    _edit(tiny_copy / "transforms_train.json", lambda meta: meta.update(aabb=[[-1e30] * 3, [1e30] * 3]))
    run = tmp_path / "run"
    _fails_cleanly(["train", tiny_copy, "--out", run, "--steps", 1], "transforms_train.json", "'aabb' must be",
                   "extent <= 64")
    assert not run.exists()


def test_render_with_nan_camera_angle(small_checkpoint, tiny_copy, tmp_path):
    _edit(tiny_copy / "transforms_test.json", lambda meta: meta.update(camera_angle_x=float("nan")))
    out = tmp_path / "pictures"
    _fails_cleanly(["render", small_checkpoint, tiny_copy, "--out", out], "transforms_test.json", "camera_angle_x")
    assert not out.exists()


# ----------------------------------------------------------------------------- checkpoints


def test_eval_of_a_checkpoint_with_an_inverted_aabb(small_checkpoint):
    with h5py.File(small_checkpoint, "a") as f:
        f["aabb"][...] = f["aabb"][()][::-1]
    _fails_cleanly(["eval", small_checkpoint, TINY], str(small_checkpoint), "dataset 'aabb'", "min < max")


def test_eval_of_a_checkpoint_with_a_wrong_occupancy_grid(small_checkpoint):
    with h5py.File(small_checkpoint, "a") as f:
        del f["occupancy/values"]
        f.create_dataset("occupancy/values", data=np.zeros((4, 4, 4), np.float32))
    _fails_cleanly(["eval", small_checkpoint, TINY], str(small_checkpoint), "occupancy/values", "(8, 8, 8)")


@pytest.mark.parametrize("scale, needle", [(np.nan, "scale must be finite and > 0"), (0.0, "scale must be finite and > 0")])
def test_eval_of_a_quantized_checkpoint_with_a_bad_scale(tmp_path, scale, needle):
    model = NGPModel.create(SMALL, np.float32([[-1.5] * 3, [1.5] * 3]), np.random.default_rng(0))
    policy = uniform_policy(SMALL, 6, 8)
    ranges = {p.name: (-1.0, 1.0) for p in policy.points(SMALL) if p.kind == "activation"}
    path = tmp_path / "q.h5"
    save_quantized(str(path), model, FakeQuantHooks(model, policy, ranges).freeze())
    with h5py.File(path, "a") as f:
        f["quant/hash.l01/scale"][()] = scale
    _fails_cleanly(["eval", path, TINY], str(path), "quant/hash.l01", needle)


# ----------------------------------------------------------------------------- policies and configs


@pytest.mark.parametrize("payload, needle", [
    ([8, 8], "top level must be a JSON object"),
    ({"set": "hero", "model": ["ngp"], "points": {}}, "'model' must be an object"),
    ({"set": "hero", "points": 8}, "'points' must be an object"),
])
def test_quantize_with_a_malformed_policy_writes_nothing(small_checkpoint, tmp_path, payload, needle):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(payload))
    out = tmp_path / "q.h5"
    _fails_cleanly(["quantize", small_checkpoint, TINY, "--policy", policy, "--out", out], str(policy), needle)
    assert not out.exists()


@pytest.mark.parametrize("line, key", [
    ("[dram]\nbw_bytes_per_cycle = inf", "dram.bw_bytes_per_cycle = inf"),
    ("clock_hz = nan", "clock_hz = nan"),
    ("[cache]\nkib = 1e308", "cache.kib = 1e+308"),
    ("[hash_engine]\nsram_banks = 1000000000", "hash_engine.sram_banks = 1000000000"),
])
def test_simulate_with_a_bad_accelerator_file(tmp_path, line, key):
    path = tmp_path / "accel.toml"
    path.write_text(line + "\n")
    timeline = tmp_path / "timeline.png"
    _fails_cleanly(["simulate", "--synthetic", "--uniform", 8, "--accel", path, "--timeline", timeline],
                   f"accelerator config {path}", key, "valid:")
    assert not timeline.exists()
