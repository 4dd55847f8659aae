"""Occupancy grid: update schedule, sphere occupancy, decay-max rule, warm-up, splatting, space carving."""

import numpy as np
import pytest

from hero_lite.nerf.occupancy import OccupancyGrid, carve_empty_cells, update_interval
from hero_lite.scenes.cameras import camera_rays, ring_poses

RES = 16
DT = 0.02


@pytest.fixture
def rng():
    return np.random.default_rng(31)


def sphere_density(points):
    """1000 inside the sphere of radius 0.3 around the cube centre, 0 outside (unit-cube coordinates)."""
    inside = np.linalg.norm(points - 0.5, axis=1) < 0.3
    return np.where(inside, 1000.0, 0.0).astype(np.float32)


def _cell_classes(res):
    """Cells entirely inside / entirely outside the sphere, as (res, res, res) [z, y, x] masks."""
    idx = np.arange(res)
    z, y, x = np.meshgrid(idx, idx, idx, indexing="ij")
    lo = np.stack([x, y, z], axis=-1) / res
    hi = lo + 1.0 / res
    nearest = np.clip(0.5, lo, hi)
    farthest = np.where(np.abs(lo - 0.5) > np.abs(hi - 0.5), lo, hi)
    inside = np.linalg.norm(farthest - 0.5, axis=-1) < 0.3
    outside = np.linalg.norm(nearest - 0.5, axis=-1) >= 0.3
    return inside, outside


@pytest.mark.parametrize(("step", "interval"), [(0, 1), (1, 1), (15, 1), (16, 1), (31, 1), (32, 2), (47, 2),
                                                (48, 3), (255, 15), (256, 16), (300, 16), (10_000, 16)])
def test_update_interval(step, interval):
    # clamp(step // 16, 1, 16): 0..31 -> 1, 32 -> 2, 48 -> 3, 300 // 16 = 18 -> 16
    assert update_interval(step) == interval


def test_create_is_all_occupied():
    grid = OccupancyGrid.create(4)
    assert grid.res == 4 and grid.values.shape == (4, 4, 4) and grid.values.dtype == np.float32
    assert grid.bitfield.dtype == np.bool_ and grid.occupied_fraction() == 1.0
    assert np.all(grid.values == 0)


def test_all_cells_update_marks_the_sphere(rng):
    grid = OccupancyGrid.create(RES)
    grid.update(sphere_density, rng, DT, all_cells=True)
    inside, outside = _cell_classes(RES)
    assert inside.sum() > 50 and outside.sum() > 2000
    # value = sigma * dt = 1000 * 0.02 = 20 inside, 0 outside
    np.testing.assert_allclose(grid.values[inside], 20.0)
    assert np.all(grid.values[outside] == 0.0)
    # warm-up culls nothing by density
    assert grid.bitfield.all()
    # the first update after warm-up culls at min(0.01, mean) = 0.01: inside holds >= 20 * 0.95
    grid.update(sphere_density, rng, DT, all_cells=False)
    assert grid.bitfield[inside].all()
    assert not grid.bitfield[outside].any()


def test_partial_updates_keep_the_sphere(rng):
    grid = OccupancyGrid.create(RES)
    grid.update(sphere_density, rng, DT, all_cells=True)
    for _ in range(30):
        grid.update(sphere_density, rng, DT, all_cells=False)
    inside, outside = _cell_classes(RES)
    # an unsampled inside cell still holds >= 20 * 0.95^30 = 4.3 > 0.01
    assert grid.bitfield[inside].all()
    assert not grid.bitfield[outside].any()
    assert 0.0 < grid.occupied_fraction() < 0.2  # the sphere is 4/3 pi 0.3^3 = 11% of the cube


