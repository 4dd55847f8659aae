"""HAQ's DDPG agent in NumPy: configuration, target networks, reward baseline, exploration, update.

The agent (HAQ code `lib/rl/ddpg.py`, class `DDPG`) acts on a scalar action in [0, 1] with the actor
and critic of `hero_lite.rl.networks`, trained by the Adam of `hero_lite.rl.optim`; its state is
written to HDF5 by `hero_lite.rl.agent_file`.

One update (HAQ `DDPG.update_policy`; DDPG paper, Lillicrap et al. 2016, Algorithm 1):
1. sample a batch; baseline r_bar <- m on the first update, else r_bar + 0.5 (m - r_bar), m the batch
   mean reward; rewards become r - r_bar;
2. y = (r - r_bar) + discount (1 - done) Q'(s', mu'(s')) with the target networks;
3. critic step on the mean squared error (Q(s, a) - y)^2;
4. actor step on -mean Q(s, mu(s)) against the updated critic;
5. soft update of both targets, theta' <- (1 - tau) theta' + tau theta.

Episode critic (`DDPGConfig.critic = "episode"`, hero-lite's option, not HAQ's). With a final reward
only, HAQ's per-step critic regresses the episode's reward R on one step's (s_t, a_t); the other
T - 1 actions act as noise, so each point's effect is learned from a few dozen noisy samples. The
episode critic (`hero_lite.rl.networks.EpisodeCritic`) regresses R on all T actions of the episode
at once, and the actor follows dQ/da_t at each step's observation: a deterministic policy gradient
for an episode seen as one T-dimensional action (the environment is a one-shot bandit: the
observations depend only on the earlier actions). One update: sample min(batch_size, K) of the K
whole episodes in the replay, standardise their rewards by the mean and sd of all K (the `baseline`
is that mean), one critic step on the squared error, then one actor step on
-mean Q(mu(s_1)..mu(s_T)) over max(1, batch_size // T) of the sampled episodes (about batch_size
observations, as in step mode), against the updated critic; soft updates as above. `discount` is
unused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hero_lite.rl.agent_file import read_agent_file, write_agent_file
from hero_lite.rl.networks import Actor, Critic, EpisodeCritic
from hero_lite.rl.noise import HAQ_SIGMA_FINAL, HAQ_SIGMA_INITIAL, ExplorationSchedule
from hero_lite.rl.optim import Adam
from hero_lite.rl.replay import ReplayBuffer, Transition

CRITIC_KINDS = ("step", "episode")


@dataclass(frozen=True)
class DDPGConfig:
    """Every hyper-parameter of the agent; defaults are HAQ's (HAQ code `lib/rl/ddpg.py`, `rl_quantize.py`) except `discount`.

    Attributes
    ----------
    hidden1, hidden2 : widths of the two hidden layers of actor and critic (HAQ: 300, 300).
    lr_actor, lr_critic : Adam learning rates (HAQ: 1e-4, 1e-3).
    adam_beta1, adam_beta2, adam_eps : Adam constants (PyTorch defaults).
    discount : gamma of the TD target. Default 0, not HAQ's 1.0: every transition already carries
        the episode's final reward, so with gamma 1 the bootstrap adds that reward once per remaining
        step and Q(s_t) drifts towards (steps left) x (R - r_bar); with gamma 0 each step's Q regresses
        on R - r_bar directly and no target-network pass is needed. Measured on the synthetic
        environment (tests/rl/synthetic.py, 20 points, 100 episodes, seeds 0-7): normalized best reward
        median 0.85 with gamma 0 against 0.78 with gamma 1, and 2.3x less agent time.
    tau : soft-update rate of the target networks (HAQ: 0.01).
    batch_size : transitions per update (HAQ: 64).
    replay_episodes : replay capacity in episodes; capacity = replay_episodes x steps per episode
        (HAQ: 128 x layers).
    baseline_rate : step of the moving-average reward baseline (HAQ `moving_alpha`: 0.5).
    episodes : length of the search; the exploration sd reaches `noise_sigma_final` there.
    warmup_episodes : episodes of uniform random actions before any update (HAQ: 20).
    noise_sigma_initial : sd of the truncated-normal noise in the first episode after warm-up (HAQ: 0.5).
    noise_sigma_final : sd at episode `episodes` (default HAQ's sd after 600 episodes, 0.5 * 0.99^580).
    updates_per_step : DDPG updates after each stored transition once warm-up is over (HAQ `n_update`: 1).
    critic : 'step' (HAQ: Q(s_t, a_t) per step) or 'episode' (Q of all T actions of an episode; module
        docstring). Episode mode needs every episode to have exactly `steps_per_episode` steps.
    """

    hidden1: int = 300
    hidden2: int = 300
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    discount: float = 0.0
    tau: float = 0.01
    batch_size: int = 64
    replay_episodes: int = 128
    baseline_rate: float = 0.5
    episodes: int = 100
    warmup_episodes: int = 20
    noise_sigma_initial: float = HAQ_SIGMA_INITIAL
    noise_sigma_final: float = HAQ_SIGMA_FINAL
    updates_per_step: int = 1
    critic: str = "step"

    def __post_init__(self) -> None:
        int_ranges = {"hidden1": 1, "hidden2": 1, "batch_size": 1, "replay_episodes": 1, "episodes": 1,
                      "warmup_episodes": 0, "updates_per_step": 1}
        for key, lowest in int_ranges.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
                raise ValueError(f"ddpg {key} = {value!r}; valid: integer >= {lowest}")
        open_closed = {"lr_actor": (0.0, math.inf), "lr_critic": (0.0, math.inf), "adam_eps": (0.0, math.inf),
                       "tau": (0.0, 1.0), "baseline_rate": (0.0, 1.0), "noise_sigma_initial": (0.0, math.inf),
                       "noise_sigma_final": (0.0, math.inf)}
        for key, (lo, hi) in open_closed.items():
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo < value <= hi:
                raise ValueError(f"ddpg {key} = {value!r}; valid: number in ({lo}, {hi}]")
        closed_open = {"adam_beta1": (0.0, 1.0), "adam_beta2": (0.0, 1.0)}
        for key, (lo, hi) in closed_open.items():
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value < hi:
                raise ValueError(f"ddpg {key} = {value!r}; valid: number in [{lo}, {hi})")
        if self.critic not in CRITIC_KINDS:
            raise ValueError(f"ddpg critic = {self.critic!r}; valid: {', '.join(CRITIC_KINDS)}")
        if self.critic == "episode" and self.warmup_episodes < 1:
            raise ValueError("ddpg warmup_episodes = 0; valid with critic 'episode': >= 1 (its first update "
                             "needs a whole episode)")
        if not isinstance(self.discount, (int, float)) or not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"ddpg discount = {self.discount!r}; valid: number in [0, 1]")
        if self.warmup_episodes >= self.episodes:
            raise ValueError(f"ddpg warmup_episodes = {self.warmup_episodes}; valid: < episodes = {self.episodes}")
        if self.noise_sigma_final > self.noise_sigma_initial:
            raise ValueError(f"ddpg noise_sigma_final = {self.noise_sigma_final}; valid: <= noise_sigma_initial "
                             f"= {self.noise_sigma_initial}")

    @property
    def exploration(self) -> ExplorationSchedule:
        """The warm-up and noise schedule these settings describe."""
        return ExplorationSchedule(episodes=self.episodes, warmup_episodes=self.warmup_episodes,
                                   sigma_initial=self.noise_sigma_initial, sigma_final=self.noise_sigma_final)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DDPGConfig":
        """Build from a dict of overrides; unknown keys raise ValueError listing the valid ones."""
        if not isinstance(data, dict):
            raise TypeError(f"ddpg config: expected a table/dict, got {type(data).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f"ddpg config: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
        return cls(**data)




def soft_update(target: np.ndarray, source: np.ndarray, tau: float, scratch: np.ndarray) -> None:
    """theta' <- (1 - tau) theta' + tau theta, in place on `target` (DDPG paper; HAQ `soft_update`).

    `scratch` is a work array of the same shape (avoids allocating one per update).
    """
    target *= 1.0 - tau
    np.multiply(source, tau, out=scratch)
    target += scratch


def update_baseline(baseline: float | None, batch_mean_reward: float, rate: float) -> float:
    """HAQ's moving-average reward baseline: m on the first call (baseline None), else b + rate (m - b)."""
    if baseline is None:
        return float(batch_mean_reward)
    return float(baseline + rate * (batch_mean_reward - baseline))


class DDPGAgent:
    """HAQ's DDPG agent for a scalar action in [0, 1].

    Parameters
    ----------
    n_obs : observation length.
    config : hyper-parameters.
    rng : the only source of randomness (init, exploration, replay sampling); the agent keeps it and
        its state is part of `state_dict`, so a restored agent continues bit for bit.
    steps_per_episode : steps of one episode; sets the replay capacity, config.replay_episodes x this.

    The agent counts finished episodes (`episode`): `observe` of a transition with done=True ends one.
    `act(obs, explore=True)` explores as the schedule says for the current episode.
    """

    def __init__(self, n_obs: int, config: DDPGConfig, rng: np.random.Generator, *, steps_per_episode: int):
        if not isinstance(n_obs, (int, np.integer)) or n_obs < 1:
            raise ValueError(f"n_obs = {n_obs!r}; valid: integer >= 1")
        if not isinstance(steps_per_episode, (int, np.integer)) or steps_per_episode < 1:
            raise ValueError(f"steps_per_episode = {steps_per_episode!r}; valid: integer >= 1")
        if not isinstance(config, DDPGConfig):
            raise TypeError(f"config must be a DDPGConfig, got {type(config).__name__}")
        self.n_obs = int(n_obs)
        self.steps_per_episode = int(steps_per_episode)
        self.config = config
        self.exploration = config.exploration
        self.rng = rng
        c = config
        self.actor = Actor(self.n_obs, c.hidden1, c.hidden2)
        self.critic = self._make_critic()
        self.actor.params.init_uniform(rng)
        self.critic.params.init_uniform(rng)
        self.actor_target = Actor(self.n_obs, c.hidden1, c.hidden2)
        self.critic_target = self._make_critic()
        self.actor_target.params.flat[:] = self.actor.params.flat  # hard update (HAQ)
        self.critic_target.params.flat[:] = self.critic.params.flat
        self.actor_optim = Adam(self.actor.params.flat.size, c.lr_actor, c.adam_beta1, c.adam_beta2, c.adam_eps)
        self.critic_optim = Adam(self.critic.params.flat.size, c.lr_critic, c.adam_beta1, c.adam_beta2, c.adam_eps)
        self.replay = ReplayBuffer(c.replay_episodes * self.steps_per_episode, self.n_obs)
        self.baseline: float | None = None
        self.episode = 0
        self.updates = 0

    def _make_critic(self) -> Critic | EpisodeCritic:
        c = self.config
        if c.critic == "episode":
            return EpisodeCritic(self.steps_per_episode, c.hidden1, c.hidden2)
        return Critic(self.n_obs, c.hidden1, c.hidden2)

    def _check_obs(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (self.n_obs,):
            raise ValueError(f"observation shape {obs.shape}; expected ({self.n_obs},)")
        return obs

    def actor_action(self, obs) -> float:
        """The actor's deterministic action mu(obs) in (0, 1) for obs (n_obs,)."""
        mu, _ = self.actor.forward(self._check_obs(obs)[None, :])
        return float(mu[0, 0])

    def act(self, obs, explore: bool) -> float:
        """Action in [0, 1] for obs (n_obs,) float.

        explore=False: the actor's output. explore=True: U(0, 1) in warm-up episodes, else a truncated
        normal around the actor's output with the current episode's sd (one rng draw either way).
        """
        if explore and self.exploration.is_warmup(self.episode):
            return float(self.rng.random())
        mu = self.actor_action(obs)
        if not explore:
            return mu
        return self.exploration.explore(self.episode, mu, self.rng)

    @property
    def in_warmup(self) -> bool:
        """Whether the current episode is a warm-up episode (random actions, no updates)."""
        return self.exploration.is_warmup(self.episode)

    @property
    def exploration_sigma(self) -> float | None:
        """sd of the exploration noise in the current episode; None in warm-up (uniform actions)."""
        return None if self.in_warmup else self.exploration.sigma(self.episode)

    def imitate(self, observations, actions, steps: int = 300, lr: float = 1e-3) -> float:
        """Fit the actor (and its target) to given actions: the search's start policy.

        Minimises mean (mu(s) - a)^2 over the pairs with a fresh Adam (full batch, no randomness), then
        copies the actor into the target actor. Neither the actor's own Adam state nor the generator
        is touched, so the run after this is a DDPG run started from that policy.

        Parameters
        ----------
        observations : (n, n_obs) float.
        actions : (n,) float in [0, 1], the action wanted at each observation.
        steps, lr : Adam steps and learning rate.

        Returns
        -------
        The largest |mu(s) - a| after the fit.
        """
        obs = np.asarray(observations, dtype=np.float64)
        target = np.asarray(actions, dtype=np.float64).reshape(-1, 1)
        if obs.ndim != 2 or obs.shape[1] != self.n_obs or target.shape[0] != obs.shape[0]:
            raise ValueError(f"imitate: observations {obs.shape} and actions {target.shape[0]} do not match "
                             f"(n, {self.n_obs}) and (n,)")
        if np.any((target < 0.0) | (target > 1.0)):
            raise ValueError("imitate: actions must lie in [0, 1]")
        c = self.config
        optim = Adam(self.actor.params.flat.size, lr, c.adam_beta1, c.adam_beta2, c.adam_eps)
        n = obs.shape[0]
        for _ in range(steps):
            mu, cache = self.actor.forward(obs)
            optim.step(self.actor.params.flat, self.actor.backward(cache, (2.0 / n) * (mu - target)))
        self.actor_target.params.flat[:] = self.actor.params.flat
        mu, _ = self.actor.forward(obs)
        return float(np.max(np.abs(mu - target)))

    def observe(self, transition: Transition) -> None:
        """Store a transition in the replay buffer; done=True also ends the current episode.

        With the episode critic, an episode must end after exactly `steps_per_episode` transitions.
        """
        if self.config.critic == "episode":
            step = self._steps_into_episode()
            if bool(transition.done) != (step == self.steps_per_episode - 1):
                raise ValueError(f"episode critic: transition {step + 1} of an episode has done={transition.done}; "
                                 f"every episode must have exactly {self.steps_per_episode} steps")
        self.replay.add(transition)
        if transition.done:
            self.episode += 1

    def _steps_into_episode(self) -> int:
        """Transitions of the unfinished episode in the replay (episode mode: the ring holds whole
        episodes at slots e * T mod capacity, because capacity is a multiple of T)."""
        capacity = self.replay.capacity
        return (self.replay.position - (self.episode * self.steps_per_episode) % capacity) % capacity

    def _episode_starts(self) -> np.ndarray:
        """Replay slots of the first step of each whole episode held, oldest first, (K,) int64."""
        t, capacity = self.steps_per_episode, self.replay.capacity
        kept = min(self.episode, self.config.replay_episodes - int(self._steps_into_episode() > 0))
        episodes = np.arange(self.episode - kept, self.episode, dtype=np.int64)
        return (episodes * t) % capacity

    def update(self) -> dict[str, float]:
        """One DDPG update (module docstring). Needs a non-empty replay buffer.

        Returns
        -------
        dict with critic_loss (MSE before the step), actor_loss (-mean Q(s, mu(s)) with the updated
        critic, before the actor step), q_mean (mean Q(s, a) of the batch before the step), baseline,
        batch_reward_mean.
        """
        if self.config.critic == "episode":
            return self._update_episode_critic()
        c = self.config
        batch = self.replay.sample(c.batch_size, self.rng)
        batch_reward_mean = float(batch.rewards.mean())
        self.baseline = update_baseline(self.baseline, batch_reward_mean, c.baseline_rate)
        rewards = batch.rewards - self.baseline

        if c.discount > 0.0:
            next_actions, _ = self.actor_target.forward(batch.next_obs)
            next_q, _ = self.critic_target.forward(batch.next_obs, next_actions)
            target_q = rewards + c.discount * batch.not_done * next_q
        else:  # the bootstrap term vanishes; skip the two target forward passes
            target_q = rewards

        q, critic_cache = self.critic.forward(batch.obs, batch.actions)
        td_error = q - target_q
        n = q.shape[0]
        critic_loss = float(np.mean(td_error**2))
        self.critic_optim.step(self.critic.params.flat, self.critic.backward(critic_cache, (2.0 / n) * td_error))

        mu, actor_cache = self.actor.forward(batch.obs)
        q_of_mu, cache_of_mu = self.critic.forward(batch.obs, mu)
        actor_loss = -float(q_of_mu.mean())
        d_mu = -self.critic.action_gradient(cache_of_mu) / n
        self.actor_optim.step(self.actor.params.flat, self.actor.backward(actor_cache, d_mu))

        soft_update(self.actor_target.params.flat, self.actor.params.flat, c.tau, self.actor_optim.scratch)
        soft_update(self.critic_target.params.flat, self.critic.params.flat, c.tau, self.critic_optim.scratch)
        self.updates += 1
        return {"critic_loss": critic_loss, "actor_loss": actor_loss, "q_mean": float(q.mean()),
                "baseline": self.baseline, "batch_reward_mean": batch_reward_mean}

    def _update_episode_critic(self) -> dict[str, float]:
        """One update of the episode critic and the actor (module docstring); same return as `update`."""
        c, t = self.config, self.steps_per_episode
        starts = self._episode_starts()
        if starts.size == 0:
            raise ValueError("episode critic: no whole episode in the replay yet")
        rewards = self.replay.rewards[starts]
        self.baseline = float(rewards.mean())
        scale = float(rewards.std()) or 1.0
        picked = starts[self.rng.choice(starts.size, size=min(c.batch_size, starts.size), replace=False)]
        rows = picked[:, None] + np.arange(t)  # (batch, T) replay slots
        picked_rewards = self.replay.rewards[picked]
        targets = ((picked_rewards - self.baseline) / scale)[:, None]

        q, critic_cache = self.critic.forward(self.replay.actions[rows])
        error = q - targets
        n = q.shape[0]
        critic_loss = float(np.mean(error**2))
        self.critic_optim.step(self.critic.params.flat, self.critic.backward(critic_cache, (2.0 / n) * error))

        actor_rows = rows[:max(1, min(n, c.batch_size // t))]
        mu, actor_cache = self.actor.forward(self.replay.obs[actor_rows.ravel()])
        q_of_mu, cache_of_mu = self.critic.forward(mu.reshape(actor_rows.shape))
        actor_loss = -float(q_of_mu.mean())
        d_mu = -self.critic.action_gradient(cache_of_mu).reshape(-1, 1) / actor_rows.shape[0]
        self.actor_optim.step(self.actor.params.flat, self.actor.backward(actor_cache, d_mu))

        soft_update(self.actor_target.params.flat, self.actor.params.flat, c.tau, self.actor_optim.scratch)
        soft_update(self.critic_target.params.flat, self.critic.params.flat, c.tau, self.critic_optim.scratch)
        self.updates += 1
        return {"critic_loss": critic_loss, "actor_loss": actor_loss, "q_mean": float(q.mean()),
                "baseline": self.baseline, "batch_reward_mean": float(picked_rewards.mean())}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed agent needs, as copies: config, the four networks, both Adams, the
        replay buffer, episode and update counters, baseline and the generator state."""
        return {
            "n_obs": self.n_obs,
            "steps_per_episode": self.steps_per_episode,
            "config": self.config.to_dict(),
            "actor": self.actor.params.flat.copy(),
            "critic": self.critic.params.flat.copy(),
            "actor_target": self.actor_target.params.flat.copy(),
            "critic_target": self.critic_target.params.flat.copy(),
            "actor_adam": self.actor_optim.state_dict(),
            "critic_adam": self.critic_optim.state_dict(),
            "replay": self.replay.state_dict(),
            "episode": self.episode,
            "updates": self.updates,
            "baseline": self.baseline,
            "rng": json.loads(json.dumps(self.rng.bit_generator.state)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()` output; n_obs, steps per episode and config must match.

        The generator passed at construction gets the saved state (same bit generator type required).
        """
        if int(state["n_obs"]) != self.n_obs or int(state["steps_per_episode"]) != self.steps_per_episode:
            raise ValueError(f"agent state is for n_obs {state['n_obs']}, steps_per_episode "
                             f"{state['steps_per_episode']}; this agent has {self.n_obs}, {self.steps_per_episode}")
        saved_config = DDPGConfig.from_dict(dict(state["config"]))
        if saved_config != self.config:
            diffs = [f"{k} {v!r} (agent: {getattr(self.config, k)!r})" for k, v in saved_config.to_dict().items()
                     if getattr(self.config, k) != v]
            raise ValueError(f"agent state has another config: {', '.join(diffs)}")
        rng_state = state["rng"]
        if rng_state.get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise ValueError(f"agent state has a {rng_state.get('bit_generator')} generator; "
                             f"this agent's is {type(self.rng.bit_generator).__name__}")
        for name, net in (("actor", self.actor), ("critic", self.critic), ("actor_target", self.actor_target),
                          ("critic_target", self.critic_target)):
            values = np.asarray(state[name], dtype=np.float64)
            if values.shape != net.params.flat.shape:
                raise ValueError(f"agent state {name} has {values.size} parameters; expected {net.params.flat.size}")
            net.params.flat[:] = values
        for name, optim in (("actor_adam", self.actor_optim), ("critic_adam", self.critic_optim)):
            optim.load_state_dict(state[name], name=f"agent state {name}")
        self.replay.load_state_dict(state["replay"])
        self.episode = int(state["episode"])
        self.updates = int(state["updates"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.rng.bit_generator.state = rng_state

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        """Write the full agent state (see `state_dict`) and the caller's JSON `metadata` to HDF5,
        atomically (layout: `hero_lite.rl.agent_file`)."""
        write_agent_file(path, self.state_dict(), metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DDPGAgent":
        """Rebuild an agent saved by `save`, with a generator of the saved type and state.

        Raises ValueError naming the problem if the file is not a hero-lite agent.
        """
        state, _ = read_agent_file(path)
        rng = np.random.Generator(getattr(np.random, state["rng"]["bit_generator"])())
        agent = cls(state["n_obs"], DDPGConfig.from_dict(state["config"]), rng,
                    steps_per_episode=state["steps_per_episode"])
        agent.load_state_dict(state)
        return agent
