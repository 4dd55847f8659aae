"""The episode critic (DDPGConfig.critic = 'episode'): gradients against finite differences, replay
bookkeeping of whole episodes, one update against a hand computation, validation, exact resume."""

import numpy as np
import pytest

from hero_lite.rl import DDPGAgent, DDPGConfig, Transition, load_checkpoint, run_episodes
from hero_lite.rl.networks import EpisodeCritic
from tests.rl.test_ddpg import _assert_states_equal, _numeric_grad
from tests.rl.test_loop import STEPS, TargetEnv, _strip_timings

N_OBS = 3
EPISODE = DDPGConfig(hidden1=16, hidden2=12, batch_size=8, replay_episodes=3, episodes=10, warmup_episodes=2,
                     critic="episode")


def test_episode_critic_gradients_match_central_differences():
    rng = np.random.default_rng(3)
    critic = EpisodeCritic(5, 11, 9)
    critic.params.init_uniform(rng)
    actions = rng.random((6, 5))
    weights = rng.normal(size=(6, 1))  # loss = sum(weights * Q)

    def loss():
        return float((weights * critic.forward(actions)[0]).sum())

    _, cache = critic.forward(actions)
    analytic = critic.backward(cache, weights).copy()
    np.testing.assert_allclose(analytic, _numeric_grad(loss, critic.params.flat), rtol=1e-6, atol=1e-8)

    dq_da = critic.action_gradient(cache)
    assert dq_da.shape == (6, 5)
    eps = 1e-6
    for t in range(5):
        step = np.zeros(5)
        step[t] = eps
        numeric = (critic.forward(actions + step)[0] - critic.forward(actions - step)[0]) / (2 * eps)
        np.testing.assert_allclose(dq_da[:, t:t + 1], numeric, rtol=1e-6, atol=1e-9)


def _store_episodes(agent, episodes, data, steps=4):
    """Store `episodes` episodes of random transitions; episode e has reward e (to find it again)."""
    for _ in range(episodes):
        reward = float(agent.episode)
        for t in range(steps):
            agent.observe(Transition(data.random(N_OBS), data.random(), reward, data.random(N_OBS), t == steps - 1))


def test_replay_keeps_whole_episodes_across_the_ring_wrap():
    agent = DDPGAgent(N_OBS, EPISODE, np.random.default_rng(0), steps_per_episode=4)
    data = np.random.default_rng(1)
    _store_episodes(agent, 5, data)  # capacity 3 episodes: 0 and 1 overwritten
    starts = agent._episode_starts()
    assert agent.replay.rewards[starts].tolist() == [2.0, 3.0, 4.0]
    assert all(agent.replay.rewards[s:s + 4].tolist() == [agent.replay.rewards[s]] * 4 for s in starts)
    # half of episode 5 stored: it overwrites episode 2, which is no longer whole
    for t in range(2):
        agent.observe(Transition(data.random(N_OBS), data.random(), 5.0, data.random(N_OBS), False))
    assert agent.replay.rewards[agent._episode_starts()].tolist() == [3.0, 4.0]


def test_observe_rejects_episodes_of_another_length():
    agent = DDPGAgent(N_OBS, EPISODE, np.random.default_rng(0), steps_per_episode=4)
    obs = np.zeros(N_OBS)
    agent.observe(Transition(obs, 0.5, 0.0, obs, False))
    with pytest.raises(ValueError, match="exactly 4 steps"):
        agent.observe(Transition(obs, 0.5, 0.0, obs, True))
    for _ in range(2):
        agent.observe(Transition(obs, 0.5, 0.0, obs, False))
    with pytest.raises(ValueError, match="exactly 4 steps"):
        agent.observe(Transition(obs, 0.5, 0.0, obs, False))


def test_update_regresses_standardised_rewards_on_whole_episodes():
    agent = DDPGAgent(N_OBS, EPISODE, np.random.default_rng(4), steps_per_episode=4)
    _store_episodes(agent, 3, np.random.default_rng(5))
    twin = DDPGAgent(N_OBS, EPISODE, np.random.default_rng(4), steps_per_episode=4)
    _store_episodes(twin, 3, np.random.default_rng(5))

    stats = agent.update()
    starts = twin._episode_starts()
    picked = starts[twin.rng.choice(3, size=3, replace=False)]  # the draw the update made
    rewards = np.array([0.0, 1.0, 2.0])
    assert stats["baseline"] == pytest.approx(1.0)
    targets = (twin.replay.rewards[picked] - 1.0) / rewards.std()
    q, _ = twin.critic.forward(twin.replay.actions[picked[:, None] + np.arange(4)])
    assert stats["critic_loss"] == pytest.approx(float(np.mean((q[:, 0] - targets) ** 2)), rel=1e-12)
    # the actor moved along dQ/da of the updated critic: its first episode's actions now score higher
    obs = agent.replay.obs[picked[0] + np.arange(4)]
    before, _ = agent.critic.forward(twin.actor.forward(obs)[0].reshape(1, 4))
    after, _ = agent.critic.forward(agent.actor.forward(obs)[0].reshape(1, 4))
    assert after[0, 0] > before[0, 0]


def test_config_validation_of_the_critic_kind():
    with pytest.raises(ValueError, match="critic = 'both'; valid: step, episode"):
        DDPGConfig(critic="both")
    with pytest.raises(ValueError, match="warmup_episodes = 0"):
        DDPGConfig(critic="episode", warmup_episodes=0)


def test_resume_with_the_episode_critic_equals_uninterrupted_run(tmp_path):
    config = DDPGConfig(hidden1=16, hidden2=16, batch_size=8, replay_episodes=3, episodes=8, warmup_episodes=2,
                        critic="episode")

    def agent():
        return DDPGAgent(TargetEnv.n_obs, config, np.random.default_rng(11), steps_per_episode=STEPS)

    _, uninterrupted = run_episodes(TargetEnv(), agent(), config.episodes)
    path = tmp_path / "search.h5"
    log = []
    first = agent()
    run_episodes(TargetEnv(), first, 5, checkpoint_path=path, on_episode_end=log.append)
    restored, state = load_checkpoint(path)
    _assert_states_equal(first.state_dict(), restored.state_dict())
    run_episodes(TargetEnv(), restored, config.episodes, state=state, on_episode_end=log.append)
    assert _strip_timings(log) == _strip_timings(uninterrupted)
    assert all(r.update_stats for r in uninterrupted[config.warmup_episodes:])
