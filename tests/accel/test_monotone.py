"""Monotonicity in the bits: lowering any one point's bit-width never raises a frame's latency.

On the edge preset with the block bank mappings, xor and block_mod (set explicitly, so the test
does not depend on the preset's default): entries in power-of-two slots, so a level's packing at
b - 1 bits either equals the one at b bits or merges pairs of its words and lines; bank blocks that
hold whole words and lines at every packing, so a batch's most loaded bank can only lose words; the longest on-chip
prefix of levels that fits, so fewer bits never move a level off chip; DRAM regions at fixed
addresses, so a level's cache sets do not move when another level's bits change
(docs/accelerator.md, "Packing and placement" and "Hash memory"). Checked on random policies for
`simulate` and for the estimator, which follows it to the cycle, and for the old mapping's known
exception (odd widths) as a contrast.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hero_lite.accel import CostEstimator, load_config, simulate, split_bits, synthetic_workload, units
from hero_lite.accel.units import ALL_BITS

EXAMPLES = 40


@pytest.fixture(scope="module")
def tiny():
    """A 32 x 24 frame (5632 samples, 11 tiles): on edge, levels 0-3 on chip at 2 bits, level 0 alone at 16."""
    return synthetic_workload(32, 24, seed=5)


BLOCK_MAPPINGS = ("xor", "block_mod")


@pytest.fixture(scope="module")
def configs():
    return {m: load_config("edge").with_overrides({"hash_engine": {"bank_mapping": m}}) for m in BLOCK_MAPPINGS}


@pytest.fixture(scope="module")
def estimators(tiny, configs):
    return {m: CostEstimator(tiny, configs[m]) for m in BLOCK_MAPPINGS}


def lower(bits: int) -> int:
    """The next valid bit-width below `bits` (32, fp32, goes to 16)."""
    return ALL_BITS[ALL_BITS.index(bits) - 1]


@st.composite
def policy_and_point(draw, names):
    bits = {name: draw(st.sampled_from(ALL_BITS)) for name in names}
    point = draw(st.sampled_from([name for name in names if bits[name] > ALL_BITS[0]] or list(names)))
    return bits, point


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
@given(data=st.data())
def test_one_bit_less_never_raises_latency(tiny, configs, estimators, data):
    mapping = data.draw(st.sampled_from(BLOCK_MAPPINGS))
    config, estimator = configs[mapping], estimators[mapping]
    bits, point = data.draw(policy_and_point(tiny.point_names))
    if bits[point] == ALL_BITS[0]:
        return
    fewer = dict(bits)
    fewer[point] = lower(bits[point])
    before, after = simulate(tiny, bits, config), simulate(tiny, fewer, config)
    assert after.total_cycles <= before.total_cycles, (point, bits[point], before.total_cycles, after.total_cycles)
    assert after.dram_bytes <= before.dram_bytes or point.startswith("hash"), point
    est_before, est_after = estimator.estimate(bits), estimator.estimate(fewer)
    assert est_after.total_cycles <= est_before.total_cycles, (point, bits[point])


@pytest.mark.parametrize("mapping", BLOCK_MAPPINGS)
def test_every_uniform_hash_width_is_monotone_and_odd_widths_cost_like_the_next_power_of_two(tiny, configs,
                                                                                            mapping):
    cycles = {b: simulate(tiny, split_bits(tiny, b, 4), configs[mapping]).total_cycles for b in ALL_BITS}
    ordered = [cycles[b] for b in ALL_BITS]
    assert ordered == sorted(ordered), cycles
    assert cycles[2] < cycles[8] < cycles[16] < cycles[32], cycles  # the hash bits buy latency
    for odd, even in ((3, 4), (5, 8), (7, 8), (9, 16), (15, 16)):
        assert cycles[odd] == cycles[even], (odd, even)


def test_xor_packing_nests_and_blocks_hold_whole_words_and_lines():
    bits = np.asarray(ALL_BITS)
    for n_feat, word_bits, line_bytes in ((2, 32, 32), (4, 32, 64), (2, 24, 48), (1, 64, 16)):
        epw, wpe, epl = units.packing(n_feat, bits, word_bits, line_bytes, True)
        sram_shift, line_shift = units.bank_block_shifts(n_feat, word_bits, line_bytes)
        for k in range(1, bits.size):  # the packing at the lower width merges whole words and lines
            assert epw[k - 1] % epw[k] == 0 and wpe[k - 1] <= wpe[k]
            assert epl[k] == 0 or epl[k - 1] % epl[k] == 0
        assert np.all((1 << sram_shift) % epw == 0) and np.all((1 << line_shift) % np.maximum(epl, 1) == 0)


def test_the_word_mod_mapping_keeps_its_odd_width_penalty(tiny):
    """Contrast: dense packing with bank = word (line) mod banks is not monotone; odd widths pack
    non-power-of-two entries per line, which splits the hash's x-neighbours across lines."""
    config = load_config("edge").with_overrides({"hash_engine": {"bank_mapping": "word_mod"}})
    cycles = {b: simulate(tiny, split_bits(tiny, b, 4), config).total_cycles for b in (7, 8)}
    assert cycles[7] > cycles[8], cycles
