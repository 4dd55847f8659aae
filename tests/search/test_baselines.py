"""The hardware-aware baselines and the frozen points: CAQ-like's bits snapped to what the accelerator
runs without waste (checked against the simulator's own cost functions), the three-rule hand policy's
exact bits, and a tiny HERO search whose hash levels stay frozen at 8 bits in every episode."""

import dataclasses
import json
import types

import numpy as np
import pytest

from hero_lite.accel import load_config, units
from hero_lite.accel.config import MLPEngineConfig
from hero_lite.nerf.config import ModelConfig
from hero_lite.quant.points import quant_points
from hero_lite.quant.policy import QuantPolicy, uniform_policy
from hero_lite.search.baselines import heuristic_snapped_policy
from hero_lite.search.heuristic import heuristic_policy
from hero_lite.search.widths import snap_mlp_bits, snap_to_hardware
from hero_lite.search.env import action_to_bits, freeze_points
from hero_lite.search.hero import SearchConfig, hero_search

EDGE = load_config("edge")
# the edge design with F b-bit slots (word_mod banks), whatever bank mapping the preset picks
WORD_MOD = dataclasses.replace(EDGE, hash_engine=dataclasses.replace(EDGE.hash_engine, bank_mapping="word_mod"))


def _layer_cost(b_a, b_w, mlp):
    """What the simulator charges one 64x64 layer of 512 samples: cycles and MAC energy."""
    return units.mlp_layer_cycles(512, 64, 64, b_a, b_w, mlp), units.mac_energy_pj(b_a, b_w, mlp)


@pytest.mark.parametrize("mode, weight, activation", [
    # pmin 2, pmax 8; bits 2..10 -> snapped (above pmax: pmax, a single pass)
    ("bitfusion", [2, 4, 4, 8, 8, 8, 8, 8, 8], [2, 4, 4, 8, 8, 8, 8, 8, 8]),
    ("bit_serial", [2, 4, 4, 6, 6, 8, 8, 8, 8], [8] * 9),  # weights in ceil(b / 2) serial steps
    ("fixed", [8] * 9, [8] * 9),
])
def test_mlp_widths_snap_to_the_widest_width_at_the_same_speed(mode, weight, activation):
    mlp = MLPEngineConfig(pe_mode=mode)
    assert [snap_mlp_bits(b, "weight", mlp) for b in range(2, 11)] == weight
    assert [snap_mlp_bits(b, "activation", mlp) for b in range(2, 11)] == activation
    assert snap_mlp_bits(32, "weight", mlp) == 32  # unquantized stays unquantized


@pytest.mark.parametrize("mode", ["bitfusion", "bit_serial", "fixed"])
@pytest.mark.parametrize("pmin, pmax", [(2, 8), (1, 8), (3, 8), (2, 16)])
def test_a_snapped_mlp_width_costs_what_its_width_costs_and_one_bit_more_would_cost_more(mode, pmin, pmax):
    mlp = MLPEngineConfig(pe_mode=mode, pmin=pmin, pmax=pmax)
    for kind in ("weight", "activation"):
        for bits in range(2, 17):
            snapped = snap_mlp_bits(bits, kind, mlp)
            assert snapped <= pmax and (snapped >= bits or bits > pmax)
            pair = (lambda b: (pmax, b)) if kind == "weight" else (lambda b: (b, pmax))
            assert _layer_cost(*pair(snapped), mlp) == _layer_cost(*pair(min(bits, pmax)), mlp)
            if snapped < pmax:
                assert _layer_cost(*pair(snapped + 1), mlp) != _layer_cost(*pair(snapped), mlp)


