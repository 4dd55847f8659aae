"""Checkpoints: round trip, clear errors for bad files, atomic overwrite."""

import os

import h5py
import numpy as np
import pytest

from hero_lite.nerf import checkpoint
from hero_lite.nerf.checkpoint import load_checkpoint, save_checkpoint
from hero_lite.nerf.config import HashGridConfig, ModelConfig
from hero_lite.nerf.model import PARAM_NAMES, NGPModel
from hero_lite.nerf.occupancy import OccupancyGrid

CONFIG = ModelConfig(grid=HashGridConfig(n_levels=3, log2_table_size=8, base_res=4, max_res=16), hidden_width=16,
                     geo_feat=8, occupancy_res=8, step_size=0.05)
AABB = np.array([[-1.0, -2.0, -1.5], [1.0, 2.0, 1.5]], np.float32)
METADATA = {"steps": 123, "seed": 7, "scene": "tiny", "timings": {"train_s": 1.5}}


@pytest.fixture
def model():
    rng = np.random.default_rng(8)
    m = NGPModel.create(CONFIG, AABB, rng)
    values = rng.random((8, 8, 8)).astype(np.float32)
    m.occupancy = OccupancyGrid(values=values, bitfield=values > 0.5)
    return m


@pytest.fixture
def saved(tmp_path, model):
    path = tmp_path / "model.h5"
    save_checkpoint(path, model, METADATA)
    return path


def test_round_trip(saved, model):
    loaded, metadata = load_checkpoint(saved)
    assert metadata == METADATA
    assert loaded.config == CONFIG
    np.testing.assert_array_equal(loaded.aabb, AABB)
    for name in PARAM_NAMES:
        assert loaded.params[name].dtype == np.float32
        np.testing.assert_array_equal(loaded.params[name], model.params[name], err_msg=name)
    np.testing.assert_array_equal(loaded.occupancy.values, model.occupancy.values)
    np.testing.assert_array_equal(loaded.occupancy.bitfield, model.occupancy.bitfield)
    assert loaded.occupancy.bitfield.dtype == np.bool_
    # the loaded model computes the same thing
    pts = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.density(pts), model.density(pts))


def test_round_trip_without_metadata(tmp_path, model):
    save_checkpoint(tmp_path / "m.h5", model)
    assert load_checkpoint(tmp_path / "m.h5")[1] == {}


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_checkpoint(tmp_path / "nope.h5")


def test_text_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not an HDF5 file\n")
    with pytest.raises(ValueError, match="notes.h5"):
        load_checkpoint(path)


def test_hdf5_without_format_attribute(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="other.h5.*not a hero-lite checkpoint"):
        load_checkpoint(path)


def test_wrong_format_version(saved):
    with h5py.File(saved, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ValueError, match="model.h5.*version 99"):
        load_checkpoint(saved)


@pytest.mark.parametrize("key", ["params/color_w1", "params/hash_table", "aabb", "occupancy/values", "occupancy/bitfield"])
def test_deleted_dataset(saved, key):
    with h5py.File(saved, "a") as f:
        del f[key]
    with pytest.raises(ValueError, match=f"model.h5.*{key}"):
        load_checkpoint(saved)


def test_wrong_shaped_param(saved):
    with h5py.File(saved, "a") as f:
        del f["params/density_w1"]
        f.create_dataset("params/density_w1", data=np.zeros((16, 5), np.float32))
    with pytest.raises(ValueError, match="model.h5.*density_w1"):
        load_checkpoint(saved)


def test_non_float32_param(saved):
    with h5py.File(saved, "a") as f:
        data = f["params/color_w2"][()]
        del f["params/color_w2"]
        f.create_dataset("params/color_w2", data=data.astype(np.float64))
    with pytest.raises(ValueError, match="model.h5.*color_w2"):
        load_checkpoint(saved)


def test_malformed_config_attribute(saved):
    with h5py.File(saved, "a") as f:
        f.attrs["model_config"] = "{not json"
    with pytest.raises(ValueError, match="model.h5.*model_config"):
        load_checkpoint(saved)


