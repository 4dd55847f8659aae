"""`hero_lite.search.sweep`: spec validation, the job graph and its keys, reuse of finished jobs, and
tiny sweeps end to end on the local process pool and (with Dask installed) a local Dask cluster, one
of them losing a worker mid-sweep.

The sweeps run on scenes/tiny regenerated at 16x16 (8 train, 2 val, 2 test views), with 50 training
steps, 6 CAQ-like steps and 2-episode searches. The Dask sweeps start from a copy of the local
sweep's training (and CAQ-like) results, which they reuse: the code and settings are the same.
"""

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import hero_lite
from hero_lite.cli import cli
from hero_lite.runfolder import MARKER
from hero_lite.accel import load_config
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.quant.points import quant_points
from hero_lite.search.heuristic import heuristic_policy
from hero_lite.search.widths import snap_to_hardware
from hero_lite.search.compare import (
    ROW_KEYS,
    all_matches,
    hero_row_name,
    matched_budgets,
    pick_match,
)
from hero_lite.search.sweep import (
    build_jobs,
    code_version,
    execute_job,
    job_key,
    load_spec,
    parse_spec,
    run_sweep,
    shipped_specs,
)
from hero_lite.search.sweep.jobs import (
    RESULT,
    limit_numba_threads,
    read_result,
    result_digest,
)
from hero_lite.search.sweep.run import LocalExecutor

REPO = Path(__file__).resolve().parents[2]
CAQ = {"steps": 6, "samples_per_step": 4096, "loss_batches": 2}
SEARCH = {"episodes": 2, "qat_steps": 2, "qat_samples": 4096, "final_qat_steps": 2, "final_candidates": 1,
          "val_views": 1}


# the local sweep runs every method of the matched protocol
LOCAL_METHODS = ["caq", "caq_snapped", "heuristic", "uniform8", "hero", "hero_hash8"]


def spec_data(**changes) -> dict:
    data = {"scenes": ["tiny16"], "seeds": [0], "methods": ["caq", "hero", "uniform8"], "fractions": [1.0, 0.1],
            "train": {"steps": 50, "seed": 0}, "caq": dict(CAQ), "search": dict(SEARCH)}
    return {**data, **changes}


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory) -> Path:
    """A folder holding `tiny16`: scenes/tiny at 16x16 with 8 / 2 / 2 views."""
    from hero_lite.scenes import make_scene

    root = tmp_path_factory.mktemp("scenes")
    make_scene("tiny", root / "tiny16", seed=0, res=16, n_train=8, n_val=2, n_test=2)
    return root


# ---------------------------------------------------------------------------- specs


def test_the_shipped_specs_hold_the_headline_protocol_and_a_tiny_check():
    headline = load_spec("headline", str(REPO / "scenes"))
    assert [label for label, _ in headline.scenes] == ["primitives", "lattice", "wires"]
    assert headline.seeds == (0, 1, 2) and headline.fractions == (0.9, 0.85, 0.76)
    assert headline.search.episodes == 100 and (headline.train_steps, headline.train_seed) == (1200, 0)
    assert headline.job_count == len(build_jobs(headline)) == 3 * (1 + 3 * (2 + 3))
    tiny = load_spec(str(shipped_specs()["tiny"]), str(REPO / "scenes"))  # by its path, in the installed package
    assert tiny.name == "tiny" and tiny.job_count == len(build_jobs(tiny))


def test_the_variants_spec_runs_the_baselines_on_five_accelerators():
    import tomllib

    data = tomllib.loads((shipped_specs()["variants"]).read_text())
    assert data["scenes"] == ["primitives", "lattice", "wires"] and data["seeds"] == [0, 1, 2]
    # edge_fulltables needs full_size pricing, which a spec sets for all its accelerators: its own spec
    assert data["accels"] == ["edge", "server", "edge_2arrays", "edge_bitserial", "edge_1group"]
    assert "full_size" not in data["search"]
    assert data["methods"] == ["caq", "caq_snapped", "heuristic", "hero", "hero_hash8"]
    try:  # the variant presets may be missing from this checkout: then only the file's content is checked
        spec = load_spec("variants", str(REPO / "scenes"))
    except ValueError as exc:
        pytest.skip(f"variant presets not available: {exc}")
    assert [label for label, _ in spec.accels] == data["accels"]
    assert spec.job_count == len(build_jobs(spec)) == 3 * (1 + 5 * 3 * (2 + 2 + 2 * 3))


