"""DDPG agent: gradients against finite differences, Adam, soft update, baseline, update order,
determinism, HDF5 round trip, config validation."""

import h5py
import numpy as np
import pytest

from hero_lite.rl import DDPGAgent, DDPGConfig, Transition
from hero_lite.rl.ddpg import soft_update, update_baseline
from hero_lite.rl.networks import Actor, Critic
from hero_lite.rl.optim import Adam

N_OBS = 5
SMALL = DDPGConfig(hidden1=16, hidden2=12, batch_size=8, replay_episodes=4, episodes=10, warmup_episodes=2)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _numeric_grad(loss, flat, eps=1e-6):
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def test_actor_gradient_matches_central_differences(rng):
    actor = Actor(N_OBS, 11, 9)
    actor.params.init_uniform(rng)
    obs = rng.random((6, N_OBS))
    weights = rng.normal(size=(6, 1))  # loss = sum(weights * mu)

    def loss():
        return float((weights * actor.forward(obs)[0]).sum())

    _, cache = actor.forward(obs)
    analytic = actor.backward(cache, weights).copy()
    numeric = _numeric_grad(loss, actor.params.flat)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_critic_gradients_match_central_differences(rng):
    critic = Critic(N_OBS, 11, 9)
    critic.params.init_uniform(rng)
    obs = rng.random((6, N_OBS))
    actions = rng.random((6, 1))
    weights = rng.normal(size=(6, 1))  # loss = sum(weights * Q)

    def loss():
        return float((weights * critic.forward(obs, actions)[0]).sum())

    _, cache = critic.forward(obs, actions)
    analytic = critic.backward(cache, weights).copy()
    numeric = _numeric_grad(loss, critic.params.flat)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)

    dq_da = critic.action_gradient(cache)
    eps = 1e-6
    numeric_da = (critic.forward(obs, actions + eps)[0] - critic.forward(obs, actions - eps)[0]) / (2 * eps)
    np.testing.assert_allclose(dq_da, numeric_da, rtol=1e-6, atol=1e-9)


def test_init_is_pytorch_default_uniform(rng):
    critic = Critic(N_OBS, 300, 300)
    critic.params.init_uniform(rng)
    p = critic.params.views
    # bound 1/sqrt(fan_in): 1/sqrt(5) for fc11, 1 for fc12 (fan_in 1), 1/sqrt(300) for fc2 and fc3
    assert np.abs(p["w11"]).max() <= 1 / np.sqrt(N_OBS) and np.abs(p["w11"]).max() > 0.9 / np.sqrt(N_OBS)
    assert np.abs(p["w12"]).max() <= 1.0 and np.abs(p["b12"]).max() > 0.9
    assert np.abs(p["w2"]).max() <= 1 / np.sqrt(300) and np.abs(p["b3"]).max() <= 1 / np.sqrt(300)


def test_adam_matches_hand_computed_steps():
    params = np.array([1.0, -2.0, 0.5])
    adam = Adam(3, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    # step 1, g = (0.5, -1, 0): m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2,
    # update = 0.1 * g / (|g| + 1e-8) = (0.1, -0.1, 0) up to eps
    adam.step(params, np.array([0.5, -1.0, 0.0]))
    np.testing.assert_allclose(params, [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 / (1 + 1e-8), 0.5], rtol=0, atol=1e-15)
    # step 2, g = (0.5, 1, 2): m = (0.095, 0.01, 0.2), v = (0.0004995 + 0.00025, 0.000999 + 0.001, 0.004)
    adam.step(params, np.array([0.5, 1.0, 2.0]))
    m = np.array([0.095, 0.01, 0.2])
    v = np.array([0.000999 * 0.25 + 0.001 * 0.25, 0.000999 + 0.001, 0.004])
    expected_step = 0.1 / (1 - 0.9**2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**2) + 1e-8)
    before = np.array([1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 / (1 + 1e-8), 0.5])
    np.testing.assert_allclose(params, before - expected_step, rtol=1e-13)
    np.testing.assert_allclose(adam.m, m, rtol=1e-13)
    np.testing.assert_allclose(adam.v, v, rtol=1e-13)
    assert adam.step_count == 2


