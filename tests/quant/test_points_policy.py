"""Quantization points, policies (JSON round trip, shorthands, every bad-policy case) and model_bytes."""

import json

import pytest

from hero_lite.nerf.config import HashGridConfig, ModelConfig
from hero_lite.quant.points import fp32_bytes, model_bytes, packed_tensor_bytes, quant_points
from hero_lite.quant.policy import QuantPolicy, fp32_policy, uniform_policy

CONFIG = ModelConfig()


def test_hero_points_order_and_counts():
    pts = quant_points(CONFIG, "hero")
    names = [p.name for p in pts]
    assert names[:16] == [f"hash.l{k:02d}" for k in range(16)]
    assert names[16:] == ["act.encoding", "w.density0", "act.density_hidden", "w.density1", "act.density_out", "act.sh",
                          "w.color0", "act.color_hidden0", "w.color1", "act.color_hidden1", "w.color2", "act.color_out"]
    by = {p.name: p for p in pts}
    # level 0 is dense 16^3 = 4096 entries x 2 features; level 15 hashed, T = 32768
    assert by["hash.l00"].dense and by["hash.l00"].n_elements == 8192 and by["hash.l00"].resolution == 16
    assert not by["hash.l15"].dense and by["hash.l15"].n_elements == 65536
    assert all(p.per_sample == 8 for p in pts if p.kind == "hash_level")  # 8 corner lookups
    # MACs per sample of the weights add up to 9,408
    assert sum(p.per_sample for p in pts if p.kind == "weight") == 9408
    assert (by["hash.l03"].min_bits, by["hash.l03"].max_bits) == (2, 16)
    assert (by["w.color1"].min_bits, by["w.color1"].max_bits) == (2, 8)
    # activations: a policy may hold up to 16 bits, a search picks from HAQ's 2-8
    assert (by["act.sh"].min_bits, by["act.sh"].max_bits) == (2, 16)
    assert by["act.sh"].choices() == tuple(range(2, 9))
    assert by["w.color1"].choices() == tuple(range(2, 9))
    assert by["act.density_hidden"].scheme == "unsigned" and by["w.color0"].scheme == "symmetric"


def test_caq_set_has_15_points_in_caq_order():
    pts = quant_points(CONFIG, "caq")
    assert len(pts) == 15
    assert [p.name for p in pts][:3] == ["act.encoding", "hash.all", "act.sigma"]
    table = pts[1]
    assert table.n_elements == 456920 * 2 and table.levels == tuple(range(16))
    assert all((p.min_bits, p.max_bits) == (2, 16) for p in pts)
    assert pts[2].default_bits == 32  # CAQ starts the density output at 32 bits


def test_model_bytes_formula():
    # 3 elements at 3 bits -> 2 bytes + 8 bytes of scale and zero point
    assert packed_tensor_bytes(3, 3) == 10
    assert packed_tensor_bytes(5, 32) == 20
    pts = quant_points(CONFIG, "hero")
    full = fp32_bytes(pts)
    assert full == 4 * (456920 * 2 + 9408)
    assert model_bytes(pts, fp32_policy(CONFIG).bits) == full
    eight = uniform_policy(CONFIG, 8, 8)
    n_stored = 16 + 5
    n_acts = 7
    assert model_bytes(pts, eight.bits) == 456920 * 2 + 9408 + 8 * (n_stored + n_acts)


def test_policy_json_round_trip(tmp_path):
    policy = uniform_policy(CONFIG, 6, 4)
    path = tmp_path / "p.json"
    policy.save(str(path))
    data = json.loads(path.read_text())
    assert set(data) == {"set", "model", "points"} and data["points"]["hash.l00"] == 6
    again = QuantPolicy.load(str(path), CONFIG)
    assert again == policy


def _bad(tmp_path, payload):
    path = tmp_path / "bad.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


def test_bad_policies(tmp_path):
    good = uniform_policy(CONFIG, 8, 8).to_dict()
    cases = []
    unknown = json.loads(json.dumps(good))
    unknown["points"]["hash.l99"] = 8
    cases.append((unknown, "unknown point name"))
    out_of_range = json.loads(json.dumps(good))
    out_of_range["points"]["w.color1"] = 12  # MLP points allow 2-8 or 32
    cases.append((out_of_range, "w.color1 = 12 bits"))
    too_few = json.loads(json.dumps(good))
    too_few["points"]["hash.l00"] = 1
    cases.append((too_few, "hash.l00 = 1 bits"))
    missing = json.loads(json.dumps(good))
    del missing["points"]["act.sh"]
    cases.append((missing, "no bits for point"))
    other_model = json.loads(json.dumps(good))
    other_model["model"]["log2_table_size"] = 19
    cases.append((other_model, "different model config"))
    cases.append(({**good, "set": "haq"}, "set 'haq'"))
    cases.append(({**good, "extra": 1}, "unknown key"))
    cases.append(({**good, "points": [1, 2]}, "'points' must be an object"))
    float_bits = json.loads(json.dumps(good))
    float_bits["points"]["hash.l00"] = 7.5
    cases.append((float_bits, "hash.l00 = 7.5"))
    for payload, needle in cases:
        with pytest.raises(ValueError, match=needle):
            QuantPolicy.load(_bad(tmp_path, payload), CONFIG)
    with pytest.raises(ValueError, match="not valid JSON"):
        QuantPolicy.load(_bad(tmp_path, "{nope"), CONFIG)
    with pytest.raises(FileNotFoundError):
        QuantPolicy.load(str(tmp_path / "missing.json"), CONFIG)


@pytest.mark.parametrize("payload, needle", [
    ([1, 2], "top level must be a JSON object .*got list"),
    ("null", "top level must be a JSON object .*got NoneType"),
    ({"set": "hero", "model": [1, 2], "points": {}}, "'model' must be an object .*got list"),
    ({"set": "hero", "model": "ngp", "points": {}}, "'model' must be an object .*got str"),
    ({"set": "hero", "model": 7, "points": {}}, "'model' must be an object"),
    ({"set": "hero", "points": "all 8 bits"}, "'points' must be an object .*got str"),
    ({"set": "hero", "points": None}, "'points' must be an object"),
    ({"set": ["hero"], "points": {}}, r"set \['hero'\]; valid"),
])
def test_malformed_policy_structure_is_one_clean_error(tmp_path, payload, needle):
    path = _bad(tmp_path, payload)
    with pytest.raises(ValueError, match=needle) as info:
        QuantPolicy.load(path, CONFIG)
    assert str(info.value).startswith(f"policy {path}:")


def test_policy_for_a_smaller_model_is_rejected():
    small = ModelConfig(grid=HashGridConfig(n_levels=8))
    policy = uniform_policy(CONFIG, 8, 8)
    with pytest.raises(ValueError, match="different model config"):
        QuantPolicy.from_dict(policy.to_dict(), small)
    data = policy.to_dict()
    del data["model"]  # without a signature, the level names still give it away
    with pytest.raises(ValueError, match="unknown point name"):
        QuantPolicy.from_dict(data, small)


def test_uniform_shorthand_rejects_impossible_bits():
    with pytest.raises(ValueError, match="does not allow 12 bits"):
        uniform_policy(CONFIG, 12, 12)  # MLP points stop at 8
    assert uniform_policy(CONFIG, 12, 8).bits["hash.l05"] == 12