def test_a_spec_runs_every_scene_on_every_accelerator(scenes_root, tmp_path, monkeypatch):
    methods = ["caq", "caq_snapped", "heuristic", "hero", "hero_hash8"]
    spec = parse_spec(spec_data(accels=["edge", "server"], methods=methods, fractions=[0.9]), "t", str(scenes_root))
    assert spec.accels == (("edge", "edge"), ("server", "server")) and spec.to_dict()["accels"] == dict(spec.accels)
    jobs = build_jobs(spec)
    assert spec.job_count == len(jobs) == 1 + 2 * (2 + 2 + 2)
    by_id = {job.id: job for job in jobs}
    for accel in ("edge", "server"):
        run = f"tiny16-{accel}-s0"
        assert by_id[f"caq/{run}"].config["search"]["accel"] == accel
        assert by_id[f"baseline/{run}-caq_snapped"].deps == ("train/tiny16", f"caq/{run}")  # snaps CAQ-like's bits
        assert by_id[f"baseline/{run}-heuristic"].deps == ("train/tiny16",)
        assert by_id[f"search/{run}-hero_hash8-f0.9"].config["method"] == "hero_hash8"
        assert by_id[f"search/{run}-f0.9"].config["method"] == "hero"
        assert set(by_id[f"report/{run}"].deps) == {f"caq/{run}", f"baseline/{run}-caq_snapped",
                                                    f"baseline/{run}-heuristic", f"search/{run}-f0.9",
                                                    f"search/{run}-hero_hash8-f0.9"}
    keys = _keys(spec)
    assert keys["caq/tiny16-edge-s0"] != keys["caq/tiny16-server-s0"]  # the accelerator's digest is in the key
    # a spec without accels runs on its search.accel, a file labelled by its name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text('base = "edge"\n')
    old = parse_spec(spec_data(search={**SEARCH, "accel": "mine.toml"}), "t", str(scenes_root))
    assert old.accels == (("mine", str(tmp_path / "mine.toml")),)
    assert parse_spec(spec_data(), "t", str(scenes_root)).accels == (("edge", "edge"),)


@pytest.mark.parametrize("changes, needle", [
    ({"scene": ["tiny16"]}, "unknown key 'scene'; valid keys: scenes, seeds, methods"),
    ({"scenes": None}, "scenes is missing"),
    ({"scenes": ["nowhere"]}, "scenes entry 'nowhere' is not a folder under --scenes-root"),
    ({"scenes": "tiny16"}, "scenes = 'tiny16'; valid: a non-empty list of distinct scene names"),
    ({"seeds": [0, 0]}, "seeds = [0, 0]; valid: a non-empty list of distinct integers >= 0"),
    ({"seeds": [-1]}, "seeds = [-1]; valid"),
    ({"methods": ["hero"]}, "valid: a list holding 'caq'"),
    ({"methods": ["caq", "haq"]}, ("valid: a non-empty list of distinct caq, hero, hero_hash8, caq_snapped, "
                                   "heuristic, uniformK (K = 2..8)")),
    ({"methods": ["caq", "uniform9"]}, "uniformK (K = 2..8)"),
    ({"fractions": [0.9, 1.2]}, "fractions = [0.9, 1.2]; valid: a non-empty list of distinct numbers in (0, 1]"),
    ({"methods": ["caq"], "fractions": [0.9]}, "add 'hero' (or 'hero_hash8') to methods or leave fractions out"),
    ({"train": {"seed": 0}}, "train.steps is missing"),
    ({"train": {"steps": 0}}, "train.steps = 0; valid: an integer >= 1"),
    ({"train": {"steps": 5, "lr": 1e-2}}, "unknown key train.lr; valid keys: train.steps, train.seed"),
    ({"train": 50}, "train = 50; valid: a table [train]"),
    ({"search": {"seed": 3}}, "search.seed is set by the sweep"),
    ({"search": {"budgets": {"latency_ms": "0.8x"}}}, "search.budgets is set by the sweep"),
    ({"search": {"epsiodes": 3}}, "[search]: unknown key(s) epsiodes; valid keys: episodes"),
    ({"search": {"episodes": 0}}, "search episodes = 0; valid: integer >= 1"),
    ({"search": {"point_set": "caq"}}, "search.point_set = 'caq'; valid: 'hero'"),
    ({"search": {"accel": "mine.toml"}}, "search.accel: accelerator config 'mine.toml': not a preset"),
    ({"accels": ["edge", "edge"]}, "accels = ['edge', 'edge']; valid: a non-empty list of distinct accelerator preset"),
    ({"accels": ["nowhere"]}, "accels: accelerator config 'nowhere': not a preset"),
    ({"accels": ["edge"], "search": {"accel": "edge"}}, "search.accel and accels are both set"),
    ({"caq": {"steps": 0}}, "[caq] bit learning steps = 0; valid: integer >= 1"),
    ({"anchor": "uniform8"}, "anchor = 'uniform8'; valid: caq, heuristic"),
    ({"anchor": "heuristic"}, "anchor = 'heuristic' is not in methods; add it"),
    ({"size_fraction": 0}, "size_fraction = 0; valid: a number in (0, 1]"),
    ({"size_fraction": 1.5}, "size_fraction = 1.5; valid: a number in (0, 1]"),
    ({"size_fraction": True}, "size_fraction = True; valid: a number in (0, 1]"),
    ({"methods": ["caq"], "fractions": None, "size_fraction": 0.8}, "size_fraction is the searches' size budget"),
])
def test_a_bad_spec_is_one_line_naming_the_key_and_the_valid_values(scenes_root, changes, needle):
    data = {k: v for k, v in spec_data(**changes).items() if v is not None}
    with pytest.raises((ValueError, TypeError)) as error:
        parse_spec(data, "bad", str(scenes_root), where="spec bad.toml")
    message = str(error.value)
    assert message.startswith("spec bad.toml: ") and "\n" not in message
    assert needle in message, message


