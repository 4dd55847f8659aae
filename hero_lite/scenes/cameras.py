"""Pinhole cameras in the Blender/OpenGL convention: rays and camera placement.

Convention (NeRF code ``load_blender.py``, NeRF-synthetic dataset): a pose is a 4x4
camera-to-world matrix ``c2w``; in camera space x points right, y up and the camera looks down
-z. The principal point is the image centre. Pixel (column ``i``, row ``j``) covers the square
``[i, i + 1) x [j, j + 1)`` in continuous pixel coordinates, so its centre is ``(i + 0.5, j + 0.5)``;
rows grow downwards. The camera-space direction of continuous pixel coordinate ``(u, v)`` is

    [(u - W/2) / f, -(v - H/2) / f, -1]

and its world-space direction is ``R @ that`` (``R = c2w[:3, :3]``), normalised; the origin is the
translation column ``c2w[:3, 3]``. (The original NeRF code uses ``u = i`` without the half pixel.)
"""

from __future__ import annotations

import numpy as np


def _validate_pose_stack(poses: np.ndarray, name: str) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"{name} must have shape (n_views, 4, 4), got {poses.shape}")
    if not np.all(np.isfinite(poses)):
        raise ValueError(f"{name} contains non-finite values")
    return poses


def _validate_intrinsics(focal: float, height: int, width: int) -> None:
    if not np.isfinite(focal) or focal <= 0:
        raise ValueError(f"focal must be a positive finite number of pixels, got {focal}")
    for label, value in (("height", height), ("width", width)):
        if int(value) != value or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value}")


