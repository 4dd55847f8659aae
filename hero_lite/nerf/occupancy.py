"""Occupancy grid for empty-space skipping (instant-ngp `testbed_nerf.cu`; nerfacc occ_grid.py).

Each cell stores an optical thickness sigma * dt (dt = the marching step); a cell is occupied when
its value exceeds min(threshold, mean value). An update evaluates the density at a random point
of selected cells: all cells during warm-up, then a quarter of the cells uniformly plus a quarter
among the occupied ones. Every cell decays: value <- max(decay * value, new sample) (the max keeps
thin features). Updates run every clamp(step // 16, 1, 16) steps (instant-ngp schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit


@njit(cache=True)
def _ema_max(values, cells, thickness, decay):
    n = values.shape[0]
    fresh = np.zeros(n, dtype=np.float32)
    for k in range(cells.shape[0]):
        c = cells[k]
        if thickness[k] > fresh[c]:
            fresh[c] = thickness[k]
    for c in range(n):
        values[c] = max(values[c] * decay, fresh[c])


def update_interval(step: int) -> int:
    """Steps between occupancy updates at training step `step`: clamp(step // 16, 1, 16) (instant-ngp)."""
    return int(min(max(step // 16, 1), 16))


@dataclass
class OccupancyGrid:
    """Occupancy over the scene aabb.

    Attributes
    ----------
    values : (res, res, res) float32, optical thickness per cell, indexed [z, y, x].
    bitfield : (res, res, res) bool, True where samples are kept.
    """

    values: np.ndarray
    bitfield: np.ndarray

    @property
    def res(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def create(cls, res: int) -> "OccupancyGrid":
        """Every cell occupied until the first update."""
        return cls(np.zeros((res, res, res), dtype=np.float32), np.ones((res, res, res), dtype=np.bool_))

    def occupied_fraction(self) -> float:
        return float(self.bitfield.mean())

    def update(
        self,
        density_fn: Callable[[np.ndarray], np.ndarray],
        rng: np.random.Generator,
        dt: float,
        all_cells: bool,
        decay: float = 0.95,
        threshold: float = 0.01,
    ) -> None:
        """One occupancy update.

        Parameters
        ----------
        density_fn : positions (n, 3) float32 in the unit cube -> sigmas (n,) float32, 1/world unit.
        rng : source of the cell choice and of the point inside each cell.
        dt : marching step, world units (value = sigma * dt).
        all_cells : evaluate every cell (warm-up) instead of 1/4 uniform + 1/4 occupied.
        """
        res = self.res
        n_cells = res**3
        if all_cells:
            cells = np.arange(n_cells, dtype=np.int64)
        else:
            uniform = rng.integers(0, n_cells, size=n_cells // 4, dtype=np.int64)
            occupied = np.flatnonzero(self.bitfield.reshape(-1))
            if occupied.size:
                chosen = occupied[rng.integers(0, occupied.size, size=n_cells // 4, dtype=np.int64)]
                cells = np.concatenate([uniform, chosen])
            else:
                cells = uniform
        x = cells % res
        y = (cells // res) % res
        z = cells // (res * res)
        points = (np.stack([x, y, z], axis=1) + rng.random((cells.size, 3))) / res
        sigmas = density_fn(points.astype(np.float32))
        flat = self.values.reshape(-1)
        _ema_max(flat, cells, (sigmas * np.float32(dt)).astype(np.float32), np.float32(decay))
        cutoff = min(threshold, float(flat.mean()))
        self.bitfield = self.values > cutoff
