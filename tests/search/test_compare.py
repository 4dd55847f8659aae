"""`hero-lite compare` on scenes/tiny with small budgets: every method runs end to end, returns a valid
policy that meets its constraints, and compare.json has every key for every method; the matched
protocol runs the hardware-aware baselines beside CAQ-like and HERO and matches every searched method
against every anchor, fit-area cost efficiency first. Also the CAQ-like learner's direction (bits
fall as the penalty rises) and the BitOps proxy."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hero_lite.accel import load_config
from hero_lite.cli import cli
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.calibrate import calibrate_activations
from hero_lite.quant.learned import BitLearningConfig, learn_bit_widths
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import QuantPolicy, uniform_policy
from hero_lite.search.baselines import bitops_per_sample
from hero_lite.search.heuristic import heuristic_policy
from hero_lite.search.widths import snap_to_hardware
from hero_lite.search.compare import (DEFAULT_METHODS, MATCH_DB, ROW_KEYS, all_matches, check_matched_methods,
                                      hero_row_name, matched_budgets, parse_baselines, parse_fractions, parse_methods,
                                      pick_match, searched_row_name)

CONFIG = {"episodes": 3, "qat_steps": 2, "qat_samples": 1 << 13, "final_qat_steps": 4, "val_views": 1,
          "budgets": {"latency_ms": "0.95x"}}


def test_bitops_proxy_matches_caq_formula_and_falls_with_bits():
    points = quant_points(ModelConfig(), "hero")
    eight = uniform_policy(ModelConfig(), 8, 8).bits
    c, F, L = 32, 2, 16
    mlp = 32 * 64 * 64 + 64 * 16 * 64 + (16 + 16) * 64 * 64 + 64 * 64 * 64 + 64 * 3 * 64  # b_w b_a = 64
    assert bitops_per_sample(eight, points) == L * F * (12 * c * c + 8 * c * 8) + mlp
    four = uniform_policy(ModelConfig(), 4, 4).bits
    assert bitops_per_sample(four, points) < bitops_per_sample(eight, points)
    caq = quant_points(ModelConfig(), "caq")
    caq8 = uniform_policy(ModelConfig(), 8, 8, "caq").bits
    assert bitops_per_sample(caq8, caq) == bitops_per_sample(eight, points)


def test_parse_methods():
    assert parse_methods("fp32, uniform4-ptq,hero") == ["fp32", "uniform4-ptq", "hero"]
    assert parse_methods("caq_snapped,heuristic,hero_hash8") == ["caq_snapped", "heuristic", "hero_hash8"]
    for bad, message in (("fast", "unknown method"), ("uniform12", "2..8"), ("hero,hero", "once"), ("", "once")):
        with pytest.raises(ValueError, match=message):
            parse_methods(bad)


def test_the_matched_protocol_takes_caq_then_baselines_and_searches():
    assert parse_baselines("caq_snapped, hero_hash8,uniform6") == ["caq_snapped", "hero_hash8", "uniform6"]
    assert parse_baselines("none") == []
    for bad in ("hero", "caq", "haq", "uniform4-ptq", "heuristic,heuristic", ""):
        with pytest.raises(ValueError, match="valid: each once of hero_hash8, caq_snapped, heuristic"):
            parse_baselines(bad)
    assert check_matched_methods(("caq", "hero_hash8")) == ["caq", "hero_hash8"]
    for bad in (["hero"], ["caq", "fp32"], ["caq", "caq"]):
        with pytest.raises(ValueError, match="valid: a list of distinct caq \\(required\\)"):
            check_matched_methods(bad)


def test_parse_fractions():
    assert parse_fractions("0.9, 0.85,0.76") == [0.9, 0.85, 0.76]
    for bad in ("", "0.9,0.9", "1.2", "0", "fast"):
        with pytest.raises(ValueError, match="fractions"):
            parse_fractions(bad)


def _row_of(psnr, latency_ms, met=True, fraction=None, model_bytes=100, area=2.0, fit_area=1.0):
    return {"psnr": psnr, "latency_ms": latency_ms, "budget_met": met, "fraction": fraction, "model_bytes": model_bytes,
            "cost_efficiency": 1 / (latency_ms * area), "cost_efficiency_fit": 1 / (latency_ms * fit_area)}


def test_the_match_is_the_fastest_hero_policy_within_the_psnr_margin_that_met_its_budget():
    caq = _row_of(30.0, 2.0, model_bytes=200, fit_area=1.5)
    heroes = {"hero@0.9x": _row_of(30.0 - MATCH_DB, 1.8, fraction=0.9),          # at the margin: qualifies
              "hero@0.8x": _row_of(29.5, 1.2, fraction=0.8),                     # faster but too far below
              "hero@0.85x": _row_of(30.2, 1.5, met=False, fraction=0.85)}         # missed its budget
    match = pick_match(caq, heroes)
    assert match["method"] == "hero@0.9x" and match["fraction"] == 0.9
    assert match["latency_ratio"] == pytest.approx(2.0 / 1.8)
    assert match["cost_efficiency_ratio_fixed"] == pytest.approx(2.0 / 1.8)  # same fixed area: the latency ratio
    # fit area follows the policy: CAQ-like's 1.5 mm^2 against HERO's 1.0
    assert match["cost_efficiency_ratio_fit"] == pytest.approx((2.0 * 1.5) / (1.8 * 1.0))
    assert list(match)[3:5] == ["latency_ratio", "cost_efficiency_ratio_fit"]  # fit first: the headline
    assert match["model_size_ratio"] == pytest.approx(2.0) and match["psnr_delta_db"] == pytest.approx(-MATCH_DB)
    heroes["hero@0.75x"] = _row_of(30.05, 1.4, fraction=0.75)
    assert pick_match(caq, heroes)["method"] == "hero@0.75x"
    assert pick_match(caq, {"hero@0.8x": heroes["hero@0.8x"]}) is None
    budgets = matched_budgets({"latency_ms": 2.0, "model_bytes": 123456.0}, 0.85)
    assert float(budgets["latency_ms"]) == pytest.approx(1.7) and budgets["model_bytes"] == "123456"


def test_every_searched_method_is_matched_against_every_anchor():
    rows = {"caq": _row_of(30.0, 2.0), "heuristic": _row_of(29.0, 1.5),
            searched_row_name("hero", 0.9): _row_of(29.95, 1.8, fraction=0.9),
            searched_row_name("hero", 0.8): _row_of(29.1, 1.4, fraction=0.8),
            searched_row_name("hero_hash8", 0.9): _row_of(29.5, 1.7, fraction=0.9)}
    matches = all_matches(rows)
    assert set(matches) == {"hero", "hero_hash8"} and set(matches["hero"]) == {"caq", "heuristic"}
    assert matches["hero"]["caq"]["method"] == "hero@0.9x"
    assert matches["hero"]["heuristic"]["method"] == "hero@0.8x"  # 29.1 dB is within 0.1 dB of 29.0
    assert matches["hero_hash8"]["caq"] is None and matches["hero_hash8"]["heuristic"]["method"] == "hero_hash8@0.9x"


def test_caq_bits_fall_as_the_penalty_rises(tiny_checkpoint, tiny_scenes):
    model, _ = load_checkpoint(tiny_checkpoint)
    train = tiny_scenes[0]
    ranges = calibrate_activations(model, train, np.random.default_rng(0))
    mean_bits = []
    for penalty in (0.0, 1.0):
        config = BitLearningConfig(mode="mdl", penalty=penalty, steps=12, samples_per_step=1 << 13, loss_batches=2)
        result = learn_bit_widths(model.copy(), train, ranges, config, np.random.default_rng(0))
        learned = result.soft_trace[-1][[n != "act.sigma" for n in result.names]]
        mean_bits.append(float(learned.mean()))
        assert result.policy.bits["act.sigma"] == 32  # CAQ keeps the density output unquantized at the start
        QuantPolicy.from_dict(result.policy.to_dict(), model.config)  # a valid policy
    assert mean_bits[1] < mean_bits[0] - 0.5


def test_compare_runs_every_method_end_to_end(tiny_checkpoint, tiny_dir, tmp_path):
    config_path = tmp_path / "search.json"
    config_path.write_text(json.dumps(CONFIG))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(tiny_checkpoint), str(tiny_dir), "--out", str(out),
                                      "--methods", ",".join(DEFAULT_METHODS) + ",uniform6-ptq,caq_snapped,heuristic",
                                      "--config",
                                      str(config_path), "--episodes", "3", "--caq-steps", "6"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare.json").read_text())
    rows = data["methods"]
    assert list(rows) == list(DEFAULT_METHODS) + ["uniform6-ptq", "caq_snapped", "heuristic"]
    for method, row in rows.items():
        assert set(ROW_KEYS) <= set(row), method
        assert np.isfinite(row["psnr"]) and row["latency_ms"] > 0 and row["model_bytes"] > 0
        QuantPolicy.from_dict({"set": row["point_set"], "points": row["bits"],
                               "model": data_model(tiny_checkpoint)}, load_checkpoint(tiny_checkpoint)[0].config)
    for method in ("hero", "random"):  # searched under the simulated 0.95x latency budget
        assert rows[method]["budget_met"] is True, method
    assert rows["haq"]["proxy_budget_met"] is True  # HAQ-like: 0.95x of uniform 8-bit BitOps
    assert rows["fp32"]["model_bytes"] > rows["uniform8"]["model_bytes"] > rows["uniform6-ptq"]["model_bytes"]
    assert rows["caq"]["point_set"] == "caq" and "hash.all" in rows["caq"]["bits"]
    caq_points = quant_points(load_checkpoint(tiny_checkpoint)[0].config, "caq")
    assert rows["caq_snapped"]["bits"] == snap_to_hardware(rows["caq"]["bits"], caq_points, load_config("edge"))
    assert rows["caq_snapped"]["learned_bits"] == rows["caq"]["bits"]
    assert rows["heuristic"]["bits"] == heuristic_policy(load_checkpoint(tiny_checkpoint)[0].config).bits
    assert (out / "pareto.png").stat().st_size > 0 and "| hero |" in (out / "compare.md").read_text()


def test_compare_by_default_runs_the_matched_protocol(tiny_checkpoint, tiny_dir, tmp_path):
    config = {k: v for k, v in CONFIG.items() if k != "budgets"}
    config_path = tmp_path / "search.json"
    config_path.write_text(json.dumps(config))
    out = tmp_path / "cmp"
    # 0.05 lies below the cheapest policy's latency on the edge preset: skipped, not searched
    result = CliRunner().invoke(cli, ["compare", str(tiny_checkpoint), str(tiny_dir), "--out", str(out), "--config",
                                      str(config_path), "--episodes", "3", "--caq-steps", "6",
                                      "--fractions", "0.95,0.05"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare.json").read_text())
    rows, protocol = data["methods"], data["protocol"]
    assert protocol["name"] == "matched" and protocol["skipped_fractions"] == {"hero": [0.05]}
    assert list(rows) == ["caq", "caq_snapped", "heuristic", hero_row_name(0.95)]  # the default baselines
    caq_frame = rows["caq"]["search_frame"]
    model_config = load_checkpoint(tiny_checkpoint)[0].config
    assert rows["caq_snapped"]["bits"] == snap_to_hardware(rows["caq"]["bits"], quant_points(model_config, "caq"),
                                                           load_config("edge"))
    assert rows["heuristic"]["bits"] == heuristic_policy(model_config).bits
    for fraction in (0.95,):
        row = rows[hero_row_name(fraction)]
        assert set(ROW_KEYS) <= set(row)
        # each search ran under CAQ-like's latency x fraction and CAQ-like's size, on the search frame
        budgets = matched_budgets(caq_frame, fraction)
        assert row["budget"]["limits"]["latency_ms"] == pytest.approx(float(budgets["latency_ms"]))
        assert row["budget"]["limits"]["model_bytes"] == pytest.approx(float(budgets["model_bytes"]))
        hero_config = json.loads((out / hero_row_name(fraction) / "config.json").read_text())
        assert hero_config["search"]["budgets"] == budgets
    for row in rows.values():
        assert set(ROW_KEYS) <= set(row) and row["cost_efficiency_fit"] > 0
    assert protocol["match"] == pick_match(rows["caq"], {k: v for k, v in rows.items() if k.startswith("hero@")})
    assert protocol["matches"] == json.loads(json.dumps(all_matches(rows)))
    markdown = (out / "compare.md").read_text()
    assert "cost eff., fit area" in markdown.splitlines()[0]
    main_line = [line for line in markdown.splitlines() if line.startswith(("hero@", "No HERO policy"))]
    assert len(main_line) == 1 and main_line[0] in result.output
    assert ("against CAQ-like" in main_line[0]) == (protocol["match"] is not None)
    assert "against heuristic" in markdown and "against caq_snapped" in markdown  # the other anchors


@pytest.mark.parametrize("args, message", [
    (["--latency-budget", "0.9x"], "takes its budgets from CAQ-like"),
    (["--methods", "hero", "--fractions", "0.9"], "--fractions belongs to the matched protocol"),
    (["--methods", "hero", "--baselines", "heuristic"], "--baselines belongs to the matched protocol"),
    (["--baselines", "hero"], "valid: each once of hero_hash8"),
    (["--fractions", "0.9,2"], "each in (0, 1]"),
    (["--set", "caq"], "searches HERO's point set"),
])
def test_compare_refuses_options_that_do_not_fit_the_protocol(tiny_checkpoint, tiny_dir, tmp_path, args, message):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(cli, ["compare", str(tiny_checkpoint), str(tiny_dir), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def data_model(checkpoint):
    from hero_lite.quant.policy import model_signature

    return model_signature(load_checkpoint(checkpoint)[0].config)
