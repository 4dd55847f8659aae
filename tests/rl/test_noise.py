"""Exploration: truncated normal on [0, 1], sd schedule scaled to the run length, uniform warm-up."""

import numpy as np
import pytest
from scipy import stats

from hero_lite.rl import ExplorationSchedule, truncated_normal
from hero_lite.rl.noise import HAQ_SIGMA_FINAL


@pytest.mark.parametrize("mean, sd", [(0.0, 0.5), (1.0, 0.5), (0.5, 0.0015), (0.999, 0.3), (0.2, 2.0), (1e-9, 1e-3)])
def test_truncated_normal_stays_in_unit_interval(mean, sd):
    x = truncated_normal(np.full(5000, mean), sd, np.random.default_rng(0))
    assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.parametrize("mean, sd", [(0.3, 0.2), (0.9, 0.5), (0.05, 0.1)])
def test_truncated_normal_matches_scipy_truncnorm(mean, sd):
    x = truncated_normal(np.full(4000, mean), sd, np.random.default_rng(1))
    reference = stats.truncnorm((0 - mean) / sd, (1 - mean) / sd, loc=mean, scale=sd)
    assert stats.kstest(x, reference.cdf).pvalue > 0.01


def test_truncated_normal_scalar_and_determinism():
    a = truncated_normal(0.4, 0.1, np.random.default_rng(5))
    b = truncated_normal(0.4, 0.1, np.random.default_rng(5))
    assert isinstance(a, float) and a == b
    with pytest.raises(ValueError, match="sd"):
        truncated_normal(0.4, 0.0, np.random.default_rng(5))


def test_decay_is_haq_scaled_to_the_run_length():
    # HAQ: 0.99 per episode over 600 episodes with 20 warm-up
    assert ExplorationSchedule(episodes=600, warmup_episodes=20).decay == pytest.approx(0.99, rel=1e-12)
    # hero-lite default 100 episodes: 0.99^(580/80) = 0.92974
    schedule = ExplorationSchedule(episodes=100, warmup_episodes=20)
    assert schedule.decay == pytest.approx(0.99 ** (580 / 80), rel=1e-12)
    assert schedule.sigma(20) == 0.5
    assert schedule.sigma(100) == pytest.approx(HAQ_SIGMA_FINAL, rel=1e-10)  # 0.5 * 0.99^580 = 0.00147


def test_sd_shrinks_with_episodes():
    schedule = ExplorationSchedule(episodes=100, warmup_episodes=20)
    sigmas = [schedule.sigma(e) for e in range(20, 100)]
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    rng = np.random.default_rng(2)
    spreads = [np.std([schedule.explore(e, 0.5, rng) for _ in range(2000)]) for e in (20, 50, 80, 99)]
    assert all(a > b for a, b in zip(spreads, spreads[1:]))
    assert spreads[-1] < 0.01


def test_warmup_is_uniform_and_ignores_the_actor():
    schedule = ExplorationSchedule(episodes=100, warmup_episodes=20)
    rng = np.random.default_rng(3)
    x = np.array([schedule.explore(5, 0.9, rng) for _ in range(4000)])
    assert stats.kstest(x, "uniform").pvalue > 0.01
    assert schedule.is_warmup(19) and not schedule.is_warmup(20)
    with pytest.raises(ValueError, match="warm-up"):
        schedule.sigma(3)


def test_schedule_validation():
    with pytest.raises(ValueError, match="warmup_episodes"):
        ExplorationSchedule(episodes=20, warmup_episodes=20)
    with pytest.raises(ValueError, match="sigma"):
        ExplorationSchedule(sigma_initial=0.1, sigma_final=0.2)
