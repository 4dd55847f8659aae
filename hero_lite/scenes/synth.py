"""Procedural ground-truth scenes rendered by ray tracing, written in the Blender format.

Each scene is a handful of analytic primitives (boxes, spheres, a torus) with procedural
textures (checkers, stripes), lit by one white directional light with hard shadows, Lambert
diffuse + ambient shading and, on glossy objects, a Blinn-Phong highlight that moves with the
view. Pixels are 2x2 supersampled, background transparent (alpha 0), straight alpha.

Cameras follow NeRF-synthetic: ``camera_angle_x = 0.6911112070083618``, distance 4 from the origin
looking at it; train and val cameras uniform on the upper hemisphere (one
``np.random.default_rng(seed)``, train drawn first, then val), test cameras on a ring 30 degrees
above the z = 0 plane. Poses are rounded to float32 before rendering, so the stored poses are
exactly the ones the pixels were rendered with.

Scenes (all geometry inside [-1.25, 1.25]^3, ``aabb`` [[-1.5]*3, [1.5]*3]):

- ``primitives`` (100x100; 100 train / 10 val / 20 test): checkerboard slab, striped sphere,
  3-D checkered box, striped standing torus and a small glossy sphere.
- ``lattice`` (100x100; 100 / 10 / 20): a jungle-gym of 48 thin striped bars (0.06 wide, about
  2 pixels) over a finely checkered slab, a finely striped sphere inside and a glossy sphere, so the
  fine hash-grid levels matter.
- ``tiny`` (64x64; 24 / 4 / 8): checker slab, striped sphere and glossy sphere with large
  features, for quick tests and CI.
- ``wires`` (100x100; 100 / 10 / 20): thin structures on a checkered base, 0.5-1.7 pixels wide at
  100x100 (one pixel is about 0.029 world units at the scene centre): a tripod stand (legs 1.4 px,
  pole 1.7 px) under a striped ball, a coiled cable (1 px), a sagging cable from the stand to the
  base (0.8 px) and two taut guy wires (0.55 px). Like the cable and stand of a NeRF-synthetic
  microphone, these are what empty-space skipping loses first.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hero_lite.scenes import _kernels
from hero_lite.scenes.blender import MAX_SPLIT_BYTES, focal_from_camera_angle, save_scene
from hero_lite.scenes.cameras import hemisphere_poses, ring_poses

SCENE_NAMES = ("primitives", "lattice", "tiny", "wires")

# NeRF-synthetic values (dataset transforms files; NeRF paper setup).
CAMERA_ANGLE_X = 0.6911112070083618
CAMERA_RADIUS = 4.0
TEST_ELEVATION_DEG = 30.0
SCENE_AABB = ((-1.5, -1.5, -1.5), (1.5, 1.5, 1.5))
MIN_RES = 8
# Size bounds, checked before anything is allocated or written: a view of MAX_RES^2 pixels renders
# into a 512 MiB float64 buffer, and every split must load again within
# hero_lite.scenes.blender.MAX_SPLIT_BYTES (16 bytes per pixel as float32 RGBA).
MAX_RES = 4096
MAX_VIEWS = 10_000


@dataclass(frozen=True)
class _Primitive:
    """One object: geometry (see :mod:`hero_lite.scenes._kernels` for ``params``) and material."""

    kind: int
    params: tuple[float, ...]
    colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    texture: int = _kernels.SOLID
    texture_freq: tuple[float, float, float] = (0.0, 0.0, 0.0)
    specular: float = 0.0
    shininess: float = 1.0


@dataclass(frozen=True)
class _SceneSpec:
    primitives: tuple[_Primitive, ...]
    light_towards: tuple[float, float, float]
    ambient: float
    res: int
    n_train: int
    n_val: int
    n_test: int


def _box(centre, half, colours, texture=_kernels.SOLID, freq=(0.0, 0.0, 0.0), specular=0.0, shininess=1.0):
    return _Primitive(_kernels.BOX, (*centre, *half), colours, texture, freq, specular, shininess)


def _sphere(centre, radius, colours, texture=_kernels.SOLID, freq=(0.0, 0.0, 0.0), specular=0.0, shininess=1.0):
    return _Primitive(_kernels.SPHERE, (*centre, radius), colours, texture, freq, specular, shininess)


def _capsule(a, b, radius, colours, texture=_kernels.SOLID, freq=(0.0, 0.0, 0.0), specular=0.0, shininess=1.0):
    return _Primitive(_kernels.CAPSULE, (*a, *b, radius), colours, texture, freq, specular, shininess)


def _polyline(points, radius, colours, specular=0.0, shininess=1.0) -> tuple[_Primitive, ...]:
    """Capsules joining consecutive points (a cable); the shared end spheres make the joints round."""
    return tuple(_capsule(tuple(a), tuple(b), radius, colours, specular=specular, shininess=shininess)
                 for a, b in itertools.pairwise(points))


def _torus(centre, major, minor, axis, colours, texture=_kernels.SOLID, freq=(0.0, 0.0, 0.0)):
    return _Primitive(_kernels.TORUS, (*centre, major, minor, float(axis)), colours, texture, freq)


# Texture frequencies are chosen so no flat face lies on a texture boundary (e.g. a box face at
# local 0.3 with frequency 4 sits at u = 1.2), which would make the colour flicker with rounding.
_CREAM = (0.93, 0.89, 0.78)
_WHITE = (0.95, 0.95, 0.95)


def _primitives_spec() -> _SceneSpec:
    return _SceneSpec(
        primitives=(
            _box((0.0, 0.0, -0.6), (1.0, 1.0, 0.1), (_CREAM, (0.10, 0.36, 0.42)), _kernels.CHECKER, (2.5, 2.5, 0.0)),
            _sphere((-0.4, -0.35, -0.05), 0.45, ((0.95, 0.50, 0.08), _WHITE), _kernels.STRIPES, (1.5, 0.0, 4.5)),
            _box((0.5, -0.4, -0.2), (0.28, 0.28, 0.3), ((0.15, 0.30, 0.85), (0.98, 0.82, 0.15)), _kernels.CHECKER,
                 (4.0, 4.0, 4.0)),
            _torus((0.15, 0.5, 0.05), 0.4, 0.15, 1, ((0.85, 0.12, 0.45), (0.98, 0.75, 0.85)), _kernels.STRIPES,
                   (5.0, 0.0, 0.0)),
            _sphere((-0.6, 0.55, -0.2), 0.3, ((0.10, 0.65, 0.25), (0.10, 0.65, 0.25)), specular=0.9,
                    shininess=48.0),
        ),
        light_towards=(0.45, -0.35, 1.0),
        ambient=0.25,
        res=100,
        n_train=100,
        n_val=10,
        n_test=20,
    )


def _lattice_spec() -> _SceneSpec:
    bar_positions = (-0.75, -0.25, 0.25, 0.75)
    half_thickness = 0.03
    bar_colours = {
        0: ((0.90, 0.15, 0.12), _WHITE),
        1: ((0.12, 0.70, 0.20), _WHITE),
        2: ((0.15, 0.30, 0.90), (0.98, 0.85, 0.20)),
    }
    bars = []
    for axis in range(3):
        for first in bar_positions:
            for second in bar_positions:
                centre = [0.0, 0.0, 0.0]
                half = [half_thickness, half_thickness, half_thickness]
                others = [a for a in range(3) if a != axis]
                centre[others[0]] = first
                centre[others[1]] = second
                half[axis] = 0.78
                if axis == 2:
                    # Vertical bars reach down to the slab top (z = -0.87).
                    centre[2] = -0.045
                    half[2] = 0.825
                freq = [0.0, 0.0, 0.0]
                freq[axis] = 10.0
                bars.append(_box(tuple(centre), tuple(half), bar_colours[axis], _kernels.STRIPES, tuple(freq)))
    return _SceneSpec(
        primitives=(
            _box((0.0, 0.0, -0.93), (1.0, 1.0, 0.06), (_CREAM, (0.20, 0.20, 0.24)), _kernels.CHECKER, (6.5, 6.5, 0.0)),
            *bars,
            _sphere((0.0, 0.0, 0.0), 0.2, ((0.95, 0.55, 0.05), (0.35, 0.05, 0.45)), _kernels.STRIPES,
                    (0.0, 3.0, 12.0)),
            _sphere((0.5, 0.5, 0.5), 0.2, ((0.85, 0.65, 0.15), (0.85, 0.65, 0.15)), specular=0.9, shininess=40.0),
        ),
        light_towards=(0.45, -0.35, 1.0),
        ambient=0.25,
        res=100,
        n_train=100,
        n_val=10,
        n_test=20,
    )


def _tiny_spec() -> _SceneSpec:
    return _SceneSpec(
        primitives=(
            _box((0.0, 0.0, -0.55), (1.0, 1.0, 0.15), (_CREAM, (0.12, 0.38, 0.45)), _kernels.CHECKER, (1.6, 1.6, 0.0)),
            _sphere((-0.3, -0.2, 0.2), 0.6, ((0.95, 0.50, 0.08), _WHITE), _kernels.STRIPES, (0.0, 0.0, 2.2)),
            _sphere((0.5, 0.5, -0.05), 0.35, ((0.80, 0.12, 0.20), (0.80, 0.12, 0.20)), specular=0.6, shininess=24.0),
        ),
        light_towards=(0.45, -0.35, 1.0),
        ambient=0.3,
        res=64,
        n_train=24,
        n_val=4,
        n_test=8,
    )


def _wires_spec() -> _SceneSpec:
    base_top = -0.88
    apex = (0.0, 0.0, -0.3)
    metal = ((0.22, 0.22, 0.26), (0.22, 0.22, 0.26))
    legs = tuple(
        _capsule(apex, (0.75 * math.cos(angle), 0.75 * math.sin(angle), base_top), 0.02, metal, specular=0.5,
                 shininess=24.0)
        for angle in np.deg2rad([90.0, 210.0, 330.0])
    )
    pole = _capsule(apex, (0.0, 0.0, 0.56), 0.025, metal, specular=0.5, shininess=24.0)
    head = _sphere((0.0, 0.0, 0.7), 0.16, ((0.75, 0.75, 0.78), (0.12, 0.12, 0.14)), _kernels.STRIPES, (0.0, 0.0, 18.0))
    # Coiled cable: 5 turns of a helix standing on the base, 12 segments per turn.
    turns = np.linspace(0.0, 5.0, 61)
    coil = np.stack([0.45 + 0.18 * np.cos(2 * np.pi * turns), -0.45 + 0.18 * np.sin(2 * np.pi * turns),
                     np.linspace(base_top + 0.03, 0.25, turns.size)], axis=1)
    # Sagging cable from the pole to the base: a quadratic Bezier curve.
    s_curve = np.linspace(0.0, 1.0, 21)[:, None]
    start, control, end = np.array([0.0, 0.0, 0.45]), np.array([-0.55, 0.25, 0.3]), np.array([-0.8, 0.55, base_top + 0.012])
    sag = (1 - s_curve) ** 2 * start + 2 * (1 - s_curve) * s_curve * control + s_curve**2 * end
    guy_colour = ((0.95, 0.72, 0.08), (0.95, 0.72, 0.08))
    guys = (_capsule((0.0, 0.0, 0.5), (0.88, 0.88, base_top + 0.008), 0.008, guy_colour),
            _capsule((0.0, 0.0, 0.5), (-0.88, -0.88, base_top + 0.008), 0.008, guy_colour))
    return _SceneSpec(
        primitives=(
            _box((0.0, 0.0, -0.92), (0.95, 0.95, 0.04), (_CREAM, (0.20, 0.36, 0.42)), _kernels.CHECKER, (3.5, 3.5, 0.0)),
            *legs,
            pole,
            head,
            *_polyline(coil, 0.015, ((0.60, 0.08, 0.08), (0.60, 0.08, 0.08)), specular=0.3, shininess=16.0),
            *_polyline(sag, 0.012, ((0.06, 0.06, 0.07), (0.06, 0.06, 0.07))),
            *guys,
        ),
        light_towards=(0.45, -0.35, 1.0),
        ambient=0.3,
        res=100,
        n_train=100,
        n_val=10,
        n_test=20,
    )


_SPECS = {"primitives": _primitives_spec, "lattice": _lattice_spec, "tiny": _tiny_spec, "wires": _wires_spec}


@dataclass(frozen=True)
class _PackedScene:
    """A scene spec as the contiguous arrays the kernels take (shapes in ``_kernels.render_view``)."""

    kinds: np.ndarray
    params: np.ndarray
    texture_kinds: np.ndarray
    texture_colours: np.ndarray
    texture_freqs: np.ndarray
    speculars: np.ndarray
    light: np.ndarray
    ambient: float


def _pack(spec: _SceneSpec) -> _PackedScene:
    n_prims = len(spec.primitives)
    params = np.zeros((n_prims, 8), dtype=np.float64)
    for k, primitive in enumerate(spec.primitives):
        params[k, : len(primitive.params)] = primitive.params
    light = np.asarray(spec.light_towards, dtype=np.float64)
    return _PackedScene(
        kinds=np.array([p.kind for p in spec.primitives], dtype=np.int64),
        params=params,
        texture_kinds=np.array([p.texture for p in spec.primitives], dtype=np.int64),
        texture_colours=np.array([p.colours for p in spec.primitives], dtype=np.float64).reshape(n_prims, 2, 3),
        texture_freqs=np.array([p.texture_freq for p in spec.primitives], dtype=np.float64).reshape(n_prims, 3),
        speculars=np.array([(p.specular, p.shininess) for p in spec.primitives], dtype=np.float64),
        light=light / np.linalg.norm(light),
        ambient=float(spec.ambient),
    )


def _render_rgba(packed: _PackedScene, pose: np.ndarray, focal: float, res: int, samples: int = 2) -> np.ndarray:
    """Straight-alpha RGBA (res, res, 4) float64 of one camera, samples x samples rays per pixel."""
    out = np.empty((res, res, 4), dtype=np.float64)
    _kernels.render_view(
        np.ascontiguousarray(pose, dtype=np.float64), float(focal), int(res), int(res), int(samples),
        packed.kinds, packed.params, packed.texture_kinds, packed.texture_colours, packed.texture_freqs,
        packed.speculars, packed.light, packed.ambient, out,
    )
    return out


def _check_count(label: str, value, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        valid = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{label} must be an integer {valid}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{label} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return int(value)


def scene_defaults(name: str) -> dict:
    """Default size and view counts of a procedural scene: {"res", "n_train", "n_val", "n_test"}."""
    if name not in _SPECS:
        raise ValueError(f"unknown scene {name!r}; valid scenes: {', '.join(SCENE_NAMES)}")
    spec = _SPECS[name]()
    return {"res": spec.res, "n_train": spec.n_train, "n_val": spec.n_val, "n_test": spec.n_test}


def make_scene(
    name: str,
    out_dir: str | os.PathLike,
    res: int | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Render a procedural scene and write it in the Blender format.

    Parameters
    ----------
    name : {"primitives", "lattice", "tiny", "wires"}
        Which scene (see the module docstring); ``SCENE_NAMES`` lists them.
    out_dir : str or PathLike
        Folder to write ``transforms_{train,val,test}.json`` and ``{split}/r_K.png`` into (created
        if missing; files of the same names are replaced).
    res : int, optional
        Image width = height in pixels, in [8, MAX_RES = 4096]. None: the scene's default.
    n_train, n_test : int, optional
        View counts, in [1, MAX_VIEWS = 10000]. None: the scene's default.
    n_val : int, optional
        Validation view count, in [0, MAX_VIEWS] (0 writes no val split, so loaders hold out
        training views). None: the scene's default. Each split must also fit the loader's
        ``MAX_SPLIT_BYTES`` (``n_views * res^2 * 16`` bytes); all is checked before anything is written.
    seed : int
        Seed of the one generator that places train then val cameras. Same seed, same pixels.
    progress : callable, optional
        Called as ``progress(1)`` after each rendered view (so ``click.progressbar(...).update``
        can be passed as is); the total is ``n_train + n_val + n_test``.

    Returns
    -------
    dict
        ``{"name", "out_dir", "res", "seed", "counts": {"train", "val", "test"}, "seconds"}``
        (wall-clock seconds for rendering and writing).
    """
    if name not in _SPECS:
        raise ValueError(f"unknown scene {name!r}; valid scenes: {', '.join(SCENE_NAMES)}")
    spec = _SPECS[name]()
    res = _check_count("res", spec.res if res is None else res, MIN_RES, MAX_RES)
    counts = {
        "train": _check_count("n_train", spec.n_train if n_train is None else n_train, 1, MAX_VIEWS),
        "val": _check_count("n_val", spec.n_val if n_val is None else n_val, 0, MAX_VIEWS),
        "test": _check_count("n_test", spec.n_test if n_test is None else n_test, 1, MAX_VIEWS),
    }
    seed = _check_count("seed", seed, 0)
    for split, count in counts.items():
        n_bytes = count * res * res * 16
        if n_bytes > MAX_SPLIT_BYTES:
            raise ValueError(
                f"the {split} split of {count} views at res {res} would need {n_bytes / 2**30:.1f} GiB to load; "
                f"valid: at most {MAX_SPLIT_BYTES / 2**30:g} GiB per split (fewer views or a smaller res)"
            )

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    poses_by_split = {
        "train": hemisphere_poses(counts["train"], CAMERA_RADIUS, rng),
        "val": hemisphere_poses(counts["val"], CAMERA_RADIUS, rng),
        "test": ring_poses(counts["test"], CAMERA_RADIUS, TEST_ELEVATION_DEG),
    }
    packed = _pack(spec)
    focal = focal_from_camera_angle(res, CAMERA_ANGLE_X)
    for split, poses in poses_by_split.items():
        if counts[split] == 0:
            continue
        stored_poses = poses.astype(np.float32)
        images = np.empty((counts[split], res, res, 4), dtype=np.uint8)
        for k, pose in enumerate(stored_poses):
            rgba = _render_rgba(packed, pose.astype(np.float64), focal, res)
            images[k] = np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
            if progress is not None:
                progress(1)
        save_scene(out_dir, split, images, stored_poses, CAMERA_ANGLE_X, SCENE_AABB)
    return {
        "name": name,
        "out_dir": os.fspath(out_dir),
        "res": res,
        "seed": seed,
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 3),
    }
