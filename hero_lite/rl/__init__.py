"""HAQ-style DDPG search in NumPy: agent, replay buffer, exploration noise and the episode loop.

Modules: `networks` (actor and critic MLPs, forward and backward by hand), `optim` (Adam),
`ddpg` (DDPGConfig, DDPGAgent), `agent_file` (the agent's HDF5 file), `replay`, `noise`, `loop`.
Standalone: imports numpy, scipy and h5py, and no other hero_lite layer.
"""

from hero_lite.rl.ddpg import DDPGAgent, DDPGConfig
from hero_lite.rl.loop import EpisodeRecord, LoopState, load_checkpoint, run_episode, run_episodes, save_checkpoint
from hero_lite.rl.noise import ExplorationSchedule, truncated_normal
from hero_lite.rl.replay import ReplayBuffer, Transition

__all__ = ["DDPGAgent", "DDPGConfig", "EpisodeRecord", "ExplorationSchedule", "LoopState", "ReplayBuffer",
           "Transition", "load_checkpoint", "run_episode", "run_episodes", "save_checkpoint", "truncated_normal"]
