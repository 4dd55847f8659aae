"""`--downscale N` on every command that reads a scene: listed in --help, threaded to the loader,
recorded in run folders, and a resume at another N refused in one line."""

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hero_lite.cli import cli
from hero_lite.runfolder import MARKER, folder_digest
from hero_lite.scenes import look_at, save_scene
from hero_lite.search.hero import SearchConfig, changed_settings, input_digests
from tests.cli._errors import one_error_line

SCENE_COMMANDS = {"train", "eval", "render", "quantize", "simulate", "search", "run", "compare"}


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


@pytest.fixture
def scene_16(tmp_path):
    """A 16x16 Blender-format scene: 3 train views (one held out as val), 2 test views."""
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)
    poses = np.stack([look_at(np.array([4 * np.cos(a), 4 * np.sin(a), 1.5])) for a in angles]).astype(np.float32)
    images = rng.integers(0, 256, size=(5, 16, 16, 4), dtype=np.uint8)
    folder = tmp_path / "scene16"
    save_scene(folder, "train", images[:3], poses[:3], 0.6911112070083618)
    save_scene(folder, "test", images[3:], poses[3:], 0.6911112070083618)
    return folder


def test_every_command_that_reads_a_scene_takes_downscale():
    readers = set()
    for path, command in _commands(cli):
        names = {param.name for param in command.params}
        if "scene_dir" in names:
            readers.add(" ".join(path))
            assert "downscale" in names, f"{' '.join(path)} reads SCENE_DIR but has no --downscale"
            help_text = _invoke(*path, "--help").output
            assert "--downscale N" in help_text and "1/N" in help_text, help_text
    assert readers == SCENE_COMMANDS


def test_eval_and_render_read_the_scene_downscaled(tmp_path, scene_16, small_checkpoint):
    report = tmp_path / "eval.json"
    result = _invoke("eval", small_checkpoint, scene_16, "--downscale", 2, "--json", report)
    assert result.exit_code == 0, result.output
    assert "over 2 views" in result.output
    assert json.loads(report.read_text())["downscale"] == 2
    result = _invoke("render", small_checkpoint, scene_16, "--out", tmp_path / "pictures", "--downscale", 4)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "pictures" / "test_000_gt.png").size == (4, 4)


def test_a_downscale_that_does_not_divide_is_one_line(scene_16, small_checkpoint):
    one_error_line(_invoke("eval", small_checkpoint, scene_16, "--downscale", 3),
                   "r_0.png: image 16x16 is not divisible by downscale 3", "2, 4, 8, 16")
    result = _invoke("eval", small_checkpoint, scene_16, "--downscale", 0)
    assert result.exit_code == 2 and "--downscale" in result.stderr and "Traceback" not in result.output


def test_simulate_synthetic_takes_no_downscale():
    one_error_line(_invoke("simulate", "--synthetic", "--uniform", 8, "--downscale", 2),
                   "--synthetic takes no CHECKPOINT, SCENE_DIR or --downscale")


def test_train_records_the_downscale(tmp_path, scene_16):
    run_dir = tmp_path / "run"
    result = _invoke("train", scene_16, "--out", run_dir, "--steps", 1, "--downscale", 2)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "config.json").read_text())["scene_downscale"] == 2
    assert json.loads((run_dir / "metrics.json").read_text())["scene_downscale"] == 2


def _started_search(out_dir, checkpoint, scene, config):
    """A search folder as `hero-lite search` leaves it before its first episode."""
    out_dir.mkdir()
    (out_dir / MARKER).write_text(json.dumps({"command": "search", "pid": 0}))
    (out_dir / "config.json").write_text(json.dumps({
        "search": config.to_dict(), "checkpoint": str(checkpoint.resolve()), "scene": str(scene.resolve()),
        "inputs": input_digests(str(checkpoint), str(scene), config)}))


def test_search_resume_at_another_downscale_is_refused(tmp_path, scene_16, small_checkpoint):
    out_dir = tmp_path / "search"
    _started_search(out_dir, small_checkpoint, scene_16, SearchConfig())
    one_error_line(_invoke("search", small_checkpoint, scene_16, "--out", out_dir, "--resume", "--downscale", 2),
                   f"--resume: {out_dir} was started with other settings (scene_downscale 1 -> 2;",
                   "config.json")
    saved = json.loads((out_dir / "config.json").read_text())
    assert saved["search"]["scene_downscale"] == 1


def test_settings_added_later_count_as_their_default():
    saved = SearchConfig().to_dict()
    del saved["scene_downscale"]  # a folder started before the setting existed
    assert changed_settings(saved, SearchConfig()) == []
    assert changed_settings(saved, SearchConfig(scene_downscale=4)) == ["scene_downscale 1 -> 4"]
    assert changed_settings({**saved, "retired": 3}, SearchConfig()) == ["retired 3 -> (unknown)"]


def test_run_resume_refuses_a_checkpoint_trained_at_another_downscale(tmp_path, scene_16, small_checkpoint):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / MARKER).write_text(json.dumps({"command": "run", "pid": 0}))
    (out_dir / "checkpoint.h5").write_bytes(small_checkpoint.read_bytes())
    (out_dir / "config.json").write_text(json.dumps({"scene_digest": folder_digest(str(scene_16)),
                                                     "scene_downscale": 1}))
    one_error_line(_invoke("run", scene_16, "--out", out_dir, "--resume", "--downscale", 2),
                   "was trained at --downscale 1, not 2", "use the same --downscale or another --out")


def test_search_config_file_sets_scene_downscale_and_the_option_overrides_it(tmp_path):
    from hero_lite.cli.search_commands import search_config

    config_path = tmp_path / "search.toml"
    config_path.write_text("scene_downscale = 4\n")
    assert search_config(None, None, None, None, {}, None, None, None, str(config_path)).scene_downscale == 4
    assert search_config(None, None, None, None, {}, None, None, None, str(config_path),
                         downscale=2).scene_downscale == 2
    with pytest.raises(click.ClickException, match="scene_downscale = 0; valid: integer >= 1"):
        search_config(None, None, None, None, {}, None, None, None, None, downscale=0)