def test_partial_update_samples_only_some_cells(rng):
    grid = OccupancyGrid.create(RES)
    seen = []

    def counting(points):
        seen.append(points.copy())
        return np.zeros(points.shape[0], np.float32)

    grid.update(counting, rng, DT, all_cells=False)
    # 1/4 of the cells uniformly + 1/4 among the occupied (all, at creation): 2 * 4096 / 4 = 2048 points
    assert seen[0].shape == (2 * RES**3 // 4, 3) and seen[0].dtype == np.float32
    assert np.all((seen[0] >= 0) & (seen[0] <= 1))
    grid.update(counting, rng, DT, all_cells=True)
    # all_cells: one point in each cell
    cells = np.floor(seen[1] * RES).astype(int)
    assert seen[1].shape == (RES**3, 3)
    assert len({tuple(c) for c in cells}) == RES**3


def test_decay_keeps_the_max_of_decayed_and_new(rng):
    grid = OccupancyGrid(values=np.ones((RES, RES, RES), np.float32), bitfield=np.ones((RES, RES, RES), bool))
    # zero density: every cell decays, 1 -> 0.95, also cells the partial update did not sample
    grid.update(lambda p: np.zeros(p.shape[0], np.float32), rng, DT, all_cells=False, decay=0.95)
    np.testing.assert_allclose(grid.values, 0.95, rtol=1e-6)
    # a new sample below the decayed value is ignored: 0.95 * 0.95 = 0.9025 > 10 * 0.02 = 0.2
    grid.update(lambda p: np.full(p.shape[0], 10.0, np.float32), rng, DT, all_cells=True, decay=0.95)
    np.testing.assert_allclose(grid.values, 0.9025, rtol=1e-6)
    # a sample above it replaces it: 100 * 0.02 = 2 > 0.857
    grid.update(lambda p: np.full(p.shape[0], 100.0, np.float32), rng, DT, all_cells=True, decay=0.95)
    np.testing.assert_allclose(grid.values, 2.0, rtol=1e-6)
    assert grid.bitfield.all()


def test_threshold_is_min_of_threshold_and_mean(rng):
    # values 0.001 in one cell, 0 elsewhere: mean = 0.001 / 4096 < 0.01, so that cell is occupied
    grid = OccupancyGrid.create(RES)

    def one_cell(points):
        cells = np.floor(points * RES).astype(int)
        hit = np.all(cells == [3, 4, 5], axis=1)  # x = 3, y = 4, z = 5
        return np.where(hit, 0.05, 0.0).astype(np.float32)  # 0.05 * 0.02 = 0.001

    grid.update(one_cell, rng, DT, all_cells=True)
    assert grid.values[5, 4, 3] == pytest.approx(0.001)
    # after warm-up: the cell holds >= 0.95 * 0.001, above the mean, below 0.01
    grid.update(one_cell, rng, DT, all_cells=False)
    assert grid.bitfield.sum() == 1 and grid.bitfield[5, 4, 3]


def test_mask_bounds_the_bitfield_in_and_after_warm_up(rng):
    grid = OccupancyGrid.create(RES)
    mask = np.zeros((RES, RES, RES), bool)
    mask[:, :, : RES // 2] = True  # x < 0.5 only
    grid.update(sphere_density, rng, DT, all_cells=True, mask=mask)
    np.testing.assert_array_equal(grid.bitfield, mask)
    grid.update(sphere_density, rng, DT, all_cells=False, mask=mask)
    inside, outside = _cell_classes(RES)
    assert grid.bitfield[inside & mask].all()
    assert not grid.bitfield[~mask].any() and not grid.bitfield[outside].any()
    assert inside[:, :, RES // 2:].any()  # the mask did remove sphere cells


def test_splat_raises_cells_to_the_max_sample():
    grid = OccupancyGrid(values=np.full((RES, RES, RES), 0.5, np.float32), bitfield=np.ones((RES, RES, RES), bool))
    # two samples in cell x=1, y=2, z=3 (the larger wins, in any order), one below the value, one on the far face
    positions = np.array([[1.5, 2.5, 3.5], [1.2, 2.9, 3.1], [5.5, 5.5, 5.5], [RES, RES, RES]], np.float32) / RES
    sigmas = np.array([100.0, 60.0, 10.0, 200.0], np.float32)  # x DT: 2.0, 1.2, 0.2, 4.0
    grid.splat(positions, sigmas, DT)
    expected = np.full((RES, RES, RES), 0.5, np.float32)
    expected[3, 2, 1] = 2.0
    expected[-1, -1, -1] = 4.0  # position 1.0 falls in the last cell
    np.testing.assert_allclose(grid.values, expected, rtol=1e-6)
    grid.splat(positions[::-1].copy(), sigmas[::-1].copy(), DT)
    np.testing.assert_allclose(grid.values, expected, rtol=1e-6)


CARVE_FOCAL = 20.0  # pixels, for 32 x 32 views
CARVE_AABB = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def _wire_alpha(poses, radius, res=32, supersample=8):
    """Alpha of a vertical wire (the z axis for |z| <= 0.5, `radius` world units), area-averaged per pixel."""
    views = []
    for pose in poses:
        o, d = (a.astype(np.float64) for a in camera_rays(pose, CARVE_FOCAL * supersample, res * supersample,
                                                          res * supersample))
        t = -(o[:, :2] * d[:, :2]).sum(1) / np.maximum((d[:, :2] ** 2).sum(1), 1e-12)
        distance = np.linalg.norm(o[:, :2] + t[:, None] * d[:, :2], axis=1)
        hit = (distance < radius) & (np.abs(o[:, 2] + t * d[:, 2]) <= 0.5) & (t > 0)
        views.append(hit.reshape(res, supersample, res, supersample).mean(axis=(1, 3)))
    return np.stack(views).astype(np.float32)


def test_carving_keeps_a_sub_pixel_wire_and_removes_far_cells():
    poses = ring_poses(16, 4.0, 20.0)
    alpha = _wire_alpha(poses, radius=0.05)  # 0.1 wide: half a pixel at the cameras' distance
    assert 0 < alpha.max() < 0.5
    hull = carve_empty_cells(alpha, poses, CARVE_FOCAL, CARVE_AABB, RES)
    assert hull.shape == (RES, RES, RES) and hull.dtype == np.bool_
    # the wire crosses the cells x, y in {7, 8} (x = 0 is a cell face), z = 4 .. 11 (|z| <= 0.5)
    assert hull[4:12, 7:9, 7:9].all()
    centres = (np.arange(RES) + 0.5) * 2.0 / RES - 1.0
    _, y, x = np.meshgrid(centres, centres, centres, indexing="ij")
    far = np.hypot(x, y) > 0.6
    assert far.sum() > 2500 and not hull[far].any()


def test_carving_needs_transparency_and_full_visibility():
    poses = ring_poses(16, 4.0, 20.0)
    opaque = np.ones((16, 32, 32), np.float32)
    assert carve_empty_cells(opaque, poses, CARVE_FOCAL, CARVE_AABB, RES).all()
    # one camera facing the box from close by sees only part of it: what it does not see is kept
    near = ring_poses(1, 1.5, 0.0)
    hull = carve_empty_cells(np.zeros((1, 32, 32), np.float32), near, CARVE_FOCAL, CARVE_AABB, RES)
    assert 0 < hull.sum() < RES**3
    assert hull[-1, -1, -1]  # the corner (1, 1, 1), 0.5 in front of the camera on the +x axis, 1.4 aside
    assert not hull[RES // 2, RES // 2, RES // 2]  # the centre, straight ahead
