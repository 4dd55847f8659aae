"""Procedural scenes: reproducibility, camera layout, straight alpha, shading, kernels vs references."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hero_lite.scenes import SCENE_NAMES, hemisphere_poses, load_scene, look_at, make_scene, pixel_rays
from hero_lite.scenes import _kernels, synth

BUNDLED = Path(__file__).resolve().parents[2] / "scenes"


@pytest.fixture(scope="module")
def small_tiny(tmp_path_factory):
    """A 16x16 'tiny' scene with 3 train / 1 val / 2 test views."""
    folder = tmp_path_factory.mktemp("small") / "tiny"
    calls = []
    summary = make_scene("tiny", folder, res=16, n_train=3, n_val=1, n_test=2, seed=3, progress=calls.append)
    return folder, summary, calls


def _decoded_pngs(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.glob("*/r_*.png"))}


def _json_files(folder):
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("transforms_*.json"))}


def test_regenerated_tiny_matches_bundled_scene(tmp_path):
    make_scene("tiny", tmp_path / "tiny", seed=0)
    expected_pngs, actual_pngs = _decoded_pngs(BUNDLED / "tiny"), _decoded_pngs(tmp_path / "tiny")
    assert list(actual_pngs) == list(expected_pngs) and len(expected_pngs) == 24 + 4 + 8
    for name, expected in expected_pngs.items():
        assert actual_pngs[name].dtype == np.uint8 and actual_pngs[name].shape == (64, 64, 4)
        np.testing.assert_array_equal(actual_pngs[name], expected, err_msg=name)
    assert _json_files(tmp_path / "tiny") == _json_files(BUNDLED / "tiny")


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_bundled_scenes_load_with_their_default_splits(name):
    spec = synth._SPECS[name]()
    for split, count in (("train", spec.n_train), ("val", spec.n_val), ("test", spec.n_test)):
        with open(BUNDLED / name / f"transforms_{split}.json") as f:
            meta = json.load(f)
        assert len(meta["frames"]) == count
        assert meta["camera_angle_x"] == synth.CAMERA_ANGLE_X
        assert meta["aabb"] == [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]
    scene = load_scene(BUNDLED / name, "test")
    assert (scene.height, scene.width) == (spec.res, spec.res)


def test_summary_and_progress(small_tiny):
    folder, summary, calls = small_tiny
    assert summary["name"] == "tiny" and summary["res"] == 16 and summary["seed"] == 3
    assert summary["counts"] == {"train": 3, "val": 1, "test": 2}
    assert summary["seconds"] >= 0
    assert calls == [1] * 6


def test_camera_layout(small_tiny):
    folder, _, _ = small_tiny
    for split in ("train", "val"):
        eyes = load_scene(folder, split).poses[:, :3, 3]
        assert np.all(eyes[:, 2] >= 0)
        np.testing.assert_allclose(np.linalg.norm(eyes, axis=1), 4.0, rtol=1e-6)
    test = load_scene(folder, "test")
    eyes = test.poses[:, :3, 3].astype(np.float64)
    elevation_deg = np.degrees(np.arcsin(eyes[:, 2] / np.linalg.norm(eyes, axis=1)))
    np.testing.assert_allclose(elevation_deg, 30.0, atol=1e-5)
    assert test.focal == pytest.approx(0.5 * 16 / math.tan(0.5 * 0.6911112070083618))


def test_train_then_val_come_from_one_generator(small_tiny):
    folder, _, _ = small_tiny
    rng = np.random.default_rng(3)
    train, val = hemisphere_poses(3, 4.0, rng), hemisphere_poses(1, 4.0, rng)
    np.testing.assert_array_equal(load_scene(folder, "train").poses, train.astype(np.float32))
    np.testing.assert_array_equal(load_scene(folder, "val").poses, val.astype(np.float32))


def test_straight_alpha_matches_premultiplied_subsample_average(small_tiny):
    # Re-trace each pixel's four sub-samples (offsets 0.25, 0.75) independently of the kernel's
    # loop: premultiplied mean = (sum of hit colours) / 4 must equal stored rgb * alpha.
    folder, _, _ = small_tiny
    scene = load_scene(folder, "test")
    packed = synth._pack(synth._SPECS["tiny"]())
    pose = scene.poses[0].astype(np.float64)
    res = scene.width
    alpha = scene.images[0, ..., 3]
    assert set(np.unique(np.round(alpha * 255))) <= {0, 64, 128, 191, 255}
    assert np.any((alpha > 0) & (alpha < 1)), "expected some partially covered edge pixels"
    np.testing.assert_array_equal(scene.images[0, ..., :3][alpha == 0], 0.0)
    for j in range(res):
        for i in range(res):
            premultiplied = np.zeros(3)
            for sub_v in (0.25, 0.75):
                for sub_u in (0.25, 0.75):
                    camera_dir = np.array(
                        [(i + sub_u - res / 2) / scene.focal, -(j + sub_v - res / 2) / scene.focal, -1.0]
                    )
                    d = pose[:3, :3] @ camera_dir
                    d /= np.linalg.norm(d)
                    hit, r, g, b = _kernels.shade_ray(
                        *pose[:3, 3], *d, packed.kinds, packed.params, packed.texture_kinds, packed.texture_colours,
                        packed.texture_freqs, packed.speculars, packed.light, packed.ambient,
                    )
                    premultiplied += np.array([r, g, b]) / 4 if hit else 0.0
            stored = scene.images[0, j, i, :3] * scene.images[0, j, i, 3]
            np.testing.assert_allclose(stored, premultiplied, atol=1.5 / 255, err_msg=f"pixel ({i}, {j})")


@pytest.mark.parametrize("samples", [1, 2, 3])
def test_kernel_camera_matches_pixel_rays(samples):
    # The render kernel's sub-sample rays are pixel_rays at continuous coordinates i + (k + 0.5) / samples
    # (i + 0.25 and i + 0.75 for the scenes' 2x2): a one-sphere scene rendered at 8x8 must cover
    # exactly the pixels whose sub-sample rays hit.
    pose = look_at((0.5, -3.0, 2.0))
    focal, res = 9.0, 8
    params = np.zeros((1, 8))
    params[0, :4] = (0.3, 0.2, 0.1, 0.9)
    out = np.empty((res, res, 4))
    _kernels.render_view(
        pose, focal, res, res, samples, np.array([_kernels.SPHERE]), params, np.array([_kernels.SOLID]),
        np.ones((1, 2, 3)), np.zeros((1, 3)), np.array([[0.0, 1.0]]), np.array([0.0, 0.0, 1.0]), 0.5, out,
    )
    rows, cols = np.meshgrid(np.arange(res), np.arange(res), indexing="ij")
    coverage = np.zeros((res, res))
    offsets = (np.arange(samples) + 0.5) / samples
    for sub_v in offsets:
        for sub_u in offsets:
            o, d = pixel_rays(pose[None], focal, res, res, np.zeros(res * res, dtype=np.int64),
                              rows.ravel() + sub_v, cols.ravel() + sub_u)
            oc = o.astype(np.float64) - params[0, :3]
            half_b = np.sum(oc * d, axis=1)
            hits = half_b**2 - (np.sum(oc * oc, axis=1) - 0.81) > 0
            coverage += hits.reshape(res, res)
    np.testing.assert_allclose(out[..., 3], coverage / samples**2, rtol=0, atol=1e-15)
    assert 0 < coverage.sum() < res * res * samples**2  # the sphere covers some rays, not all


def test_blinn_phong_hand_values():
    # n = v = l = +z: n.l = 1, h = +z, n.h = 1. colour = albedo * (0.2 + 0.8) + 0.5, clipped to 1.
    colour = _kernels.blinn_phong(0, 0, 1, 0, 0, 1, 0, 0, 1, 0.2, 0.4, 0.6, 0.2, 1.0, 0.5, 16.0)
    np.testing.assert_allclose(colour, [0.7, 0.9, 1.0])
    # In shadow only ambient remains: 0.2 * albedo.
    colour = _kernels.blinn_phong(0, 0, 1, 0, 0, 1, 0, 0, 1, 0.2, 0.4, 0.6, 0.2, 0.0, 0.5, 16.0)
    np.testing.assert_allclose(colour, [0.04, 0.08, 0.12])


def test_glossy_highlight_depends_on_view_and_diffuse_does_not():
    n = np.array([0.0, 0.0, 1.0])
    light = np.array([0.6, 0.0, 0.8])
    mirror = np.array([-0.6, 0.0, 0.8])  # reflection of the light: peak of the highlight
    other = np.array([0.0, 0.6, 0.8])
    args = (0.3, 0.3, 0.3, 0.25, 1.0)
    glossy = [np.array(_kernels.blinn_phong(*n, *v, *light, *args, 0.8, 32.0)) for v in (mirror, other)]
    matte = [np.array(_kernels.blinn_phong(*n, *v, *light, *args, 0.0, 1.0)) for v in (mirror, other)]
    assert np.all(glossy[0] - glossy[1] > 0.3)
    np.testing.assert_array_equal(matte[0], matte[1])


def test_glossy_sphere_point_changes_colour_with_view():
    # One surface point of tiny's glossy sphere, seen from two directions on the lit side.
    packed = synth._pack(synth._SPECS["tiny"]())
    glossy = int(np.argmax(packed.speculars[:, 0]))
    centre, radius = packed.params[glossy, :3], packed.params[glossy, 3]
    normal = packed.light + np.array([0.3, 0.3, 0.0])
    normal /= np.linalg.norm(normal)
    point = centre + radius * normal
    colours = []
    for tilt in (np.array([0.0, 0.0, 0.0]), np.array([0.5, 0.2, 0.0])):
        towards_eye = normal + tilt
        eye = point + 2.0 * towards_eye / np.linalg.norm(towards_eye)
        d = (point - eye) / np.linalg.norm(point - eye)
        t, hit_index = _kernels.closest_hit(*eye, *d, packed.kinds, packed.params, 0.0)
        assert hit_index == glossy and t == pytest.approx(2.0, abs=1e-9)
        hit, *rgb = _kernels.shade_ray(
            *eye, *d, packed.kinds, packed.params, packed.texture_kinds, packed.texture_colours,
            packed.texture_freqs, packed.speculars, packed.light, packed.ambient,
        )
        colours.append(np.array(rgb))
    assert np.max(np.abs(colours[0] - colours[1])) > 0.05


def test_texture_parity_hand_values():
    assert _kernels.texture_parity(0.5, 0.5, 0.0, _kernels.CHECKER) == 0
    assert _kernels.texture_parity(1.5, 0.5, 0.0, _kernels.CHECKER) == 1
    assert _kernels.texture_parity(-0.5, 0.5, 0.0, _kernels.CHECKER) == 1  # floor(-0.5) = -1
    assert _kernels.texture_parity(0.7, 0.6, 0.0, _kernels.STRIPES) == 1  # floor(1.3) = 1
    assert _kernels.texture_parity(9.9, 3.3, 1.0, _kernels.SOLID) == 0


def _signed_distances(points, kinds, params):
    """Reference: (n_points, n_prims) exact signed distances of spheres, boxes, tori and capsules (NumPy)."""
    distances = np.empty((points.shape[0], kinds.shape[0]))
    for k, (kind, row) in enumerate(zip(kinds, params)):
        local = points - row[:3]
        if kind == _kernels.SPHERE:
            distances[:, k] = np.linalg.norm(local, axis=1) - row[3]
        elif kind == _kernels.BOX:
            q = np.abs(local) - row[3:6]
            distances[:, k] = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
        elif kind == _kernels.CAPSULE:
            axis = row[3:6] - row[:3]
            h = np.clip(local @ axis / (axis @ axis), 0.0, 1.0)
            distances[:, k] = np.linalg.norm(local - h[:, None] * axis, axis=1) - row[6]
        else:
            axis = int(row[5])
            others = [a for a in range(3) if a != axis]
            ring = np.linalg.norm(local[:, others], axis=1) - row[3]
            distances[:, k] = np.hypot(ring, local[:, axis]) - row[4]
    return distances


@pytest.mark.parametrize("name", ["primitives", "lattice", "wires"])
def test_closest_hit_matches_dense_march_reference(name):
    # Reference: march each ray in steps of 0.002 through the exact signed distances. The kernel's
    # hit must lie on the surface of the primitive it names, no march sample before it may be
    # inside anything, and it may not be later than the march's first inside sample (a grazing
    # chord shorter than a step can only be missed by the march, not by the kernel).
    packed = synth._pack(synth._SPECS[name]())
    rng = np.random.default_rng(0)
    n_rays, step = 60, 0.002
    origins = rng.normal(size=(n_rays, 3))
    origins = 4.0 * origins / np.linalg.norm(origins, axis=1, keepdims=True)
    targets = rng.uniform(-1.0, 1.0, size=(n_rays, 3))
    directions = (targets - origins) / np.linalg.norm(targets - origins, axis=1, keepdims=True)
    ts = np.arange(0.0, 8.0, step)
    n_hits = 0
    for o, d in zip(origins, directions):
        inside = (_signed_distances(o + ts[:, None] * d, packed.kinds, packed.params) < 0).any(axis=1)
        t, index = _kernels.closest_hit(*o, *d, packed.kinds, packed.params, 0.0)
        if index == -1:
            assert not inside.any()
            continue
        n_hits += 1
        surface = _signed_distances((o + t * d)[None], packed.kinds[index:index + 1], packed.params[index:index + 1])
        assert abs(surface[0, 0]) < 1e-6
        assert not inside[ts < t].any()
        if inside.any():
            assert t <= ts[np.argmax(inside)]
    assert n_hits > n_rays // 3


def test_surface_normals_match_distance_gradients():
    kinds = np.array([_kernels.SPHERE, _kernels.BOX, _kernels.TORUS, _kernels.TORUS, _kernels.CAPSULE])
    params = np.zeros((5, 8))
    params[0, :4] = (0.1, 0.2, 0.3, 0.7)
    params[1, :6] = (0.0, 0.5, 0.0, 0.3, 0.4, 0.5)
    params[2, :6] = (0.2, 0.0, 0.1, 0.6, 0.2, 2)
    params[3, :6] = (0.0, 0.3, 0.0, 0.5, 0.1, 0)
    params[4, :7] = (-0.3, 0.1, 0.0, 0.4, -0.2, 0.5, 0.15)
    rng = np.random.default_rng(2)
    for k in range(5):
        for _ in range(20):
            origin = params[k, :3] + 3.0 * rng.normal(size=3)
            target = params[k, :3] + 0.2 * rng.normal(size=3)
            d = (target - origin) / np.linalg.norm(target - origin)
            t = _kernels.hit_primitive(*origin, *d, kinds[k], params[k], 0.0)
            if not np.isfinite(t):
                continue
            p = origin + t * d
            normal = np.array(_kernels.surface_normal(*p, kinds[k], params[k]))
            h = 1e-6
            gradient = np.array([
                (_signed_distances((p + h * e)[None], kinds[k:k + 1], params[k:k + 1])
                 - _signed_distances((p - h * e)[None], kinds[k:k + 1], params[k:k + 1]))[0, 0] / (2 * h)
                for e in np.eye(3)
            ])
            np.testing.assert_allclose(normal, gradient / np.linalg.norm(gradient), atol=1e-4)


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_scene_geometry_inside_bounds(name):
    packed = synth._pack(synth._SPECS[name]())
    for kind, row in zip(packed.kinds, packed.params):
        centre = row[:3]
        if kind == _kernels.SPHERE:
            extent = np.full(3, row[3])
        elif kind == _kernels.BOX:
            extent = row[3:6]
        elif kind == _kernels.CAPSULE:
            centre = (row[:3] + row[3:6]) / 2
            extent = np.abs(row[3:6] - row[:3]) / 2 + row[6]
        else:
            extent = np.full(3, row[3] + row[4])
            extent[int(row[5])] = row[4]
        assert np.all(centre - extent >= -1.25) and np.all(centre + extent <= 1.25)
    assert np.any(packed.speculars[:, 0] > 0), "every scene has a glossy object"


def test_zero_val_views_writes_no_val_split(tmp_path):
    make_scene("tiny", tmp_path, res=8, n_train=2, n_val=0, n_test=1)
    assert not (tmp_path / "transforms_val.json").exists()
    assert load_scene(tmp_path, "val").n_views == 1  # held out from train


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="teapot"), "unknown scene 'teapot'; valid scenes: primitives, lattice, tiny, wires"),
        (dict(res=7), r"res must be an integer in \[8, 4096\]"),
        (dict(n_train=0), r"n_train must be an integer in \[1, 10000\]"),
        (dict(n_test=0), r"n_test must be an integer in \[1, 10000\]"),
        (dict(n_val=-1), r"n_val must be an integer in \[0, 10000\]"),
        (dict(seed=-1), "seed must be an integer >= 0"),
        (dict(res=16.5), "res must be an integer"),
        # sizes are bounded before anything is allocated (res 100000 alone would be 37 GiB of pixels)
        (dict(res=100000), r"res must be an integer in \[8, 4096\], got 100000"),
        (dict(n_train=10**9), r"n_train must be an integer in \[1, 10000\]"),
        (dict(res=4096, n_train=100), r"the train split of 100 views at res 4096 would need 25.0 GiB .*at most 8 GiB"),
    ],
)
def test_make_scene_rejects_bad_arguments(tmp_path, kwargs, message):
    arguments = dict(name="tiny", out_dir=tmp_path)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_scene(**arguments)
    assert list(tmp_path.iterdir()) == []
