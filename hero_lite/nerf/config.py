"""Configuration dataclasses of the NeRF model and its training.

Each dataclass holds every default; `from_dict` rejects unknown keys and lists the valid ones.
Derived values (growth factor, level sizes) are properties or live in `HashGridLayout`, never keys.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# Size bounds, checked when a config is built (so before any model is allocated), generous but safe
# on a 24 GiB machine:
MAX_TABLE_FLOATS = 1 << 29  # n_levels * T * n_feat: 2 GiB of float32 table; training keeps 4 copies
MAX_HIDDEN_WIDTH = 1024  # MLP width; activations are (65536-sample chunk, width) float32 buffers
MAX_OCCUPANCY_RES = 256  # cells per axis; a warm-up update evaluates all res^3 cells at once
MAX_RENDER_SUBSTEPS = 64
MAX_SUPERSAMPLE = 4  # rays per pixel along each axis: 16 rays per pixel at most
MAX_MARCH_STEPS = 1 << 14  # render steps across the aabb diagonal (the default box: 512)
MAX_DENSITY_LOGIT = 80.0  # exp(80) = 5.5e34 stays below the float32 maximum (3.4e38)


def strict_from_dict(cls, data: dict[str, Any], where: str):
    """Build a (frozen) dataclass from a dict, rejecting unknown keys with the list of valid ones.

    The one strict-config helper of the layers above `scenes`; `accel` and `rl` stand alone and
    keep their own.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a table/dict, got {type(data).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    return cls(**data)


@dataclass(frozen=True)
class HashGridConfig:
    """Multiresolution hash grid, tiny-cuda-nn conventions (NGP paper, Table 1; tcnn grid.h).

    n_levels: L; n_feat: F features per entry; log2_table_size: log2 T (max entries per level);
    base_res: N_min; max_res: N_max (finest resolution, vertices per axis, before tcnn's -1/+1).
    """

    n_levels: int = 16
    n_feat: int = 2
    log2_table_size: int = 15
    base_res: int = 16
    max_res: int = 512

    def __post_init__(self) -> None:
        checks = {
            "n_levels": (1, 32),
            "n_feat": (1, 8),
            "log2_table_size": (4, 24),
            "base_res": (2, 1 << 16),
            "max_res": (2, 1 << 16),
        }
        for key, (lo, hi) in checks.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"hash grid {key} = {value!r}; valid: integer in [{lo}, {hi}]")
        if self.max_res < self.base_res:
            raise ValueError(f"hash grid max_res = {self.max_res} must be >= base_res = {self.base_res}")
        floats = self.n_levels * self.table_size * self.n_feat
        if floats > MAX_TABLE_FLOATS:
            raise ValueError(
                f"hash grid n_levels * 2^log2_table_size * n_feat = {self.n_levels} * 2^{self.log2_table_size} * "
                f"{self.n_feat} = {floats} floats; valid: at most {MAX_TABLE_FLOATS} (2^29)"
            )

    @property
    def table_size(self) -> int:
        """T, the maximum number of entries of one level."""
        return 1 << self.log2_table_size

    @property
    def log2_per_level_scale(self) -> float:
        """log2 of the growth factor b = exp((ln N_max - ln N_min) / (L - 1)) (NGP paper, eq. 3)."""
        if self.n_levels == 1:
            return 0.0
        return math.log2(self.max_res / self.base_res) / (self.n_levels - 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HashGridConfig":
        return strict_from_dict(cls, data, "hash grid config")


@dataclass(frozen=True)
class ModelConfig:
    """The NGP-lite model: hash grid, SH-4 directions, density 32->64->16, colour 32->64->64->3.

    Widths follow the NGP paper (section 5.4) and tcnn's FullyFusedMLP (no biases).
    `density_logit_max` clamps the log-density before exp (avoids overflow in float32).
    `occupancy_res` is the occupancy grid resolution per axis; `step_size` is the marching step in
    world units (2 * 1.5 * sqrt(3) / 256 for the [-1.5, 1.5]^3 box: 256 steps across the diagonal).
    Inference (evaluation, pictures, the traced workload the simulator prices) marches at the finer
    `render_step_size` = step_size / render_substeps. Training samples at jittered offsets, so the
    learnt field is meant to be integrated, not point-sampled at fixed offsets; half the step at
    inference gave +0.23 dB on a 2000-step scenes/primitives model (+0.30 dB at 300 s of training,
    3 seeds) and +0.07 dB on scenes/lattice (finer steps: within 0.01 dB) for 1.9x the samples per
    ray (measured).

    `supersample` = s renders (and trains) every pixel as the mean colour of s x s rays through the
    centres of an s x s grid of sub-pixels, i.e. the pixel centres of the same camera at s times the
    resolution. 1 is one ray through each pixel centre (instant-ngp). With 2 the model learns the
    scene itself rather than each view's pixel blur, which one ray per pixel cannot reproduce where
    structures are about a pixel wide (docs/results.md, "Thin structures and the occupancy grid").
    A frame then has s^2 rays per pixel, and the accelerator prices them all. Training starts with
    one ray per pixel (`TrainConfig.supersample_from`).

    Bounds: hidden_width <= 1024, occupancy_res <= 256, render_substeps <= 64, supersample <= 4,
    |density_logit_max| <= 80, 0 < step_size <= 1000 (world units); the aabb of a model may span at most
    MAX_MARCH_STEPS render steps along its diagonal (`hero_lite.nerf.model.check_model_aabb`).
    """

    grid: HashGridConfig = field(default_factory=HashGridConfig)
    hidden_width: int = 64
    geo_feat: int = 16
    density_logit_max: float = 15.0
    occupancy_res: int = 64
    step_size: float = 2 * 1.5 * math.sqrt(3.0) / 256
    render_substeps: int = 2
    supersample: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.grid, dict):
            object.__setattr__(self, "grid", HashGridConfig.from_dict(self.grid))
        limits = {"hidden_width": MAX_HIDDEN_WIDTH, "geo_feat": 4 * MAX_HIDDEN_WIDTH,
                  "occupancy_res": MAX_OCCUPANCY_RES, "render_substeps": MAX_RENDER_SUBSTEPS,
                  "supersample": MAX_SUPERSAMPLE}
        for key, hi in limits.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
                raise ValueError(f"model {key} = {value!r}; valid: integer in [1, {hi}]")
        if self.geo_feat < 1 or self.geo_feat > self.hidden_width * 4:
            raise ValueError(f"model geo_feat = {self.geo_feat}; valid: 1..{self.hidden_width * 4}")
        for key, lo, hi in (("step_size", 0.0, 1e3), ("density_logit_max", -MAX_DENSITY_LOGIT, MAX_DENSITY_LOGIT)):
            value = getattr(self, key)
            # (NaN fails the comparison, so it is rejected too)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo < value <= hi:
                raise ValueError(f"model {key} = {value!r}; valid: a finite number in ({lo:g}, {hi:g}]")

    @property
    def render_step_size(self) -> float:
        """Marching step of inference rendering, world units."""
        return self.step_size / self.render_substeps

    @property
    def encoding_width(self) -> int:
        """Width of the hash-grid output, L * F."""
        return self.grid.n_levels * self.grid.n_feat

    @property
    def sh_width(self) -> int:
        """Width of the degree-4 SH direction encoding."""
        return 16

    @property
    def color_in_width(self) -> int:
        """All density-MLP outputs plus the SH features (tcnn NeRF network)."""
        return self.geo_feat + self.sh_width

    @property
    def macs_per_sample(self) -> int:
        """MLP multiply-accumulates per sample (9,408 with the defaults)."""
        h = self.hidden_width
        return self.encoding_width * h + h * self.geo_feat + self.color_in_width * h + h * h + h * 3

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        data = dict(data)
        if "grid" in data:
            data["grid"] = HashGridConfig.from_dict(data["grid"])
        return strict_from_dict(cls, data, "model config")


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule and optimiser (NGP paper section 4; instant-ngp `base.json` and `testbed_nerf.cu`).

    Schedules are defined by progress: a fraction of `steps` for step-budgeted runs, a fraction of
    the wall-clock budget for time-budgeted ones. `lr_decay_at` lists the progress fractions at which
    the learning rate is multiplied by `lr_decay_factor`.

    Occupancy: no cell is culled by its learned density during the first `occupancy_warmup_steps`
    steps; `occupancy_carve` removes from the start the cells some training view sees through (its
    alpha is 0 there); `occupancy_splat` lets every training sample raise its cell's value, so a cell
    that rays keep hitting with density is not culled on one unlucky random point.

    `supersample_from`: training uses one ray per pixel centre until this progress fraction, then
    the model's s x s rays per pixel (`ModelConfig.supersample`; no effect when s = 1). The one-ray
    start clears empty space and fits the coarse field at a quarter of the cost per pixel (s = 2).
    With s = 2, 120 s, 3 seeds, one ray for the first quarter beat 2x2 rays from the start on every
    bundled scene: lattice 25.02 against 23.44 dB, wires 32.23 against 32.05, primitives 32.76 against 32.24
    (docs/results.md, "Thin structures and the occupancy grid"; measured before training ran the
    network on live samples only and computed densities in rounds, which now gives 26.36 / 32.88 /
    34.36 dB with the quarter).
    """

    lr: float = 1e-2
    lr_decay_at: tuple[float, ...] = (0.5, 0.75, 0.9)
    lr_decay_factor: float = 0.33
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    adam_eps: float = 1e-15
    weight_decay: float = 1e-6
    samples_per_step: int = 1 << 16
    initial_rays: int = 4096
    max_rays: int = 1 << 16
    loss: str = "huber"
    huber_delta: float = 0.1
    occupancy_decay: float = 0.95
    occupancy_threshold: float = 0.01
    occupancy_warmup_steps: int = 256
    occupancy_carve: bool = True
    occupancy_splat: bool = True
    random_background: bool = True
    supersample_from: float = 0.25

    def __post_init__(self) -> None:
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"train loss = {self.loss!r}; valid: 'huber', 'mse'")
        for key in ("samples_per_step", "initial_rays", "max_rays", "occupancy_warmup_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"train {key} = {value!r}; valid: integer >= 1")
        for key in ("occupancy_carve", "occupancy_splat", "random_background"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"train {key} = {getattr(self, key)!r}; valid: true, false")
        if not self.lr > 0:
            raise ValueError(f"train lr = {self.lr!r}; valid: > 0")
        ranges = {
            "huber_delta": (self.huber_delta > 0, "> 0"),
            "adam_beta1": (0 <= self.adam_beta1 < 1, "[0, 1)"),
            "adam_beta2": (0 <= self.adam_beta2 < 1, "[0, 1)"),
            "adam_eps": (self.adam_eps >= 0, ">= 0"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "lr_decay_factor": (0 < self.lr_decay_factor <= 1, "(0, 1]"),
            "occupancy_threshold": (self.occupancy_threshold >= 0, ">= 0"),
            "supersample_from": (0 <= self.supersample_from <= 1, "[0, 1]"),
        }
        for key, (ok, valid) in ranges.items():
            if not ok:
                raise ValueError(f"train {key} = {getattr(self, key)!r}; valid: {valid}")
        if not 0 < self.occupancy_decay <= 1:
            raise ValueError(f"train occupancy_decay = {self.occupancy_decay!r}; valid: (0, 1]")
        object.__setattr__(self, "lr_decay_at", tuple(float(x) for x in self.lr_decay_at))
        if any(not 0 <= x <= 1 for x in self.lr_decay_at):
            raise ValueError(f"train lr_decay_at = {self.lr_decay_at!r}; valid: fractions in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lr_decay_at"] = list(self.lr_decay_at)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return strict_from_dict(cls, data, "train config")
