"""Bit packing for every width, and exact model bytes of the packed export."""

import numpy as np
import pytest

from hero_lite.quant.export import pack_bits, unpack_bits


@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_round_trip_every_width(bits):
    rng = np.random.default_rng(bits)
    for n in (0, 1, 7, 8, 9, 1001):
        codes = rng.integers(0, 1 << bits, size=n)
        packed = pack_bits(codes, bits)
        assert packed.dtype == np.uint8 and packed.size == -(-n * bits // 8)
        np.testing.assert_array_equal(unpack_bits(packed, bits, n), codes)


def test_pack_hand_example():
    # codes 1, 2, 3 at 2 bits, LSB first: 01 | 10 << 2 | 11 << 4 = 0b00111001 = 57
    np.testing.assert_array_equal(pack_bits(np.array([1, 2, 3]), 2), [57])
    # 3 bits: 5 and 6 -> 101 | 110 << 3 = 0b110101 = 53
    np.testing.assert_array_equal(pack_bits(np.array([5, 6]), 3), [53])


def test_pack_rejects_out_of_range():
    with pytest.raises(ValueError, match="codes must lie"):
        pack_bits(np.array([4]), 2)
    with pytest.raises(ValueError, match="bits"):
        pack_bits(np.array([1]), 17)
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_bits(np.zeros(3, np.uint8), 4, 2)


# ----------------------------------------------------------------------------- corrupt quantized checkpoints

import h5py  # noqa: E402

from hero_lite.nerf.config import HashGridConfig, ModelConfig  # noqa: E402
from hero_lite.nerf.model import NGPModel  # noqa: E402
from hero_lite.quant.export import load_quantized, save_quantized  # noqa: E402
from hero_lite.quant.fakequant import FakeQuantHooks  # noqa: E402
from hero_lite.quant.policy import uniform_policy  # noqa: E402

SMALL = ModelConfig(grid=HashGridConfig(n_levels=3, log2_table_size=8, base_res=4, max_res=16), hidden_width=16,
                    geo_feat=8, occupancy_res=8, step_size=0.05)


@pytest.fixture
def quantized(tmp_path):
    """A small 6-bit (hash) / 8-bit (MLP) quantized checkpoint, per-channel weight scales."""
    model = NGPModel.create(SMALL, np.float32([[-1, -1, -1], [1, 1, 1]]), np.random.default_rng(3))
    policy = uniform_policy(SMALL, 6, 8)
    ranges = {p.name: (-1.0, 1.0) for p in policy.points(SMALL) if p.kind == "activation"}
    hooks = FakeQuantHooks(model, policy, ranges, per_channel=True).freeze()
    path = tmp_path / "q.h5"
    save_quantized(str(path), model, hooks)
    return path


def test_small_quantized_checkpoint_round_trips(quantized):
    model, hooks, meta = load_quantized(str(quantized))
    assert meta["policy"]["points"]["hash.l00"] == 6 and hooks.frozen and hooks.act_params


def _set_attr(key, name, value):
    return lambda f: f[key].attrs.__setitem__(name, value)


def _replace(key, value):
    def damage(f):
        del f[key]
        f.create_dataset(key, data=value)
    return damage


QUANT_CASES = {
    "nan scale": (_replace("quant/w.color1/scale", np.full(16, np.nan, np.float32)),
                  r"quant/w.color1: scale must be finite and > 0"),
    "zero scale": (_replace("quant/hash.l01/scale", np.float32(0.0)), r"quant/hash.l01: scale must be finite and > 0"),
    "scale shape": (_replace("quant/hash.l01/scale", np.ones(5, np.float32)), r"quant/hash.l01: scale has shape \(5,\)"),
    "unknown scheme": (_set_attr("quant/w.density0", "scheme", "log2"),
                       "quant/w.density0: unknown quantization scheme 'log2'; valid: symmetric, asymmetric, unsigned"),
    "other scheme": (_set_attr("quant/w.density0", "scheme", "unsigned"), "quant/w.density0: scheme 'unsigned'; valid: 'symmetric'"),
    "bits": (_set_attr("quant/hash.l02", "bits", 7), r"quant/hash.l02: bits = 7; valid: 6"),
    "shape attribute": (_set_attr("quant/w.color2", "shape", [1 << 31, 1 << 31]), "quant/w.color2: shape attribute"),
    "zero point": (_replace("quant/hash.l00/zero_point", np.int32(9999)), r"quant/hash.l00: zero_point must be integers .* in \[0, 63\]"),
    "short codes": (_replace("quant/hash.l00/codes", np.zeros(3, np.uint8)), "quant/hash.l00/codes: 3 bytes cannot hold"),
    "missing scheme": (lambda f: f["quant/w.color0"].attrs.__delitem__("scheme"), "quant/w.color0 has no attribute 'scheme'"),
    "nan activation scale": (_set_attr("activations/act.sh", "scale", float("nan")), "activations/act.sh: scale must be finite"),
    "missing activation": (lambda f: f.__delitem__("activations/act.color_out"), "missing 'activations/act.color_out'"),
    "inverted aabb": (_replace("aabb", np.float32([[1, 1, 1], [-1, -1, -1]])), "dataset 'aabb' must be"),
    "occupancy shape": (_replace("occupancy/values", np.zeros((2, 2, 2), np.float32)), "dataset 'occupancy/values' has shape"),
    "policy model": (lambda f: f.attrs.__setitem__("policy", '{"set": "hero", "model": [], "points": {}}'), "'model' must be an object"),
}


@pytest.mark.parametrize("case", sorted(QUANT_CASES))
def test_corrupt_quantized_checkpoint_names_the_file_and_dataset(quantized, case):
    damage, message = QUANT_CASES[case]
    with h5py.File(quantized, "a") as f:
        damage(f)
    with pytest.raises(ValueError, match=message) as info:
        load_quantized(str(quantized))
    assert str(quantized) in str(info.value) and "\n" not in str(info.value)
