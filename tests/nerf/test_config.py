"""Config dataclasses: every key round-trips, unknown keys are rejected with the valid list, ranges checked."""

import dataclasses
import math

import pytest

from hero_lite.nerf.config import HashGridConfig, ModelConfig, TrainConfig


def test_derived_values_of_the_defaults():
    grid = HashGridConfig()
    # T = 2^15; b = (512 / 16)^(1/15) = 2^(1/3), log2 b = 1/3
    assert grid.table_size == 32768
    assert grid.log2_per_level_scale == pytest.approx(1 / 3)
    assert HashGridConfig(n_levels=1).log2_per_level_scale == 0.0
    model = ModelConfig()
    # L * F = 32; colour input 16 + 16 = 32; MACs 9,408 (see test_model)
    assert (model.encoding_width, model.sh_width, model.color_in_width) == (32, 16, 32)
    # 2 * 1.5 * sqrt 3 / 256 = 0.0203 world units (256 steps across the box diagonal)
    assert model.step_size == pytest.approx(0.020297, rel=1e-4)
    assert model.render_step_size == pytest.approx(0.020297 / 2, rel=1e-4)


def _non_default(cls):
    """A value different from the default for every field (all still valid)."""
    changes = {
        HashGridConfig: dict(n_levels=8, n_feat=4, log2_table_size=14, base_res=8, max_res=256),
        ModelConfig: dict(grid={"n_levels": 4}, hidden_width=32, geo_feat=8, density_logit_max=10.0,
                          occupancy_res=32, step_size=0.01, render_substeps=3, supersample=2),
        TrainConfig: dict(lr=3e-3, lr_decay_at=[0.6], lr_decay_factor=0.5, adam_beta1=0.8, adam_beta2=0.95,
                          adam_eps=1e-12, weight_decay=1e-5, samples_per_step=1024, initial_rays=256, max_rays=2048,
                          loss="mse", huber_delta=0.2, occupancy_decay=0.9, occupancy_threshold=0.02,
                          occupancy_warmup_steps=16, occupancy_carve=False, occupancy_splat=False,
                          random_background=False, supersample_from=0.5),
    }[cls]
    assert set(changes) == {f.name for f in dataclasses.fields(cls)}, "a config key is missing from this test"
    return changes


@pytest.mark.parametrize("cls", [HashGridConfig, ModelConfig, TrainConfig])
def test_every_key_round_trips(cls):
    data = _non_default(cls)
    config = cls.from_dict(data)
    default = cls()
    for key in data:
        assert getattr(config, key) != getattr(default, key), key
    again = cls.from_dict(dataclasses.asdict(config) if cls is HashGridConfig else config.to_dict())
    assert again == config


@pytest.mark.parametrize("cls", [HashGridConfig, ModelConfig, TrainConfig])
def test_unknown_keys_are_rejected_with_the_valid_ones(cls):
    with pytest.raises(ValueError, match="unknown key.*bogus.*valid keys"):
        cls.from_dict({"bogus": 1})
    with pytest.raises(TypeError):
        cls.from_dict(42)


def test_nested_grid_key_is_checked():
    with pytest.raises(ValueError, match="n_level;.*n_levels"):
        ModelConfig.from_dict({"grid": {"n_level": 3}})
    assert ModelConfig(grid={"n_levels": 3}).grid == HashGridConfig(n_levels=3)


@pytest.mark.parametrize(("kwargs", "word"), [
    (dict(n_levels=0), "n_levels"), (dict(n_feat=9), "n_feat"), (dict(log2_table_size=25), "log2_table_size"),
    (dict(base_res=1), "base_res"), (dict(max_res=8, base_res=16), "max_res"), (dict(n_levels=True), "n_levels"),
    # 32 levels of 2^24 entries of 8 features would be 16 GiB of table
    (dict(n_levels=32, log2_table_size=24, n_feat=8), r"n_levels \* 2\^log2_table_size \* n_feat .* at most 536870912"),
])
def test_hash_grid_ranges(kwargs, word):
    with pytest.raises(ValueError, match=word):
        HashGridConfig(**kwargs)


@pytest.mark.parametrize(("kwargs", "word"), [
    (dict(hidden_width=0), "hidden_width"), (dict(geo_feat=0), "geo_feat"), (dict(occupancy_res=2.5), "occupancy_res"),
    (dict(step_size=0.0), "step_size"), (dict(step_size=math.nan), "step_size"),
    (dict(render_substeps=0), "render_substeps"),
    # sizes are bounded before any model is allocated
    (dict(occupancy_res=100000), r"occupancy_res = 100000; valid: integer in \[1, 256\]"),
    (dict(hidden_width=1 << 20), r"hidden_width .* valid: integer in \[1, 1024\]"),
    (dict(render_substeps=10**9), "render_substeps"),
    (dict(supersample=0), r"supersample = 0; valid: integer in \[1, 4\]"),
    (dict(supersample=5), "supersample"), (dict(supersample=True), "supersample"),
    (dict(step_size=math.inf), r"step_size = inf; valid: a finite number in \(0, 1000\]"),
    (dict(density_logit_max=math.nan), "density_logit_max"),
    (dict(density_logit_max=1e30), "density_logit_max"),
])
def test_model_ranges(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ModelConfig(**kwargs)


TRAIN_CASES = [
    (dict(loss="l1"), "loss"), (dict(lr=0.0), "lr"), (dict(samples_per_step=0), "samples_per_step"),
    (dict(occupancy_decay=1.5), "occupancy_decay"), (dict(lr_decay_at=(1.5,)), "lr_decay_at"),
    (dict(occupancy_carve=1), "occupancy_carve"), (dict(occupancy_splat="yes"), "occupancy_splat"),
    # Values that would break training silently if accepted:
    (dict(huber_delta=0.0), "huber_delta"),  # zero loss gradient: nothing learns
    (dict(adam_beta1=1.0), "adam_beta1"),  # bias correction 1 - beta^t = 0: NaN parameters
    (dict(adam_beta2=1.0), "adam_beta2"),
    (dict(adam_eps=-1e-3), "adam_eps"),
    (dict(weight_decay=-1.0), "weight_decay"),  # weights grow
    (dict(lr_decay_factor=0.0), "lr_decay_factor"),  # lr 0 after the first decay point
    (dict(occupancy_threshold=-1.0), "occupancy_threshold"),  # every cell stays occupied
    (dict(supersample_from=1.5), "supersample_from"),  # a progress fraction: never reached
]


@pytest.mark.parametrize(("kwargs", "word"), TRAIN_CASES, ids=[f"{k}={v}" for kw, _ in TRAIN_CASES for k, v in kw.items()])
def test_train_ranges(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs)
