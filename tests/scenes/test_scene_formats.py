"""Scenes as users have them: NeRF-synthetic downscaling and extra files, instant-ngp transforms.json
keys (fl_x, cx, w, aabb_scale, per-frame intrinsics, file_path with an extension), the holdout rule
of a single transforms.json, and one-line refusals of what hero-lite cannot render."""

import json
import math
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hero_lite.scenes import blender, held_out_indices, load_scene, look_at, save_scene

ANGLE = 0.6911112070083618


def _poses(n):
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    eyes = np.stack([4 * np.cos(angles), 4 * np.sin(angles), np.full(n, 1.5)], axis=1)
    return np.stack([look_at(eye) for eye in eyes]).astype(np.float32)


def _ngp_scene(folder, n=3, width=8, height=6, extension=".png", frame_keys=None, **top_level):
    """A single transforms.json (instant-ngp layout) with images/NNNN<extension>; returns (images, poses).

    frame_keys : optional callable index -> dict of keys for that frame (per-frame intrinsics).
    """
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    mode = "RGBA" if extension == ".png" else "RGB"
    images = rng.integers(0, 256, size=(n, height, width, len(mode)), dtype=np.uint8)
    poses = _poses(n)
    frames = []
    for index in range(n):
        relative = f"./images/{index:04d}{extension}"
        Image.fromarray(images[index], mode).save(folder / relative)
        frame = {"file_path": relative, "transform_matrix": poses[index].tolist()}
        frame.update(frame_keys(index) if frame_keys else {})
        frames.append(frame)
    (folder / "transforms.json").write_text(json.dumps({**top_level, "frames": frames}))
    return images, poses


def _png16(path, pixels):
    """Write (H, W, 4) uint16 as a 16-bit RGBA PNG (Pillow cannot write one)."""
    height, width = pixels.shape[:2]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# ----------------------------------------------------------------------------- downscaling


