"""Replay buffer: ring overwrite, sampling without replacement, determinism, state round trip."""

import numpy as np
import pytest

from hero_lite.rl import ReplayBuffer, Transition


def _fill(buffer, n, start=0):
    for i in range(start, start + n):
        buffer.add(Transition(np.full(buffer.n_obs, float(i)), i / 100.0, float(i), np.full(buffer.n_obs, i + 0.5),
                              i % 4 == 3))


def test_ring_overwrites_oldest():
    buffer = ReplayBuffer(capacity=5, n_obs=2)
    _fill(buffer, 7)  # transitions 0..6; 0 and 1 overwritten
    assert len(buffer) == 5 and buffer.position == 2
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert buffer.obs[0, 0] == 5.0 and buffer.next_obs[0, 0] == 5.5 and buffer.dones[3]  # 3 % 4 == 3


def test_sampling_without_replacement_when_large_enough():
    buffer = ReplayBuffer(capacity=100, n_obs=3)
    _fill(buffer, 70)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = buffer.sample_indices(64, rng)
        assert len(np.unique(idx)) == 64 and idx.min() >= 0 and idx.max() < 70
    batch = buffer.sample(64, rng)
    assert batch.obs.shape == (64, 3) and batch.actions.shape == (64, 1) and batch.not_done.shape == (64, 1)
    # rewards were stored as the index i, obs as i and next_obs as i + 0.5: rows stay aligned
    np.testing.assert_array_equal(batch.obs[:, 0], batch.rewards[:, 0])
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.rewards[:, 0] + 0.5)
    np.testing.assert_array_equal(batch.not_done[:, 0], (batch.rewards[:, 0] % 4 != 3).astype(float))


def test_sampling_with_replacement_when_small():
    buffer = ReplayBuffer(capacity=100, n_obs=1)
    _fill(buffer, 10)
    idx = buffer.sample_indices(64, np.random.default_rng(0))
    assert idx.shape == (64,) and idx.max() < 10 and len(np.unique(idx)) <= 10
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, 1).sample(2, np.random.default_rng(0))


def test_sampling_is_deterministic_for_the_generator():
    buffer = ReplayBuffer(capacity=50, n_obs=1)
    _fill(buffer, 50)
    a = buffer.sample_indices(16, np.random.default_rng(3))
    b = buffer.sample_indices(16, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_state_round_trip_and_validation():
    buffer = ReplayBuffer(capacity=6, n_obs=2)
    _fill(buffer, 8)
    other = ReplayBuffer(capacity=6, n_obs=2)
    other.load_state_dict(buffer.state_dict())
    for name in ("obs", "actions", "rewards", "next_obs", "dones"):
        np.testing.assert_array_equal(getattr(other, name), getattr(buffer, name))
    assert (other.size, other.position) == (buffer.size, buffer.position)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=7, n_obs=2).load_state_dict(buffer.state_dict())
    with pytest.raises(ValueError, match="shapes"):
        buffer.add(Transition(np.zeros(3), 0.0, 0.0, np.zeros(3), False))
