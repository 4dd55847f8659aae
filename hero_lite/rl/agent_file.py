"""The HDF5 file of a DDPG agent's full state (format `hero-lite-ddpg-agent`, version 1).

The file holds what `DDPGAgent.state_dict` returns, plus the caller's metadata (the episode loop
stores its `LoopState` there). Layout::

    /  attrs: format, format_version, config (JSON), n_obs, steps_per_episode, episode,
             updates, has_baseline, baseline, rng_state (JSON), metadata (JSON, caller's)
    /actor, /critic, /actor_target, /critic_target   flat float64 parameter vectors
    /actor_adam, /critic_adam    groups: m, v (float64), attr step
    /replay                      group: obs, actions, rewards, next_obs, dones; attrs capacity,
                                 n_obs, size, position

`DDPGAgent.save` and `DDPGAgent.load` are the usual way in; the functions here read and write the
state dict alone, so the metadata can be read without building an agent.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py

FORMAT = "hero-lite-ddpg-agent"
FORMAT_VERSION = 1
NETWORKS = ("actor", "critic", "actor_target", "critic_target")
OPTIMIZERS = ("actor_adam", "critic_adam")
REPLAY_COUNTS = ("capacity", "n_obs", "size", "position")
REPLAY_ARRAYS = ("obs", "actions", "rewards", "next_obs", "dones")


def write_agent_file(path: str | os.PathLike, state: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    """Write an agent state dict (`DDPGAgent.state_dict`) and JSON `metadata` to HDF5, atomically.

    The file is written under a temporary name in the same folder, then renamed over `path`, so an
    interrupted write never leaves a half-written file at `path`. The folder is created if missing.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["config"] = json.dumps(state["config"])
            f.attrs["n_obs"] = state["n_obs"]
            f.attrs["steps_per_episode"] = state["steps_per_episode"]
            f.attrs["episode"] = state["episode"]
            f.attrs["updates"] = state["updates"]
            f.attrs["has_baseline"] = state["baseline"] is not None
            f.attrs["baseline"] = 0.0 if state["baseline"] is None else state["baseline"]
            f.attrs["rng_state"] = json.dumps(state["rng"])
            f.attrs["metadata"] = json.dumps(metadata or {})
            for name in NETWORKS:
                f.create_dataset(name, data=state[name])
            for name in OPTIMIZERS:
                group = f.create_group(name)
                group.create_dataset("m", data=state[name]["m"])
                group.create_dataset("v", data=state[name]["v"])
                group.attrs["step"] = state[name]["step"]
            replay = f.create_group("replay")
            for key in REPLAY_COUNTS:
                replay.attrs[key] = state["replay"][key]
            for key in REPLAY_ARRAYS:
                replay.create_dataset(key, data=state["replay"][key])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_agent_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict as `DDPGAgent.state_dict` returns it, caller metadata) from a `write_agent_file` file.

    Raises ValueError naming the problem if the file is missing, unreadable or not a hero-lite agent.
    """
    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{path}: not a hero-lite agent file (format {f.attrs.get('format')!r})")
            version = int(f.attrs["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: agent file version {version}; this hero-lite reads {FORMAT_VERSION}")
            state = {
                "n_obs": int(f.attrs["n_obs"]),
                "steps_per_episode": int(f.attrs["steps_per_episode"]),
                "config": json.loads(f.attrs["config"]),
                "episode": int(f.attrs["episode"]),
                "updates": int(f.attrs["updates"]),
                "baseline": float(f.attrs["baseline"]) if bool(f.attrs["has_baseline"]) else None,
                "rng": json.loads(f.attrs["rng_state"]),
            }
            for name in NETWORKS:
                state[name] = f[name][...]
            for name in OPTIMIZERS:
                state[name] = {"m": f[name]["m"][...], "v": f[name]["v"][...], "step": int(f[name].attrs["step"])}
            replay = f["replay"]
            state["replay"] = {key: int(replay.attrs[key]) for key in REPLAY_COUNTS}
            for key in REPLAY_ARRAYS:
                state["replay"][key] = replay[key][...]
            metadata = json.loads(f.attrs["metadata"])
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: cannot read agent state ({err})") from err
    return state, metadata
