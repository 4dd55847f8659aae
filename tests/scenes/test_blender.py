"""Blender-format save/load: round trip, validation messages, val fallback, downscaling."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from hero_lite.scenes import Scene, held_out_indices, load_scene, look_at, save_scene
from hero_lite.scenes import blender

ANGLE = 0.6911112070083618


def _poses(n):
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    eyes = np.stack([4 * np.cos(angles), 4 * np.sin(angles), np.full(n, 1.5)], axis=1)
    return np.stack([look_at(eye) for eye in eyes]).astype(np.float32)


def _write_split(folder, split="train", n=3, height=6, width=8, seed=0, aabb=((-1, -2, -3), (1, 2, 3))):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, height, width, 4), dtype=np.uint8)
    poses = _poses(n)
    save_scene(folder, split, images, poses, ANGLE, aabb)
    return images, poses


def _edit_json(path, edit):
    with open(path) as f:
        meta = json.load(f)
    edit(meta)
    with open(path, "w") as f:
        json.dump(meta, f)


def test_save_load_round_trip(tmp_path):
    folder = tmp_path / "toy"
    images, poses = _write_split(folder, "test", n=3, height=6, width=8)
    scene = load_scene(folder, "test")
    assert isinstance(scene, Scene)
    assert (scene.n_views, scene.height, scene.width) == (3, 6, 8)
    assert scene.images.dtype == np.float32 and scene.poses.dtype == np.float32
    np.testing.assert_array_equal(scene.images, images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(scene.poses, poses)
    # focal = 0.5 * 8 / tan(0.5 * 0.6911) = 11.111 px
    assert scene.focal == pytest.approx(0.5 * 8 / math.tan(0.5 * ANGLE))
    np.testing.assert_array_equal(scene.aabb, [[-1, -2, -3], [1, 2, 3]])
    assert scene.aabb.dtype == np.float32
    assert scene.split == "test" and scene.name == "toy"
    with open(folder / "transforms_test.json") as f:
        meta = json.load(f)
    assert meta["frames"][1]["file_path"] == "./test/r_1"
    assert sorted(os.listdir(folder / "test")) == ["r_0.png", "r_1.png", "r_2.png"]


def test_rgb_composites_over_background(tmp_path):
    images = np.zeros((1, 1, 2, 4), dtype=np.uint8)
    images[0, 0, 0] = (255, 0, 0, 255)  # opaque red
    images[0, 0, 1] = (0, 0, 255, 0)  # fully transparent: background only
    save_scene(tmp_path, "train", images, _poses(1), ANGLE, blender.DEFAULT_AABB)
    scene = load_scene(tmp_path, "train")
    np.testing.assert_allclose(scene.rgb()[0, 0], [[1, 0, 0], [1, 1, 1]])
    np.testing.assert_allclose(scene.rgb((0.0, 0.5, 0.0))[0, 0], [[1, 0, 0], [0, 0.5, 0]])
    assert scene.rgb().dtype == np.float32


def test_missing_aabb_key_gives_default(tmp_path):
    _write_split(tmp_path, "train", n=1)
    _edit_json(tmp_path / "transforms_train.json", lambda meta: meta.pop("aabb"))
    np.testing.assert_array_equal(load_scene(tmp_path).aabb, [[-1.5] * 3, [1.5] * 3])


def test_rgb_and_palette_images_are_accepted(tmp_path):
    _write_split(tmp_path, "train", n=2, height=4, width=4)
    rgb = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    Image.fromarray(rgb).save(tmp_path / "train" / "r_0.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "train" / "r_1.png")
    scene = load_scene(tmp_path)
    np.testing.assert_array_equal(scene.images[0, ..., :3], rgb / np.float32(255))
    np.testing.assert_array_equal(scene.images[:, ..., 3], 1.0)


def test_held_out_indices():
    assert held_out_indices(1).tolist() == []
    assert held_out_indices(2).tolist() == [1]
    assert held_out_indices(9).tolist() == [8]
    assert held_out_indices(25).tolist() == [9, 19]


def test_val_falls_back_to_held_out_training_views(tmp_path):
    _, poses = _write_split(tmp_path, "train", n=12, height=2, width=2)
    val = load_scene(tmp_path, "val")
    train = load_scene(tmp_path, "train")
    assert val.split == "val" and val.n_views == 1 and train.n_views == 11
    np.testing.assert_array_equal(val.poses, poses[[9]])
    np.testing.assert_array_equal(train.poses, np.delete(poses, 9, axis=0))


def test_val_split_file_is_used_when_present(tmp_path):
    _write_split(tmp_path, "train", n=12, height=2, width=2)
    _write_split(tmp_path, "val", n=2, height=2, width=2, seed=1)
    assert load_scene(tmp_path, "train").n_views == 12
    assert load_scene(tmp_path, "val").n_views == 2


def test_val_fallback_needs_two_training_views(tmp_path):
    _write_split(tmp_path, "train", n=1, height=2, width=2)
    assert load_scene(tmp_path, "train").n_views == 1
    with pytest.raises(ValueError, match="too few to hold some out"):
        load_scene(tmp_path, "val")


def test_downscale_box_filters_premultiplied_colour(tmp_path):
    images = np.zeros((1, 2, 4, 4), dtype=np.uint8)
    # Left 2x2 block: two opaque white pixels, two transparent black ones -> white at alpha 0.5
    # (a straight average of colours would give grey 0.5).
    images[0, 0, 0] = images[0, 1, 1] = (255, 255, 255, 255)
    # Right 2x2 block: opaque, red 0, 51, 102, 153 -> mean 76.5 / 255 = 0.3.
    images[0, :, 2:, 3] = 255
    images[0, :, 2:, 0] = [[0, 51], [102, 153]]
    save_scene(tmp_path, "train", images, _poses(1), ANGLE, blender.DEFAULT_AABB)
    full = load_scene(tmp_path)
    half = load_scene(tmp_path, downscale=2)
    assert (half.height, half.width) == (1, 2)
    assert half.focal == pytest.approx(full.focal / 2)
    np.testing.assert_allclose(half.images[0, 0, 0], [1, 1, 1, 0.5], rtol=1e-6)
    np.testing.assert_allclose(half.images[0, 0, 1], [0.3, 0, 0, 1], rtol=1e-6)


def test_downscale_must_divide_the_image_size(tmp_path):
    _write_split(tmp_path, "train", n=1, height=6, width=9)
    with pytest.raises(ValueError, match=r"r_0.png: image 9x6 is not divisible by downscale 2; valid: 1 or a "
                                         r"common divisor of 9 and 6 \(3\)"):
        load_scene(tmp_path, downscale=2)
    assert load_scene(tmp_path, downscale=3).width == 3


@pytest.mark.parametrize("downscale", [0, -1, 1.5, True])
def test_bad_downscale(tmp_path, downscale):
    _write_split(tmp_path, "train", n=1)
    with pytest.raises(ValueError, match="downscale must be an integer >= 1"):
        load_scene(tmp_path, downscale=downscale)


def test_unknown_split(tmp_path):
    _write_split(tmp_path, "train", n=1)
    with pytest.raises(ValueError, match="unknown split 'training'.*train, val, test"):
        load_scene(tmp_path, "training")


def test_missing_folder_transforms_and_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="scene folder not found.*nowhere"):
        load_scene(tmp_path / "nowhere")
    _write_split(tmp_path, "train", n=2)
    with pytest.raises(FileNotFoundError, match="transforms file not found.*transforms_test.json"):
        load_scene(tmp_path, "test")
    os.remove(tmp_path / "train" / "r_0.png")
    with pytest.raises(FileNotFoundError, match="image file not found.*r_0.png"):
        load_scene(tmp_path)


BAD_JSON_CASES = {
    "not_json": ("{frames: oops", "not valid JSON"),
    "not_object": ([1, 2], "top level must be a JSON object"),
    "no_angle": (lambda m: m.pop("camera_angle_x"), "missing key 'camera_angle_x'"),
    "bad_angle": (lambda m: m.update(camera_angle_x="wide"), "'camera_angle_x' must be a number"),
    "no_frames": (lambda m: m.pop("frames"), "missing key 'frames'"),
    "empty_frames": (lambda m: m.update(frames=[]), "'frames' must be a non-empty list"),
    "no_file_path": (lambda m: m["frames"][1].pop("file_path"), r"frames\[1\] has no 'file_path'"),
    "no_matrix": (lambda m: m["frames"][0].pop("transform_matrix"), r"frames\[0\] has no 'transform_matrix'"),
    "matrix_3x4": (lambda m: m["frames"][0].update(transform_matrix=[[1, 0, 0, 0]] * 3), "must be 4x4"),
    "ragged_matrix": (lambda m: m["frames"][0].update(transform_matrix=[[1, 0], [0]]), "4x4 list of numbers"),
    "nan_matrix": (lambda m: m["frames"][0]["transform_matrix"][0].__setitem__(3, float("nan")), "non-finite"),
    "bad_aabb": (lambda m: m.update(aabb=[[1, 1, 1], [-1, -1, -1]]), "'aabb' must be"),
    # degenerate poses give NaN rays that never leave the box, so they are rejected with the frame
    "zero_matrix": (lambda m: m["frames"][1].update(transform_matrix=[[0.0] * 4] * 4),
                    r"frames\[1\]: 'transform_matrix' last row"),
    "zero_rotation": (lambda m: m["frames"][0].update(transform_matrix=[[0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 1]]),
                      r"frames\[0\]: 'transform_matrix' rotation is degenerate.*valid: orthonormal within 0.01"),
    "scaled_rotation": (lambda m: m["frames"][0].update(transform_matrix=[[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 4], [0, 0, 0, 1]]),
                        r"frames\[0\]: 'transform_matrix' rotation is degenerate"),
    "sheared_rotation": (lambda m: m["frames"][0].update(transform_matrix=[[1, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]]),
                         r"frames\[0\]: 'transform_matrix' rotation is degenerate"),
    "bad_last_row": (lambda m: m["frames"][0]["transform_matrix"].__setitem__(3, [0, 0, 1, 1]), "last row"),
    "far_camera": (lambda m: m["frames"][0]["transform_matrix"][0].__setitem__(3, 1e30), "camera centre"),
    "nan_angle": (lambda m: m.update(camera_angle_x=float("nan")), r"'camera_angle_x' must be a number of radians in \(0, pi\)"),
    "inf_angle": (lambda m: m.update(camera_angle_x=float("inf")), "'camera_angle_x' must be"),
    "underflowing_angle": (lambda m: m.update(camera_angle_x=1e-320), "focal length inf px; valid: finite and > 0"),
    "huge_aabb": (lambda m: m.update(aabb=[[-1e30] * 3, [1e30] * 3]), r"'aabb' must be .*extent <= 64"),
    "wide_aabb": (lambda m: m.update(aabb=[[-50, -1, -1], [50, 1, 1]]), "'aabb' must be"),
    "nan_aabb": (lambda m: m.update(aabb=[[float("nan")] * 3, [1, 1, 1]]), "'aabb' must be"),
    "flat_in_float32_aabb": (lambda m: m.update(aabb=[[1, 0, 0], [1 + 1e-9, 1, 1]]), "'aabb' must be"),
    "aabb_not_numbers": (lambda m: m.update(aabb="big"), "'aabb' must be"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON_CASES))
def test_bad_transforms_file(tmp_path, case):
    _write_split(tmp_path, "train", n=2)
    json_path = tmp_path / "transforms_train.json"
    content, message = BAD_JSON_CASES[case]
    if callable(content):
        _edit_json(json_path, content)
    else:
        json_path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError, match=message) as info:
        load_scene(tmp_path)
    assert "transforms_train.json" in str(info.value)


def test_images_of_different_sizes(tmp_path):
    _write_split(tmp_path, "test", n=2, height=4, width=4)
    Image.fromarray(np.zeros((4, 5, 4), dtype=np.uint8)).save(tmp_path / "test" / "r_1.png")
    with pytest.raises(ValueError, match=r"r_1.png: image is 5x4 but .*r_0.png is 4x4"):
        load_scene(tmp_path, "test")


@pytest.mark.parametrize("mode", ["L", "LA", "I;16", "1"])
def test_non_rgb_images_are_rejected(tmp_path, mode):
    _write_split(tmp_path, "test", n=2, height=4, width=4)
    Image.new(mode, (4, 4)).save(tmp_path / "test" / "r_1.png")
    with pytest.raises(ValueError, match=r"r_1.png: image mode '.+' is not RGB or RGBA"):
        load_scene(tmp_path, "test")


def test_corrupt_image(tmp_path):
    _write_split(tmp_path, "train", n=2, height=4, width=4)
    (tmp_path / "train" / "r_0.png").write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match="r_0.png: cannot read image"):
        load_scene(tmp_path)


def test_save_scene_validates(tmp_path):
    poses = _poses(1)
    with pytest.raises(ValueError, match="uint8 of shape"):
        save_scene(tmp_path, "train", np.zeros((1, 2, 2, 4), dtype=np.float32), poses, ANGLE, blender.DEFAULT_AABB)
    with pytest.raises(ValueError, match="poses must be finite"):
        save_scene(tmp_path, "train", np.zeros((2, 2, 2, 4), dtype=np.uint8), poses, ANGLE, blender.DEFAULT_AABB)
    with pytest.raises(ValueError, match="unknown split"):
        save_scene(tmp_path, "dev", np.zeros((1, 2, 2, 4), dtype=np.uint8), poses, ANGLE, blender.DEFAULT_AABB)


def test_failed_save_leaves_previous_files_intact(tmp_path, monkeypatch):
    _write_split(tmp_path, "train", n=2)
    before = (tmp_path / "transforms_train.json").read_text()

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(blender.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        _write_split(tmp_path, "train", n=2, seed=5)
    assert (tmp_path / "transforms_train.json").read_text() == before
    leftovers = [name for _, _, names in os.walk(tmp_path) for name in names if ".tmp" in name]
    assert leftovers == []


def test_near_orthonormal_poses_still_load(tmp_path):
    # rotations off by a few 1e-3 (rounded exports) are accepted; the bundled scenes are ~1e-7 off
    _write_split(tmp_path, "test", n=2)

    def nudge(meta):
        meta["frames"][0]["transform_matrix"][0][0] *= 1.003

    _edit_json(tmp_path / "transforms_test.json", nudge)
    assert load_scene(tmp_path, "test").n_views == 2


def test_split_too_large_to_load_is_rejected_before_allocating(tmp_path, monkeypatch):
    _write_split(tmp_path, "test", n=3, height=6, width=8)
    monkeypatch.setattr(blender, "MAX_SPLIT_BYTES", 3 * 6 * 8 * 16 - 1)  # 16 bytes per float32 RGBA pixel
    with pytest.raises(ValueError, match=r"transforms_test.json: 3 views of 8x6 pixels need .*valid: at most"):
        load_scene(tmp_path, "test")
    monkeypatch.setattr(blender, "MAX_SPLIT_BYTES", 3 * 6 * 8 * 16)
    assert load_scene(tmp_path, "test").n_views == 3


def test_check_aabb_returns_float32_and_bounds_the_extent():
    box = blender.check_aabb([[-1, -2, -3], [1, 2, 3]], "aabb")
    assert box.dtype == np.float32 and box.tolist() == [[-1, -2, -3], [1, 2, 3]]
    edge = blender.MAX_AABB_EXTENT / 2
    blender.check_aabb([[-edge] * 3, [edge] * 3], "aabb")  # the largest box is accepted
    with pytest.raises(ValueError, match="here must be .*min < max"):
        blender.check_aabb([[-edge] * 3, [edge + 1] * 3], "here")
