"""Occupancy grid for empty-space skipping (instant-ngp `testbed_nerf.cu`; nerfacc occ_grid.py).

Each cell stores an optical thickness sigma * dt (dt = the marching step); a cell is occupied when
its value exceeds min(threshold, mean value). An update evaluates the density at a random point
of selected cells: all cells during warm-up, then a quarter of the cells uniformly plus a quarter
among the occupied ones. Every cell decays: value <- max(decay * value, new sample). Updates run
every clamp(step // 16, 1, 16) steps (instant-ngp schedule).

Thin structures (a cable 1 px wide) occupy a small part of a cell, so one random point per cell
misses them, and a culled cell gets no samples and no gradient again. Three measures keep them:
- no learned culling during warm-up: the model first learns where thin parts are;
- space carving: the cells some training view sees through (alpha 0 over the cell's whole
  footprint) are removed from the start and never come back (instant-ngp
  `mark_untrained_density_grid` likewise removes cells no training camera sees);
- splatting: every training sample raises its cell's value to its own sigma * dt, so the cells the
  rays actually hit with density stay occupied.
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


@njit(cache=True)
def _splat_max(values, positions, thickness, res):
    # Sequential on purpose: a max is order-independent, but a parallel scatter would race.
    for k in range(positions.shape[0]):
        cx = min(int(positions[k, 0] * res), res - 1)
        cy = min(int(positions[k, 1] * res), res - 1)
        cz = min(int(positions[k, 2] * res), res - 1)
        c = (cz * res + cy) * res + cx
        if thickness[k] > values[c]:
            values[c] = thickness[k]


def carve_empty_cells(alpha: np.ndarray, poses: np.ndarray, focal: float, aabb: np.ndarray, res: int) -> np.ndarray:
    """Cells that some training view shows to be empty (space carving with the views' alpha).

    A cell is carved when, in some view, the whole square its bounding sphere projects to (plus one
    pixel) lies inside the image and every pixel there has alpha 0: the camera sees through it.
    Views without transparency (alpha 1 everywhere) carve nothing. instant-ngp
    (`mark_untrained_density_grid`) likewise excludes the cells no training camera sees.

    Parameters
    ----------
    alpha : (n_views, height, width) float32 in [0, 1].
    poses : (n_views, 4, 4) camera-to-world, OpenGL convention.
    focal : pixels.
    aabb : (2, 3) world units, the grid's box.
    res : cells per axis.

    Returns
    -------
    (res, res, res) bool, indexed [z, y, x]: True where no view sees empty space (the visual hull).
    """
    n_views, height, width = alpha.shape
    lo = np.asarray(aabb[0], dtype=np.float64)
    size = (np.asarray(aabb[1], dtype=np.float64) - lo) / res
    idx = np.arange(res)
    gz, gy, gx = np.meshgrid(idx, idx, idx, indexing="ij")
    centres = lo + (np.stack([gx, gy, gz], axis=-1).reshape(-1, 3) + 0.5) * size
    radius = 0.5 * float(np.linalg.norm(size))
    hull = np.ones(centres.shape[0], dtype=bool)
    for view in range(n_views):
        seen = (alpha[view] > 0).astype(np.int64)
        table = np.zeros((height + 1, width + 1), dtype=np.int64)
        table[1:, 1:] = seen.cumsum(0).cumsum(1)
        rotation = poses[view, :3, :3].astype(np.float64)
        local = (centres - poses[view, :3, 3]) @ rotation
        depth = -local[:, 2]
        ok = depth > radius * 1.01
        safe_depth = np.where(ok, depth, 1.0)
        u = 0.5 * width + focal * local[:, 0] / safe_depth
        v = 0.5 * height - focal * local[:, 1] / safe_depth
        r = focal * radius / np.maximum(safe_depth - radius, 1e-6) + 1.0
        i0, i1 = np.floor(u - r), np.floor(u + r)
        j0, j1 = np.floor(v - r), np.floor(v + r)
        ok &= (i0 >= 0) & (j0 >= 0) & (i1 <= width - 1) & (j1 <= height - 1)
        i0, i1, j0, j1 = (np.where(ok, a, 0).astype(np.int64) for a in (i0, i1, j0, j1))
        count = table[j1 + 1, i1 + 1] - table[j0, i1 + 1] - table[j1 + 1, i0] + table[j0, i0]
        hull &= ~(ok & (count == 0))
    return hull.reshape(res, res, res)


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
        mask: np.ndarray | None = None,
    ) -> None:
        """One occupancy update.

        Parameters
        ----------
        density_fn : positions (n, 3) float32 in the unit cube -> sigmas (n,) float32, 1/world unit.
        rng : source of the cell choice and of the point inside each cell.
        dt : marching step, world units (value = sigma * dt).
        all_cells : warm-up: evaluate every cell (instead of 1/4 uniform + 1/4 occupied) and cull none
            by density (the bitfield becomes `mask`).
        mask : (res, res, res) bool or None; cells outside it are never occupied (the carved hull).
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
        corner = np.stack([cells % res, (cells // res) % res, cells // (res * res)], axis=1)
        points = (corner + rng.random((cells.size, 3))) / res
        sigmas = density_fn(points.astype(np.float32))
        flat = self.values.reshape(-1)
        _ema_max(flat, cells, (sigmas * np.float32(dt)).astype(np.float32), np.float32(decay))
        if all_cells:
            self.bitfield = np.ones_like(self.bitfield) if mask is None else mask.copy()
            return
        bits = self.values > min(threshold, float(flat.mean()))
        if mask is not None:
            bits &= mask
        self.bitfield = bits

    def splat(self, positions: np.ndarray, sigmas: np.ndarray, dt: float) -> None:
        """Raise cells' values to the optical thickness of samples inside them (training samples).

        positions : (n, 3) float32 in the unit cube; sigmas : (n,) float32, 1/world unit; dt : world units.
        """
        _splat_max(self.values.reshape(-1), positions, (sigmas * np.float32(dt)).astype(np.float32), self.res)
