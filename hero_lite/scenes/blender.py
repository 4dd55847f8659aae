"""Blender (NeRF-synthetic) scenes: load, validate and save.

Format (NeRF code ``load_blender.py``; NeRF-synthetic dataset README)::

    <scene>/transforms_train.json   {"camera_angle_x": 0.69..., "frames": [
                                       {"file_path": "./train/r_0", "transform_matrix": [[...4x4...]]},
                                       ...], "aabb": [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]}
    <scene>/train/r_0.png           RGBA 8-bit, straight (un-premultiplied) alpha
    <scene>/transforms_val.json, transforms_test.json, val/, test/

``file_path`` has no extension and ".png" is appended (a path that already ends in ".png" is used
as is). ``camera_angle_x`` is the horizontal field of view in radians, so the focal length is
``0.5 * W / tan(0.5 * camera_angle_x)`` pixels. ``transform_matrix`` is camera-to-world in the
OpenGL convention (x right, y up, looking down -z). The optional ``aabb`` key (hero-lite's, also
used by instant-ngp-style loaders) bounds the scene; without it the NeRF-synthetic default
``[[-1.5]*3, [1.5]*3]`` is used. Every pose must be a rigid transform (rotation orthonormal within
POSE_TOLERANCE, last row ``0 0 0 1``) and the box finite with min < max and at most
MAX_AABB_EXTENT per axis, so no view can yield NaN rays or an unbounded amount of marching.
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
# When a scene has no validation split, every HELD_OUT_STRIDE-th training frame is held out.
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
    """Training frames held out as a validation split when a scene has no ``transforms_val.json``.

    Every 10th frame counting from the 10th (indices 9, 19, 29, ...); with fewer than 10 frames,
    the last one; with fewer than 2 frames, none (there would be nothing left to train on).

    Returns
    -------
    (n_held_out,) int64
        Sorted frame indices into ``transforms_train.json``'s ``frames``.
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


