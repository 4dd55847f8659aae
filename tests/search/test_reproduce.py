"""`hero-lite reproduce`: tolerance files, the comparison rules, and the miniature itself (two runs in
a row agree bit for bit; a changed seed or bit-width drifts on exactly the keys it affects; the
committed reference fingerprint of scenes/tiny still holds)."""

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.search.drift import FORMAT, Tolerances, compare_fingerprints, format_report, load_fingerprint
from hero_lite.search.reproduce import ReproduceConfig, run_miniature

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "fingerprint_tiny.json"
SMALL = ReproduceConfig(train_steps=60, qat_steps=8, search_episodes=3, search_qat_steps=2)


def _fingerprint(env_id="e1"):
    return {"format": FORMAT, "config": {"a": 1}, "environment": {"cpu": env_id}, "environment_id": env_id,
            "digests": {"train.parameters": "ab" * 32}, "numbers": {"train.test_psnr": 25.0, "sim.edge.latency_ms": 2.0,
                                                                    "ptq.model_bytes": 1000.0},
            "discrete": {"search.best_policy": {"hash.l00": 8, "w.color0": 6}}}


def _drift_keys(rows):
    return {r.key for r in rows if r.verdict == "drift"}


# ---------------------------------------------------------------------------- comparison rules


def test_identical_fingerprints_hold():
    rows = compare_fingerprints(_fingerprint(), _fingerprint())
    assert rows and all(r.verdict == "ok" for r in rows)


def test_numbers_within_default_tolerance_hold_and_beyond_drift():
    now = _fingerprint()
    now["numbers"]["train.test_psnr"] += 0.2  # default psnr tolerance 0.3 dB
    now["numbers"]["sim.edge.latency_ms"] *= 1.05  # default latency tolerance 3 %
    rows = compare_fingerprints(_fingerprint(), now)
    assert _drift_keys(rows) == {"numbers.sim.edge.latency_ms"}
    now["numbers"]["ptq.model_bytes"] += 1  # exact
    assert _drift_keys(compare_fingerprints(_fingerprint(), now)) == {"numbers.sim.edge.latency_ms",
                                                                      "numbers.ptq.model_bytes"}


def test_digest_and_discrete_changes_drift_on_the_same_environment():
    now = _fingerprint()
    now["digests"]["train.parameters"] = "cd" * 32
    now["discrete"]["search.best_policy"]["w.color0"] = 5
    rows = compare_fingerprints(_fingerprint(), now)
    assert _drift_keys(rows) == {"digests.train.parameters", "discrete.search.best_policy"}
    policy_row = next(r for r in rows if r.key == "discrete.search.best_policy")
    assert policy_row.reference == {"w.color0": 6} and policy_row.now == {"w.color0": 5}  # only what changed


def test_other_environment_digests_are_info_and_discrete_verdict_is_configurable(tmp_path):
    now = _fingerprint("e2")
    now["digests"]["train.parameters"] = "cd" * 32
    now["discrete"]["search.best_policy"]["w.color0"] = 5
    rows = compare_fingerprints(_fingerprint(), now)
    verdicts = {r.key: r.verdict for r in rows}
    assert verdicts["digests.train.parameters"] == "info" and verdicts["environment"] == "info"
    assert verdicts["discrete.search.best_policy"] == "warn" and not _drift_keys(rows)
    strict = tmp_path / "strict.toml"
    strict.write_text('[verdicts]\ndiscrete_across_environments = "drift"\n')
    assert _drift_keys(compare_fingerprints(_fingerprint(), now, Tolerances.from_file(str(strict)))) == {
        "discrete.search.best_policy"}


def test_missing_keys_and_another_config_drift():
    now = _fingerprint()
    del now["numbers"]["train.test_psnr"]
    now["config"] = {"a": 2}
    assert _drift_keys(compare_fingerprints(_fingerprint(), now)) == {"config", "numbers.train.test_psnr"}


def test_report_lists_key_reference_now_allowed_verdict():
    now = _fingerprint()
    now["numbers"]["train.test_psnr"] = 20.0
    report = format_report(compare_fingerprints(_fingerprint(), now))
    header, *lines = report.splitlines()
    assert header.split() == ["key", "reference", "now", "allowed", "verdict"]
    row = next(line for line in lines if line.startswith("numbers.train.test_psnr"))
    assert row.split() == ["numbers.train.test_psnr", "25", "20", "+-0.3", "drift"]
    assert lines[-1].startswith("4 ok, 1 drift")


# ---------------------------------------------------------------------------- tolerance files


