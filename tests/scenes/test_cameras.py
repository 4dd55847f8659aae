"""Rays and camera placement (OpenGL convention, pixel centres at i + 0.5)."""

import numpy as np
import pytest

from hero_lite.scenes import camera_rays, hemisphere_poses, look_at, pixel_rays, ring_poses


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_camera_rays_hand_example_identity_pose():
    # Identity pose, f = 1, 2x2 image: pixel (col 0, row 0) has centre (0.5, 0.5), so its camera
    # direction is [(0.5 - 1)/1, -(0.5 - 1)/1, -1] = [-0.5, 0.5, -1], norm sqrt(1.5).
    origins, directions = camera_rays(np.eye(4), 1.0, 2, 2)
    assert origins.shape == (4, 3) and directions.shape == (4, 3)
    assert origins.dtype == np.float32 and directions.dtype == np.float32
    np.testing.assert_allclose(origins, 0.0)
    expected = np.array([[-0.5, 0.5, -1], [0.5, 0.5, -1], [-0.5, -0.5, -1], [0.5, -0.5, -1]]) / np.sqrt(1.5)
    np.testing.assert_allclose(directions, expected, rtol=1e-6)


def test_camera_rays_are_unit_and_row_major():
    pose = look_at((1.0, -3.0, 2.0))
    height, width = 3, 5
    _, directions = camera_rays(pose, 4.0, height, width)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, rtol=1e-6)
    camera_dirs = directions.astype(np.float64) @ pose[:3, :3]  # back to camera space (R is orthonormal)
    grid = camera_dirs.reshape(height, width, 3)
    # Along a row x grows with the column; down the image y decreases with the row.
    assert np.all(np.diff(grid[..., 0], axis=1) > 0)
    assert np.all(np.diff(grid[..., 1], axis=0) < 0)


@pytest.mark.parametrize("eye", [(4.0, 0.0, 0.0), (1.0, 2.0, 3.0), (0.0, 0.0, 4.0), (-2.0, -2.0, 0.5)])
def test_centre_ray_of_look_at_pose_points_at_target(eye):
    # With an odd image size the middle pixel's centre lies on the optical axis.
    height, width = 5, 7
    origins, directions = camera_rays(look_at(eye), 10.0, height, width)
    centre = (height // 2) * width + width // 2
    np.testing.assert_allclose(origins[centre], eye, rtol=1e-6)
    expected = -np.asarray(eye) / np.linalg.norm(eye)
    np.testing.assert_allclose(directions[centre], expected, atol=1e-6)


def test_pixel_rays_match_camera_rays_at_pixel_centres(rng):
    poses = hemisphere_poses(3, 4.0, rng)
    height, width, focal = 4, 6, 5.5
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    for view in range(3):
        expected_o, expected_d = camera_rays(poses[view], focal, height, width)
        view_ids = np.full(height * width, view, dtype=np.int64)
        o, d = pixel_rays(poses, focal, height, width, view_ids, rows.ravel() + 0.5, cols.ravel() + 0.5)
        np.testing.assert_allclose(o, expected_o, rtol=1e-6)
        np.testing.assert_allclose(d, expected_d, atol=1e-6)


def test_pixel_rays_take_continuous_coordinates():
    # Coordinate (0, 0) is the image's top-left corner: camera direction [-W/2/f, H/2/f, -1].
    _, d = pixel_rays(np.eye(4)[None], 2.0, 4, 6, np.array([0]), np.array([0]), np.array([0]))
    expected = np.array([-1.5, 1.0, -1.0]) / np.linalg.norm([-1.5, 1.0, -1.0])
    np.testing.assert_allclose(d[0], expected, rtol=1e-6)


def test_pixel_rays_reject_bad_input():
    poses = np.eye(4)[None]
    with pytest.raises(ValueError, match="view_ids must lie in"):
        pixel_rays(poses, 1.0, 2, 2, np.array([1]), np.array([0.5]), np.array([0.5]))
    with pytest.raises(ValueError, match="equal length"):
        pixel_rays(poses, 1.0, 2, 2, np.array([0, 0]), np.array([0.5]), np.array([0.5]))
    with pytest.raises(ValueError, match="focal"):
        camera_rays(np.eye(4), 0.0, 2, 2)
    with pytest.raises(ValueError, match="shape"):
        camera_rays(np.eye(3), 1.0, 2, 2)


def test_look_at_is_a_proper_rotation_looking_at_target():
    eye, target = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5, 0.0])
    c2w = look_at(eye, target)
    rotation = c2w[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    forward = -rotation[:, 2]
    np.testing.assert_allclose(forward, (target - eye) / np.linalg.norm(target - eye), atol=1e-12)
    assert rotation[2, 1] > 0  # camera up leans towards world +z
    assert abs(rotation[2, 0]) < 1e-12  # no roll: the right vector is horizontal
    np.testing.assert_array_equal(c2w[3], [0, 0, 0, 1])


def test_look_at_straight_down_is_well_defined():
    c2w = look_at((0.0, 0.0, 4.0))
    assert np.all(np.isfinite(c2w))
    np.testing.assert_allclose(-c2w[:3, 2], [0, 0, -1], atol=1e-12)


def test_hemisphere_poses_upper_radius_and_uniform_in_area(rng):
    poses = hemisphere_poses(4000, 4.0, rng)
    eyes = poses[:, :3, 3]
    assert poses.shape == (4000, 4, 4)
    np.testing.assert_allclose(np.linalg.norm(eyes, axis=1), 4.0, rtol=1e-12)
    assert np.all(eyes[:, 2] >= 0)
    # Uniform in area: z / r ~ U(0, 1) (mean 1/2, variance 1/12); 4000 samples give std 0.0046.
    heights = eyes[:, 2] / 4.0
    assert abs(heights.mean() - 0.5) < 0.02
    assert abs(heights.var() - 1 / 12) < 0.01
    # Every camera looks at the origin.
    forward = -poses[:, :3, 2]
    np.testing.assert_allclose(forward, -eyes / 4.0, atol=1e-12)


def test_hemisphere_poses_depend_only_on_the_generator_state():
    a = hemisphere_poses(5, 4.0, np.random.default_rng(7))
    b = hemisphere_poses(5, 4.0, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_ring_poses_elevation_and_even_azimuths():
    poses = ring_poses(8, 4.0, 30.0)
    eyes = poses[:, :3, 3]
    np.testing.assert_allclose(eyes[:, 2], 4.0 * np.sin(np.deg2rad(30.0)), rtol=1e-12)  # z = 2
    np.testing.assert_allclose(np.degrees(np.arcsin(eyes[:, 2] / 4.0)), 30.0)
    azimuths = np.degrees(np.arctan2(eyes[:, 1], eyes[:, 0])) % 360
    np.testing.assert_allclose(azimuths, np.arange(8) * 45.0, atol=1e-9)
    with pytest.raises(ValueError, match="elevation_deg"):
        ring_poses(3, 4.0, 90.0)