def _read_transforms(json_path: str) -> tuple[float, list[dict], np.ndarray]:
    """Parse and validate one transforms file; return (camera_angle_x, frames, aabb)."""
    try:
        with open(json_path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{json_path}: top level must be a JSON object, got {type(meta).__name__}")
    if "camera_angle_x" not in meta:
        raise ValueError(f"{json_path}: missing key 'camera_angle_x'")
    angle = meta["camera_angle_x"]
    # (NaN fails both comparisons, so non-finite angles are rejected too)
    if isinstance(angle, bool) or not isinstance(angle, (int, float)) or not 0 < angle < math.pi:
        raise ValueError(f"{json_path}: 'camera_angle_x' must be a number of radians in (0, pi), got {angle!r}")
    if "frames" not in meta:
        raise ValueError(f"{json_path}: missing key 'frames'")
    frames = meta["frames"]
    if not isinstance(frames, list) or len(frames) == 0:
        raise ValueError(f"{json_path}: 'frames' must be a non-empty list")
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
    aabb = check_aabb(meta.get("aabb", DEFAULT_AABB), f"{json_path}: 'aabb'")
    return float(angle), frames, aabb


def _image_path(scene_dir: str, file_path: str) -> str:
    relative = file_path if file_path.lower().endswith(".png") else file_path + ".png"
    return os.path.normpath(os.path.join(scene_dir, relative))


def _read_rgba_uint8(image_path: str) -> np.ndarray:
    """Read one PNG as (H, W, 4) uint8 RGBA; RGB gets alpha 255, palette images are expanded."""
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
    """Area (box) filter of straight-alpha RGBA by an integer factor.

    Colours are averaged premultiplied and divided by the averaged alpha again, so transparent
    pixels do not darken edges. Sizes not divisible by ``factor`` are cropped first, split as evenly
    as possible between the two sides (the principal point moves by at most half an input pixel).

    Parameters
    ----------
    rgba : (H, W, 4) float64
        Straight-alpha RGBA in [0, 1].

    Returns
    -------
    (H // factor, W // factor, 4) float64
    """
    height, width = rgba.shape[:2]
    out_h, out_w = height // factor, width // factor
    top = (height - out_h * factor) // 2
    left = (width - out_w * factor) // 2
    cropped = rgba[top : top + out_h * factor, left : left + out_w * factor]
    premultiplied = np.concatenate([cropped[..., :3] * cropped[..., 3:4], cropped[..., 3:4]], axis=-1)
    averaged = premultiplied.reshape(out_h, factor, out_w, factor, 4).mean(axis=(1, 3))
    alpha = averaged[..., 3:4]
    colour = np.divide(averaged[..., :3], alpha, out=np.zeros_like(averaged[..., :3]), where=alpha > 0)
    return np.concatenate([np.clip(colour, 0.0, 1.0), alpha], axis=-1)


def load_scene(path: str | os.PathLike, split: str = "train", downscale: int = 1) -> Scene:
    """Load one split of a Blender-format scene.

    Parameters
    ----------
    path : str or PathLike
        Scene folder holding ``transforms_{split}.json``.
    split : {"train", "val", "test"}
        Which split to load. When the folder has no ``transforms_val.json``, "val" is a fixed
        subset of the training frames (:func:`held_out_indices`: every 10th, at least one) and
        "train" then excludes those frames, so the two never overlap.
    downscale : int
        Integer factor >= 1. Images are shrunk with an area (box) filter on premultiplied colour
        and the focal length is divided by it. Sizes not divisible by it are cropped to
        ``size // downscale * downscale``, evenly on both sides.

    Returns
    -------
    Scene
        float32 straight-alpha images (about 10 MB per 800x800 view) and float32 poses.

    Raises
    ------
    FileNotFoundError
        Missing scene folder, transforms file or image file.
    ValueError
        Unknown split, bad downscale, invalid JSON or keys, a degenerate pose (`check_pose`), an
        out-of-range aabb (`check_aabb`), a non-finite focal length, non-RGB(A) images, images of
        different sizes, a split above MAX_SPLIT_BYTES. Each message names the file (and the
        frame index or key) and the valid range.
    """
    scene_dir = os.fspath(path)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if isinstance(downscale, bool) or not isinstance(downscale, (int, np.integer)) or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1, got {downscale!r}")
    downscale = int(downscale)
    if not os.path.isdir(scene_dir):
        raise FileNotFoundError(f"scene folder not found: {scene_dir}")

    json_path = os.path.join(scene_dir, f"transforms_{split}.json")
    val_path = os.path.join(scene_dir, "transforms_val.json")
    frame_indices = None
    if split == "val" and not os.path.isfile(val_path):
        json_path = os.path.join(scene_dir, "transforms_train.json")
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"transforms file not found: {json_path}")
    angle, frames, aabb = _read_transforms(json_path)
    if split in ("train", "val") and not os.path.isfile(val_path):
        held_out = held_out_indices(len(frames))
        if split == "val":
            if held_out.size == 0:
                raise ValueError(
                    f"{scene_dir}: no transforms_val.json and only {len(frames)} training frame(s), "
                    "too few to hold some out for validation"
                )
            frame_indices = held_out
        else:
            frame_indices = np.setdiff1d(np.arange(len(frames)), held_out)
    if frame_indices is not None:
        frames = [frames[i] for i in frame_indices]

    images = None
    poses = np.empty((len(frames), 4, 4), dtype=np.float32)
    first_size = None
    for index, frame in enumerate(frames):
        image_path = _image_path(scene_dir, frame["file_path"])
        pixels = _read_rgba_uint8(image_path)
        if first_size is None:
            first_size = (pixels.shape[1], pixels.shape[0], image_path)
            if pixels.shape[0] < downscale or pixels.shape[1] < downscale:
                raise ValueError(
                    f"{image_path}: image {first_size[0]}x{first_size[1]} is smaller than downscale {downscale}"
                )
            out_shape = (len(frames), pixels.shape[0] // downscale, pixels.shape[1] // downscale, 4)
            n_bytes = math.prod(out_shape) * 4
            if n_bytes > MAX_SPLIT_BYTES:
                raise ValueError(
                    f"{json_path}: {len(frames)} views of {out_shape[2]}x{out_shape[1]} pixels need "
                    f"{n_bytes / 2**30:.1f} GiB as float32; valid: at most {MAX_SPLIT_BYTES / 2**30:g} GiB per split "
                    "(fewer views, smaller images or a larger downscale)"
                )
            images = np.empty(out_shape, dtype=np.float32)
        elif (pixels.shape[1], pixels.shape[0]) != first_size[:2]:
            raise ValueError(
                f"{image_path}: image is {pixels.shape[1]}x{pixels.shape[0]} but {first_size[2]} is "
                f"{first_size[0]}x{first_size[1]}; all images of a split must have one size"
            )
        if downscale == 1:
            images[index] = pixels.astype(np.float32) / np.float32(255.0)
        else:
            images[index] = _box_downscale(pixels.astype(np.float64) / 255.0, downscale)
        poses[index] = np.asarray(frame["transform_matrix"], dtype=np.float64)

    focal = focal_from_camera_angle(first_size[0], angle) / downscale
    if not (math.isfinite(focal) and focal > 0):
        raise ValueError(f"{json_path}: 'camera_angle_x' {angle!r} gives focal length {focal!r} px; valid: finite and > 0")
    name = os.path.basename(os.path.normpath(os.path.abspath(scene_dir)))
    return Scene(images=images, poses=poses, focal=focal, aabb=aabb.astype(np.float32), split=split, name=name)


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
