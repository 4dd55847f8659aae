"""Blender (NeRF-synthetic) and instant-ngp scenes: load, validate and save.

Format (NeRF code ``load_blender.py``; NeRF-synthetic dataset README)::

    <scene>/transforms_train.json   {"camera_angle_x": 0.69..., "frames": [
                                       {"file_path": "./train/r_0", "transform_matrix": [[...4x4...]]},
                                       ...], "aabb": [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]}
    <scene>/train/r_0.png           RGBA 8-bit, straight (un-premultiplied) alpha
    <scene>/transforms_val.json, transforms_test.json, val/, test/

Only the images the frames name are read, so other files in the split folders (NeRF-synthetic's
``test/r_0_depth_0000.png`` and ``test/r_0_normal_0000.png``) are ignored. ``file_path`` without an
image extension gets ".png" appended; one that ends in .png, .jpg or .jpeg is used as is (instant-ngp
style, e.g. "./images/0001.jpg"); backslashes are read as "/". ``transform_matrix`` is
camera-to-world in the OpenGL convention (x right, y up, looking down -z), world units.

Splits (`load_scene`): each split is read from ``transforms_{split}.json`` when it exists. Without
``transforms_val.json``, "val" is every HELD_OUT_STRIDE-th frame of ``transforms_train.json``
(`held_out_indices`) and "train" the others. A folder with neither ``transforms_train.json`` nor
``transforms_{split}.json`` but a single ``transforms.json`` (instant-ngp's layout) is split by the
same rule: "train" is every frame except the held-out ones, "val" and "test" are both the held-out
frames (so the test score is measured on the validation views).

Cameras. hero-lite renders a pinhole camera with square pixels and the principal point at the
image centre (`hero_lite.scenes.cameras`), and one focal length per split. The keys follow
instant-ngp's ``src/nerf_loader.cu`` (``read_focal_length``, ``read_lens``), read at the top level
and overridden per frame (a frame with any focal key replaces the top level's focal):

- focal length in pixels: ``fl_x``, else ``0.5 * W / tan(0.5 * camera_angle_x)`` (radians); with
  neither, ``fl_y`` or ``camera_angle_y`` (with H) for both axes;
- ``fl_y`` / ``camera_angle_y`` must give the x focal within FOCAL_TOLERANCE (square pixels);
- ``cx``, ``cy`` (pixels, continuous coordinates, image spanning [0, W] x [0, H]; instant-ngp
  divides them by ``w``, ``h``) must be within PRINCIPAL_POINT_TOLERANCE_PX of W/2, H/2;
- ``w``, ``h`` must equal the image's size; distortion ``k1``..``k4``, ``p1``, ``p2`` must be 0;
  ``is_fisheye`` false; other lens models (``ftheta_p0``, ``latlong``, ``equirectangular``) are refused;
- every frame's focal length must equal the first frame's within FOCAL_TOLERANCE.

Anything else is a one-line ValueError that says what is not supported, never a silently wrong
rendering. Other instant-ngp keys (``sharpen``, ``up``, ...) are ignored.

Scene box, in world units: the ``"aabb"`` key (hero-lite's) when present; else ``aabb_scale`` as
``[-AABB_SCALE_HALF_EXTENT * aabb_scale, +AABB_SCALE_HALF_EXTENT * aabb_scale]^3``; else the
NeRF-synthetic default ``[[-1.5]*3, [1.5]*3]``. instant-ngp maps world points into its unit cube as
``p * scale + offset`` with ``scale`` 0.33 and ``offset`` 0.5 (``NERF_SCALE``) and marches the cube
``0.5 +- 0.5 * aabb_scale`` (``testbed_nerf.cu``), i.e. world ``+-0.5 / 0.33 * aabb_scale`` =
``+-1.52 aabb_scale``; hero-lite keeps Blender world coordinates and rounds that to the NeRF-synthetic
box, 1.5 per unit of ``aabb_scale``. A file that sets another ``scale`` or ``offset`` must give an
``"aabb"``. The box must be finite with min < max and at most MAX_AABB_EXTENT per axis (so
``aabb_scale`` up to 16 loads); every pose must be a rigid transform (rotation orthonormal within
POSE_TOLERANCE, last row ``0 0 0 1``), so no view can yield NaN rays or unbounded marching.

Images: 8-bit RGB or RGBA (palette images are expanded; RGB gets alpha 1). 16-bit PNGs are read at
8 bits (Pillow keeps each channel's high byte, an error below 1/255). Greyscale and other modes
are refused. All images of a split must have one size.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

SPLITS = ("train", "val", "test")
DEFAULT_AABB = ((-1.5, -1.5, -1.5), (1.5, 1.5, 1.5))
# When a scene has no validation split, every HELD_OUT_STRIDE-th training frame is held out
# (and a single transforms.json is split the same way, see held_out_indices).
HELD_OUT_STRIDE = 10
# Bounds of a loadable scene. Marching allocates samples in proportion to the box diagonal over the
# step, so the box is at most MAX_AABB_EXTENT world units per axis (the default model then marches at
# most ~11k steps per ray, within hero_lite.nerf.config.MAX_MARCH_STEPS); coordinates and camera
# centres stay within MAX_WORLD_COORD, where float32 still resolves a marching step.
MAX_AABB_EXTENT = 64.0
MAX_WORLD_COORD = 1.0e4
# A camera-to-world rotation must be orthonormal within this (max |R^T R - I|); real poses are
# orthonormal to ~1e-7, and a degenerate one (all zeros) gives NaN rays that never leave the box.
POSE_TOLERANCE = 1e-2
# float32 images of one loaded split (n_views * height * width * 4 channels * 4 bytes) at most.
MAX_SPLIT_BYTES = 8 << 30
# instant-ngp's single transforms file, split by held_out_indices.
SINGLE_TRANSFORMS = "transforms.json"
# file_path endings read as they are; any other file_path gets ".png" appended (NeRF-synthetic).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Relative tolerance on the focal length: fl_y against fl_x, and each frame against the first.
FOCAL_TOLERANCE = 1e-3
# Largest accepted distance of cx, cy from the image centre, in pixels of the file's images.
PRINCIPAL_POINT_TOLERANCE_PX = 0.5
# World half-extent per unit of instant-ngp's aabb_scale (0.5 / NERF_SCALE 0.33, rounded to 1.5).
AABB_SCALE_HALF_EXTENT = 1.5
# instant-ngp's default world-to-unit-cube mapping (NERF_SCALE, offset), under which aabb_scale is read.
INSTANT_NGP_SCALE = 0.33
INSTANT_NGP_OFFSET = 0.5
FOCAL_KEYS = ("fl_x", "fl_y", "camera_angle_x", "camera_angle_y")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
# camera keys a frame may override: focal, principal point, size, distortion, fisheye flag
CAMERA_KEYS = (*FOCAL_KEYS, "cx", "cy", "w", "h", *DISTORTION_KEYS, "is_fisheye")
# instant-ngp lens models hero-lite cannot render
UNSUPPORTED_LENS_KEYS = ("ftheta_p0", "latlong", "equirectangular")


@dataclass(frozen=True, eq=False)
class Scene:
    """One split of a scene: images, cameras and bounds.

    Attributes
    ----------
    images : (n_views, height, width, 4) float32
        RGBA in [0, 1] with straight (un-premultiplied) alpha; RGB files get alpha 1.
    poses : (n_views, 4, 4) float32
        Camera-to-world matrices, Blender/OpenGL convention (x right, y up, looks down -z),
        world units.
    focal : float
        Focal length in pixels (of these images, i.e. after any downscaling).
    aabb : (2, 3) float32
        Scene bounds ``[min_xyz, max_xyz]``, world units.
    split : str
        "train", "val" or "test".
    name : str
        Scene folder name.
    """

    images: np.ndarray
    poses: np.ndarray
    focal: float
    aabb: np.ndarray
    split: str
    name: str

    @property
    def n_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    def rgb(self, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
        """Images composited over a constant background colour.

        Parameters
        ----------
        background : (3,) float
            Background RGB in [0, 1]; white is the NeRF-synthetic evaluation convention.

        Returns
        -------
        (n_views, height, width, 3) float32
            ``rgb * a + background * (1 - a)``.
        """
        background = np.asarray(background, dtype=np.float32)
        if background.shape != (3,):
            raise ValueError(f"background must be an RGB triple, got shape {background.shape}")
        alpha = self.images[..., 3:4]
        return (self.images[..., :3] * alpha + background * (1.0 - alpha)).astype(np.float32)


def focal_from_camera_angle(width: int, camera_angle_x: float) -> float:
    """Focal length in pixels from the horizontal field of view.

    ``focal = 0.5 * width / tan(0.5 * camera_angle_x)``; e.g. width 100 and the NeRF-synthetic
    angle 0.6911112 give 138.89 px. An angle so small that its tangent underflows gives inf.
    """
    half_tan = math.tan(0.5 * camera_angle_x)
    return float(0.5 * width / half_tan) if half_tan != 0 else math.inf


def held_out_indices(n_frames: int) -> np.ndarray:
    """Frames held out for validation when a scene has no ``transforms_val.json``.

    Every 10th frame counting from the 10th (indices 9, 19, 29, ...); with fewer than 10 frames,
    the last one; with fewer than 2 frames, none (there would be nothing left to train on).

    Returns
    -------
    (n_held_out,) int64
        Sorted indices into the ``frames`` list of ``transforms_train.json`` (or, for a folder with
        only ``transforms.json``, of that file), in file order.
    """
    if n_frames < 2:
        return np.zeros(0, dtype=np.int64)
    indices = np.arange(HELD_OUT_STRIDE - 1, n_frames, HELD_OUT_STRIDE, dtype=np.int64)
    if indices.size == 0:
        indices = np.array([n_frames - 1], dtype=np.int64)
    return indices


def check_aabb(aabb, where: str) -> np.ndarray:
    """Validate a scene box and return it as (2, 3) float32.

    Parameters
    ----------
    aabb : (2, 3) array-like
        ``[min_xyz, max_xyz]``, world units.
    where : str
        What the error names first, e.g. ``"scene/transforms_train.json: 'aabb'"``.

    Raises
    ------
    ValueError
        Not (2, 3) numbers, not finite, a coordinate beyond +-MAX_WORLD_COORD, min >= max on an
        axis (in float32), or an extent above MAX_AABB_EXTENT.
    """
    try:
        box = np.asarray(aabb, dtype=np.float64)
        ok = box.shape == (2, 3) and bool(np.all(np.isfinite(box))) and bool(np.all(np.abs(box) <= MAX_WORLD_COORD))
    except (TypeError, ValueError):
        ok = False
    if ok:
        box32 = box.astype(np.float32)
        extent = box32[1].astype(np.float64) - box32[0]
        ok = bool(np.all(extent > 0)) and bool(np.all(extent <= MAX_AABB_EXTENT))
    if not ok:
        shown = reprlib.repr(aabb.tolist() if isinstance(aabb, np.ndarray) else aabb)
        raise ValueError(
            f"{where} must be [[min_x, min_y, min_z], [max_x, max_y, max_z]], finite, with min < max, "
            f"|coordinates| <= {MAX_WORLD_COORD:g} and extent <= {MAX_AABB_EXTENT:g} world units per axis; got {shown}"
        )
    return box32


def check_pose(matrix: np.ndarray, where: str) -> None:
    """Validate one camera-to-world matrix (4, 4) float64.

    Finite, last row ``0 0 0 1``, rotation part orthonormal within POSE_TOLERANCE (so
    ``|det R|`` is 1 within about 1.5 POSE_TOLERANCE), camera centre within +-MAX_WORLD_COORD.
    """
    if matrix.shape != (4, 4):
        raise ValueError(f"{where}: 'transform_matrix' must be 4x4, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{where}: 'transform_matrix' has non-finite values")
    if np.max(np.abs(matrix[3] - (0.0, 0.0, 0.0, 1.0))) > 1e-6:
        raise ValueError(f"{where}: 'transform_matrix' last row is {matrix[3].tolist()}; valid: [0, 0, 0, 1]")
    rotation = matrix[:3, :3]
    with np.errstate(over="ignore", invalid="ignore"):
        error = float(np.max(np.abs(rotation.T @ rotation - np.eye(3))))
        det = float(np.linalg.det(rotation))
    # (written so that a NaN error or determinant is rejected too)
    if not (error <= POSE_TOLERANCE and abs(abs(det) - 1.0) <= POSE_TOLERANCE):
        raise ValueError(
            f"{where}: 'transform_matrix' rotation is degenerate "
            f"(max |R^T R - I| = {error:.3g}, |det R| = {abs(det):.3g}); "
            f"valid: orthonormal within {POSE_TOLERANCE:g}"
        )
    if np.any(np.abs(matrix[:3, 3]) > MAX_WORLD_COORD):
        raise ValueError(
            f"{where}: 'transform_matrix' camera centre {matrix[:3, 3].tolist()}; "
            f"valid: |coordinates| <= {MAX_WORLD_COORD:g}"
        )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_camera_keys(keys: dict, where: str) -> None:
    """Check the camera keys of one level (the file's top level or one frame) before any image is read.

    Types and ranges of CAMERA_KEYS, and the models hero-lite cannot render: distortion, fisheye
    and the other instant-ngp lens models. ``where`` names the file (and frame) first.
    """
    for key in UNSUPPORTED_LENS_KEYS:
        if key in keys:
            raise ValueError(f"{where}: '{key}' (an instant-ngp lens model) is not supported; "
                             "hero-lite renders pinhole cameras only")
    for key in ("camera_angle_x", "camera_angle_y"):
        # (NaN fails both comparisons, so non-finite angles are rejected too)
        if key in keys and not (_is_number(keys[key]) and 0 < keys[key] < math.pi):
            raise ValueError(f"{where}: '{key}' must be a number of radians in (0, pi), got {keys[key]!r}")
    for key in ("fl_x", "fl_y"):
        if key in keys and not (_is_number(keys[key]) and 0 < keys[key] < math.inf):
            raise ValueError(f"{where}: '{key}' must be a focal length in pixels, finite and > 0, got {keys[key]!r}")
    for key in ("cx", "cy", *DISTORTION_KEYS):
        if key in keys and not (_is_number(keys[key]) and math.isfinite(keys[key])):
            raise ValueError(f"{where}: '{key}' must be a finite number, got {keys[key]!r}")
    for key in ("w", "h"):
        size = keys.get(key, 1)
        if not (_is_number(size) and math.isfinite(size) and size >= 1 and size == int(size)):
            raise ValueError(f"{where}: '{key}' must be an image size in pixels, an integer >= 1, got {keys[key]!r}")
    if "is_fisheye" in keys:
        if not isinstance(keys["is_fisheye"], bool):
            raise ValueError(f"{where}: 'is_fisheye' must be true or false, got {keys['is_fisheye']!r}")
        if keys["is_fisheye"]:
            raise ValueError(f"{where}: 'is_fisheye' is true; fisheye lenses are not supported, hero-lite renders "
                             "pinhole cameras only")
    distorted = [key for key in DISTORTION_KEYS if keys.get(key, 0) != 0]
    if distorted:
        shown = ", ".join(f"{key} = {keys[key]:g}" for key in distorted)
        raise ValueError(f"{where}: lens distortion ({shown}) is not supported; hero-lite renders undistorted "
                         "pinhole cameras (undistort the images first and set the coefficients to 0)")


@dataclass(frozen=True)
class _TransformsFile:
    """One parsed and validated transforms file."""

    path: str
    camera: dict  # the top level's CAMERA_KEYS
    frames: list  # frame objects, each with a valid 'file_path' and 'transform_matrix'
    aabb: np.ndarray  # (2, 3) float32, world units


def _scene_box(meta: dict, json_path: str) -> np.ndarray:
    """The scene box of a transforms file: 'aabb', else 'aabb_scale', else DEFAULT_AABB (module docstring)."""
    if "aabb" in meta:
        return check_aabb(meta["aabb"], f"{json_path}: 'aabb'")
    if "aabb_scale" not in meta:
        return check_aabb(DEFAULT_AABB, f"{json_path}: default 'aabb'")
    aabb_scale = meta["aabb_scale"]
    if not (_is_number(aabb_scale) and 0 < aabb_scale < math.inf):
        raise ValueError(f"{json_path}: 'aabb_scale' must be a number > 0, got {aabb_scale!r}")
    for key, default in (("scale", INSTANT_NGP_SCALE), ("offset", INSTANT_NGP_OFFSET)):
        value = meta.get(key, default)
        values = value if isinstance(value, list) else [value]
        if not all(_is_number(v) and abs(v - default) <= 1e-6 for v in values):
            raise ValueError(f"{json_path}: '{key}' = {reprlib.repr(value)} with 'aabb_scale' is not supported "
                             f"(hero-lite reads aabb_scale under instant-ngp's default {key} {default:g}); "
                             "give the scene box in world units as 'aabb' instead")
    half = AABB_SCALE_HALF_EXTENT * float(aabb_scale)
    return check_aabb([[-half] * 3, [half] * 3], f"{json_path}: 'aabb_scale' {aabb_scale!r} (box +-{half:g})")


def _read_transforms(json_path: str) -> _TransformsFile:
    """Parse and validate one transforms file: JSON, frames, poses, camera keys, box."""
    try:
        with open(json_path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{json_path}: top level must be a JSON object, got {type(meta).__name__}")
    _check_camera_keys(meta, json_path)
    if "frames" not in meta:
        raise ValueError(f"{json_path}: missing key 'frames'")
    frames = meta["frames"]
    if not isinstance(frames, list) or len(frames) == 0:
        raise ValueError(f"{json_path}: 'frames' must be a non-empty list")
    file_has_focal = any(key in meta for key in FOCAL_KEYS)
    for index, frame in enumerate(frames):
        where = f"{json_path}: frames[{index}]"
        if not isinstance(frame, dict):
            raise ValueError(f"{where} must be an object")
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise ValueError(f"{where} has no '{key}'")
        if not isinstance(frame["file_path"], str) or not frame["file_path"]:
            raise ValueError(f"{where}: 'file_path' must be a non-empty string")
        try:
            matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: 'transform_matrix' must be a 4x4 list of numbers") from None
        check_pose(matrix, where)
        _check_camera_keys(frame, where)
        if not file_has_focal and not any(key in frame for key in FOCAL_KEYS):
            where = json_path if index == 0 else where
            raise ValueError(f"{where}: missing key 'camera_angle_x' (or 'fl_x'); give the focal length at the top "
                             "level or in every frame")
    camera = {key: meta[key] for key in CAMERA_KEYS if key in meta}
    return _TransformsFile(json_path, camera, frames, _scene_box(meta, json_path))


def _axis_focal(keys: dict, axis: str, size: int) -> float | None:
    """Focal length in pixels along one axis ("x" with the width, "y" with the height), or None."""
    if f"fl_{axis}" in keys:
        return float(keys[f"fl_{axis}"])
    if f"camera_angle_{axis}" in keys:
        return focal_from_camera_angle(size, keys[f"camera_angle_{axis}"])
    return None


def _frame_focal(file_camera: dict, frame: dict, width: int, height: int, where: str) -> float:
    """Focal length in pixels of one frame, checked against hero-lite's pinhole camera.

    Parameters
    ----------
    file_camera : dict
        The transforms file's top-level camera keys (CAMERA_KEYS); ``frame`` overrides them: its
        focal keys (if it has any) replace the file's, its other camera keys override one by one.
    frame : dict
        One entry of ``frames``.
    width, height : int
        Size of the frame's image in pixels (before any downscaling).
    where : str
        What an error names first, e.g. ``"scene/transforms.json: frames[3]"``.

    Returns
    -------
    float
        ``fl_x``, else from ``camera_angle_x`` and the width, else from the y keys.

    Raises
    ------
    ValueError
        ``w``/``h`` differ from the image size, x and y focal lengths differ by more than
        FOCAL_TOLERANCE (non-square pixels), ``cx``/``cy`` off the image centre by more than
        PRINCIPAL_POINT_TOLERANCE_PX, or a focal length that is not finite and > 0.
    """
    focal_keys = frame if any(key in frame for key in FOCAL_KEYS) else file_camera
    lens = {**file_camera, **{key: frame[key] for key in CAMERA_KEYS if key in frame}}
    for key, size in (("w", width), ("h", height)):
        if key in lens and lens[key] != size:
            raise ValueError(f"{where}: '{key}' is {lens[key]:g} but the image is {width}x{height} pixels")
    focal_x = _axis_focal(focal_keys, "x", width)
    focal_y = _axis_focal(focal_keys, "y", height)
    focal = focal_x if focal_x is not None else focal_y
    source = next(key for key in ("fl_x", "camera_angle_x", "fl_y", "camera_angle_y") if key in focal_keys)
    if not (math.isfinite(focal) and focal > 0):
        raise ValueError(f"{where}: '{source}' {focal_keys[source]!r} gives focal length {focal!r} px; "
                         "valid: finite and > 0")
    if focal_y is not None and not abs(focal_y - focal) <= FOCAL_TOLERANCE * focal:
        raise ValueError(f"{where}: focal lengths {focal:.6g} px (x) and {focal_y:.6g} px (y) differ by more than "
                         f"{FOCAL_TOLERANCE:.1%}; non-square pixels are not supported")
    for key, size in (("cx", width), ("cy", height)):
        if key in lens and abs(lens[key] - 0.5 * size) > PRINCIPAL_POINT_TOLERANCE_PX:
            raise ValueError(f"{where}: principal point '{key}' = {lens[key]:g} px is more than "
                             f"{PRINCIPAL_POINT_TOLERANCE_PX:g} px from the image centre {0.5 * size:g} px; "
                             "an off-centre principal point is not supported")
    return focal


def _image_path(scene_dir: str, file_path: str) -> str:
    """Image file of a frame: ``file_path`` as is if it ends in IMAGE_EXTENSIONS, else with ".png"."""
    relative = file_path.replace("\\", "/")
    if not relative.lower().endswith(IMAGE_EXTENSIONS):
        relative += ".png"
    return os.path.normpath(os.path.join(scene_dir, relative))


def _read_rgba_uint8(image_path: str) -> np.ndarray:
    """Read one image as (H, W, 4) uint8 RGBA.

    RGB gets alpha 255, palette images are expanded, 16-bit PNGs keep each channel's high byte
    (Pillow's conversion); any other mode (greyscale, CMYK, ...) is a ValueError.
    """
    if not os.path.isfile(image_path):
        raise FileNotFoundError(f"image file not found: {image_path}")
    try:
        with Image.open(image_path) as image:
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA")
            elif mode not in ("RGB", "RGBA"):
                raise ValueError(f"{image_path}: image mode {mode!r} is not RGB or RGBA")
            pixels = np.asarray(image.convert("RGBA"), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise ValueError(f"{image_path}: cannot read image ({exc})") from None
    return pixels


def _box_downscale(rgba: np.ndarray, factor: int) -> np.ndarray:
    """Area (box) filter of straight-alpha RGBA by an integer factor, in premultiplied colour.

    Over each ``factor x factor`` block: ``alpha = mean(a)`` and ``rgb = mean(rgb * a) / alpha``
    (0 where alpha is 0). Compositing the result over any background then equals the mean of the
    block's pixels composited over it, so transparent pixels do not darken edges. E.g. a 2x2 block
    of two opaque white pixels and two transparent black ones gives white at alpha 0.5 (a straight
    average of colours would give grey). The mean is taken of the stored values, as NeRF datasets
    downscale.

    Parameters
    ----------
    rgba : (H, W, 4) float64
        Straight-alpha RGBA in [0, 1]; H and W multiples of ``factor``.
    factor : int
        Downscale factor >= 1.

    Returns
    -------
    (H // factor, W // factor, 4) float64
        Straight-alpha RGBA in [0, 1].
    """
    height, width = rgba.shape[:2]
    assert height % factor == 0 and width % factor == 0, "load_scene checks divisibility first"
    out_h, out_w = height // factor, width // factor
    premultiplied = np.concatenate([rgba[..., :3] * rgba[..., 3:4], rgba[..., 3:4]], axis=-1)
    averaged = premultiplied.reshape(out_h, factor, out_w, factor, 4).mean(axis=(1, 3))
    alpha = averaged[..., 3:4]
    colour = np.divide(averaged[..., :3], alpha, out=np.zeros_like(averaged[..., :3]), where=alpha > 0)
    return np.concatenate([np.clip(colour, 0.0, 1.0), alpha], axis=-1)


def _check_downscale_divides(width: int, height: int, downscale: int, image_path: str) -> None:
    if width % downscale == 0 and height % downscale == 0:
        return
    common = math.gcd(width, height)
    factors = [d for d in range(2, common + 1) if common % d == 0]
    valid = (f"1 or a common divisor of {width} and {height} ({', '.join(map(str, factors[:8]))}"
             f"{', ...' if len(factors) > 8 else ''})" if factors else f"1 ({width} and {height} share no factor)")
    raise ValueError(f"{image_path}: image {width}x{height} is not divisible by downscale {downscale}; valid: {valid}")


def _split_source(scene_dir: str, split: str) -> tuple[str, str]:
    """(transforms file, which of its frames: "all", "not_held_out" or "held_out") of a split (module docstring)."""
    split_files = {name: os.path.join(scene_dir, f"transforms_{name}.json") for name in SPLITS}
    has_train, has_val = os.path.isfile(split_files["train"]), os.path.isfile(split_files["val"])
    if os.path.isfile(split_files[split]):
        return split_files[split], "not_held_out" if split == "train" and not has_val else "all"
    if split == "val" and has_train:
        return split_files["train"], "held_out"
    single = os.path.join(scene_dir, SINGLE_TRANSFORMS)
    if not has_train and os.path.isfile(single):
        return single, "not_held_out" if split == "train" else "held_out"
    also = "" if has_train else f" (and no {SINGLE_TRANSFORMS} beside it)"
    raise FileNotFoundError(f"transforms file not found: {split_files[split]}{also}")


def load_scene(path: str | os.PathLike, split: str = "train", downscale: int = 1) -> Scene:
    """Load one split of a Blender-format (NeRF-synthetic) or instant-ngp scene.

    Parameters
    ----------
    path : str or PathLike
        Scene folder holding ``transforms_{split}.json`` files or one ``transforms.json``.
    split : {"train", "val", "test"}
        Which split to load. Without ``transforms_val.json``, "val" is a fixed subset of the
        training frames (:func:`held_out_indices`: every 10th, at least one) and "train" then
        excludes those frames, so the two never overlap. A folder with only ``transforms.json``:
        "train" is every frame but the held-out ones, "val" and "test" are the held-out ones.
    downscale : int
        Integer factor >= 1 that divides the image width and height: an 800x800 NeRF-synthetic
        view at 8 gives 100x100. Each ``downscale x downscale`` block is area-averaged in
        premultiplied colour (`_box_downscale`) and the focal length is divided by ``downscale``.

    Returns
    -------
    Scene
        float32 straight-alpha images (about 10 MB per 800x800 view, 160 kB at downscale 8) and
        float32 poses; ``focal`` in pixels of the returned images.

    Raises
    ------
    FileNotFoundError
        Missing scene folder, transforms file or image file.
    ValueError
        Unknown split, a downscale that is not an integer >= 1 or does not divide the image size,
        invalid JSON or keys, a camera hero-lite cannot render (distortion, non-square pixels, an
        off-centre principal point, focal lengths that differ between frames; see the module
        docstring), a degenerate pose (`check_pose`), an out-of-range box (`check_aabb`), non-RGB(A)
        images, images of different sizes, a split above MAX_SPLIT_BYTES. Each message is one
        line naming the file (and the frame index or key) and the valid range.
    """
    scene_dir = os.fspath(path)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if isinstance(downscale, bool) or not isinstance(downscale, (int, np.integer)) or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1, got {downscale!r}")
    downscale = int(downscale)
    if not os.path.isdir(scene_dir):
        raise FileNotFoundError(f"scene folder not found: {scene_dir}")

    json_path, which = _split_source(scene_dir, split)
    transforms = _read_transforms(json_path)
    n_frames = len(transforms.frames)
    indices = np.arange(n_frames, dtype=np.int64)
    if which != "all":
        held_out = held_out_indices(n_frames)
        if which == "held_out" and held_out.size == 0:
            raise ValueError(
                f"{json_path}: no transforms_val.json and only {n_frames} frame(s), too few to hold some out "
                f"for the {split} split"
            )
        indices = held_out if which == "held_out" else np.setdiff1d(indices, held_out)

    images = None
    poses = np.empty((len(indices), 4, 4), dtype=np.float32)
    first = None  # (width, height, image path, focal) of the split's first frame
    for slot, index in enumerate(indices):
        frame = transforms.frames[index]
        where = f"{json_path}: frames[{index}]"
        image_path = _image_path(scene_dir, frame["file_path"])
        pixels = _read_rgba_uint8(image_path)
        height, width = pixels.shape[:2]
        focal = _frame_focal(transforms.camera, frame, width, height, where)
        if first is None:
            first = (width, height, image_path, focal)
            _check_downscale_divides(width, height, downscale, image_path)
            out_shape = (len(indices), height // downscale, width // downscale, 4)
            n_bytes = math.prod(out_shape) * 4
            if n_bytes > MAX_SPLIT_BYTES:
                raise ValueError(
                    f"{json_path}: {len(indices)} views of {out_shape[2]}x{out_shape[1]} pixels need "
                    f"{n_bytes / 2**30:.1f} GiB as float32; valid: at most {MAX_SPLIT_BYTES / 2**30:g} GiB per split "
                    "(fewer views, smaller images or a larger downscale)"
                )
            images = np.empty(out_shape, dtype=np.float32)
        elif (width, height) != first[:2]:
            raise ValueError(
                f"{image_path}: image is {width}x{height} but {first[2]} is "
                f"{first[0]}x{first[1]}; all images of a split must have one size"
            )
        elif not abs(focal - first[3]) <= FOCAL_TOLERANCE * first[3]:
            raise ValueError(
                f"{where}: focal length {focal:.6g} px differs from the split's first frame ({first[3]:.6g} px) by "
                f"more than {FOCAL_TOLERANCE:.1%}; hero-lite supports one focal length per split"
            )
        if downscale == 1:
            images[slot] = pixels.astype(np.float32) / np.float32(255.0)
        else:
            images[slot] = _box_downscale(pixels.astype(np.float64) / 255.0, downscale)
        poses[slot] = np.asarray(frame["transform_matrix"], dtype=np.float64)

    name = os.path.basename(os.path.normpath(os.path.abspath(scene_dir)))
    return Scene(images=images, poses=poses, focal=first[3] / downscale, aabb=transforms.aabb.astype(np.float32),
                 split=split, name=name)


def _replace_atomically(final_path: str, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``final_path``, so readers never see half a file.

    The scenes layer imports no other hero_lite module, so it keeps this copy of
    `hero_lite.runfolder.write_atomically`, with the same temporary name.
    """
    folder, name = os.path.split(os.path.abspath(final_path))
    tmp_path = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    try:
        write(tmp_path)
        os.replace(tmp_path, final_path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def save_scene(
    path: str | os.PathLike,
    split: str,
    images_uint8_rgba: np.ndarray,
    poses: np.ndarray,
    camera_angle_x: float,
    aabb: np.ndarray = DEFAULT_AABB,
) -> None:
    """Write one split in the Blender format: ``{split}/r_K.png`` and ``transforms_{split}.json``.

    Each file is written under a temporary name and renamed into place, and the JSON is written
    last, so an interrupted save never leaves a half-written file and a transforms file only
    names images that exist. Existing files of the same names are replaced.

    Parameters
    ----------
    path : str or PathLike
        Scene folder (created if missing).
    split : {"train", "val", "test"}
    images_uint8_rgba : (n_views, height, width, 4) uint8
        Straight-alpha RGBA.
    poses : (n_views, 4, 4) float
        Camera-to-world matrices (OpenGL convention), world units; written as given (use float32
        values if a reload should reproduce them exactly).
    camera_angle_x : float
        Horizontal field of view, radians.
    aabb : (2, 3) float
        Scene bounds ``[min_xyz, max_xyz]``, world units; stored under the "aabb" key.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    images = np.asarray(images_uint8_rgba)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 4 or images.shape[0] == 0:
        raise ValueError(
            f"images_uint8_rgba must be uint8 of shape (n_views, height, width, 4) with n_views >= 1, "
            f"got {images.dtype} {images.shape}"
        )
    poses = np.asarray(poses, dtype=np.float64)
    if poses.shape != (images.shape[0], 4, 4) or not np.all(np.isfinite(poses)):
        raise ValueError(f"poses must be finite with shape ({images.shape[0]}, 4, 4), got {poses.shape}")
    if not 0 < camera_angle_x < math.pi:
        raise ValueError(f"camera_angle_x must be in (0, pi) radians, got {camera_angle_x}")
    for index, pose in enumerate(poses):
        check_pose(pose, f"poses[{index}]")
    check_aabb(aabb, "aabb")
    aabb = np.asarray(aabb, dtype=np.float64)

    scene_dir = os.fspath(path)
    os.makedirs(os.path.join(scene_dir, split), exist_ok=True)
    frames = []
    for index, (image, pose) in enumerate(zip(images, poses)):
        relative = f"./{split}/r_{index}"
        png_path = _image_path(scene_dir, relative)
        picture = Image.fromarray(np.ascontiguousarray(image))
        _replace_atomically(png_path, lambda tmp, picture=picture: picture.save(tmp, format="PNG"))
        frames.append({"file_path": relative, "transform_matrix": pose.tolist()})
    meta = {"camera_angle_x": float(camera_angle_x), "aabb": aabb.tolist(), "frames": frames}

    def write_json(tmp_path: str) -> None:
        with open(tmp_path, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")

    _replace_atomically(os.path.join(scene_dir, f"transforms_{split}.json"), write_json)
