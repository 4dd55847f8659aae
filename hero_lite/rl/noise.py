"""Exploration noise of HAQ's DDPG: uniform warm-up, then a truncated normal around the actor.

HAQ code (`rl_quantize.py`, `lib/rl/ddpg.py`, `lib/utils/utils.py`): during warm-up the action is
U(0, 1); afterwards a ~ TruncNormal(mean actor(s), sd sigma_e, on [0, 1]), clipped to [0, 1], with
sigma_e = 0.5 * 0.99^(episode - warmup), over 600 episodes. hero-lite runs about 100 episodes, so the
decay is scaled to the run length: sigma falls from `sigma_initial` to `sigma_final` over the
episodes after warm-up, decay = (sigma_final / sigma_initial)^(1 / (episodes - warmup)). With the
defaults sigma_final = 0.5 * 0.99^580 (HAQ's sigma after its 600 episodes), so
decay = 0.99^(580 / (episodes - warmup)): 0.99 for HAQ's 600 episodes, 0.9300 for 100.

Indexing: episodes are numbered from 0; episodes 0 .. warmup-1 are warm-up (HAQ's `episode <=
warmup` makes 21 of them, an off-by-one not kept), and episode `warmup` is the first with noise,
sd = sigma_initial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

HAQ_SIGMA_INITIAL = 0.5
HAQ_SIGMA_FINAL = 0.5 * 0.99**580  # 0.5 * 0.99^(600 - 20): HAQ's sd at the end of its search


def truncated_normal(mean, sd, rng: np.random.Generator, low: float = 0.0, high: float = 1.0):
    """Sample a normal(mean, sd) truncated to [low, high] by inverse CDF (one uniform per sample).

    x = mean + sd * ndtri(u), u ~ U(ndtr((low - mean) / sd), ndtr((high - mean) / sd)); the result
    is clipped to [low, high] against rounding at the ends (HAQ clips too).

    Parameters
    ----------
    mean : float or array (...) float64, each in [low, high].
    sd : float > 0, or array broadcastable to `mean`.
    rng : the generator; exactly one `rng.random` draw per element of the broadcast shape.
    low, high : the truncation interval, low < high.

    Returns
    -------
    float if `mean` and `sd` are scalars, else an array of the broadcast shape, float64.
    """
    mean_arr, sd_arr = np.broadcast_arrays(np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64))
    if not np.all(sd_arr > 0):
        raise ValueError(f"truncated normal sd = {sd!r}; valid: > 0")
    if not low < high:
        raise ValueError(f"truncated normal interval [{low}, {high}]; valid: low < high")
    cdf_low = ndtr((low - mean_arr) / sd_arr)
    cdf_high = ndtr((high - mean_arr) / sd_arr)
    u = cdf_low + (cdf_high - cdf_low) * rng.random(mean_arr.shape)
    x = np.clip(mean_arr + sd_arr * ndtri(u), low, high)
    return float(x) if x.ndim == 0 else x


@dataclass(frozen=True)
class ExplorationSchedule:
    """Which exploration an episode uses: uniform during warm-up, then a decaying truncated normal.

    Attributes
    ----------
    episodes : total episodes of the search (> warmup_episodes); sets the decay.
    warmup_episodes : episodes 0 .. warmup_episodes-1 act uniformly at random (HAQ: 20).
    sigma_initial : sd at episode `warmup_episodes` (HAQ: 0.5).
    sigma_final : sd reached at episode `episodes` (default HAQ's final sd, 0.5 * 0.99^580).
    """

    episodes: int = 100
    warmup_episodes: int = 20
    sigma_initial: float = HAQ_SIGMA_INITIAL
    sigma_final: float = HAQ_SIGMA_FINAL

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_episodes < self.episodes:
            raise ValueError(f"warmup_episodes = {self.warmup_episodes}, episodes = {self.episodes}; "
                             "valid: 0 <= warmup_episodes < episodes")
        if not 0 < self.sigma_final <= self.sigma_initial:
            raise ValueError(f"noise sigma_initial = {self.sigma_initial}, sigma_final = {self.sigma_final}; "
                             "valid: 0 < sigma_final <= sigma_initial")

    @property
    def decay(self) -> float:
        """Per-episode factor of the sd: (sigma_final / sigma_initial)^(1 / (episodes - warmup))."""
        return (self.sigma_final / self.sigma_initial) ** (1.0 / (self.episodes - self.warmup_episodes))

    def is_warmup(self, episode: int) -> bool:
        return episode < self.warmup_episodes

    def sigma(self, episode: int) -> float:
        """sd of the truncated normal in `episode` (>= warmup): sigma_initial * decay^(episode - warmup).

        Episodes past `episodes` (a search extended after the fact) keep decaying.
        """
        if self.is_warmup(episode):
            raise ValueError(f"episode {episode} is a warm-up episode (uniform actions, no sd)")
        return self.sigma_initial * self.decay ** (episode - self.warmup_episodes)

    def explore(self, episode: int, actor_action: float, rng: np.random.Generator) -> float:
        """The action taken in `episode`: U(0, 1) in warm-up, else TruncNormal(actor_action, sigma) on [0, 1].

        One `rng.random` draw either way.
        """
        if self.is_warmup(episode):
            return float(rng.random())
        return truncated_normal(actor_action, self.sigma(episode), rng)