def _camera_directions(u: np.ndarray, v: np.ndarray, focal: float, height: int, width: int) -> np.ndarray:
    """Camera-space ray directions (not normalised) for continuous pixel coordinates.

    Parameters
    ----------
    u, v : (n,) float64
        Continuous column and row coordinates in pixels (pixel centres at ``i + 0.5``).

    Returns
    -------
    (n, 3) float64
        ``[(u - W/2)/f, -(v - H/2)/f, -1]``.
    """
    directions = np.empty((u.shape[0], 3), dtype=np.float64)
    directions[:, 0] = (u - 0.5 * width) / focal
    directions[:, 1] = -(v - 0.5 * height) / focal
    directions[:, 2] = -1.0
    return directions


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def camera_rays(pose: np.ndarray, focal: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rays through the centres of all pixels of one camera.

    Parameters
    ----------
    pose : (4, 4) float
        Camera-to-world matrix (OpenGL convention: x right, y up, looks down -z).
    focal : float
        Focal length in pixels.
    height, width : int
        Image size in pixels.

    Returns
    -------
    origins : (height * width, 3) float32
        Ray origins in world units (all equal to the camera centre).
    directions : (height * width, 3) float32
        Unit ray directions in world space.

    Notes
    -----
    Row-major order: the ray of row ``j``, column ``i`` is at index ``j * width + i``. The same
    rays come from :func:`pixel_rays` with ``rows = j + 0.5`` and ``cols = i + 0.5``.
    """
    pose = _validate_pose_stack(np.asarray(pose)[None], "pose")[0]
    _validate_intrinsics(focal, height, width)
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    camera_dirs = _camera_directions(cols.ravel() + 0.5, rows.ravel() + 0.5, float(focal), height, width)
    directions = _normalise_rows(camera_dirs @ pose[:3, :3].T)
    origins = np.broadcast_to(pose[:3, 3], directions.shape)
    return origins.astype(np.float32), directions.astype(np.float32)


def pixel_rays(
    poses: np.ndarray,
    focal: float,
    height: int,
    width: int,
    view_ids: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rays through arbitrary (possibly sub-pixel) points of several cameras.

    Parameters
    ----------
    poses : (n_views, 4, 4) float
        Camera-to-world matrices.
    focal : float
        Focal length in pixels.
    height, width : int
        Image size in pixels.
    view_ids : (n_rays,) int64
        Index into ``poses`` of each ray's camera.
    rows, cols : (n_rays,) int64 or float
        **Continuous** pixel coordinates: pixel ``(i, j)`` spans ``[i, i+1) x [j, j+1)``, so pass
        ``j + 0.5`` / ``i + 0.5`` for its centre, or ``j + U(0, 1)`` / ``i + U(0, 1)`` for a jittered
        training ray. Integers are taken as coordinates too (a pixel's top-left corner).

    Returns
    -------
    origins : (n_rays, 3) float32
        Camera centres, world units.
    directions : (n_rays, 3) float32
        Unit ray directions, world space.
    """
    poses = _validate_pose_stack(poses, "poses")
    _validate_intrinsics(focal, height, width)
    view_ids = np.asarray(view_ids)
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if view_ids.ndim != 1 or rows.shape != view_ids.shape or cols.shape != view_ids.shape:
        raise ValueError(
            f"view_ids, rows and cols must be 1-D of equal length, got {view_ids.shape}, {rows.shape}, {cols.shape}"
        )
    if view_ids.size and not np.issubdtype(view_ids.dtype, np.integer):
        raise ValueError(f"view_ids must be integers, got dtype {view_ids.dtype}")
    if view_ids.size and (view_ids.min() < 0 or view_ids.max() >= poses.shape[0]):
        raise ValueError(f"view_ids must lie in [0, {poses.shape[0] - 1}]")
    view_ids = view_ids.astype(np.int64)
    camera_dirs = _camera_directions(cols, rows, float(focal), height, width)
    rotations = poses[view_ids, :3, :3]
    directions = _normalise_rows(np.einsum("nij,nj->ni", rotations, camera_dirs))
    origins = poses[view_ids, :3, 3]
    return origins.astype(np.float32), directions.astype(np.float32)


def look_at(eye: np.ndarray, target: np.ndarray = (0.0, 0.0, 0.0), up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``eye`` looking at ``target``.

    Parameters
    ----------
    eye, target : (3,) float
        Camera centre and the point it looks at, world units.
    up : (3,) float
        World up direction (Blender scenes are z-up). When the viewing direction is parallel to
        ``up`` (a camera straight above the target), world +y is used instead, so the pose stays
        well defined.

    Returns
    -------
    (4, 4) float64
        ``c2w`` with columns right (x), up (y), backward (z = -viewing direction) and ``eye``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    for label, vector in (("eye", eye), ("target", target), ("up", up)):
        if vector.shape != (3,) or not np.all(np.isfinite(vector)):
            raise ValueError(f"{label} must be a finite (3,) vector, got {vector!r}")
    backward = eye - target
    distance = np.linalg.norm(backward)
    if distance == 0:
        raise ValueError("eye and target must differ")
    backward = backward / distance
    if np.linalg.norm(up) == 0:
        raise ValueError("up must be non-zero")
    right = np.cross(up, backward)
    if np.linalg.norm(right) < 1e-9 * np.linalg.norm(up):
        right = np.cross(np.array([0.0, 1.0, 0.0]), backward)
    right = right / np.linalg.norm(right)
    camera_up = np.cross(backward, right)
    c2w = np.eye(4, dtype=np.float64)
    c2w[:3, 0] = right
    c2w[:3, 1] = camera_up
    c2w[:3, 2] = backward
    c2w[:3, 3] = eye
    return c2w


def _poses_looking_at_origin(eyes: np.ndarray) -> np.ndarray:
    return np.stack([look_at(eye) for eye in eyes]) if len(eyes) else np.zeros((0, 4, 4))


def hemisphere_poses(n: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Cameras uniformly distributed (in area) on the upper hemisphere, looking at the origin.

    The NeRF-synthetic training cameras are placed this way (z up). Uniform area means
    ``cos(polar angle) = z / radius ~ U(0, 1)`` and azimuth ``~ U(0, 2 pi)``.

    Parameters
    ----------
    n : int
        Number of cameras.
    radius : float
        Distance of every camera from the origin, world units.
    rng : numpy.random.Generator
        Source of randomness; draws one ``(n, 2)`` block of uniforms (cos polar, azimuth fraction).

    Returns
    -------
    (n, 4, 4) float64
        Camera-to-world matrices; every camera has ``z >= 0``.
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n}")
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    uniforms = rng.random((int(n), 2))
    cos_polar = uniforms[:, 0]
    azimuth = 2.0 * np.pi * uniforms[:, 1]
    sin_polar = np.sqrt(1.0 - cos_polar**2)
    eyes = radius * np.stack([sin_polar * np.cos(azimuth), sin_polar * np.sin(azimuth), cos_polar], axis=1)
    return _poses_looking_at_origin(eyes)


def ring_poses(n: int, radius: float, elevation_deg: float) -> np.ndarray:
    """Cameras on a horizontal ring at a fixed elevation, looking at the origin.

    Parameters
    ----------
    n : int
        Number of cameras; azimuths are ``2 pi k / n`` for ``k = 0 .. n-1`` (the first camera is on
        the +x axis).
    radius : float
        Distance from the origin, world units.
    elevation_deg : float
        Angle above the z = 0 plane, degrees (in (-90, 90)).

    Returns
    -------
    (n, 4, 4) float64
        Camera-to-world matrices.
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n}")
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    if not -90.0 < elevation_deg < 90.0:
        raise ValueError(f"elevation_deg must lie in (-90, 90), got {elevation_deg}")
    azimuth = 2.0 * np.pi * np.arange(int(n)) / max(int(n), 1)
    elevation = np.deg2rad(elevation_deg)
    eyes = radius * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.full(int(n), np.sin(elevation))],
        axis=1,
    )
    return _poses_looking_at_origin(eyes)
