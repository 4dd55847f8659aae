"""Shared fixtures: the bundled tiny scene and one fp32 model trained on it (once per session)."""

from pathlib import Path

import numpy as np
import pytest

from hero_lite.nerf.checkpoint import save_checkpoint
from hero_lite.nerf.config import ModelConfig, TrainConfig
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.train import train
from hero_lite.scenes import load_scene

TINY = Path(__file__).resolve().parents[1] / "scenes" / "tiny"
TINY_TRAIN_STEPS = 300  # reaches about 25 dB on tiny (tests/nerf/test_train.py)


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return TINY


@pytest.fixture(scope="session")
def tiny_scenes():
    """(train, val, test) splits of scenes/tiny."""
    return tuple(load_scene(TINY, split) for split in ("train", "val", "test"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_scenes) -> Path:
    """Path of an fp32 checkpoint trained on scenes/tiny (300 steps of 2^14 samples, seed 0)."""
    train_scene = tiny_scenes[0]
    rng = np.random.default_rng(0)
    model = NGPModel.create(ModelConfig(), train_scene.aabb, rng)
    train(model, train_scene, TrainConfig(samples_per_step=1 << 14), rng, steps=TINY_TRAIN_STEPS)
    path = tmp_path_factory.mktemp("tiny_fp32") / "checkpoint.h5"
    save_checkpoint(path, model, {"steps": TINY_TRAIN_STEPS, "seed": 0})
    return path
