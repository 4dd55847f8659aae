"""What the accelerator must do for one frame, as plain arrays (no model, no quantizer).

A `Workload` is built by the glue layer (`hero_lite.search`) from a traced frame, or procedurally by
`synthetic_workload` for teaching runs and tests. It holds the sample positions (the simulator's
index-generation units compute the hash-grid corner indices from them, tcnn conventions), the
grid geometry, the MLP layer shapes and the names of the quantization points whose bit-widths
drive each part of the hardware.

Bit-widths are given per point name: 2..16, or 32 for unquantized (fp32). A hash level point may
cover several levels (CAQ's `hash.all`).

`model_bytes` is the exact size of the packed export and must agree with
`hero_lite.quant.points.model_bytes`: a stored tensor of n elements at b < 32 bits takes
ceil(n * b / 8) bytes plus 8 bytes of quantizer parameters (float32 scale, int32 zero point); at
b = 32 it takes 4 n bytes; every quantized activation point adds its 8 parameter bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOAT_BITS = 32
MIN_BITS = 2
MAX_QUANT_BITS = 16
PARAM_BYTES_PER_QUANTIZER = 8  # float32 scale + int32 zero point


@dataclass(frozen=True)
class GridGeometry:
    """The multiresolution hash grid the index-generation units implement (tcnn conventions).

    Attributes
    ----------
    scales : (n_levels,) float32, tcnn scale_l; the vertex position is pos = x * scale_l + 0.5.
    resolutions : (n_levels,) int64, vertices per axis (dense index x + y*res + z*res^2).
    sizes : (n_levels,) int64, entries of each level (T, a power of two, for hashed levels).
    hashed : (n_levels,) bool, True where the level uses the spatial hash
        h = (x ^ y*2654435761 ^ z*805459861) mod 2^32, then mod size.
    n_feat : int, F features per entry.
    """

    scales: np.ndarray
    resolutions: np.ndarray
    sizes: np.ndarray
    hashed: np.ndarray
    n_feat: int

    @property
    def n_levels(self) -> int:
        return int(self.scales.shape[0])

    @property
    def n_entries(self) -> int:
        return int(self.sizes.sum())

    def validate(self) -> None:
        """Raise ValueError if the arrays disagree in length, dtype or range."""
        n = self.scales.shape[0]
        for name in ("resolutions", "sizes", "hashed"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"grid {name} has shape {arr.shape}; expected ({n},) like scales")
        if n < 1:
            raise ValueError("grid has no levels; valid: n_levels >= 1")
        if not isinstance(self.n_feat, int) or self.n_feat < 1:
            raise ValueError(f"grid n_feat = {self.n_feat!r}; valid: integer >= 1")
        if np.any(self.sizes < 1) or np.any(self.resolutions < 1):
            raise ValueError("grid sizes and resolutions must be >= 1")
        if not np.all(np.isfinite(self.scales)) or np.any(self.scales <= 0):
            raise ValueError("grid scales must be finite and > 0")


@dataclass(frozen=True)
class MLPLayer:
    """One bias-free fully connected layer of the MLP engine.

    Attributes
    ----------
    weight_point : point name of the weight tensor, e.g. 'w.color1'.
    fan_in, fan_out : K inputs and N outputs per sample (K * N MACs per sample).
    input_points : activation point(s) feeding the layer; the layer's activation bit-width b_a is
        the largest of their bit-widths.
    """

    weight_point: str
    fan_in: int
    fan_out: int
    input_points: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    """One frame of work for the accelerator.

    Attributes
    ----------
    width, height : frame size in pixels; n_rays = width * height, rays in raster order (row-major).
    samples_per_ray : (n_rays,) int64, samples composited per ray (after occupancy skipping and
        early termination).
    march_steps_per_ray : (n_rays,) int64, constant-step positions the ray sampler visited.
    positions : (n_samples, 3) float32 in [0, 1]^3, the composited samples ray after ray (raster
        order), front to back.
    grid : GridGeometry.
    level_points : (n_levels,) point names controlling each level's bits ('hash.l00'.. or all
        'hash.all').
    mlp_layers : MLP layers in data-flow order.
    stored_points : element count of every stored tensor point (hash points and weights).
    activation_points : every activation point of the point set.
    """

    width: int
    height: int
    samples_per_ray: np.ndarray
    march_steps_per_ray: np.ndarray
    positions: np.ndarray
    grid: GridGeometry
    level_points: tuple[str, ...]
    mlp_layers: tuple[MLPLayer, ...]
    stored_points: dict[str, int]
    activation_points: tuple[str, ...]

    @property
    def n_rays(self) -> int:
        return int(self.width) * int(self.height)

    @property
    def n_samples(self) -> int:
        return int(self.positions.shape[0])

    @property
    def macs_per_sample(self) -> int:
        return sum(layer.fan_in * layer.fan_out for layer in self.mlp_layers)

    @property
    def point_names(self) -> tuple[str, ...]:
        """Every point name that `bits` must cover, without repeats, in a fixed order."""
        names: list[str] = []
        for name in (*self.level_points, *self.stored_points, *self.activation_points):
            if name not in names:
                names.append(name)
        for layer in self.mlp_layers:
            for name in (layer.weight_point, *layer.input_points):
                if name not in names:
                    names.append(name)
        return tuple(names)

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency (shapes, counts, names)."""
        self.grid.validate()
        if self.width < 1 or self.height < 1:
            raise ValueError(f"workload size {self.width}x{self.height}; valid: width, height >= 1")
        n_rays = self.n_rays
        for name in ("samples_per_ray", "march_steps_per_ray"):
            arr = getattr(self, name)
            if arr.shape != (n_rays,):
                raise ValueError(f"workload {name} has shape {arr.shape}; expected ({n_rays},) = width * height")
            if arr.size and arr.min() < 0:
                raise ValueError(f"workload {name} has negative entries")
        if self.positions.ndim != 2 or self.positions.shape[1] != 3:
            raise ValueError(f"workload positions must have shape (n_samples, 3), got {self.positions.shape}")
        total = int(self.samples_per_ray.sum())
        if total != self.positions.shape[0]:
            raise ValueError(f"workload samples_per_ray sums to {total} but positions has "
                             f"{self.positions.shape[0]} rows")
        if len(self.level_points) != self.grid.n_levels:
            raise ValueError(f"workload level_points has {len(self.level_points)} names for "
                             f"{self.grid.n_levels} levels")
        if not self.mlp_layers:
            raise ValueError("workload has no MLP layers")
        for layer in self.mlp_layers:
            if layer.fan_in < 1 or layer.fan_out < 1 or not layer.input_points:
                raise ValueError(f"MLP layer {layer.weight_point}: fan_in, fan_out >= 1 and >= 1 input point required")


