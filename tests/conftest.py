"""Shared fixtures: the bundled tiny scene and one fp32 model trained on it (once per session).

The tests exercise the installed hero_lite, as users get it. `python -m pytest` from the checkout
puts the checkout first on sys.path, where its hero_lite would shadow the installed one; so
hero_lite is imported from the other entries of sys.path when it is installed there. An editable
install (`pip install -e .`) has nothing there, and its import resolves to the checkout as intended.
"""

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _import_installed_hero_lite() -> None:
    def outside_checkout(entry: str) -> bool:
        try:
            return Path(entry or os.getcwd()).resolve() != REPO
        except OSError:
            return True

    if "hero_lite" in sys.modules:
        return
    spec = importlib.machinery.PathFinder.find_spec("hero_lite", [p for p in sys.path if outside_checkout(p)])
    if spec is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["hero_lite"] = module
        spec.loader.exec_module(module)


_import_installed_hero_lite()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hero_lite.nerf.checkpoint import save_checkpoint  # noqa: E402
from hero_lite.nerf.config import ModelConfig, TrainConfig  # noqa: E402
from hero_lite.nerf.model import NGPModel  # noqa: E402
from hero_lite.nerf.train import train  # noqa: E402
from hero_lite.scenes import load_scene  # noqa: E402

TINY = REPO / "scenes" / "tiny"
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
