"""HAQ's episode loop (HAQ code `rl_quantize.py`, `train`) for any environment.

The environment has `reset(seed) -> obs` and `step(action) -> (obs, reward, done, info)`; obs is
(n_obs,) float. One episode:

1. obs = env.reset(seed), seed = `episode_seed(env_seed, episode)`;
2. until done: a = agent.act(obs, explore=True) (uniform in warm-up, else the actor plus truncated-
   normal noise), next_obs, reward, done, info = env.step(a);
3. the final step's reward R is the episode's reward (HAQ: 0 on the other steps; any reward the
   environment returns before the last step is ignored);
4. for each step t in order: agent.observe(Transition(s_t, a_t, R, s_{t+1}, done_t)), every step
   stored with the final reward R; after warm-up, `config.updates_per_step` agent.update() calls
   after each observe (HAQ's `n_update`, default 1). If the final info holds `executed_actions`
   (one per step), those are stored instead of the actions taken: an environment whose budget wall
   lowers bits after the episode reports what it ran, so the critic learns the reward of the bits
   that were evaluated (HAQ stores the agent's actions; see `hero_lite.search.env`);
5. the best episode (highest R; the earliest on ties) is tracked with its info; callbacks run.

Dummy final transition: HAQ's keras-rl memory appends, after each episode, an extra entry (final
observation, an action, reward 0, not done) whose only use is to be s' of the last real transition;
it is never sampled. Here each transition stores s' itself; the last one gets the observation the
final `env.step` returned and done=True, so its target is (R - baseline) with no bootstrap, as in HAQ.
No dummy is stored and no action is drawn for it (HAQ draws one, consuming noise).

Resuming. A run is a pure function of (environment, agent state, loop state). To continue a run
exactly as if uninterrupted, save after an episode (`save_checkpoint`):
- the agent: all four networks, both Adam states (moments and step counts), the replay buffer
  (contents and ring position), the reward baseline, the agent's episode and update counters and its
  generator state (which drives warm-up actions, noise and batch sampling);
- the loop: `LoopState`, the index of the next episode and the best record so far.
Environment seeds depend only on (env_seed, episode), so nothing of the environment is saved; an
environment must make each episode depend only on its reset seed and the actions (a cache of
policy -> result is fine). `run_episodes` with `checkpoint_path` saves after every episode; on a
kill, rerunning the unfinished episode from the last checkpoint reproduces it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from hero_lite.rl.agent_file import read_agent_file
from hero_lite.rl.ddpg import DDPGAgent
from hero_lite.rl.replay import Transition


class Environment(Protocol):
    def reset(self, seed: int) -> np.ndarray: ...

    def step(self, action: float) -> tuple[np.ndarray, float, bool, dict]: ...


def episode_seed(env_seed: int, episode: int) -> int:
    """Seed passed to env.reset for `episode`: a function of (env_seed, episode) only (SeedSequence)."""
    return int(np.random.SeedSequence([int(env_seed), int(episode)]).generate_state(1, np.uint32)[0])


def to_jsonable(value: Any) -> Any:
    """`value` with NumPy scalars and arrays, tuples and non-string keys turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class EpisodeRecord:
    """What one episode did.

    Attributes
    ----------
    episode : index, from 0.
    reward : the final step's reward.
    actions : the actions taken, one per step, each in [0, 1].
    info : the environment's info dict of the final step.
    exploration : 'uniform' (warm-up) or 'truncated_normal'.
    sigma : sd of the exploration noise, None in warm-up.
    best_episode, best_reward : best episode so far, this one included.
    update_stats : means over this episode's updates of the `DDPGAgent.update` values; {} in warm-up.
    env_seconds : wall time in env.reset and env.step.
    agent_seconds : wall time of everything else in the episode (acting, observing, updating).
    """

    episode: int
    reward: float
    actions: tuple[float, ...]
    info: dict
    exploration: str
    sigma: float | None
    best_episode: int
    best_reward: float
    update_stats: dict = field(default_factory=dict)
    env_seconds: float = 0.0
    agent_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return to_jsonable({"episode": self.episode, "reward": self.reward, "actions": list(self.actions),
                            "info": self.info, "exploration": self.exploration, "sigma": self.sigma,
                            "best_episode": self.best_episode, "best_reward": self.best_reward,
                            "update_stats": self.update_stats, "env_seconds": self.env_seconds,
                            "agent_seconds": self.agent_seconds})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpisodeRecord":
        return cls(episode=int(data["episode"]), reward=float(data["reward"]),
                   actions=tuple(float(a) for a in data["actions"]), info=dict(data["info"]),
                   exploration=str(data["exploration"]), sigma=None if data["sigma"] is None else float(data["sigma"]),
                   best_episode=int(data["best_episode"]), best_reward=float(data["best_reward"]),
                   update_stats=dict(data["update_stats"]), env_seconds=float(data["env_seconds"]),
                   agent_seconds=float(data["agent_seconds"]))


@dataclass(frozen=True)
class LoopState:
    """The loop's part of a resumable run: the next episode to run and the best record so far."""

    next_episode: int = 0
    best: EpisodeRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"next_episode": self.next_episode, "best": None if self.best is None else self.best.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoopState":
        best = data.get("best")
        return cls(next_episode=int(data["next_episode"]), best=None if best is None else EpisodeRecord.from_dict(best))