def check_bits(workload: Workload, bits: dict[str, int]) -> None:
    """Raise ValueError if `bits` misses a point of the workload or holds an invalid bit-width.

    Valid bit-widths: integers 2..16, or 32 (unquantized, fp32).
    """
    missing = [name for name in workload.point_names if name not in bits]
    if missing:
        raise ValueError(f"bits missing for point(s) {', '.join(missing)}")
    for name in workload.point_names:
        b = bits[name]
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not (
                MIN_BITS <= b <= MAX_QUANT_BITS or b == FLOAT_BITS):
            raise ValueError(f"bits[{name!r}] = {b!r}; valid: integer {MIN_BITS}..{MAX_QUANT_BITS} or {FLOAT_BITS}")


def packed_tensor_bytes(n_elements: int, bits: int) -> int:
    """Bytes of one stored tensor: ceil(n * bits / 8) + 8 (scale, zero point) if bits < 32, else 4 n."""
    if bits == FLOAT_BITS:
        return 4 * n_elements
    return -(-n_elements * bits // 8) + PARAM_BYTES_PER_QUANTIZER


def model_bytes(workload: Workload, bits: dict[str, int]) -> int:
    """Exact size in bytes of the packed export of a policy (same rule as hero_lite.quant.points).

    Example: one stored tensor of 1000 elements at 4 bits (500 + 8 = 508 bytes), one of 10 at 32
    bits (40 bytes), two activation points at 8 and 32 bits (8 + 0 bytes): 556 bytes.
    """
    check_bits(workload, bits)
    total = sum(packed_tensor_bytes(int(n), int(bits[name])) for name, n in workload.stored_points.items())
    total += sum(PARAM_BYTES_PER_QUANTIZER for name in workload.activation_points if bits[name] != FLOAT_BITS)
    return total


def default_geometry(n_levels: int = 16, n_feat: int = 2, log2_table_size: int = 15, base_res: int = 16,
                     max_res: int = 512) -> GridGeometry:
    """Grid geometry by tcnn's rule (same as hero_lite.nerf.hashgrid.HashGridLayout.from_config).

    scale_l = N_min * b**l - 1 in float32 with log2 b = log2(N_max / N_min) / (L - 1);
    res_l = ceil(scale_l) + 1; size_l = min(next_multiple_of_8(res_l**3), T); hashed if res_l**3 > size_l.
    For the defaults: sizes 4096, 9264, 17576, 32768 (x 12), 456,920 entries.
    """
    if n_levels < 1 or n_feat < 1 or log2_table_size < 1 or base_res < 2 or max_res < base_res:
        raise ValueError("default_geometry: need n_levels, n_feat, log2_table_size >= 1 and 2 <= base_res <= max_res")
    log2_scale = 0.0 if n_levels == 1 else math.log2(max_res / base_res) / (n_levels - 1)
    table_size = 1 << log2_table_size
    scales, resolutions, sizes, hashed = [], [], [], []
    for level in range(n_levels):
        scale = np.float32(np.exp2(np.float32(level * log2_scale)) * np.float32(base_res) - np.float32(1.0))
        res = int(math.ceil(float(scale))) + 1
        dense = res**3
        size = min(-(-dense // 8) * 8, table_size)
        scales.append(scale)
        resolutions.append(res)
        sizes.append(size)
        hashed.append(dense > size)
    return GridGeometry(scales=np.asarray(scales, np.float32), resolutions=np.asarray(resolutions, np.int64),
                        sizes=np.asarray(sizes, np.int64), hashed=np.asarray(hashed, np.bool_), n_feat=n_feat)


HERO_ACTIVATIONS = ("act.encoding", "act.density_hidden", "act.density_out", "act.sh", "act.color_hidden0",
                    "act.color_hidden1", "act.color_out")


def ngp_mlp_layers(encoding_width: int = 32, hidden: int = 64, geo_feat: int = 16, sh_width: int = 16
                   ) -> tuple[MLPLayer, ...]:
    """The NGP-lite MLPs (density 32->64->16, colour (16+16)->64->64->3), hero point names."""
    return (
        MLPLayer("w.density0", encoding_width, hidden, ("act.encoding",)),
        MLPLayer("w.density1", hidden, geo_feat, ("act.density_hidden",)),
        MLPLayer("w.color0", geo_feat + sh_width, hidden, ("act.density_out", "act.sh")),
        MLPLayer("w.color1", hidden, hidden, ("act.color_hidden0",)),
        MLPLayer("w.color2", hidden, 3, ("act.color_hidden1",)),
    )


def synthetic_workload(width: int = 100, height: int = 100, samples_per_ray: int = 11, seed: int = 0,
                       radius: float = 0.3, focal_px: float | None = None, camera_distance: float = 0.95,
                       grid: GridGeometry | None = None) -> Workload:
    """A procedural frame: a pinhole camera looking at a sphere in the unit cube.

    Every ray marches from the cube entry with NGP's constant step (sqrt(3)/256 of the cube);
    a ray that reaches the sphere composites `samples_per_ray` samples from its surface inwards and
    terminates (early termination); a ray that misses marches to the cube exit and composites
    nothing. The first step is jittered per ray (seeded), so positions are not grid-aligned.

    Parameters
    ----------
    width, height : frame size in pixels.
    samples_per_ray : samples composited by a ray that hits the sphere.
    seed : seed of the per-ray jitter.
    radius : sphere radius in cube units (centre (0.5, 0.5, 0.5)).
    focal_px : focal length in pixels; default 1.2 * width.
    camera_distance : camera distance from the cube centre, in cube units.
    grid : geometry; default `default_geometry()` (NGP-lite: L=16, F=2, T=2^15, 16..512).

    Returns
    -------
    Workload with hero point names (hash.l00.., w.density0.., act.*) and the NGP-lite MLP.
    About half the rays hit at the defaults (100x100: ~55k samples, 5.5 per ray).
    """
    if width < 1 or height < 1 or samples_per_ray < 0:
        raise ValueError("synthetic_workload: width, height >= 1 and samples_per_ray >= 0 required")
    grid = default_geometry() if grid is None else grid
    rng = np.random.default_rng(seed)
    focal = 1.2 * width if focal_px is None else float(focal_px)
    step = math.sqrt(3.0) / 256.0
    rows, cols = np.mgrid[0:height, 0:width]
    # camera on the -z side of the centre, looking along +z, slightly tilted so the view is not axis-aligned
    angle = 0.35
    rot = np.array([[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]])
    dirs = np.stack([(cols.ravel() + 0.5 - width / 2) / focal, (rows.ravel() + 0.5 - height / 2) / focal,
                     np.ones(width * height)], axis=1) @ rot.T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre = np.array([0.5, 0.5, 0.5])
    origin = centre - camera_distance * (rot @ np.array([0.0, 0.0, 1.0]))
    # cube entry / exit (slab method)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        t0 = (0.0 - origin) * inv
        t1 = (1.0 - origin) * inv
    t_near = np.max(np.minimum(t0, t1), axis=1)
    t_far = np.min(np.maximum(t0, t1), axis=1)
    in_box = t_far > np.maximum(t_near, 0.0)
    t_near = np.maximum(t_near, 0.0)
    # sphere entry
    oc = origin - centre
    b = dirs @ oc
    disc = b * b - (oc @ oc - radius * radius)
    hits = in_box & (disc > 0)
    t_sphere = np.where(hits, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
    jitter = rng.uniform(0.0, step, size=width * height)
    first = np.where(hits, np.ceil((t_sphere - t_near - jitter) / step), 0.0)
    n_per_ray = np.where(hits, samples_per_ray, 0).astype(np.int64)
    march = np.where(in_box, np.ceil((t_far - t_near) / step), 0).astype(np.int64)
    march = np.where(hits, np.minimum(first.astype(np.int64) + samples_per_ray, march), march)
    ray_ids = np.repeat(np.arange(width * height), n_per_ray)
    k = np.arange(ray_ids.size) - np.repeat(np.cumsum(n_per_ray) - n_per_ray, n_per_ray)
    t = t_near[ray_ids] + jitter[ray_ids] + (first[ray_ids] + k) * step
    positions = origin[None, :] + t[:, None] * dirs[ray_ids]
    positions = np.clip(positions, 0.0, 1.0).astype(np.float32)
    levels = tuple(f"hash.l{k:02d}" for k in range(grid.n_levels))
    mlp = ngp_mlp_layers()
    stored = {name: int(size) * grid.n_feat for name, size in zip(levels, grid.sizes)}
    stored.update({layer.weight_point: layer.fan_in * layer.fan_out for layer in mlp})
    return Workload(width=width, height=height, samples_per_ray=n_per_ray, march_steps_per_ray=march,
                    positions=np.ascontiguousarray(positions), grid=grid, level_points=levels, mlp_layers=mlp,
                    stored_points=stored, activation_points=HERO_ACTIVATIONS)


def uniform_bits(workload: Workload, bits: int) -> dict[str, int]:
    """The same bit-width for every point of the workload."""
    return {name: bits for name in workload.point_names}


def split_bits(workload: Workload, hash_bits: int, mlp_bits: int) -> dict[str, int]:
    """`hash_bits` for every hash level point, `mlp_bits` for every weight and activation point."""
    out = {name: mlp_bits for name in workload.point_names}
    out.update({name: hash_bits for name in workload.level_points})
    return out