def test_soft_update():
    target = np.zeros(3)
    source = np.ones(3)
    scratch = np.empty(3)
    soft_update(target, source, 0.01, scratch)
    np.testing.assert_allclose(target, 0.01)
    soft_update(target, source, 0.01, scratch)
    np.testing.assert_allclose(target, 0.01 * 0.99 + 0.01)  # 0.0199


def test_baseline_rule():
    assert update_baseline(None, 3.0, 0.5) == 3.0  # first call: the batch mean
    assert update_baseline(3.0, 5.0, 0.5) == 4.0  # 3 + 0.5 (5 - 3)
    assert update_baseline(4.0, 0.0, 0.5) == 2.0


def _filled_agent(seed=0, config=SMALL, n_transitions=30):
    agent = DDPGAgent(N_OBS, config, np.random.default_rng(seed), steps_per_episode=5)
    data = np.random.default_rng(100)
    for i in range(n_transitions):
        agent.observe(Transition(data.random(N_OBS), data.random(), data.normal(), data.random(N_OBS), i % 5 == 4))
    return agent


def test_first_update_sets_baseline_to_batch_mean():
    agent = _filled_agent()
    stats = agent.update()
    assert stats["baseline"] == stats["batch_reward_mean"]
    second = agent.update()
    assert second["baseline"] == pytest.approx(stats["baseline"] + 0.5 * (second["batch_reward_mean"] - stats["baseline"]))


def test_update_order_critic_then_actor_against_updated_critic():
    agent = _filled_agent()
    twin = _filled_agent()
    stats = agent.update()
    batch = twin.replay.sample(SMALL.batch_size, twin.rng)  # the same draws as agent's update
    mu, _ = twin.actor.forward(batch.obs)  # actor before its step
    q_updated, _ = agent.critic.forward(batch.obs, mu)  # critic after its step
    q_old, _ = twin.critic.forward(batch.obs, mu)
    assert stats["actor_loss"] == pytest.approx(-q_updated.mean(), rel=1e-12)
    assert stats["actor_loss"] != pytest.approx(-q_old.mean(), rel=1e-9)
    # targets moved by tau toward the updated networks
    expected = (1 - SMALL.tau) * twin.actor_target.params.flat + SMALL.tau * agent.actor.params.flat
    np.testing.assert_allclose(agent.actor_target.params.flat, expected, rtol=1e-14)


def test_act_range_and_exploration_modes():
    agent = _filled_agent(n_transitions=0)
    obs = np.full(N_OBS, 0.5)
    actions = [agent.act(obs, explore=True) for _ in range(50)]  # warm-up: uniform
    assert all(0.0 <= a <= 1.0 for a in actions) and np.std(actions) > 0.2
    assert agent.exploration_sigma is None
    greedy = agent.act(obs, explore=False)
    assert greedy == agent.act(obs, explore=False) == agent.actor_action(obs)
    agent.episode = SMALL.warmup_episodes
    assert agent.exploration_sigma == SMALL.noise_sigma_initial
    noisy = [agent.act(obs, explore=True) for _ in range(50)]
    assert all(0.0 <= a <= 1.0 for a in noisy)
    with pytest.raises(ValueError, match="observation shape"):
        agent.act(np.zeros(N_OBS + 1), explore=False)


