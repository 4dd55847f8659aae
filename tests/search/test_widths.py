"""The search's hardware widths: the widths an accelerator runs without waste (checked against the
simulator: every width left out takes exactly the latency and area of the next wider width kept, every width kept but
the widest prices differently from one bit more), the action bins and the budget wall over them,
and a tiny search whose every policy holds only those widths."""

import dataclasses
import json

import numpy as np
import pytest

from hero_lite.accel import load_config, simulate, synthetic_workload
from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import uniform_policy
from hero_lite.search.budget import Budget, enforce_budget
from hero_lite.search.env import action_to_bits, bits_to_action, freeze_points
from hero_lite.search.hero import SearchConfig, hero_search, search_points
from hero_lite.search.widths import hardware_widths, with_hardware_widths

CONFIG = ModelConfig()
POINTS = quant_points(CONFIG, "hero")
EDGE = load_config("edge")
WORD_MOD = dataclasses.replace(EDGE, hash_engine=dataclasses.replace(EDGE.hash_engine, bank_mapping="word_mod"))


def test_edge_widths_are_bitfusions_and_the_power_of_two_slots():
    widths = {p.kind: hardware_widths(p, EDGE) for p in POINTS}
    assert widths == {"hash_level": (2, 4, 8, 16), "weight": (2, 4, 8), "activation": (2, 4, 8)}
    # F b-bit slots (word_mod banks): most widths pack differently into words or lines, so most are kept
    kept = hardware_widths(POINTS[0], WORD_MOD)
    assert kept[0] == 2 and kept[-1] == 16 and {3, 5, 6, 7} <= set(kept)


@pytest.fixture(scope="module")
def workload():
    return synthetic_workload(32, 32)


def _frame(bits, accel, workload):
    # latency and area: a narrower stored weight still reads fewer buffer bytes (energy, model size)
    report = simulate(workload, bits, accel)
    return report.latency_ms, report.area_mm2


@pytest.mark.parametrize("accel_name", ["edge", "edge_bitserial"])
def test_a_width_left_out_prices_like_the_next_width_kept(accel_name, workload):
    accel = load_config(accel_name)
    base = uniform_policy(CONFIG, 8, 8, "hero").bits
    for name in ("hash.l12", "w.color1", "act.density_hidden"):
        point = next(p for p in POINTS if p.name == name)
        kept = hardware_widths(point, accel)
        for bits in range(point.min_bits, kept[-1] + 1):
            wider = min(w for w in kept if w >= bits)
            frame = _frame(dict(base, **{name: bits}), accel, workload)
            assert frame == _frame(dict(base, **{name: wider}), accel, workload), (name, bits, wider)


def test_a_width_kept_prices_differently_from_one_bit_more():
    # checked on the cost the widths are built from: the hash slot and packing, the MLP operand's
    # rows, passes and energy; one bit more always changes one of them
    from hero_lite.search.widths import _hash_cost, _operand_cost

    for point in POINTS:
        for w in hardware_widths(point, EDGE)[:-1]:
            if point.kind == "hash_level":
                assert _hash_cost(w, 2, EDGE) != _hash_cost(w + 1, 2, EDGE)
            else:
                assert _operand_cost(w, point.kind, EDGE.mlp_engine) != _operand_cost(w + 1, point.kind, EDGE.mlp_engine)


def test_each_width_gets_an_equal_action_bin():
    points = with_hardware_widths(POINTS, EDGE)
    hash_point, weight = points[0], next(p for p in points if p.kind == "weight")
    assert hash_point.min_bits == 2 and hash_point.max_bits == 16
    assert [action_to_bits(a, hash_point) for a in (0.0, 0.24, 0.26, 0.74, 0.76, 1.0)] == [2, 2, 4, 8, 16, 16]
    assert [action_to_bits(a, weight) for a in (0.0, 0.33, 0.34, 0.66, 0.67, 1.0)] == [2, 2, 4, 4, 8, 8]
    for point in (hash_point, weight):
        for w in point.choices():
            assert action_to_bits(bits_to_action(w, point), point) == w
    # bits between two widths take the bin of the next wider width; 32 the widest
    assert action_to_bits(bits_to_action(5, weight), weight) == 8
    assert action_to_bits(bits_to_action(32, hash_point), hash_point) == 16
    # frozen points keep their bits whatever the widths were
    frozen = freeze_points(points, {"w.color1": 6})
    color1 = next(p for p in frozen if p.name == "w.color1")
    assert color1.choices() == (6,) and {action_to_bits(a, color1) for a in np.linspace(0, 1, 9)} == {6}