def test_an_accelerator_file_is_named_by_its_absolute_path_for_every_worker(scenes_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text('base = "edge"\n')
    spec = parse_spec(spec_data(search={**SEARCH, "accel": "mine.toml"}), "t", str(scenes_root))
    assert spec.search.accel == str(tmp_path / "mine.toml")
    caq = build_jobs(spec)[1]
    assert caq.id == "caq/tiny16-mine-s0" and caq.config["search"]["accel"] == str(tmp_path / "mine.toml")


def test_a_spec_file_that_does_not_parse_or_exist(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("scenes = [\n")
    with pytest.raises(ValueError, match=r"spec .*broken.toml: not valid TOML"):
        load_spec(str(broken))
    with pytest.raises(FileNotFoundError, match=r"no such file, nor a shipped spec \(shipped: headline, tiny, variants\)"):
        load_spec(str(tmp_path / "missing.toml"))


# ---------------------------------------------------------------------------- jobs and keys


def test_every_job_follows_the_jobs_it_reads(scenes_root):
    spec = parse_spec(spec_data(seeds=[0, 1], fractions=[1.0, 0.9]), "t", str(scenes_root))
    jobs = build_jobs(spec)
    ids = [job.id for job in jobs]
    assert Counter(job.kind for job in jobs) == {"train": 1, "caq": 2, "baseline": 2, "search": 4, "report": 2}
    assert len(set(ids)) == len(ids) == spec.job_count
    for index, job in enumerate(jobs):
        assert all(ids.index(dep) < index for dep in job.deps), job.id
    deps = {job.id: job.deps for job in jobs}
    assert deps["train/tiny16"] == ()
    assert deps["caq/tiny16-edge-s1"] == deps["baseline/tiny16-edge-s1-uniform8"] == ("train/tiny16",)
    assert deps["search/tiny16-edge-s1-f0.9"] == ("train/tiny16", "caq/tiny16-edge-s1")
    assert deps["report/tiny16-edge-s1"] == ("caq/tiny16-edge-s1", "baseline/tiny16-edge-s1-uniform8", "search/tiny16-edge-s1-f1",
                                        "search/tiny16-edge-s1-f0.9")


def test_budgets_anchored_on_the_heuristic_make_each_search_follow_the_heuristic_baseline(scenes_root):
    caq_anchor = parse_spec(spec_data(methods=["caq", "heuristic", "hero"]), "t", str(scenes_root))
    spec = parse_spec(spec_data(methods=["caq", "heuristic", "hero"], anchor="heuristic"), "t", str(scenes_root))
    assert (caq_anchor.anchor, spec.anchor) == ("caq", "heuristic") and spec.to_dict()["anchor"] == "heuristic"
    deps = {job.id: job.deps for job in build_jobs(spec)}
    assert deps["search/tiny16-edge-s0-f0.1"] == ("train/tiny16", "baseline/tiny16-edge-s0-heuristic")
    assert deps["baseline/tiny16-edge-s0-heuristic"] == ("train/tiny16",)
    # the anchor changes the searches' keys only
    base, anchored = _keys(caq_anchor), _keys(spec)
    assert {k for k in base if base[k] != anchored[k]} == {"search/tiny16-edge-s0-f1", "search/tiny16-edge-s0-f0.1"}


def test_a_size_fraction_scales_the_searches_size_budget_and_changes_their_keys_only(scenes_root):
    from hero_lite.search.compare import matched_budgets

    default = parse_spec(spec_data(), "t", str(scenes_root))
    spec = parse_spec(spec_data(size_fraction=0.75), "t", str(scenes_root))
    assert (default.size_fraction, spec.size_fraction) == (1.0, 0.75) and spec.to_dict()["size_fraction"] == 0.75
    base, scaled = _keys(default), _keys(spec)
    assert {k for k in base if base[k] != scaled[k]} == {"search/tiny16-edge-s0-f1", "search/tiny16-edge-s0-f0.1"}
    assert parse_spec(spec_data(size_fraction=1.0), "t", str(scenes_root)) == default  # the default, same keys
    frame = {"latency_ms": 2.0, "model_bytes": 800_000}
    assert matched_budgets(frame, 0.9) == {"latency_ms": "1.800000", "model_bytes": "800000"}
    assert matched_budgets(frame, 0.9, 0.75) == {"latency_ms": "1.800000", "model_bytes": "600000"}


def _keys(spec, code="code", digests=None) -> dict[str, str]:
    """Every job's key, each dependency's result digest standing in as 'result of <id>' unless given."""
    digests = dict(digests or {})
    return {job.id: job_key(job, code, {dep: digests.get(dep, f"result of {dep}") for dep in job.deps})
            for job in build_jobs(spec)}


def test_a_key_changes_with_the_code_the_settings_and_the_results_a_job_reads(scenes_root):
    base = _keys(parse_spec(spec_data(), "t", str(scenes_root)))
    assert base == _keys(parse_spec(spec_data(), "t", str(scenes_root)))
    assert all(base[k] != v for k, v in _keys(parse_spec(spec_data(), "t", str(scenes_root)), code="other").items())
    # more episodes: only the searches (and nothing they feed, given the same search results) change
    episodes = _keys(parse_spec(spec_data(search={**SEARCH, "episodes": 3}), "t", str(scenes_root)))
    assert {k for k in base if base[k] != episodes[k]} == {"search/tiny16-edge-s0-f1", "search/tiny16-edge-s0-f0.1"}
    # CAQ-like's steps: its own key; the searches change through its result's digest
    caq = _keys(parse_spec(spec_data(caq={**CAQ, "steps": 7}), "t", str(scenes_root)))
    assert {k for k in base if base[k] != caq[k]} == {"caq/tiny16-edge-s0"}
    assert _keys(parse_spec(spec_data(), "t", str(scenes_root)), digests={"caq/tiny16-edge-s0": "new"}) != base
    training = _keys(parse_spec(spec_data(train={"steps": 51}), "t", str(scenes_root)))
    assert {k for k in base if base[k] != training[k]} == {"train/tiny16"}
    # a final-QAT change reaches CAQ-like and the baseline too (they share the final report)
    final = _keys(parse_spec(spec_data(search={**SEARCH, "final_qat_steps": 3}), "t", str(scenes_root)))
    assert {k for k in base if base[k] != final[k]} == {"caq/tiny16-edge-s0", "baseline/tiny16-edge-s0-uniform8",
                                                         "search/tiny16-edge-s0-f1", "search/tiny16-edge-s0-f0.1"}


def test_a_changed_scene_file_changes_the_training_key(scenes_root, tmp_path):
    shutil.copytree(scenes_root / "tiny16", tmp_path / "tiny16")
    base = _keys(parse_spec(spec_data(), "t", str(tmp_path)))
    with open(tmp_path / "tiny16" / "transforms_test.json", "a") as f:
        f.write("\n")
    assert _keys(parse_spec(spec_data(), "t", str(tmp_path)))["train/tiny16"] != base["train/tiny16"]


def test_the_code_version_covers_the_package_code_and_presets(tmp_path, monkeypatch):
    package = tmp_path / "hero_lite"
    (package / "accel" / "presets").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "accel" / "presets" / "edge.toml").write_text("clock_hz = 1\n")
    (package / "notes.txt").write_text("a")
    monkeypatch.setattr(hero_lite, "__file__", str(package / "__init__.py"))

    def version() -> str:
        code_version.cache_clear()
        return code_version()

    try:
        first = version()
        (package / "notes.txt").write_text("b")  # neither code nor preset
        assert version() == first
        (package / "__init__.py").write_text("x = 1\n")
        second = version()
        (package / "accel" / "presets" / "edge.toml").write_text("clock_hz = 2\n")
        assert len({first, second, version()}) == 3
    finally:
        monkeypatch.undo()
        code_version.cache_clear()
    assert len(code_version()) == 64


def _fake_caq(folder: Path, out_dir: Path) -> dict:
    row = {"psnr": 20.0, "latency_ms": 2.0, "cost_efficiency": 0.25, "cost_efficiency_fit": 0.5, "model_bytes": 100}
    record = {"id": "caq/x-s0", "key": "k", "result": {"row": row, "floor_cost": {}}}
    folder.mkdir(parents=True)
    (folder / RESULT).write_text(json.dumps(record))
    return record


def test_a_job_reuses_a_result_with_its_key_and_otherwise_starts_from_an_empty_folder(tmp_path):
    caq = _fake_caq(tmp_path / "jobs" / "caq" / "x-s0", tmp_path)
    folder = tmp_path / "jobs" / "report" / "x-s0"
    payload = {"id": "report/x-s0", "kind": "report", "key": "a" * 64, "code": code_version(),
               "config": {"match_db": 0.1}, "scene_dir": "",
               "folder": str(folder), "out_dir": str(tmp_path), "threads": 1,
               "deps": {"caq/x-s0": str(tmp_path / "jobs" / "caq" / "x-s0")}}
    folder.mkdir(parents=True)
    (folder / "episodes.jsonl").write_text('{"episode": 0}\n')  # what a killed job left behind
    first = execute_job(payload)
    assert first["status"] == "done" and not (folder / "episodes.jsonl").exists()
    record = read_result(str(folder))
    assert record["key"] == payload["key"] and record["deps"] == {"caq/x-s0": result_digest(caq)}
    assert record["result"] == {"rows": {"caq": caq["result"]["row"]}, "match": None, "matches": {},
                                "skipped_fractions": {}}
    assert first["digest"] == result_digest(record)
    log = (tmp_path / "jobs.log").read_text().splitlines()
    assert [json.loads(line)["event"] for line in log] == ["start", "done"]
    assert execute_job(payload) == {"id": "report/x-s0", "status": "reused", "digest": first["digest"]}
    assert len((tmp_path / "jobs.log").read_text().splitlines()) == 2
    assert execute_job({**payload, "key": "b" * 64})["status"] == "done"
    assert read_result(str(folder))["key"] == "b" * 64
    with pytest.raises(ValueError, match="runs other hero-lite code"):  # a worker with another hero-lite
        execute_job({**payload, "key": "c" * 64, "code": "0" * 64})
    assert read_result(str(folder))["key"] == "b" * 64


def test_before_numba_is_imported_the_thread_count_goes_into_the_environment(monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "7")
    monkeypatch.delitem(sys.modules, "numba")  # as in a fresh worker process
    assert limit_numba_threads(1) == 1 and os.environ["NUMBA_NUM_THREADS"] == "1"


def test_the_local_pool_gives_each_worker_cores_over_workers_numba_threads():
    import numba

    executor = LocalExecutor(workers=2)
    try:
        assert executor.threads == max(1, len(os.sched_getaffinity(0)) // 2)
        threads = executor._pool.submit(numba.get_num_threads).result()
        variable = executor._pool.submit(os.getenv, "NUMBA_NUM_THREADS").result()
    finally:
        executor.close()
    assert threads == executor.threads and variable == str(executor.threads)


# ---------------------------------------------------------------------------- sweeps


def _log(out_dir: Path) -> list[dict]:
    """The complete lines of DIR/jobs.log (a line being appended is left out)."""
    return [json.loads(line) for line in (out_dir / "jobs.log").read_text().split("\n")[:-1]]


@pytest.fixture(scope="module")
def local_sweep(scenes_root, tmp_path_factory):
    """(spec, out_dir, sweep.json, progress calls) of the tiny sweep on 2 local workers."""
    spec = parse_spec(spec_data(methods=LOCAL_METHODS), "t", str(scenes_root))
    out_dir = tmp_path_factory.mktemp("sweep")
    calls = []
    result = run_sweep(spec, str(out_dir), workers=2, progress=lambda job_id, status: calls.append((job_id, status)))
    return spec, out_dir, result, calls


def test_a_tiny_sweep_runs_end_to_end_on_local_workers(local_sweep):
    spec, out_dir, result, calls = local_sweep
    jobs = build_jobs(spec)
    assert sorted(calls) == sorted((job.id, "done") for job in jobs)
    assert result["jobs"] == {"total": len(jobs), "done": len(jobs), "reused": 0, "failed": 0, "blocked": 0}
    done = Counter(line["id"] for line in _log(out_dir) if line["event"] == "done")
    assert done == {job.id: 1 for job in jobs}
    assert json.loads((out_dir / "sweep.json").read_text()) == json.loads(json.dumps(result))

    edge = result["scenes"]["tiny16"]["accels"]["edge"]
    seed = edge["seeds"]["0"]
    rows = seed["rows"]
    hash8 = [name for name in rows if name.startswith("hero_hash8@")]
    assert list(rows) == ["caq", "caq_snapped", "heuristic", "uniform8", hero_row_name(1.0), *hash8]
    assert seed["skipped_fractions"]["hero"] == [0.1] and 0.1 in seed["skipped_fractions"]["hero_hash8"]
    # hero_hash8 at 1.0x ran, or its frozen 8-bit hash levels alone exceed CAQ-like's size (skipped by the search)
    assert (hash8 == ["hero_hash8@1x"]) != (1.0 in seed["skipped_fractions"]["hero_hash8"])
    for name in hash8:
        assert {b for point, b in rows[name]["bits"].items() if point.startswith("hash.")} == {8}
    for row in rows.values():
        assert set(ROW_KEYS) <= set(row)
    model_config = load_checkpoint(out_dir / result["scenes"]["tiny16"]["train"]["checkpoint"])[0].config
    assert rows["caq_snapped"]["bits"] == snap_to_hardware(rows["caq"]["bits"], quant_points(model_config, "caq"),
                                                           load_config("edge"))
    assert rows["heuristic"]["bits"] == heuristic_policy(model_config).bits
    assert seed["matches"] == all_matches(rows) and set(seed["matches"]["hero"]) == {"caq", "caq_snapped",
                                                                                     "heuristic", "uniform8"}
    assert set(edge["row_means"]) == set(rows) and edge["row_means"]["caq"]["psnr"] == rows["caq"]["psnr"]
    # the search ran under CAQ-like's latency and size on the search frame, and the match is pick_match's
    budgets = matched_budgets(rows["caq"]["search_frame"], 1.0)
    hero = rows[hero_row_name(1.0)]
    assert hero["budget"]["limits"]["latency_ms"] == pytest.approx(float(budgets["latency_ms"]))
    run_config = json.loads((out_dir / "jobs" / "search" / "tiny16-edge-s0-f1" / "run" / "config.json").read_text())
    assert run_config["search"]["budgets"] == budgets and run_config["search"]["episodes"] == 2
    assert seed["match"] == pick_match(rows["caq"], {hero_row_name(1.0): hero})
    summary = edge["summary"]
    assert summary["seeds"] == 1 and summary["matched_seeds"] == (seed["match"] is not None)
    if seed["match"]:
        ratio = summary["latency_ratio"]
        assert ratio["mean"] == ratio["min"] == ratio["max"] == seed["match"]["latency_ratio"]

    markdown = (out_dir / "sweep.md").read_text()
    assert "## tiny16" in markdown and "| 0 | " in markdown and "| mean | " in markdown
    assert "| hero | caq_snapped | " in markdown and "| heuristic | 1 | " in markdown
    assert "cost eff. ratio (fit area) | cost eff. ratio (fixed area)" in markdown
    assert "## tiny16 on edge" in markdown
    assert "![PSNR against latency, tiny16 on edge](pareto_tiny16_edge.png)" in markdown
    assert Image.open(out_dir / "pareto_tiny16_edge.png").size == (720, 480)
    assert result["scenes"]["tiny16"]["train"]["steps"] == 50


def test_a_finished_sweep_is_reused_and_a_killed_job_runs_again(local_sweep, tmp_path):
    spec, finished, _, _ = local_sweep
    out_dir = tmp_path / "sweep"
    shutil.copytree(finished, out_dir)  # results name their files relative to the sweep folder
    before = len(_log(out_dir))
    again = run_sweep(spec, str(out_dir), workers=2)
    assert again["jobs"]["reused"] == spec.job_count and len(_log(out_dir)) == before
    # a search killed mid-way: no result.json, a partial log in its run folder
    search = out_dir / "jobs" / "search" / "tiny16-edge-s0-f1"
    (search / RESULT).unlink()
    (search / "run" / "summary.json").unlink()
    calls = []
    resumed = run_sweep(spec, str(out_dir), workers=2, progress=lambda job_id, status: calls.append((job_id, status)))
    ran = [line["id"] for line in _log(out_dir)[before:] if line["event"] == "done"]
    assert sorted(ran) == ["report/tiny16-edge-s0", "search/tiny16-edge-s0-f1"]
    assert resumed["jobs"]["done"] == 2 and resumed["jobs"]["reused"] == spec.job_count - 2
    assert dict(calls)["train/tiny16"] == "reused"
    assert (search / "run" / "summary.json").exists()


def test_a_search_anchored_on_the_heuristic_takes_its_budgets_from_the_heuristics_cost(local_sweep, scenes_root,
                                                                                     tmp_path):
    _, finished, _, _ = local_sweep
    spec = parse_spec(spec_data(methods=["caq", "heuristic", "hero"], fractions=[1.0], anchor="heuristic",
                                size_fraction=0.9), "t", str(scenes_root))
    out_dir = tmp_path / "sweep"
    shutil.copytree(finished, out_dir)
    result = run_sweep(spec, str(out_dir), workers=1)
    ran = [line["id"] for line in _log(out_dir) if line["event"] == "done"][-2:]
    assert sorted(ran) == ["report/tiny16-edge-s0", "search/tiny16-edge-s0-f1"]  # the rest is the local sweep's
    rows = result["scenes"]["tiny16"]["accels"]["edge"]["seeds"]["0"]["rows"]
    heuristic = rows["heuristic"]
    # the heuristic's own cost on the search frame: its bits priced the way the searches price theirs
    assert heuristic["search_frame"]["model_bytes"] == heuristic["model_bytes"]
    assert heuristic["search_frame"]["latency_ms"] != rows["caq"]["search_frame"]["latency_ms"]
    budgets = matched_budgets(heuristic["search_frame"], 1.0, 0.9)
    run_config = json.loads((out_dir / "jobs" / "search" / "tiny16-edge-s0-f1" / "run" / "config.json").read_text())
    assert run_config["search"]["budgets"] == budgets
    hero = rows[hero_row_name(1.0)]
    assert hero["budget"]["limits"]["model_bytes"] == pytest.approx(0.9 * heuristic["model_bytes"], abs=1)
    if hero["budget_met"]:
        assert hero["model_bytes"] <= 0.9 * heuristic["model_bytes"]
    assert "x the heuristic's latency, 0.9 x its model size at most" in (out_dir / "sweep.md").read_text()


def _toml(data: dict) -> str:
    """The spec as TOML (top-level lists, then one-level tables; JSON scalars and lists are TOML)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in ((k, v) for k, v in data.items() if isinstance(v, dict)):
        lines += [f"[{table}]", *(f"{k} = {json.dumps(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def test_the_command_resumes_a_finished_sweep(local_sweep, scenes_root, tmp_path):
    spec, finished, _, _ = local_sweep
    out_dir = tmp_path / "sweep"
    shutil.copytree(finished, out_dir)
    (out_dir / MARKER).write_text(json.dumps({"command": "sweep"}))  # as if `hero-lite sweep` had made it
    spec_path = tmp_path / "t.toml"
    spec_path.write_text(_toml(spec_data(methods=LOCAL_METHODS)))
    result = CliRunner().invoke(cli, ["sweep", str(spec_path), "--out", str(out_dir),
                                      "--scenes-root", str(scenes_root)])
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"sweep t: {spec.job_count} jobs (0 run, {spec.job_count} reused, 0 failed, 0 blocked)")
    assert "on 2 local workers" in summary and "sweep.json, sweep.md and 1 Pareto chart(s)" in summary
    assert "sweep t" in result.stderr  # the progress bar


def _copy_jobs(finished: Path, out_dir: Path, *job_folders: str) -> None:
    for folder in job_folders:
        shutil.copytree(finished / "jobs" / folder, out_dir / "jobs" / folder)


def _running(lines: list[dict]) -> dict[str, int]:
    """Job id -> pid of the jobs started and not done."""
    running = {}
    for line in lines:
        if line["event"] == "start":
            running[line["id"]] = line["pid"]
        else:
            running.pop(line["id"], None)
    return running


def _kill_when(out_dir: Path, choose) -> tuple[threading.Thread, dict]:
    """A thread that follows jobs.log and kills (SIGKILL) the worker process of the first (job id,
    pid) that choose(lines) names; the dict it returns gets 'id' and 'pid' of the killed job."""
    killed = {}

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            target = choose(_log(out_dir)) if (out_dir / "jobs.log").exists() else None
            if target is not None:
                os.kill(target[1], signal.SIGKILL)
                killed.update(id=target[0], pid=target[1])
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, killed


def _check_every_job_ran_to_the_end_once(spec, out_dir: Path, result: dict, killed: dict) -> None:
    """Every job has its result; each job that ran has one 'done' line and no 'start' after it; the
    killed job started again and finished in another worker process."""
    assert killed, "no job was running in a worker that could be killed"
    assert result["jobs"]["failed"] == result["jobs"]["blocked"] == 0, result["failed"]
    lines = _log(out_dir)
    ran = Counter(line["id"] for line in lines if line["event"] == "done")
    assert set(ran.values()) == {1} and killed["id"] in ran
    for index, line in enumerate(lines):  # nothing starts again once it is done
        if line["event"] == "done":
            assert not [later for later in lines[index:] if later["event"] == "start" and later["id"] == line["id"]]
    starts = Counter(line["id"] for line in lines if line["event"] == "start")
    finisher = [line["pid"] for line in lines if line["event"] == "done" and line["id"] == killed["id"]]
    assert starts[killed["id"]] >= 2 and finisher != [killed["pid"]]
    for job in build_jobs(spec):
        record = read_result(job.folder(str(out_dir)))
        assert record is not None and record["id"] == job.id
    assert result["jobs"]["done"] + result["jobs"]["reused"] == spec.job_count


def test_a_sweep_survives_a_killed_local_worker(local_sweep, scenes_root, tmp_path):
    spec = parse_spec(spec_data(methods=["caq", "hero"], fractions=[1.0, 0.95]), "t", str(scenes_root))
    out_dir = tmp_path / "sweep"
    _copy_jobs(local_sweep[1], out_dir, "train/tiny16", "caq/tiny16-edge-s0")
    watcher, killed = _kill_when(out_dir, lambda lines: next(iter(_running(lines).items()), None))
    result = run_sweep(spec, str(out_dir), workers=2)
    watcher.join(timeout=1)
    _check_every_job_ran_to_the_end_once(spec, out_dir, result, killed)
    assert result["jobs"]["reused"] == 2  # training and CAQ-like


# ---------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster


def test_a_tiny_sweep_runs_on_a_dask_cluster(dask_cluster, local_sweep, scenes_root, tmp_path):
    _, finished, local, _ = local_sweep
    spec = parse_spec(spec_data(), "t", str(scenes_root))  # caq, hero, uniform8: fewer jobs than the local sweep
    out_dir = tmp_path / "sweep"
    _copy_jobs(finished, out_dir, "train/tiny16")
    result = run_sweep(spec, str(out_dir), scheduler=dask_cluster.scheduler_address)
    assert result["jobs"] == {"total": spec.job_count, "done": spec.job_count - 1, "reused": 1, "failed": 0,
                              "blocked": 0}
    assert "Dask at tcp://127.0.0.1" in result["executor"] and "x 1 thread(s)" in result["executor"]
    assert os.getpid() not in {line["pid"] for line in _log(out_dir)}  # the jobs ran in the workers
    # the same code, settings and checkpoint: the same CAQ-like row as on the local pool
    rows = result["scenes"]["tiny16"]["accels"]["edge"]["seeds"]["0"]["rows"]
    local_rows = local["scenes"]["tiny16"]["accels"]["edge"]["seeds"]["0"]["rows"]
    assert rows["caq"]["bits"] == local_rows["caq"]["bits"]
    assert rows["caq"]["psnr"] == pytest.approx(local_rows["caq"]["psnr"])
    assert (out_dir / "pareto_tiny16_edge.png").exists()


def test_a_sweep_survives_a_killed_dask_worker_and_runs_no_finished_job_again(dask_cluster, local_sweep, scenes_root,
                                                                            tmp_path):
    spec = parse_spec(spec_data(methods=["caq", "hero"], fractions=[1.0, 0.95, 0.9]), "t", str(scenes_root))
    out_dir = tmp_path / "sweep"
    _copy_jobs(local_sweep[1], out_dir, "train/tiny16", "caq/tiny16-edge-s0")

    def running_on_a_worker_that_finished_a_job(lines):
        finished = {line["pid"] for line in lines if line["event"] == "done"}
        return next(((job_id, pid) for job_id, pid in _running(lines).items() if pid in finished), None)

    watcher, killed = _kill_when(out_dir, running_on_a_worker_that_finished_a_job)
    result = run_sweep(spec, str(out_dir), scheduler=dask_cluster.scheduler_address)
    watcher.join(timeout=1)
    _check_every_job_ran_to_the_end_once(spec, out_dir, result, killed)


def test_a_worker_asked_for_more_threads_than_the_user_allowed_gets_the_users_limit():
    # NUMBA_NUM_THREADS=1 set by the user caps Numba's pool; a job asking for 2 must run on 1, not fail
    import subprocess

    code = ("from hero_lite.search.sweep.jobs import limit_numba_threads\n"
            "import numba\n"
            "print(limit_numba_threads(2), numba.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    assert out.stdout.split() == ["1", "1"]
