"""The run-folder guarantees, attacked as a careless user would: one writer per folder (two real
processes), resume that refuses changed inputs, kills by PID, and no output written over an input
or an earlier run without --force. Every refusal is one line, exit code 2, and writes nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.cli.search_commands import search_config
from hero_lite.runfolder import MARKER, claimed, file_digest, folder_command, folder_digest
from hero_lite.search.hero import SearchConfig, hero_search

SMALL = ("episodes = {episodes}\nqat_steps = 2\nqat_samples = 4096\nfinal_qat_steps = 3\nfinal_candidates = 1\n"
         "val_views = 1\nbudgets = {{latency_ms = \"0.95x\"}}\n[ddpg]\nwarmup_episodes = 1\nbatch_size = 16\n")


def small_config(tmp_path: Path, episodes: int = 3) -> Path:
    path = tmp_path / f"small{episodes}.toml"
    path.write_text(SMALL.format(episodes=episodes))
    return path


def refused(args, *needles):
    """Run the CLI; assert exit 2 and one error line holding every needle; return that line."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def hero_lite(*args, cwd=None) -> subprocess.Popen:
    """`python -m hero_lite ARGS` as a real process (its own PID, its own locks)."""
    return subprocess.Popen([sys.executable, "-m", "hero_lite", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def log_lines(folder: Path) -> list[dict]:
    path = folder / "episodes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, tiny_checkpoint, tiny_dir):
    """A finished 3-episode search on copies of the tiny checkpoint and scene, and a TOML preset."""
    root = tmp_path_factory.mktemp("finished")
    checkpoint = root / "checkpoint.h5"
    shutil.copy(tiny_checkpoint, checkpoint)
    scene = root / "scene"
    shutil.copytree(tiny_dir, scene)
    accel = root / "accel.toml"
    accel.write_text('base = "edge"\n')
    config = small_config(root)
    out = root / "search"
    result = CliRunner().invoke(cli, ["search", str(checkpoint), str(scene), "--out", str(out), "--config", str(config),
                                      "--accel", str(accel)])
    assert result.exit_code == 0, result.output
    return {"checkpoint": checkpoint, "scene": scene, "accel": accel, "config": config, "out": out}


def resume(setup) -> list[str]:
    return ["search", setup["checkpoint"], setup["scene"], "--out", setup["out"], "--config", setup["config"],
            "--accel", setup["accel"], "--resume"]


# ---------------------------------------------------------------------------- one writer per folder


def test_a_second_search_on_the_same_folder_is_refused_while_the_first_runs(tiny_checkpoint, tiny_dir, tmp_path):
    out = tmp_path / "s"
    first = hero_lite("search", tiny_checkpoint, tiny_dir, "--out", out, "--config", small_config(tmp_path, 200))
    try:
        wait_for(lambda: folder_command(str(out)) == "search" or first.poll() is not None)
        second = hero_lite("search", tiny_checkpoint, tiny_dir, "--out", out, "--config", small_config(tmp_path, 200))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        assert err.strip().splitlines() == [
            f"Error: --out {out} is in use by another `search` (pid {first.pid}); wait for it to end or use another --out"]
        assert first.poll() is None  # the first one goes on
    finally:
        first.kill()
        first.wait()
    assert all(line["episode"] == k for k, line in enumerate(log_lines(out)))  # one writer: no interleaving


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    folder = str(tmp_path / "f")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom hero_lite.runfolder import claimed\n"
        f"with claimed({folder!r}, 'train'):\n    print('held', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ValueError, match="in use by another `train`"):
        with claimed(folder, "train", force=True):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with claimed(folder, "train", force=True) as earlier:
        assert earlier is False  # only the marker was there
    assert folder_command(folder) == "train"


# ---------------------------------------------------------------------------- kills and resume


def test_a_search_killed_by_pid_resumes_with_nothing_lost_or_repeated(tiny_checkpoint, tiny_dir, tmp_path):
    out = tmp_path / "s"
    config = small_config(tmp_path, 6)
    args = ["search", tiny_checkpoint, tiny_dir, "--out", out, "--config", config]
    process = hero_lite(*args)
    wait_for(lambda: len(log_lines(out)) >= 2 or process.poll() is not None)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= len(log_lines(out)) < 6 and not (out / "summary.json").exists()
    refused(args, "already holds a `search` run", "--resume")  # a fresh run does not mix in
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["--resume"])
    assert result.exit_code == 0, result.output
    assert [line["episode"] for line in log_lines(out)] == list(range(6))
    assert json.loads((out / "summary.json").read_text())["episodes"] == 6
    assert not [n for n in os.listdir(out) if ".tmp" in n]


def test_a_search_killed_before_its_first_saved_episode_starts_again_on_resume(finished_search, tmp_path):
    out = tmp_path / "s"
    shutil.copytree(finished_search["out"], out)
    os.remove(out / "agent.h5")  # killed after the first log line, before the agent was saved
    (out / ".episodes.jsonl.tmp4242").write_text("half")  # and a write interrupted by the kill
    setup = dict(finished_search, out=out)
    result = CliRunner().invoke(cli, [str(a) for a in resume(setup)])
    assert result.exit_code == 0, result.output
    assert [line["episode"] for line in log_lines(out)] == [0, 1, 2]
    assert not (out / ".episodes.jsonl.tmp4242").exists()


@pytest.mark.parametrize("change, needle", [
    ("scene", "the scene's files changed"),
    ("checkpoint", "the checkpoint changed"),
    ("accel", "the accelerator config changed"),
    ("truncated log", "holds 1 episodes but the saved agent learnt from 3"),
    ("deleted log", "holds 0 episodes but the saved agent learnt from 3"),
])
def test_resume_refuses_changed_inputs_and_a_damaged_log(finished_search, change, needle):
    setup = finished_search
    log = setup["out"] / "episodes.jsonl"
    backups = {k: setup[k].read_bytes() for k in ("checkpoint", "accel")}
    backups["log"] = log.read_bytes()
    image = setup["scene"] / "train" / "r_0.png"
    backups["image"] = image.read_bytes()
    before = folder_digest(str(setup["out"]))
    try:
        if change == "scene":
            image.write_bytes(backups["image"] + b"\0")
        elif change == "checkpoint":
            with open(setup["checkpoint"], "ab") as f:
                f.write(b"\0")  # the same path, other bytes: a retrained checkpoint
        elif change == "accel":
            setup["accel"].write_text('base = "edge"\nclock_hz = 4e8\n')
        elif change == "truncated log":
            log.write_text(log.read_text().splitlines()[0] + "\n")
        else:
            log.unlink()
        after_change = folder_digest(str(setup["out"]))
        refused(resume(setup), "--resume", needle)
        assert folder_digest(str(setup["out"])) == after_change  # nothing written
    finally:
        setup["checkpoint"].write_bytes(backups["checkpoint"])
        setup["accel"].write_bytes(backups["accel"])
        log.write_bytes(backups["log"])
        image.write_bytes(backups["image"])
    assert folder_digest(str(setup["out"])) == before


def test_the_library_search_checks_the_same_digests(finished_search):
    setup = finished_search
    config = search_config(None, None, str(setup["accel"]), None, {}, None, None, None, str(setup["config"]))
    with open(setup["checkpoint"], "ab") as f:
        f.write(b"\0")
    try:
        with pytest.raises(ValueError, match="the checkpoint changed"):
            hero_search(str(setup["checkpoint"]), str(setup["scene"]), str(setup["out"]), config, resume=True)
    finally:
        with open(setup["checkpoint"], "r+b") as f:
            f.truncate(os.path.getsize(setup["checkpoint"]) - 1)


def test_seed_in_the_config_file_is_used_unless_given(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("seed = 5\nepisodes = 2\n")
    assert search_config(None, None, None, None, {}, None, None, None, str(config)).seed == 5
    assert search_config(None, None, None, None, {}, None, None, 7, str(config)).seed == 7
    assert search_config(None, None, None, None, {}, None, None, None, None).seed == SearchConfig().seed


@pytest.mark.parametrize("text, needle", [
    ("[1, 2]", "the top level must be a table of settings, not list"),
    ("null", "not NoneType"),
    ('"fast"', "not str"),
    ('{"budgets": "0.8x"}', "search budgets = '0.8x'; valid: a dict"),
    ('{"episodes": "many"}', "search episodes = 'many'"),
])
def test_a_malformed_config_file_is_one_line_naming_it(tmp_path, text, needle):
    config = tmp_path / "c.json"
    config.write_text(text)
    refused(["search", "missing.h5", tmp_path, "--out", tmp_path / "s", "--config", config], f"--config {config}",
            needle)
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------- nothing overwritten by surprise


def test_train_refuses_an_earlier_run_and_a_folder_it_cannot_write(tiny_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text('{"command": "train"}\n')
    (out / "checkpoint.h5").write_bytes(b"earlier")
    refused(["train", tiny_dir, "--out", out, "--steps", 1], "already holds a `train` run", "--force")
    assert (out / "checkpoint.h5").read_bytes() == b"earlier"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    start = time.perf_counter()
    refused(["train", tiny_dir, "--out", blocker / "run", "--steps", 10000], f"--out {blocker / 'run'} cannot be written")
    assert time.perf_counter() - start < 10  # before any training


def test_search_refuses_a_training_folder_and_the_scene_folder(tiny_checkpoint, tiny_dir, tmp_path):
    training = tmp_path / "train"
    training.mkdir()
    (training / MARKER).write_text('{"command": "train"}\n')
    (training / "config.json").write_text('{"seed": 0}\n')
    refused(["search", tiny_checkpoint, tiny_dir, "--out", training], "holds a `train` folder")
    assert (training / "config.json").read_text() == '{"seed": 0}\n'
    before = folder_digest(str(tiny_dir))
    refused(["search", tiny_checkpoint, tiny_dir, "--out", tiny_dir], "holds files hero-lite did not write")
    assert folder_digest(str(tiny_dir)) == before


def test_compare_refuses_an_earlier_compare_before_any_work(tiny_checkpoint, tiny_dir, tmp_path):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / MARKER).write_text('{"command": "compare"}\n')
    (out / "compare.json").write_text('{"methods": {"caq": {}}}\n')
    start = time.perf_counter()
    refused(["compare", tiny_checkpoint, tiny_dir, "--out", out], "already holds a `compare` run", "--force")
    assert time.perf_counter() - start < 10
    assert (out / "compare.json").read_text() == '{"methods": {"caq": {}}}\n'


def test_outputs_never_replace_inputs_or_follow_links(tiny_checkpoint, tiny_dir, tmp_path):
    checkpoint = tmp_path / "checkpoint.h5"
    shutil.copy(tiny_checkpoint, checkpoint)
    digest = file_digest(str(checkpoint))
    refused(["quantize", checkpoint, tiny_dir, "--uniform", 8, "--out", checkpoint],
            f"--out {checkpoint} is the CHECKPOINT this command reads")
    refused(["quantize", checkpoint, tiny_dir, "--uniform", 8, "--out", tmp_path / "q.h5", "--json", checkpoint],
            "--json", "is the CHECKPOINT this command reads")
    refused(["eval", checkpoint, tiny_dir, "--json", checkpoint], "is the CHECKPOINT this command reads")
    link = tmp_path / "link.json"
    target = tmp_path / "target.json"
    target.write_text("{}")
    link.symlink_to(target)
    refused(["eval", checkpoint, tiny_dir, "--json", link], "is a symbolic link")
    assert link.is_symlink() and target.read_text() == "{}"
    existing = tmp_path / "earlier.h5"
    existing.write_bytes(b"earlier")
    refused(["quantize", checkpoint, tiny_dir, "--uniform", 8, "--out", existing], "exists; use --force")
    assert existing.read_bytes() == b"earlier" and file_digest(str(checkpoint)) == digest
    assert not (tmp_path / "q.h5").exists()


def test_reproduce_never_deletes_what_it_did_not_make(tmp_path):
    out = tmp_path / "mine"
    for sub in ("search", "train", "scene"):
        (out / sub).mkdir(parents=True)
        (out / sub / "keep.txt").write_text(sub)
    refused(["reproduce", "--out", out], "holds files hero-lite did not write")
    assert sorted(os.listdir(out)) == ["scene", "search", "train"]
    assert all((out / sub / "keep.txt").exists() for sub in ("search", "train", "scene"))


def test_run_resume_checks_the_checkpoint_was_trained_on_this_scene(tiny_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).write_text('{"command": "run"}\n')
    (out / "checkpoint.h5").write_bytes(b"trained elsewhere")
    (out / "config.json").write_text('{"scene_digest": "0000"}\n')
    refused(["run", tiny_dir, "--out", out], "already holds a `run` run", "--resume")
    refused(["run", tiny_dir, "--out", out, "--resume"], "was not trained on", "use another --out")
    assert (out / "checkpoint.h5").read_bytes() == b"trained elsewhere"


def test_run_killed_during_its_search_resumes_with_its_checkpoint(tiny_checkpoint, tiny_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()  # a run killed after training: its checkpoint, and the scene digest its training recorded
    (out / MARKER).write_text('{"command": "run"}\n')
    shutil.copy(tiny_checkpoint, out / "checkpoint.h5")
    (out / "config.json").write_text(json.dumps({"scene_digest": folder_digest(str(tiny_dir))}))
    checkpoint = file_digest(str(out / "checkpoint.h5"))
    args = ["run", tiny_dir, "--out", out, "--config", small_config(tmp_path, 4), "--resume"]
    process = hero_lite(*args)
    wait_for(lambda: len(log_lines(out / "search")) >= 1 or process.poll() is not None)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(log_lines(out / "search")) < 4 and not (out / "search" / "summary.json").exists()
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "reusing" in result.output and file_digest(str(out / "checkpoint.h5")) == checkpoint
    assert [line["episode"] for line in log_lines(out / "search")] == [0, 1, 2, 3]
    assert (out / "test_view.png").exists() and (out / "bits.png").exists()


def test_bad_numbers_on_the_command_line_are_one_line(tiny_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "hero_lite", "train", str(tiny_dir), "--out", str(tmp_path / "r"),
                          "--seconds", "inf"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "--seconds" in out.stderr
    assert not (tmp_path / "r").exists()