def test_tolerance_file_overrides_by_most_specific_pattern(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text('[numbers]\n"train.test_psnr" = { abs = 1.0 }\n"sim.*.latency_ms" = { rel = 0.1, abs = 0.01 }\n')
    tolerances = Tolerances.from_file(str(path))
    assert tolerances.for_key("train.test_psnr") == (1.0, 0.0)
    assert tolerances.for_key("qat.test_psnr") == (0.3, 0.0)  # default "*psnr"
    assert tolerances.for_key("sim.edge.latency_ms") == (0.01, 0.1)
    assert tolerances.for_key("anything.else") == (0.0, 1e-6)
    as_json = tmp_path / "tol.json"
    as_json.write_text(json.dumps({"numbers": {"train.test_psnr": {"abs": 1.0}}}))
    assert Tolerances.from_file(str(as_json)).for_key("train.test_psnr") == (1.0, 0.0)


@pytest.mark.parametrize("text, message", [
    ("[numbers\n", "not valid TOML"),
    ("[limits]\n", "unknown section"),
    ('[numbers]\n"x" = 0.5\n', "must be a table"),
    ('[numbers]\n"x" = { tol = 0.5 }\n', "must be a table"),
    ('[numbers]\n"x" = { abs = -1 }\n', "valid: a finite number >= 0"),
    ('[numbers]\n"x" = { abs = "big" }\n', "valid: a finite number >= 0"),
    ('[verdicts]\ndiscrete_across_environments = "ignore"\n', "valid: warn, drift"),
    ('[verdicts]\nother = "warn"\n', "unknown verdict"),
])
def test_tolerance_file_bad_input(tmp_path, text, message):
    path = tmp_path / "tol.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        Tolerances.from_file(str(path))


def test_tolerance_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="tolerance file not found"):
        Tolerances.from_file(str(tmp_path / "none.toml"))


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "not a hero-lite-fingerprint/1 file"),
    (json.dumps({"format": FORMAT, "config": {}, "environment": {}, "environment_id": "x", "digests": {},
                 "numbers": {}}), "malformed section 'discrete'"),
    (json.dumps({"format": FORMAT, "config": {}, "environment": {}, "environment_id": "x", "digests": {},
                 "numbers": {"a": "1"}, "discrete": {}}), "is not a number"),
])
def test_bad_reference_fingerprints(tmp_path, content, message):
    path = tmp_path / "ref.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_fingerprint(str(path))


def test_cli_bad_reference_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "ref.json"
    bad.write_text("[]")
    result = CliRunner().invoke(cli, ["reproduce", "--out", str(tmp_path / "out"), "--check", str(bad)])
    assert result.exit_code == 2 and "not a hero-lite-fingerprint/1 file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()  # rejected before any work


# ---------------------------------------------------------------------------- the miniature


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return run_miniature(str(tmp_path_factory.mktemp("small")), SMALL)


def test_miniature_records_every_stage(small_run):
    assert set(small_run["digests"]) == {"scene.files", "train.parameters", "ptq.packed_model", "qat.packed_model",
                                         "search.packed_model"}
    numbers = small_run["numbers"]
    assert 15.0 < numbers["train.test_psnr"] < 40.0
    assert numbers["ptq.model_bytes"] == numbers["sim.edge.model_bytes"] == numbers["sim.server.model_bytes"]
    assert numbers["sim.server.latency_ms"] < numbers["sim.edge.latency_ms"]
    assert len([k for k in numbers if k.startswith("search.reward.")]) == SMALL.search_episodes
    assert small_run["environment"]["numba_threads"] >= 1 and small_run["environment"]["cpu_features"]


def test_a_different_bit_width_drifts_on_exactly_the_quantized_keys(small_run, tmp_path):
    changed = run_miniature(str(tmp_path), ReproduceConfig(**{**SMALL.to_dict(), "presets": SMALL.presets,
                                                             "hash_bits": 4}))
    drift = _drift_keys(compare_fingerprints(small_run, changed)) - {"config"}
    assert {"digests.ptq.packed_model", "digests.qat.packed_model", "numbers.ptq.model_bytes"} <= drift
    assert all(k.split(".")[1] in ("ptq", "qat", "sim") for k in drift), drift
    # 6 -> 4 hash bits (8-bit -> 4-bit slots) move the edge frame by less than the 3 % tolerance, but they move it.
    assert changed["numbers"]["sim.edge.latency_ms"] != small_run["numbers"]["sim.edge.latency_ms"]


def test_a_different_seed_drifts_from_training_on_but_not_the_scene(small_run, tmp_path):
    changed = run_miniature(str(tmp_path), ReproduceConfig(**{**SMALL.to_dict(), "presets": SMALL.presets, "seed": 1}))
    rows = {r.key: r.verdict for r in compare_fingerprints(small_run, changed)}
    assert rows["digests.scene.files"] == "ok"
    assert all(rows[f"digests.{k}"] == "drift" for k in ("train.parameters", "ptq.packed_model", "qat.packed_model",
                                                         "search.packed_model"))
    assert rows["numbers.ptq.model_bytes"] == "ok"  # bytes depend on the policy alone


def test_reference_fingerprint_holds_and_two_runs_agree(tmp_path, monkeypatch):
    """The CI check: the default miniature against tests/data, twice in a row."""
    runner = CliRunner()
    first = runner.invoke(cli, ["reproduce", "--out", str(tmp_path / "a"), "--check", str(REFERENCE)])
    assert first.exit_code == 0, first.output
    assert "reproduces" in first.output
    second = runner.invoke(cli, ["reproduce", "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    a = json.loads((tmp_path / "a" / "fingerprint.json").read_text())
    b = json.loads((tmp_path / "b" / "fingerprint.json").read_text())
    assert a["digests"] == b["digests"] and a["numbers"] == b["numbers"] and a["discrete"] == b["discrete"]
    assert a["discrete"]["scene.matches_bundled"] is True
    drifted = copy.deepcopy(b)
    drifted["numbers"]["qat.test_psnr"] += 1.0
    (tmp_path / "drifted.json").write_text(json.dumps(drifted))
    import hero_lite.search.reproduce as reproduce_module

    monkeypatch.setattr(reproduce_module, "run_miniature", lambda *args, **kwargs: b)  # the exit-1 path, no rerun
    third = runner.invoke(cli, ["reproduce", "--out", str(tmp_path / "c"), "--check", str(tmp_path / "drifted.json")])
    assert third.exit_code == 1 and "numbers.qat.test_psnr" in third.output
    assert "drift" in (tmp_path / "c" / "drift_report.txt").read_text()
