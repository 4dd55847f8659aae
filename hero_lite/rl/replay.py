"""Replay buffer of (obs, action, reward, next_obs, done) transitions, a fixed-capacity ring.

HAQ (`lib/rl/memory.py`, keras-rl's SequentialMemory) stores one entry per step, (obs, action,
reward, done), and takes s' of a transition from the next entry; after each episode it appends a
dummy entry (final observation, an action, reward 0, not done) only to supply s' of the last real
transition, and its sampler rejects the dummy as a start (the entry before it is terminal). Here
every transition stores its own `next_obs`, so no dummy entry exists; the set of transitions that can
be sampled is the same. HAQ's capacity, 128 x steps per episode, counts its dummies too; here the
capacity counts real transitions only.

Sampling (keras-rl `sample_batch_indexes`): without replacement when the buffer holds at least a
batch, else with replacement. Both draw from the caller's generator, so batches are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Transition(NamedTuple):
    """One step: in `obs`, taking `action` gave `reward` and led to `next_obs` (`done` if final).

    obs, next_obs : (n_obs,) float64.  action : float in [0, 1].  reward : float.  done : bool.
    """

    obs: np.ndarray
    action: float
    reward: float
    next_obs: np.ndarray
    done: bool


@dataclass(frozen=True)
class TransitionBatch:
    """A sampled batch.

    obs, next_obs : (batch, n_obs) float64.  actions, rewards : (batch, 1) float64.
    not_done : (batch, 1) float64, 1.0 where the episode continues after the transition, else 0.0.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    not_done: np.ndarray


class ReplayBuffer:
    """Fixed-capacity ring of transitions; the oldest is overwritten once full.

    Parameters
    ----------
    capacity : maximum number of transitions kept (HAQ: 128 x steps per episode).
    n_obs : observation length.
    """

    def __init__(self, capacity: int, n_obs: int):
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"replay capacity = {capacity!r}; valid: integer >= 1")
        if not isinstance(n_obs, (int, np.integer)) or n_obs < 1:
            raise ValueError(f"replay n_obs = {n_obs!r}; valid: integer >= 1")
        self.capacity = int(capacity)
        self.n_obs = int(n_obs)
        self.obs = np.zeros((self.capacity, self.n_obs), dtype=np.float64)
        self.actions = np.zeros(self.capacity, dtype=np.float64)
        self.rewards = np.zeros(self.capacity, dtype=np.float64)
        self.next_obs = np.zeros((self.capacity, self.n_obs), dtype=np.float64)
        self.dones = np.zeros(self.capacity, dtype=bool)
        self.size = 0
        self.position = 0  # slot the next transition is written to

    def __len__(self) -> int:
        return self.size

    def add(self, transition: Transition) -> None:
        """Store one transition, overwriting the oldest when full."""
        obs = np.asarray(transition.obs, dtype=np.float64)
        next_obs = np.asarray(transition.next_obs, dtype=np.float64)
        if obs.shape != (self.n_obs,) or next_obs.shape != (self.n_obs,):
            raise ValueError(f"transition obs shapes {obs.shape} and {next_obs.shape}; expected ({self.n_obs},)")
        slot = self.position
        self.obs[slot] = obs
        self.actions[slot] = float(transition.action)
        self.rewards[slot] = float(transition.reward)
        self.next_obs[slot] = next_obs
        self.dones[slot] = bool(transition.done)
        self.position = (slot + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Slots of a batch: distinct if size >= batch_size, else drawn with replacement.

        Returns
        -------
        (batch_size,) int64, each in [0, size).
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.size >= batch_size:
            return rng.choice(self.size, size=batch_size, replace=False).astype(np.int64)
        return rng.integers(0, self.size, size=batch_size, dtype=np.int64)

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """A batch of `batch_size` transitions (see `sample_indices`)."""
        idx = self.sample_indices(batch_size, rng)
        return TransitionBatch(
            obs=self.obs[idx],
            actions=self.actions[idx, None],
            rewards=self.rewards[idx, None],
            next_obs=self.next_obs[idx],
            not_done=(~self.dones[idx, None]).astype(np.float64),
        )

    def state_dict(self) -> dict:
        """Copies of the stored transitions (only the filled slots) and the ring position."""
        n = self.size
        return {"capacity": self.capacity, "n_obs": self.n_obs, "size": n, "position": self.position,
                "obs": self.obs[:n].copy(), "actions": self.actions[:n].copy(), "rewards": self.rewards[:n].copy(),
                "next_obs": self.next_obs[:n].copy(), "dones": self.dones[:n].copy()}

    def load_state_dict(self, state: dict) -> None:
        """Restore from `state_dict()` output; capacity and n_obs must match this buffer."""
        if int(state["capacity"]) != self.capacity or int(state["n_obs"]) != self.n_obs:
            raise ValueError(f"replay state has capacity {state['capacity']} and n_obs {state['n_obs']}; "
                             f"this buffer has {self.capacity} and {self.n_obs}")
        n = int(state["size"])
        position = int(state["position"])
        if not 0 <= n <= self.capacity or not 0 <= position < self.capacity or (n < self.capacity and position != n):
            raise ValueError(f"replay state size {n}, position {position} inconsistent with capacity {self.capacity}")
        arrays = {"obs": (n, self.n_obs), "actions": (n,), "rewards": (n,), "next_obs": (n, self.n_obs), "dones": (n,)}
        for name, shape in arrays.items():
            if np.shape(state[name]) != shape:
                raise ValueError(f"replay state {name} has shape {np.shape(state[name])}; expected {shape}")
        self.obs[:] = 0.0
        self.next_obs[:] = 0.0
        self.actions[:] = 0.0
        self.rewards[:] = 0.0
        self.dones[:] = False
        self.obs[:n] = state["obs"]
        self.actions[:n] = state["actions"]
        self.rewards[:n] = state["rewards"]
        self.next_obs[:n] = state["next_obs"]
        self.dones[:n] = state["dones"]
        self.size = n
        self.position = position