def save_checkpoint(path: str | os.PathLike, agent: DDPGAgent, state: LoopState) -> None:
    """Write the agent and the loop state into one HDF5 file, atomically (see module docstring)."""
    agent.save(path, metadata={"loop": state.to_dict()})


def load_checkpoint(path: str | os.PathLike) -> tuple[DDPGAgent, LoopState]:
    """(agent, loop state) from a `save_checkpoint` file; ValueError if it has no loop state."""
    _, metadata = read_agent_file(path)
    if "loop" not in metadata:
        raise ValueError(f"{os.fspath(path)}: agent file without loop state (not written by save_checkpoint)")
    return DDPGAgent.load(path), LoopState.from_dict(metadata["loop"])


def _mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    if not stats:
        return {}
    return {key: float(np.mean([s[key] for s in stats])) for key in stats[0]}


def run_episode(env: Environment, agent: DDPGAgent, episode: int, env_seed: int = 0) -> EpisodeRecord:
    """Run one episode (steps 1-4 of the module docstring) and return its record (best fields unset).

    Returns
    -------
    EpisodeRecord with best_episode = episode and best_reward = reward (`run_episodes` fills them in).
    """
    if agent.episode != episode:
        raise ValueError(f"agent has finished {agent.episode} episodes; cannot run episode {episode}")
    start = time.perf_counter()
    env_seconds = 0.0
    exploration = "uniform" if agent.in_warmup else "truncated_normal"
    sigma = agent.exploration_sigma

    t0 = time.perf_counter()
    obs = np.array(env.reset(episode_seed(env_seed, episode)), dtype=np.float64)
    env_seconds += time.perf_counter() - t0
    observations, actions, dones = [obs], [], []
    done, reward, info = False, 0.0, {}
    while not done:
        action = agent.act(obs, explore=True)
        t0 = time.perf_counter()
        next_obs, reward, done, info = env.step(action)
        env_seconds += time.perf_counter() - t0
        obs = np.array(next_obs, dtype=np.float64)
        observations.append(obs)
        actions.append(action)
        dones.append(bool(done))

    final_reward = float(reward)
    warmup = agent.in_warmup
    stats = []
    stored = actions
    executed = info.get("executed_actions")
    if executed is not None:  # the environment changed the actions (a budget wall): learn what ran
        if len(executed) != len(actions):
            raise ValueError(f"executed_actions has {len(executed)} entries for {len(actions)} steps")
        stored = [float(a) for a in executed]
    for t, action in enumerate(stored):
        agent.observe(Transition(observations[t], action, final_reward, observations[t + 1], dones[t]))
        if not warmup:
            stats.extend(agent.update() for _ in range(agent.config.updates_per_step))
    agent_seconds = time.perf_counter() - start - env_seconds
    record = EpisodeRecord(episode=episode, reward=final_reward, actions=tuple(float(a) for a in actions),
                           info=dict(info), exploration=exploration, sigma=sigma, best_episode=episode,
                           best_reward=final_reward, update_stats=_mean_stats(stats), env_seconds=env_seconds,
                           agent_seconds=agent_seconds)
    return record


def run_episodes(env: Environment, agent: DDPGAgent, episodes: int, *, state: LoopState | None = None,
                 env_seed: int = 0, checkpoint_path: str | os.PathLike | None = None,
                 progress: Callable[[int, EpisodeRecord], None] | None = None,
                 on_episode_end: Callable[[EpisodeRecord], None] | None = None) -> tuple[LoopState, list[EpisodeRecord]]:
    """Run episodes state.next_episode .. episodes-1 of a HAQ search (module docstring).

    Parameters
    ----------
    env : the environment.
    agent : the agent, in the state matching `state` (fresh for a new run, `load_checkpoint` to resume).
    episodes : total episodes of the run (usually agent.config.episodes).
    state : where to continue; None starts at episode 0.
    env_seed : base of the per-episode reset seeds.
    checkpoint_path : if given, agent and loop state are saved there after every episode, after
        `on_episode_end` (so a log line is never missing for a checkpointed episode; on resume, drop
        log lines with episode >= state.next_episode).
    progress : called as progress(episode, record) after each episode.
    on_episode_end : called with each finished record (best fields filled).

    Returns
    -------
    state : LoopState after the last episode (next_episode == episodes).
    records : records of the episodes run by this call.
    """
    state = state or LoopState()
    if not isinstance(episodes, (int, np.integer)) or episodes < state.next_episode:
        raise ValueError(f"episodes = {episodes!r}; valid: integer >= next episode {state.next_episode}")
    records = []
    for episode in range(state.next_episode, int(episodes)):
        record = run_episode(env, agent, episode, env_seed)
        previous = state.best
        is_best = (previous is None or record.reward > previous.reward
                   or (math.isnan(previous.reward) and not math.isnan(record.reward)))
        if not is_best:
            record = dataclasses.replace(record, best_episode=previous.episode, best_reward=previous.reward)
        state = LoopState(next_episode=episode + 1, best=record if is_best else previous)
        records.append(record)
        if on_episode_end is not None:
            on_episode_end(record)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, agent, state)
        if progress is not None:
            progress(episode, record)
    return state, records