def test_a_learned_caq_policy_snaps_to_the_hardware_point_by_point():
    config = ModelConfig()
    caq = uniform_policy(config, 8, 8, "caq").bits
    caq.update({"hash.all": 7, "act.density_out": 9, "w.color1": 5, "w.color2": 3, "w.density0": 6, "act.sh": 2,
                "act.sigma": 32, "w.density1": 12})
    snapped = snap_to_hardware(caq, quant_points(config, "caq"), WORD_MOD)
    assert snapped == {**{name: 8 for name in caq}, "hash.all": 7, "w.color2": 4, "act.sh": 2, "act.sigma": 32}
    QuantPolicy.from_dict({"set": "caq", "points": snapped}, config)  # a valid policy


def test_the_hand_policy_has_the_three_rules_bits():
    policy = heuristic_policy(ModelConfig())
    hash_bits = {f"hash.l{level:02d}": 8 if level < 8 else 4 for level in range(16)}
    mlp = {name: 8 for name in ("act.encoding", "w.density0", "act.density_hidden", "act.density_out", "act.sh",
                                "w.color0", "act.color_hidden0", "act.color_hidden1", "act.color_out")}
    assert policy.bits == {**hash_bits, **mlp, "w.density1": 4, "w.color1": 4, "w.color2": 4}
    QuantPolicy.from_dict(policy.to_dict(), ModelConfig())


def test_the_hand_policy_runs_at_the_accelerators_widths():
    # the sweep's heuristic: the same rules, each MLP width raised to what the PEs run at its cost
    config = ModelConfig()
    rules = heuristic_policy(config).bits

    def snapped(accel_name):
        setup = types.SimpleNamespace(model=types.SimpleNamespace(config=config), accel=load_config(accel_name))
        return heuristic_snapped_policy(setup)

    assert snapped("edge").bits == rules  # BitFusion runs 4 and 8 bits without waste
    bitserial = snapped("edge_bitserial")
    assert bitserial.bits == {name: 16 if name.startswith("act.") else b for name, b in rules.items()}
    QuantPolicy.from_dict(bitserial.to_dict(), config)  # 16-bit activations are a valid HERO policy


def test_frozen_points_keep_their_bits_and_a_bad_key_is_one_line():
    points = quant_points(ModelConfig(), "hero")
    frozen = freeze_points(points, {"hash_level": 8, "hash.l03": 4, "w.color1": 6})
    by_name = {p.name: p for p in frozen}
    for action in np.linspace(0, 1, 7):
        assert action_to_bits(action, by_name["hash.l00"]) == 8 and action_to_bits(action, by_name["hash.l03"]) == 4
        assert action_to_bits(action, by_name["w.color1"]) == 6
    assert by_name["w.color0"] == {p.name: p for p in points}["w.color0"]  # the others are untouched
    for bad, message in (({"hash.l99": 8}, "unknown point 'hash.l99'; valid: a point of the 'hero' set"),
                         ({"w.color1": 12}, "w.color1 = 12 bits; valid: 2-8 or 32")):
        with pytest.raises(ValueError, match="search frozen_bits") as error:
            freeze_points(points, bad)
        assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="search frozen_bits 'hash_level' = '8'; valid"):
        SearchConfig(frozen_bits={"hash_level": "8"})


def test_frozen_hash_levels_stay_at_8_bits_in_every_episode(tiny_checkpoint, tiny_dir, tmp_path):
    config = SearchConfig(episodes=2, qat_steps=2, qat_samples=1 << 13, final_qat_steps=2, final_candidates=1,
                          val_views=1, budgets={"latency_ms": "0.95x"}, frozen_bits={"hash_level": 8}, start="random")
    summary = hero_search(str(tiny_checkpoint), str(tiny_dir), str(tmp_path / "run"), config)
    episodes = [json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2
    for policy in [e["policy"] for e in episodes] + [e["agent_bits"] for e in episodes] + [summary["policy"]["points"]]:
        hash_bits = {b for name, b in policy.items() if name.startswith("hash.")}
        assert hash_bits == {8}
    # the random start picks mid-range MLP bits, so the frozen hash levels are not just the reference's
    assert any(b != 8 for e in episodes for name, b in e["agent_bits"].items() if not name.startswith("hash."))
