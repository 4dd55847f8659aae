"""The HERO search: budgets and the budget wall, the environment, and a tiny end-to-end search
with resume."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hero_lite.cli import cli
from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import QuantPolicy
from hero_lite.search.budget import Budget, enforce_budget, parse_limit
from hero_lite.search.env import N_OBS, action_to_bits, bits_to_action, static_features
from hero_lite.search.hero import SearchConfig, hero_search

POINTS = quant_points(ModelConfig(), "hero")


def test_parse_limit():
    assert parse_limit("0.6x") == (0.6, True)
    assert parse_limit(" 2.5 ") == (2.5, False)
    assert parse_limit(3) == (3.0, False)
    for bad in ("", "x", "fast", "-1", "0x"):
        with pytest.raises(ValueError, match="budget"):
            parse_limit(bad)


def test_budget_resolve_and_violations():
    reference = {"latency_ms": 2.0, "area_mm2": 1.0, "energy_uj": 10.0, "model_bytes": 1000.0}
    budget = Budget.resolve({"latency_ms": "0.5x", "model_bytes": "800"}, reference)
    assert budget.limits == {"latency_ms": 1.0, "model_bytes": 800.0}
    cost = {"latency_ms": 1.5, "area_mm2": 1.0, "energy_uj": 1.0, "model_bytes": 700.0}
    assert budget.violations(cost) == {"latency_ms": 1.5}
    assert budget.left({**cost, "latency_ms": 0.75}) == pytest.approx(0.125)  # min(0.25, 1 - 700/800)
    with pytest.raises(ValueError, match="budget metric"):
        Budget.resolve({"speed": "1"}, reference)
    with pytest.raises(ValueError, match="reference"):
        Budget.resolve({"latency_ms": "0.5x"}, None)


def _step_latency(bits):
    # A BitFusion-like step cost: MLP points cost by ceil(b / 4) (3 bits cost like 4, 5-8 like 8),
    # hash levels by their bits; latency is the larger of the two sums (a pipeline bound).
    mlp = sum(-(-bits[p.name] // 4) for p in POINTS if p.kind != "hash_level")
    table = sum(bits[p.name] for p in POINTS if p.kind == "hash_level") / 8
    return {"latency_ms": float(max(mlp, table)), "area_mm2": 1.0, "energy_uj": 1.0, "model_bytes": 1.0}


def test_wall_meets_the_budget_and_skips_useless_decrements():
    bits = {p.name: 8 for p in POINTS}
    start = _step_latency(bits)["latency_ms"]  # 12 MLP points x 2 = 24 > 16 levels x 1 = 16
    assert start == 24.0
    budget = Budget.resolve({"latency_ms": "20"}, None)
    result = enforce_budget(bits, POINTS, _step_latency, budget)
    assert result.met and _step_latency(result.bits)["latency_ms"] <= 20
    # the hash levels do not limit latency here, so the wall leaves them alone
    assert all(result.bits[p.name] == 8 for p in POINTS if p.kind == "hash_level")
    # MLP points jump straight to 4 bits (5-7 would buy nothing), last points first
    lowered = [p.name for p in POINTS if result.bits[p.name] != 8]
    assert lowered == [p.name for p in POINTS if p.kind != "hash_level"][-4:]
    assert all(result.bits[name] == 4 for name in lowered)
    assert result.decrements == 4 * 4
    assert bits[lowered[0]] == 8  # the input is not modified


def _model_bytes(bits):
    size = sum(p.n_elements * bits[p.name] for p in POINTS) / 8
    return {"latency_ms": 1.0, "area_mm2": 1.0, "energy_uj": 1.0, "model_bytes": float(size)}


def test_wall_lowers_only_the_points_that_save_a_share_of_the_best():
    bits = {p.name: 8 for p in POINTS}
    budget = Budget.resolve({"model_bytes": str(0.8 * _model_bytes(bits)["model_bytes"])}, None)
    result = enforce_budget(bits, POINTS, _model_bytes, budget)
    assert result.met
    # only points at least half the size of the largest give up bits: the big hash levels
    full = max(p.n_elements for p in POINTS)
    lowered = [p for p in POINTS if result.bits[p.name] < 8]
    assert lowered and all(p.n_elements >= 0.5 * full for p in lowered)
    assert all(p.kind == "hash_level" for p in lowered)
    # without the rule, HAQ's sweep also takes bits from the MLP weights
    plain = enforce_budget(bits, POINTS, _model_bytes, budget, min_saving_share=0.0)
    assert plain.met and any(plain.bits[p.name] < 8 for p in POINTS if p.kind == "weight")


def test_wall_reports_an_infeasible_budget():
    bits = {p.name: 8 for p in POINTS}
    result = enforce_budget(bits, POINTS, _step_latency, Budget.resolve({"latency_ms": "1"}, None))
    assert not result.met
    # the MLP floor: 12 points x 1 (2-4 bits all cost 1); ties between the MLP and the table
    # were broken by plain HAQ sweeps, so the table ends below the MLP
    assert _step_latency(result.bits)["latency_ms"] == 12.0
    assert all(result.bits[p.name] <= 4 for p in POINTS if p.kind != "hash_level")


def test_action_to_bits_haq_bins():
    hash_point = POINTS[0]  # 2..16: 15 bins of width 1/15
    assert action_to_bits(0.0, hash_point) == 2 and action_to_bits(1.0, hash_point) == 16
    assert action_to_bits(0.5, hash_point) == 9
    for b in range(2, 17):
        assert action_to_bits(bits_to_action(b, hash_point), hash_point) == b
    mlp = [p for p in POINTS if p.kind == "weight"][0]  # 2..8
    assert [action_to_bits(a, mlp) for a in (0.0, 0.15, 0.3, 0.99, 1.0)] == [2, 3, 4, 8, 8]


def test_static_features_are_scaled():
    feats = static_features(POINTS)
    assert feats.shape == (len(POINTS), 9)
    assert feats.min() >= 0.0 and feats.max() <= 1.0
    assert feats[:16, 0].sum() == 16 and feats[16:, 0].sum() == 0  # kind one-hot
    assert feats[0, 6] == 1.0 and feats[15, 6] == 0.0  # level 0 dense, level 15 hashed
    assert feats[0, 4] == 0.0 and feats[15, 4] == 1.0  # resolution, scaled over the levels


def _tiny_config(**kw):
    base = dict(episodes=4, qat_steps=2, qat_samples=1 << 12, final_qat_steps=5, val_views=1, val_downscale=2,
                budgets={"latency_ms": "0.95x"}, ddpg={"warmup_episodes": 2, "batch_size": 16})
    base.update(kw)
    return SearchConfig(**base)


def _log(path):
    lines = [json.loads(x) for x in (path / "episodes.jsonl").read_text().splitlines()]
    for line in lines:  # timings differ between runs
        line.pop("env_seconds")
        line.pop("agent_seconds")
    return lines


@pytest.mark.slow
def test_tiny_search_end_to_end_and_resume(tiny_checkpoint, tiny_dir, tmp_path):
    config = _tiny_config()
    full = tmp_path / "full"
    summary = hero_search(str(tiny_checkpoint), str(tiny_dir), str(full), config)
    for key in ("psnr", "latency_ms", "area_mm2", "cost_efficiency", "energy_uj", "model_bytes", "episodes", "budget",
                "budget_met"):
        assert key in summary
    assert summary["episodes"] == 4
    on_disk = json.loads((full / "summary.json").read_text())
    assert on_disk["psnr"] == summary["psnr"]
    log = _log(full)
    assert [e["episode"] for e in log] == [0, 1, 2, 3]
    for key in ("policy", "reward", "psnr", "latency_ms"):
        assert all(key in e for e in log)
    best = QuantPolicy.load(str(full / "best_policy.json"), ModelConfig())
    assert best.bits == summary["policy"]["points"]
    if summary["budget_met"]:
        assert summary["latency_ms"] > 0
    rows = summary["final_candidates"]  # re-scored after the final QAT; the highest final reward won
    assert len(rows) == config.final_candidates
    assert summary["best_episode"] == max(rows, key=lambda r: r["final_reward"])["episode"]
    # every logged policy that claims to meet the budget does, under the search's own frame
    limit = summary["budget"]["limits"]["latency_ms"]
    assert all(e["latency_ms"] <= limit * (1 + 1e-9) for e in log if e["budget_met"])

    # interrupted after 2 episodes, then resumed: the same log as the uninterrupted run
    part = tmp_path / "part"

    def stop_after_two(episode, record):
        if episode == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hero_search(str(tiny_checkpoint), str(tiny_dir), str(part), config, progress=stop_after_two)
    hero_search(str(tiny_checkpoint), str(tiny_dir), str(part), config, resume=True)
    assert _log(part) == log
    with pytest.raises(ValueError, match="already holds a search"):
        hero_search(str(tiny_checkpoint), str(tiny_dir), str(part), config)


def test_final_candidates_are_the_best_distinct_policies_that_met_the_budget():
    from hero_lite.search.hero import final_candidates

    def line(episode, reward, bits, met=True):
        return {"episode": episode, "reward": reward, "policy": {"a": bits}, "budget_met": met, "model_bytes": 100 * bits}

    log = [line(0, -0.5, 8), line(1, -0.1, 4, met=False), line(2, -0.2, 6), line(3, -0.2, 6), line(4, -0.3, 5),
           line(5, -0.2, 7)]
    assert [e["episode"] for e in final_candidates(log, 3)] == [2, 5, 4]  # 3 repeats 2's policy; 1 missed
    assert [e["episode"] for e in final_candidates(log, 10)] == [2, 5, 4, 0]
    assert [e["episode"] for e in final_candidates([line(0, -0.4, 8, False), line(1, -0.3, 6, False)], 1)] == [1]


def test_final_candidates_keep_one_large_policy_when_the_best_are_all_small():
    from hero_lite.search.hero import final_candidates

    def line(episode, reward, bits, size):
        return {"episode": episode, "reward": reward, "policy": {"a": bits}, "budget_met": True, "model_bytes": size}

    # sizes 345-660 kB: the largest third starts at 555 kB; the four best are all below it
    log = [line(0, 0.027, 2, 345_000), line(1, 0.013, 3, 361_000), line(2, 0.012, 4, 378_000),
           line(3, 0.010, 5, 443_000), line(4, 0.008, 6, 626_000), line(5, 0.005, 7, 660_000),
           line(6, 0.009, 8, 500_000)]
    assert [e["episode"] for e in final_candidates(log, 3)] == [0, 1, 4]  # 4: the best of the large
    assert [e["episode"] for e in final_candidates(log, 1)] == [0]  # HAQ's choice stays the best alone
    log[4]["budget_met"] = False  # then 5 is the best large policy that met the budget
    assert [e["episode"] for e in final_candidates(log, 3)] == [0, 1, 5]
    log[2]["model_bytes"] = 600_000  # a large policy is already among the best three: nothing swapped
    assert [e["episode"] for e in final_candidates(log, 3)] == [0, 1, 2]


@pytest.mark.slow
def test_final_choice_rescoring_picks_the_best_final_reward(tiny_checkpoint, tiny_dir):
    from hero_lite.nerf.evaluate import evaluate
    from hero_lite.quant.policy import model_signature, uniform_policy
    from hero_lite.search.hero import final_report, pick_final, prepare

    config = _tiny_config()
    setup = prepare(str(tiny_checkpoint), str(tiny_dir), config)
    signature = model_signature(setup.model.config)
    log = [{"episode": e, "reward": -0.1 * e, "psnr": 30.0 - e, "budget_met": True,
            "policy": uniform_policy(setup.model.config, bits, min(bits, 8), "hero").bits}
           for e, bits in enumerate((8, 3, 5))]
    calls = []
    best, tuned, rows = pick_final(setup, log, config, signature, lambda i, n, line: calls.append((i, n, line["episode"])))
    assert calls == [(0, 3, 0), (1, 3, 1), (2, 3, 2)]
    assert [r["episode"] for r in rows] == [0, 1, 2]
    fp32 = evaluate(setup.model, setup.val_full, with_ssim=False).psnr
    assert setup.val_full.n_views > config.val_views  # every validation view, not the search's few
    for r in rows:  # the psnr reward: 0.1 x (PSNR_q - PSNR_fp32) on every validation view
        assert r["final_reward"] == pytest.approx(0.1 * (r["final_val_psnr"] - fp32))
    assert best["episode"] == max(rows, key=lambda r: r["final_reward"])["episode"]
    policy = QuantPolicy(config.point_set, best["policy"], signature)
    # the kept fine-tune is the one the report would have run itself
    assert final_report(setup, policy, config, None, tuned=tuned)["psnr"] == final_report(setup, policy, config, None)["psnr"]
    one, none_tuned, no_rows = pick_final(setup, log[:1], config, signature)
    assert one is log[0] and none_tuned is None and no_rows == []


def test_the_agent_starts_at_the_reference_policy(tiny_checkpoint, tiny_dir):
    from hero_lite.quant.policy import model_signature
    from hero_lite.search.env import QuantEnv, RewardConfig, policy_factory_for, start_observations
    from hero_lite.search.hero import make_agent, prepare, start_bits

    config = _tiny_config()
    setup = prepare(str(tiny_checkpoint), str(tiny_dir), config)
    env = QuantEnv(setup.points, setup.evaluator, setup.budget, setup.reference.bits, RewardConfig(),
                   policy_factory_for("hero", model_signature(setup.model.config)))
    observations, actions = start_observations(env, setup.reference.bits)
    assert observations.shape == (len(setup.points), N_OBS) and env.t == 0 and env.bits == {}
    assert start_bits(setup, config) == setup.reference.bits
    started = make_agent(env, config, start_bits(setup, config))
    picked = {p.name: action_to_bits(started.actor_action(o), p) for p, o in zip(setup.points, observations)}
    assert picked == setup.reference.bits
    random_config = _tiny_config(start="random")
    assert start_bits(setup, random_config) is None
    haq = make_agent(env, random_config, start_bits(setup, random_config))
    mid = {p.name: action_to_bits(haq.actor_action(o), p) for p, o in zip(setup.points, observations)}
    assert mid != setup.reference.bits
    with pytest.raises(ValueError, match="start"):
        _tiny_config(start="best")
    with pytest.raises(ValueError, match="point_set"):
        _tiny_config(start="heuristic", point_set="caq")


def test_the_heuristic_start_picks_the_hand_policy_at_the_accelerators_widths(tiny_checkpoint, tiny_dir):
    from hero_lite.quant.policy import model_signature
    from hero_lite.search.env import QuantEnv, RewardConfig, policy_factory_for, start_observations
    from hero_lite.search.heuristic import heuristic_policy
    from hero_lite.search.hero import make_agent, prepare, start_bits

    # bit-serial PEs: weights 2-8 in one-bit steps, activations only at their 16-bit operand
    config = _tiny_config(start="heuristic", accel="edge_bitserial", widths="hardware")
    setup = prepare(str(tiny_checkpoint), str(tiny_dir), config)
    hand = heuristic_policy(setup.model.config).bits
    bits = start_bits(setup, config)
    assert bits == {name: 16 if name.startswith("act.") else b for name, b in hand.items()}
    env = QuantEnv(setup.points, setup.evaluator, setup.budget, setup.reference.bits, RewardConfig(),
                   policy_factory_for("hero", model_signature(setup.model.config)))
    observations, _ = start_observations(env, bits)
    agent = make_agent(env, config, bits)
    picked = {p.name: action_to_bits(agent.actor_action(o), p) for p, o in zip(setup.points, observations)}
    assert picked == bits != setup.reference.bits


def test_reward_cap_limits_the_counted_psnr_drop():
    from hero_lite.search.env import RewardConfig

    cost = {"latency_ms": 1.0, "area_mm2": 1.0, "model_bytes": 1.0}
    assert RewardConfig().reward(12.0, cost, cost) == pytest.approx(-1.2)
    assert RewardConfig(max_drop_db=2.0).reward(12.0, cost, cost) == pytest.approx(-0.2)
    assert RewardConfig(max_drop_db=2.0).reward(0.5, cost, cost) == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="max_drop_db"):
        RewardConfig(max_drop_db=0.0)


def test_search_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        SearchConfig.from_dict({"episodes": 3, "espisodes": 4})
    with pytest.raises(ValueError, match="budget metric"):
        SearchConfig(budgets={"speed": "1x"})
    with pytest.raises(ValueError, match="ddpg"):
        SearchConfig(ddpg={"hidden": 3})


def test_search_command_bad_budget(tiny_checkpoint, tiny_dir, tmp_path):
    result = CliRunner().invoke(cli, ["search", str(tiny_checkpoint), str(tiny_dir), "--out", str(tmp_path / "s"),
                                      "--latency-budget", "fast", "--episodes", "2"])
    assert result.exit_code == 2 and "budget" in result.output


def test_observation_width():
    assert N_OBS == 13
    assert np.all(static_features(quant_points(ModelConfig(), "caq")) <= 1.0)


@pytest.mark.slow
def test_run_command_writes_the_summary_and_pictures(tiny_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "run"
    config = tmp_path / "small.toml"
    config.write_text("episodes = 3\nqat_steps = 2\nqat_samples = 4096\nfinal_qat_steps = 3\nval_views = 1\n"
                      "[ddpg]\nwarmup_episodes = 1\nbatch_size = 16\n")
    result = CliRunner().invoke(cli, ["run", str(tiny_dir), "--out", str(out), "--config", str(config),
                                      "--latency-budget", "0.95x", "--train-steps", "20"])
    assert result.exit_code == 0, result.output
    assert "fp32: 20 steps" in result.output and "best policy (episode" in result.output
    summary = json.loads((out / "search" / "summary.json").read_text())
    assert summary["episodes"] == 3 and len(summary["final_candidates"]) >= 2
    assert QuantPolicy.load(str(out / "search" / "best_policy.json"), ModelConfig()).bits == summary["policy"]["points"]
    view = Image.open(out / "test_view.png")
    assert view.width >= 4 * view.height // 2  # four panels side by side
    assert Image.open(out / "bits.png").size[0] > 100


@pytest.mark.parametrize("budget", ["0x", "-0.5x", "-1", "abc", "inf", "nanx", ""])
def test_budget_options_reject_bad_values_in_one_line(budget, tmp_path):
    result = CliRunner().invoke(cli, ["search", "missing.h5", str(tmp_path), "--out", str(tmp_path / "s"),
                                      "--latency-budget", budget])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--latency-budget" in lines[0] and repr(budget) in lines[0]
    assert not (tmp_path / "s").exists()


def test_an_unreachable_budget_is_refused_before_any_work(tiny_checkpoint, tiny_dir, tmp_path):
    from hero_lite.search.hero import prepare

    with pytest.raises(ValueError, match="out of reach"):
        prepare(str(tiny_checkpoint), str(tiny_dir), SearchConfig(budgets={"latency_ms": "0.3x"}))
    for command in (["search", str(tiny_checkpoint), str(tiny_dir)], ["compare", str(tiny_checkpoint), str(tiny_dir), "--methods", "hero"]):
        out = tmp_path / command[0]
        result = CliRunner().invoke(cli, [*command, "--out", str(out), "--latency-budget", "0.3x"])
        assert result.exit_code == 2, result.output
        error = result.output.strip().splitlines()[-1]
        # names the budget, the floor on this accelerator and the fraction that is reachable
        assert "latency budget 0.3x" in error and "out of reach on edge" in error
        floor = float(error.split("still costs ")[1].split(" ms")[0])
        fraction = float(error.split("ms on the cost frame, ")[1].split("x of")[0])
        reference = float(error.split("(")[1].split(" ms")[0]) / 0.3
        assert floor > 0.3 * reference and fraction == pytest.approx(floor / reference, abs=2e-3)  # from 3-decimal printed values
        assert not out.exists()  # nothing written
    # a budget above the floor is accepted
    prepare(str(tiny_checkpoint), str(tiny_dir), SearchConfig(budgets={"latency_ms": f"{fraction + 0.01}x"}))


def test_run_refuses_an_unreachable_budget_before_training(tiny_dir, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(tiny_dir), "--out", str(out), "--latency-budget", "0.3x"])
    assert result.exit_code == 2 and "out of reach on edge" in result.output and "generic 64x64 frame" in result.output
    assert not out.exists()
    result = CliRunner().invoke(cli, ["run", str(tiny_dir), "--out", str(out), "--size-budget", "1000"])
    assert result.exit_code == 2 and "size budget 1000" in result.output and not out.exists()


def test_check_reachable_with_slack():
    from hero_lite.search.budget import BudgetUnreachable, check_reachable

    reference = {"latency_ms": 2.0, "model_bytes": 1000.0}
    floor = {"latency_ms": 1.4, "model_bytes": 250.0}  # 0.7x and 0.25x of the reference
    budget = Budget.resolve({"latency_ms": "0.65x"}, reference)
    with pytest.raises(BudgetUnreachable, match=r"latency budget 0.65x \(1.3 ms\).*costs 1.4 ms.*0.700x"):
        check_reachable(budget, floor, reference, "edge")
    check_reachable(budget, floor, reference, "edge", slack={"latency_ms": 0.9})  # 1.3 >= 0.9 x 1.4: maybe reachable
    with pytest.raises(BudgetUnreachable, match="about 0.700x"):
        check_reachable(Budget.resolve({"latency_ms": "0.6x"}, reference), floor, reference, "edge",
                        slack={"latency_ms": 0.9})
    check_reachable(Budget.resolve({"latency_ms": "0.7x", "model_bytes": "250"}, reference), floor, reference, "edge")


def test_full_size_prices_every_policy_on_the_paper_scale_tables(tiny_checkpoint, tiny_dir):
    from hero_lite.nerf.config import HashGridConfig
    from hero_lite.nerf.hashgrid import HashGridLayout
    from hero_lite.quant.policy import model_signature, uniform_policy
    from hero_lite.search.hero import final_report, prepare
    from hero_lite.search.workload import FULL_SIZE_GRID

    with pytest.raises(ValueError, match="search full_size = 1; valid: true, false"):
        SearchConfig(full_size=1)
    small = prepare(str(tiny_checkpoint), str(tiny_dir), _tiny_config(budgets={"latency_ms": "1.0x"}))
    full = prepare(str(tiny_checkpoint), str(tiny_dir), _tiny_config(budgets={"latency_ms": "1.0x"}, full_size=True))
    grid = small.model.config.grid
    entries = {}
    for label, config in (("small", grid), ("full", HashGridConfig(**{**grid.__dict__, **FULL_SIZE_GRID}))):
        layout = HashGridLayout.from_config(config)
        entries[label] = int(np.sum(layout.sizes)) * layout.n_feat
    assert entries["full"] > 4 * entries["small"]
    bits = uniform_policy(small.model.config, 8, 8, "hero").bits
    small_cost, full_cost = small.frame_cost(bits, "hero"), full.frame_cost(bits, "hero")
    # same weights and activations; the tables' bytes are those of the full-size grid at 8 bits
    assert full_cost["model_bytes"] - small_cost["model_bytes"] == entries["full"] - entries["small"]
    assert full.evaluator.estimators[0].model_bytes(bits) == full_cost["model_bytes"]
    assert full.floor_cost["model_bytes"] > small.floor_cost["model_bytes"]
    policy = QuantPolicy("hero", bits, model_signature(small.model.config))
    config = _tiny_config(final_qat_steps=1, full_size=True)
    assert final_report(full, policy, config, None)["model_bytes"] == full_cost["model_bytes"]

