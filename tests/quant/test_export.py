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