def _blocks_reference(images_uint8, factor):
    """Premultiplied block average with integer sums: alpha = sum(a) / (n 255), rgb = sum(c a) / (255 sum(a))."""
    n, height, width, _ = images_uint8.shape
    out = np.zeros((n, height // factor, width // factor, 4))
    for k in range(n):
        for by in range(height // factor):
            for bx in range(width // factor):
                block = images_uint8[k, by * factor:(by + 1) * factor, bx * factor:(bx + 1) * factor].reshape(-1, 4)
                block = block.astype(np.int64)
                alpha_sum = block[:, 3].sum()
                out[k, by, bx, 3] = alpha_sum / (factor * factor * 255)
                if alpha_sum > 0:
                    out[k, by, bx, :3] = (block[:, :3] * block[:, 3:4]).sum(axis=0) / (255 * alpha_sum)
    return out


def test_downscale_averages_premultiplied_blocks_exactly(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 32, 32, 4), dtype=np.uint8)
    # block (0, 0) of view 0: 4 opaque pure-red pixels, 12 transparent pixels of random colour
    # -> red at alpha 4/16 = 0.25 (a straight average would mix in the invisible colours)
    images[0, :4, :4, :3] = rng.integers(0, 256, (4, 4, 3))
    images[0, :4, :4, 3] = 0
    images[0, 0, :4] = (255, 0, 0, 255)
    # block (0, 1) of view 0: fully transparent -> colour 0, alpha 0
    images[0, :4, 4:8, 3] = 0
    # block (1, 0) of view 0: one half-transparent white pixel (a = 102 = 0.4) and 15 opaque black ones
    # -> alpha (102 + 15 * 255) / (16 * 255) = 0.9625, rgb = 0.4 / (16 * 0.9625) = 0.025974
    images[0, 4:8, :4] = (0, 0, 0, 255)
    images[0, 4, 0] = (255, 255, 255, 102)
    save_scene(tmp_path, "test", images, _poses(2), ANGLE)
    full = load_scene(tmp_path, "test")
    small = load_scene(tmp_path, "test", downscale=4)

    assert small.images.shape == (2, 8, 8, 4) and small.images.dtype == np.float32
    # focal 0.5 * 32 / tan(0.5 * 0.6911) = 44.44 px at 32x32, 11.11 px at 8x8
    assert small.focal == pytest.approx(0.5 * 32 / math.tan(0.5 * ANGLE) / 4, rel=1e-12)
    assert small.focal == pytest.approx(full.focal / 4, rel=1e-12)
    np.testing.assert_array_equal(small.poses, full.poses)
    np.testing.assert_allclose(small.images[0, 0, 0], [1, 0, 0, 0.25], atol=1e-7)
    np.testing.assert_array_equal(small.images[0, 0, 1], [0, 0, 0, 0])
    np.testing.assert_allclose(small.images[0, 1, 0], [0.4 / (16 * 0.9625)] * 3 + [0.9625], rtol=1e-6)
    np.testing.assert_allclose(small.images, _blocks_reference(images, 4), rtol=1e-6, atol=1e-7)
    # premultiplied averaging: compositing commutes with the downscale, over any background
    background = (0.2, 0.7, 0.4)
    block_means = full.rgb(background).reshape(2, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(small.rgb(background), block_means, atol=2e-6)


def test_downscale_8_of_a_nerf_synthetic_size(tmp_path):
    # 800x800 -> 100x100 is the same arithmetic as 32x32 -> 4x4 at factor 8
    images = np.zeros((1, 32, 32, 4), dtype=np.uint8)
    images[0, :, :, 3] = 255
    images[0, :, :16, 0] = 255
    save_scene(tmp_path, "train", images, _poses(1), ANGLE)
    scene = load_scene(tmp_path, downscale=8)
    assert (scene.height, scene.width) == (4, 4)
    np.testing.assert_array_equal(scene.images[0, :, :2], np.broadcast_to([1, 0, 0, 1], (4, 2, 4)))
    np.testing.assert_array_equal(scene.images[0, :, 2:], np.broadcast_to([0, 0, 0, 1], (4, 2, 4)))


def test_downscale_that_does_not_divide_is_one_line(tmp_path):
    save_scene(tmp_path, "train", np.zeros((1, 12, 20, 4), np.uint8), _poses(1), ANGLE)
    with pytest.raises(ValueError, match=r"r_0.png: image 20x12 is not divisible by downscale 3; valid: 1 or a "
                                         r"common divisor of 20 and 12 \(2, 4\)") as info:
        load_scene(tmp_path, downscale=3)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- NeRF-synthetic layout


def test_extra_files_in_the_test_split_are_ignored(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, size=(2, 8, 8, 4), dtype=np.uint8)
    save_scene(tmp_path, "test", images, _poses(2), ANGLE)
    # NeRF-synthetic's test folder also holds depth (16-bit grey) and normal maps of other sizes
    for index in range(2):
        Image.new("I;16", (5, 5)).save(tmp_path / "test" / f"r_{index}_depth_0000.png")
        Image.new("RGBA", (3, 7), (1, 2, 3, 4)).save(tmp_path / "test" / f"r_{index}_normal_0000.png")
    scene = load_scene(tmp_path, "test", downscale=2)
    assert scene.n_views == 2 and (scene.height, scene.width) == (4, 4)
    np.testing.assert_array_equal(load_scene(tmp_path, "test").images, images / np.float32(255))


def test_per_split_files_win_over_a_transforms_json(tmp_path):
    save_scene(tmp_path, "train", np.zeros((3, 4, 4, 4), np.uint8), _poses(3), ANGLE)
    _ngp_scene(tmp_path / "ngp", n=2, width=6, height=6, camera_angle_x=ANGLE)
    (tmp_path / "transforms.json").write_text((tmp_path / "ngp" / "transforms.json").read_text())
    assert load_scene(tmp_path, "train").n_views == 2  # transforms_train.json minus the held-out frame
    with pytest.raises(FileNotFoundError, match=r"transforms file not found: .*transforms_test.json$"):
        load_scene(tmp_path, "test")


# ----------------------------------------------------------------------------- instant-ngp keys


def test_instant_ngp_intrinsics_at_the_top_level(tmp_path):
    images, poses = _ngp_scene(tmp_path, n=3, width=8, height=6, fl_x=10.0, fl_y=10.005, cx=4.2, cy=2.9, w=8, h=6,
                               k1=0.0, k2=0.0, p1=0.0, p2=0.0, is_fisheye=False, camera_angle_x=1.0, aabb_scale=4,
                               sharpen=0.0, up=[0, 0, 1])
    scene = load_scene(tmp_path, "train")
    assert scene.n_views == 2  # frame 2 is held out (fewer than 10 frames: the last)
    assert scene.focal == 10.0  # fl_x wins over camera_angle_x, as in instant-ngp
    np.testing.assert_array_equal(scene.images, images[:2] / np.float32(255))
    np.testing.assert_array_equal(scene.poses, poses[:2])
    np.testing.assert_array_equal(scene.aabb, [[-6] * 3, [6] * 3])  # 1.5 x aabb_scale
    assert load_scene(tmp_path, "test", downscale=2).focal == 5.0


def test_instant_ngp_per_frame_intrinsics_and_jpeg(tmp_path):
    def keys(index):
        return {"fl_x": 20.0, "fl_y": 20.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12}

    _ngp_scene(tmp_path, n=4, width=16, height=12, extension=".jpg", frame_keys=keys)
    scene = load_scene(tmp_path, "train", downscale=4)
    assert (scene.n_views, scene.height, scene.width) == (3, 3, 4)
    assert scene.focal == 5.0
    np.testing.assert_array_equal(scene.images[..., 3], 1.0)  # JPEG: RGB, alpha 1
    np.testing.assert_array_equal(scene.aabb, np.float32(blender.DEFAULT_AABB))


def test_frame_focal_overrides_the_file_and_y_alone_serves_both_axes(tmp_path):
    def keys(index):
        return {"camera_angle_x": 2 * math.atan(4 / 12.0)} if index == 1 else {}

    _ngp_scene(tmp_path, n=2, width=8, height=6, fl_x=8.0, frame_keys=keys)
    assert load_scene(tmp_path, "train").focal == 8.0  # frame 0: the file's fl_x
    # frame 1 (held out): its own angle, 0.5 * 8 / tan(atan(4 / 12)) = 12 px, replaces the file's fl_x
    assert load_scene(tmp_path, "val").focal == pytest.approx(12.0)
    _ngp_scene(tmp_path / "y", n=2, width=8, height=6, camera_angle_y=2 * math.atan(3 / 9.0))
    assert load_scene(tmp_path / "y", "train").focal == pytest.approx(9.0)


@pytest.mark.parametrize("aabb_scale, half", [(1, 1.5), (2, 3.0), (16, 24.0)])
def test_aabb_scale_maps_to_a_world_box(tmp_path, aabb_scale, half):
    _ngp_scene(tmp_path, n=2, camera_angle_x=ANGLE, aabb_scale=aabb_scale, scale=0.33, offset=[0.5, 0.5, 0.5])
    np.testing.assert_array_equal(load_scene(tmp_path).aabb, [[-half] * 3, [half] * 3])


def test_explicit_aabb_wins_over_aabb_scale(tmp_path):
    _ngp_scene(tmp_path, n=2, camera_angle_x=ANGLE, aabb_scale=8, aabb=[[-1, -1, 0], [1, 1, 2]])
    np.testing.assert_array_equal(load_scene(tmp_path).aabb, [[-1, -1, 0], [1, 1, 2]])


def test_sixteen_bit_png_is_read_at_eight_bits(tmp_path):
    _ngp_scene(tmp_path, n=2, width=2, height=2, camera_angle_x=ANGLE)
    pixels = np.full((2, 2, 4), 0xFFFF, dtype=np.uint16)
    pixels[0, 0] = (0x1234, 0x80FF, 0x00FF, 0xFF00)
    _png16(tmp_path / "images" / "0000.png", pixels)
    scene = load_scene(tmp_path, "train")
    # Pillow keeps the high byte: 0x12 = 18, 0x80 = 128, 0x00, 0xFF = 255
    np.testing.assert_array_equal(scene.images[0, 0, 0], np.float32([18, 128, 0, 255]) / np.float32(255))
    np.testing.assert_array_equal(scene.images[0, 1, 1], [1, 1, 1, 1])


# ----------------------------------------------------------------------------- holdout of a single file


@pytest.mark.parametrize("n_frames, held_out", [(12, [9]), (25, [9, 19]), (4, [3])])
def test_single_transforms_json_holdout_rule(tmp_path, n_frames, held_out):
    _, poses = _ngp_scene(tmp_path, n=n_frames, width=4, height=4, camera_angle_x=ANGLE)
    assert held_out_indices(n_frames).tolist() == held_out
    kept = [k for k in range(n_frames) if k not in held_out]
    np.testing.assert_array_equal(load_scene(tmp_path, "train").poses, poses[kept])
    np.testing.assert_array_equal(load_scene(tmp_path, "val").poses, poses[held_out])
    np.testing.assert_array_equal(load_scene(tmp_path, "test").poses, poses[held_out])


def test_single_frame_transforms_json_has_no_test_split(tmp_path):
    _ngp_scene(tmp_path, n=1, camera_angle_x=ANGLE)
    assert load_scene(tmp_path, "train").n_views == 1
    with pytest.raises(ValueError, match=r"transforms.json: no transforms_val.json and only 1 frame\(s\), too few "
                                         r"to hold some out for the test split"):
        load_scene(tmp_path, "test")


def test_no_transforms_file_at_all(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match=r"transforms_train.json \(and no transforms.json beside it\)"):
        load_scene(tmp_path)


# ----------------------------------------------------------------------------- refusals

REFUSALS = {
    "non_square": ({"fl_x": 10.0, "fl_y": 10.02}, None,
                   r"frames\[0\]: focal lengths 10 px \(x\) and 10.02 px \(y\) differ by more than 0.1%; non-square"),
    "non_square_angles": ({"camera_angle_x": ANGLE, "camera_angle_y": ANGLE}, None, "non-square pixels"),
    "cx_off_centre": ({"fl_x": 10.0, "cx": 4.6}, None,
                      r"frames\[0\]: principal point 'cx' = 4.6 px is more than 0.5 px from the image centre 4 px"),
    "cy_per_frame": ({"fl_x": 10.0}, lambda k: {"cy": 0.0} if k == 1 else {}, r"frames\[1\]: principal point 'cy'"),
    "distortion": ({"fl_x": 10.0, "k1": 0.01, "k2": 0.0, "p1": -0.002}, None,
                   r"transforms.json: lens distortion \(k1 = 0.01, p1 = -0.002\) is not supported"),
    "distortion_per_frame": ({"fl_x": 10.0}, lambda k: {"k2": 0.1}, r"frames\[0\]: lens distortion \(k2 = 0.1\)"),
    "fisheye": ({"fl_x": 10.0, "is_fisheye": True}, None, "fisheye lenses are not supported"),
    "latlong": ({"fl_x": 10.0, "latlong": True}, None, r"'latlong' \(an instant-ngp lens model\) is not supported"),
    "width_mismatch": ({"fl_x": 10.0, "w": 16, "h": 6}, None, r"frames\[0\]: 'w' is 16 but the image is 8x6 pixels"),
    "focal_differs_per_frame": ({}, lambda k: {"fl_x": 10.0 + k},
                                r"frames\[1\]: focal length 11 px differs from the split's first frame \(10 px\)"),
    "aabb_scale_too_big": ({"fl_x": 10.0, "aabb_scale": 32}, None, r"'aabb_scale' 32 \(box \+-48\).*extent <= 64"),
    "aabb_scale_not_a_number": ({"fl_x": 10.0, "aabb_scale": "big"}, None, "'aabb_scale' must be a number > 0"),
    "scale_with_aabb_scale": ({"fl_x": 10.0, "aabb_scale": 2, "scale": 0.5}, None,
                              r"'scale' = 0.5 with 'aabb_scale' is not supported.*give the scene box .* as 'aabb'"),
    "offset_with_aabb_scale": ({"fl_x": 10.0, "aabb_scale": 2, "offset": [0.5, 0.5, 0.0]}, None, "'offset' = "),
    "no_focal": ({}, None, r"transforms.json: missing key 'camera_angle_x' \(or 'fl_x'\)"),
    "no_focal_in_one_frame": ({}, lambda k: {"fl_x": 10.0} if k == 0 else {},
                              r"frames\[1\]: missing key 'camera_angle_x'"),
    "fl_x_not_a_number": ({"fl_x": "wide"}, None, "'fl_x' must be a focal length in pixels, finite and > 0, got 'wide'"),
    "fl_x_negative": ({"fl_x": -3.0}, None, "'fl_x' must be a focal length"),
    "angle_y_out_of_range": ({"camera_angle_y": 4.0}, None, r"'camera_angle_y' must be a number of radians in \(0, pi\)"),
    "cx_not_a_number": ({"fl_x": 10.0, "cx": None}, None, "'cx' must be a finite number, got None"),
    "w_not_an_integer": ({"fl_x": 10.0, "w": 8.5}, None, "'w' must be an image size in pixels, an integer >= 1, got 8.5"),
    "fisheye_not_a_bool": ({"fl_x": 10.0, "is_fisheye": "no"}, None, "'is_fisheye' must be true or false"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_cameras_hero_lite_cannot_render_are_refused_in_one_line(tmp_path, case):
    top_level, frame_keys, message = REFUSALS[case]
    _ngp_scene(tmp_path, n=3, width=8, height=6, frame_keys=frame_keys, **top_level)
    with pytest.raises(ValueError, match=message) as info:
        load_scene(tmp_path, "train")
    assert "transforms.json" in str(info.value) and "\n" not in str(info.value)


def test_bad_images_are_refused_in_one_line(tmp_path):
    _ngp_scene(tmp_path, n=3, camera_angle_x=ANGLE)
    (tmp_path / "images" / "0001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*images/0001.png"):
        load_scene(tmp_path)
    Image.new("L", (8, 6)).save(tmp_path / "images" / "0001.png")
    with pytest.raises(ValueError, match=r"0001.png: image mode 'L' is not RGB or RGBA"):
        load_scene(tmp_path)
    Image.new("RGB", (8, 7)).save(tmp_path / "images" / "0001.png")
    with pytest.raises(ValueError, match=r"0001.png: image is 8x7 but .*0000.png is 8x6"):
        load_scene(tmp_path)
    Image.new("CMYK", (8, 6)).save(tmp_path / "images" / "0001.jpg")
    meta = json.loads((tmp_path / "transforms.json").read_text())
    meta["frames"][1]["file_path"] = ".\\images\\0001.jpg"  # Windows separators, as instant-ngp accepts
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"images/0001.jpg: image mode 'CMYK' is not RGB or RGBA"):
        load_scene(tmp_path)