def test_the_wall_lowers_only_to_hardware_widths():
    points = with_hardware_widths(POINTS, EDGE)
    bits = {p.name: max(p.choices()) for p in points}

    def model_bytes(b):
        # every bit of every stored element counts (the size budget's model)
        return {"model_bytes": float(sum(p.n_elements * b[p.name] for p in points))}

    budget = Budget(limits={"model_bytes": 0.3 * model_bytes(bits)["model_bytes"]}, spec={"model_bytes": "0.3x"})
    result = enforce_budget(bits, points, model_bytes, budget)
    assert result.met
    assert all(result.bits[p.name] in p.choices() for p in points)
    assert any(result.bits[p.name] < max(p.choices()) for p in points)


def test_activations_take_the_widest_width_the_pes_run_at_no_cost(workload):
    # bit-serial PEs take activations of up to pmax = 16 bits in one pass: a narrower activation
    # loses precision for nothing, so a search over hardware widths runs them at 16 (a policy may
    # hold 16-bit activations, a search over all widths still picks from 2-8)
    bitserial = load_config("edge_bitserial")
    points = {p.name: p for p in with_hardware_widths(POINTS, bitserial)}
    assert bitserial.mlp_engine.pmax == 16
    assert all(p.choices() == (16,) for p in points.values() if p.kind == "activation")
    assert points["w.color1"].choices() == tuple(range(2, 9))
    base = uniform_policy(CONFIG, 8, 8, "hero").bits
    wide = dict(base, **{name: 16 for name, p in points.items() if p.kind == "activation"})
    assert _frame(wide, bitserial, workload) == _frame(base, bitserial, workload)
    # BitFusion PEs run 16-bit activations in two passes: edge keeps 8 as the top
    edge_points = with_hardware_widths(POINTS, EDGE)
    assert all(p.choices() == (2, 4, 8) for p in edge_points if p.kind == "activation")
    assert _frame(wide, EDGE, workload)[0] > _frame(base, EDGE, workload)[0]


def test_search_config_widths():
    assert SearchConfig().widths == "all"
    with pytest.raises(ValueError, match="search widths = 'pow2'; valid: all, hardware"):
        SearchConfig(widths="pow2")
    all_points = search_points(CONFIG, SearchConfig(), EDGE)
    assert all(p.choices() == tuple(range(2, 17 if p.kind == "hash_level" else 9)) for p in all_points)
    hardware = search_points(CONFIG, SearchConfig(widths="hardware", frozen_bits={"hash_level": 8}), EDGE)
    assert all(p.choices() == (8,) for p in hardware if p.kind == "hash_level")
    assert all(p.choices() == (2, 4, 8) for p in hardware if p.kind != "hash_level")


def test_a_search_on_hardware_widths_picks_only_them(tiny_checkpoint, tiny_dir, tmp_path):
    config = SearchConfig(episodes=2, qat_steps=2, qat_samples=1 << 13, final_qat_steps=2, final_candidates=1,
                          val_views=1, budgets={"latency_ms": "0.95x"}, widths="hardware", start="random")
    summary = hero_search(str(tiny_checkpoint), str(tiny_dir), str(tmp_path / "run"), config)
    episodes = [json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2
    allowed = {"hash_level": {2, 4, 8, 16}, "mlp": {2, 4, 8}}
    for policy in [e["policy"] for e in episodes] + [e["agent_bits"] for e in episodes] + [summary["policy"]["points"]]:
        for name, b in policy.items():
            assert b in allowed["hash_level" if name.startswith("hash.") else "mlp"], (name, b)
    # the random start would pick mid-range bits (5, 9): the agent's choices are the widths' bins
    assert any(b == 4 for e in episodes for b in e["agent_bits"].values())