def test_same_seed_gives_identical_actions_and_weights():
    runs = []
    for _ in range(2):
        agent = _filled_agent(seed=3)
        stats = [agent.update() for _ in range(4)]
        agent.episode = SMALL.warmup_episodes
        actions = [agent.act(np.full(N_OBS, 0.3), explore=True) for _ in range(5)]
        runs.append((stats, actions, agent.state_dict()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    _assert_states_equal(runs[0][2], runs[1][2])
    other = _filled_agent(seed=4)
    assert not np.array_equal(other.actor.params.flat, _filled_agent(seed=3).actor.params.flat)


def _assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_states_equal(a[key], b[key])
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


def test_hdf5_round_trip_restores_everything(tmp_path):
    agent = _filled_agent(seed=5)
    for _ in range(3):
        agent.update()
    path = tmp_path / "agent.h5"
    agent.save(path, metadata={"note": "x"})
    loaded = DDPGAgent.load(path)
    _assert_states_equal(agent.state_dict(), loaded.state_dict())
    # continuing from the loaded agent equals continuing from the original, bit for bit
    assert [agent.update() for _ in range(2)] == [loaded.update() for _ in range(2)]
    agent.episode = loaded.episode = SMALL.warmup_episodes + 1
    assert agent.act(np.full(N_OBS, 0.2), True) == loaded.act(np.full(N_OBS, 0.2), True)
    _assert_states_equal(agent.state_dict(), loaded.state_dict())
    assert not list(tmp_path.glob(".*tmp*"))  # temp file renamed away


def test_fresh_agent_round_trip_without_baseline(tmp_path):
    agent = _filled_agent(n_transitions=3)
    agent.save(tmp_path / "a.h5")
    loaded = DDPGAgent.load(tmp_path / "a.h5")
    assert loaded.baseline is None and len(loaded.replay) == 3


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ValueError, match="not a hero-lite agent"):
        DDPGAgent.load(path)
    with pytest.raises(ValueError, match="cannot read"):
        DDPGAgent.load(tmp_path / "missing.h5")


def test_load_state_dict_rejects_mismatches():
    agent = _filled_agent()
    state = agent.state_dict()
    other_config = DDPGAgent(N_OBS, DDPGConfig(**{**SMALL.to_dict(), "tau": 0.02}), np.random.default_rng(0),
                             steps_per_episode=5)
    with pytest.raises(ValueError, match="tau"):
        other_config.load_state_dict(state)
    other_obs = DDPGAgent(N_OBS + 1, SMALL, np.random.default_rng(0), steps_per_episode=5)
    with pytest.raises(ValueError, match="n_obs"):
        other_obs.load_state_dict(state)


def test_config_defaults_are_haq():
    c = DDPGConfig()
    assert (c.hidden1, c.hidden2, c.lr_actor, c.lr_critic, c.tau, c.batch_size) == (300, 300, 1e-4, 1e-3, 0.01, 64)
    assert (c.replay_episodes, c.warmup_episodes, c.noise_sigma_initial, c.baseline_rate) == (128, 20, 0.5, 0.5)
    assert (c.adam_beta1, c.adam_beta2, c.adam_eps) == (0.9, 0.999, 1e-8)


def test_config_rejects_unknown_keys_listing_valid_ones():
    with pytest.raises(ValueError, match="unknown key.*lr_critc.*valid keys: hidden1, hidden2"):
        DDPGConfig.from_dict({"lr_critc": 1e-3})
    assert DDPGConfig.from_dict({"lr_critic": 2e-3}).lr_critic == 2e-3
    assert DDPGConfig.from_dict(DDPGConfig().to_dict()) == DDPGConfig()


@pytest.mark.parametrize("key, value", [("tau", 0.0), ("tau", 1.5), ("batch_size", 0), ("discount", -0.1),
                                        ("hidden1", 2.5), ("warmup_episodes", 100), ("lr_actor", -1.0),
                                        ("noise_sigma_final", 0.9), ("adam_beta1", 1.0), ("updates_per_step", 0)])
def test_config_rejects_out_of_range_values(key, value):
    with pytest.raises(ValueError, match=key if key != "warmup_episodes" else "warmup_episodes"):
        DDPGConfig.from_dict({key: value})


def test_imitate_fits_the_start_policy_and_leaves_the_rest_alone():
    agent = DDPGAgent(N_OBS, DDPGConfig(hidden1=32, hidden2=32, episodes=10, warmup_episodes=2),
                      np.random.default_rng(3), steps_per_episode=6)
    data = np.random.default_rng(4)
    observations = data.random((6, N_OBS))
    wanted = np.array([0.93, 0.1, 0.5, 0.93, 0.25, 0.7])
    rng_state = agent.rng.bit_generator.state
    adam_steps = agent.actor_optim.step_count
    before = max(abs(agent.actor_action(o) - a) for o, a in zip(observations, wanted))
    error = agent.imitate(observations, wanted, steps=400)
    after = [agent.actor_action(o) for o in observations]
    assert before > 0.2 and error < 0.02
    assert np.max(np.abs(np.array(after) - wanted)) == pytest.approx(error)
    assert np.array_equal(agent.actor_target.params.flat, agent.actor.params.flat)
    assert agent.rng.bit_generator.state == rng_state and agent.actor_optim.step_count == adam_steps
    with pytest.raises(ValueError, match="imitate"):
        agent.imitate(observations[:, :2], wanted)
    with pytest.raises(ValueError, match="imitate"):
        agent.imitate(observations, wanted + 1.0)