def test_failed_overwrite_keeps_the_old_file(saved, model, monkeypatch):
    before = saved.read_bytes()

    def broken(f, m, kind, metadata, params=True):
        f.attrs["format"] = "half written"
        f.create_dataset("aabb", data=m.aabb)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "write_model_groups", broken)
    model.params["color_w2"] += 1.0
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(saved, model, {"steps": 999})
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == ["model.h5"]  # no temp file left behind
    monkeypatch.undo()
    assert load_checkpoint(saved)[1] == METADATA


def test_overwrite_replaces_the_file(saved, model):
    model.params["color_w2"] += 1.0
    save_checkpoint(saved, model, {"steps": 5})
    loaded, metadata = load_checkpoint(saved)
    assert metadata == {"steps": 5}
    np.testing.assert_array_equal(loaded.params["color_w2"], model.params["color_w2"])
    assert os.listdir(saved.parent) == ["model.h5"]


def _replace(f, key, data):
    del f[key]
    f.create_dataset(key, data=data)


CORRUPT_CASES = {
    # each damages one dataset of a valid file; the old loader accepted most of these silently
    "inverted aabb": (lambda f: _replace(f, "aabb", AABB[::-1].copy()), "dataset 'aabb' must be .*min < max"),
    "huge aabb": (lambda f: _replace(f, "aabb", np.float32([[-1e30] * 3, [1e30] * 3])), "dataset 'aabb' must be"),
    "nan aabb": (lambda f: _replace(f, "aabb", np.full((2, 3), np.nan, np.float32)), "dataset 'aabb' must be"),
    "aabb shape": (lambda f: _replace(f, "aabb", np.zeros(6, np.float32)), r"dataset 'aabb' has shape \(6,\)"),
    "occupancy shape": (lambda f: _replace(f, "occupancy/values", np.zeros((4, 4, 4), np.float32)),
                        r"dataset 'occupancy/values' has shape \(4, 4, 4\); the model config needs \(8, 8, 8\)"),
    "bitfield shape": (lambda f: _replace(f, "occupancy/bitfield", np.ones((8, 8, 9), np.uint8)),
                       "dataset 'occupancy/bitfield' has shape"),
    "nan occupancy": (lambda f: _replace(f, "occupancy/values", np.full((8, 8, 8), np.nan, np.float32)),
                      "'occupancy/values' must be finite"),
    "nan weight": (lambda f: f["params/color_w0"].__setitem__((0, 0), np.nan), "params/color_w0 must be finite"),
    "table shape": (lambda f: _replace(f, "params/hash_table", np.zeros((5, 2), np.float32)),
                    "dataset 'params/hash_table' has shape"),
    "string params": (lambda f: _replace(f, "params/density_w0", np.array([b"x"] * 3)), "params/density_w0"),
    "group for dataset": (lambda f: (f.__delitem__("aabb"), f.create_group("aabb")), "'aabb' is not a dataset"),
    "huge occupancy config": (lambda f: f.attrs.__setitem__(
        "model_config", f.attrs["model_config"].replace('"occupancy_res": 8', '"occupancy_res": 100000')),
        r"attribute model_config: model occupancy_res = 100000; valid: integer in \[1, 256\]"),
    "metadata not an object": (lambda f: f.attrs.__setitem__("metadata", "[1, 2]"), "metadata must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_CASES))
def test_corrupt_checkpoint_names_the_file_and_dataset(saved, case):
    damage, message = CORRUPT_CASES[case]
    with h5py.File(saved, "a") as f:
        damage(f)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(saved)
    assert str(saved) in str(info.value) and "\n" not in str(info.value)


def test_a_huge_declared_shape_is_rejected_without_reading(saved):
    # a dataset declared (2^40, 2) is never read (it would be 8 TiB): its shape is checked first
    with h5py.File(saved, "a") as f:
        del f["params/hash_table"]
        f.create_dataset("params/hash_table", shape=(1 << 40, 2), dtype=np.float32, chunks=(1024, 2))
    with pytest.raises(ValueError, match=r"model.h5: dataset 'params/hash_table' has shape \(1099511627776, 2\)"):
        load_checkpoint(saved)
