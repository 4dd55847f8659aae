"""Episode loop mechanics: final reward on every transition, updates after warm-up, best tracking,
callbacks, seeds, checkpoint and exact resume."""

import numpy as np
import pytest

from hero_lite.rl import DDPGAgent, DDPGConfig, LoopState, load_checkpoint, run_episodes, save_checkpoint
from hero_lite.rl.loop import episode_seed

STEPS = 4
CONFIG = DDPGConfig(hidden1=16, hidden2=16, batch_size=8, replay_episodes=8, episodes=8, warmup_episodes=2)
TIMING_KEYS = ("env_seconds", "agent_seconds")


class TargetEnv:
    """STEPS steps; obs = (step / STEPS, previous action); final reward -sum (a_t - 0.5)^2.

    Returns a non-zero reward (99) on the non-final steps, which the loop must ignore.
    """

    n_obs = 2

    def __init__(self):
        self.seeds = []

    def reset(self, seed):
        self.seeds.append(seed)
        self.t = 0
        self.actions = []
        return np.array([0.0, 1.0])

    def step(self, action):
        self.actions.append(action)
        self.t += 1
        obs = np.array([self.t / STEPS, action])
        if self.t < STEPS:
            return obs, 99.0, False, {}
        reward = -float(np.sum((np.array(self.actions) - 0.5) ** 2))
        return obs, reward, True, {"actions": list(self.actions), "value": np.float64(reward)}


def _agent(seed=0, config=CONFIG):
    return DDPGAgent(TargetEnv.n_obs, config, np.random.default_rng(seed), steps_per_episode=STEPS)


def test_every_transition_carries_the_final_reward():
    env, agent = TargetEnv(), _agent()
    state, records = run_episodes(env, agent, 1)
    replay = agent.replay
    assert len(replay) == STEPS and agent.episode == 1 and agent.updates == 0  # warm-up: no update
    np.testing.assert_array_equal(replay.rewards[:STEPS], records[0].reward)
    np.testing.assert_array_equal(replay.dones[:STEPS], [False, False, False, True])
    np.testing.assert_array_equal(replay.next_obs[:STEPS - 1], replay.obs[1:STEPS])  # s' of t is s of t+1
    np.testing.assert_array_equal(replay.actions[:STEPS], records[0].actions)
    assert records[0].info["value"] == records[0].reward and records[0].exploration == "uniform"
    assert state.next_episode == 1 and state.best.episode == 0


class ClippingEnv(TargetEnv):
    """TargetEnv whose "budget wall" halves every action above 0.3 and reports what it ran."""

    def step(self, action):
        obs, reward, done, info = super().step(action)
        if done:
            info["executed_actions"] = [a / 2 if a > 0.3 else a for a in self.actions]
        return obs, reward, done, info


def test_executed_actions_replace_the_taken_ones_in_replay():
    env, agent = ClippingEnv(), _agent()
    _, records = run_episodes(env, agent, 1)
    taken = np.array(env.actions)
    assert np.any(taken > 0.3)  # so the wall changed something
    executed = np.where(taken > 0.3, taken / 2, taken)
    np.testing.assert_array_equal(agent.replay.actions[:STEPS], executed)
    np.testing.assert_array_equal(records[0].actions, taken)  # the record keeps what the agent did

    class BrokenEnv(TargetEnv):
        def step(self, action):
            obs, reward, done, info = super().step(action)
            return obs, reward, done, {**info, "executed_actions": [0.5]} if done else info

    with pytest.raises(ValueError, match="executed_actions"):
        run_episodes(BrokenEnv(), _agent(), 1)


def test_updates_only_after_warmup_one_per_step():
    agent = _agent(config=DDPGConfig(**{**CONFIG.to_dict(), "updates_per_step": 2}))
    _, records = run_episodes(TargetEnv(), agent, 4)
    assert agent.updates == 2 * STEPS * 2  # episodes 2 and 3, two updates per stored step
    assert [r.exploration for r in records] == ["uniform", "uniform", "truncated_normal", "truncated_normal"]
    assert records[1].sigma is None and records[2].sigma == CONFIG.noise_sigma_initial
    assert records[1].update_stats == {} and set(records[3].update_stats) >= {"critic_loss", "actor_loss", "q_mean"}


def test_best_tracking_and_callbacks():
    ended, progressed = [], []
    _, records = run_episodes(TargetEnv(), _agent(), 6, on_episode_end=ended.append,
                              progress=lambda episode, record: progressed.append(episode))
    assert ended == records and progressed == list(range(6))
    running_best = -np.inf
    for record in records:
        running_best = max(running_best, record.reward)
        assert record.best_reward == running_best
        assert records[record.best_episode].reward == running_best


def test_reset_seeds_depend_only_on_env_seed_and_episode():
    env_a, env_b = TargetEnv(), TargetEnv()
    run_episodes(env_a, _agent(), 3, env_seed=5)
    run_episodes(env_b, _agent(1), 3, env_seed=5)
    assert env_a.seeds == env_b.seeds == [episode_seed(5, e) for e in range(3)]
    assert len(set(env_a.seeds)) == 3 and episode_seed(6, 0) != episode_seed(5, 0)


def test_agent_and_loop_must_agree_on_the_episode():
    agent = _agent()
    run_episodes(TargetEnv(), agent, 2)
    with pytest.raises(ValueError, match="finished 2 episodes; cannot run episode 0"):
        run_episodes(TargetEnv(), agent, 3)


def _strip_timings(records):
    return [{k: v for k, v in r.to_dict().items() if k not in TIMING_KEYS} for r in records]


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    _, uninterrupted = run_episodes(TargetEnv(), _agent(seed=11), CONFIG.episodes)

    path = tmp_path / "search.h5"
    log = []
    run_episodes(TargetEnv(), _agent(seed=11), 5, checkpoint_path=path, on_episode_end=log.append)
    agent, state = load_checkpoint(path)  # as after a kill during episode 5
    assert state.next_episode == 5 and agent.episode == 5
    _, rest = run_episodes(TargetEnv(), agent, CONFIG.episodes, state=state, on_episode_end=log.append)
    assert _strip_timings(log) == _strip_timings(uninterrupted)


def test_checkpoint_round_trip_of_loop_state(tmp_path):
    agent = _agent()
    state, _ = run_episodes(TargetEnv(), agent, 3)
    save_checkpoint(tmp_path / "c.h5", agent, state)
    _, loaded = load_checkpoint(tmp_path / "c.h5")
    assert loaded.to_dict() == state.to_dict()
    assert LoopState.from_dict(state.to_dict()).to_dict() == state.to_dict()
    agent.save(tmp_path / "bare.h5")
    with pytest.raises(ValueError, match="without loop state"):
        load_checkpoint(tmp_path / "bare.h5")
