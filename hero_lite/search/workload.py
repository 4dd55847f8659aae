"""Glue: an accelerator Workload (plain arrays) from a model's traced frames.

`hero_lite.accel` knows nothing of the model; this module traces views with the model's own
occupancy-grid marching (`hero_lite.nerf.trace`) and hands the simulator plain arrays: samples
per ray, marching steps, sample positions, the hash-grid geometry the index-generation units
implement, the MLP layer shapes, and the point names whose bits drive each part.
"""

from __future__ import annotations

import os

import numpy as np

from hero_lite.accel.workload import GridGeometry, MLPLayer, Workload
from hero_lite.nerf.config import HashGridConfig, ModelConfig
from hero_lite.nerf.hashgrid import HashGridLayout
from hero_lite.nerf.hooks import QuantHooks
from hero_lite.nerf.model import NGPModel
from hero_lite.nerf.trace import FrameTrace, trace_view
from hero_lite.quant.points import quant_points
from hero_lite.scenes import Scene

FULL_SIZE_GRID = {"log2_table_size": 19, "max_res": 2048}  # Instant-NGP's NeRF configuration (NGP paper)


def grid_geometry(grid: HashGridConfig) -> GridGeometry:
    """The simulator's view of a hash grid (same tcnn layout rule as the model)."""
    layout = HashGridLayout.from_config(grid)
    return GridGeometry(scales=layout.scales, resolutions=layout.resolutions, sizes=layout.sizes,
                        hashed=layout.hashed, n_feat=layout.n_feat)


def mlp_layers(config: ModelConfig) -> tuple[MLPLayer, ...]:
    """The five MLP layers in data-flow order, with the activation points feeding each."""
    h, g = config.hidden_width, config.geo_feat
    return (
        MLPLayer("w.density0", config.encoding_width, h, ("act.encoding",)),
        MLPLayer("w.density1", h, g, ("act.density_hidden",)),
        MLPLayer("w.color0", config.color_in_width, h, ("act.density_out", "act.sh")),
        MLPLayer("w.color1", h, h, ("act.color_hidden0",)),
        MLPLayer("w.color2", h, 3, ("act.color_hidden1",)),
    )


def workload_from_trace(trace: FrameTrace, config: ModelConfig, point_set: str = "hero",
                        full_size: bool = False) -> Workload:
    """Workload of one traced frame for the points of `point_set`.

    full_size : simulate the same samples on Instant-NGP's full-size grid (T = 2^19, N_max = 2048)
        for paper-scale numbers: the positions are the model's, the table geometry is the big one.
    """
    grid = config.grid
    if full_size:
        grid = HashGridConfig(**{**grid.__dict__, **FULL_SIZE_GRID})
        config = ModelConfig(**{**config.__dict__, "grid": grid})
    points = quant_points(config, point_set)
    level_points = tuple("hash.all" if point_set == "caq" else f"hash.l{k:02d}" for k in range(grid.n_levels))
    stored = {p.name: p.n_elements for p in points if p.kind != "activation"}
    activations = tuple(p.name for p in points if p.kind == "activation")
    return Workload(
        width=trace.width, height=trace.height,
        samples_per_ray=trace.samples_per_ray, march_steps_per_ray=trace.march_steps_per_ray,
        positions=trace.positions, grid=grid_geometry(grid), level_points=level_points,
        mlp_layers=mlp_layers(config), stored_points=stored, activation_points=activations,
    )


def trace_views(model: NGPModel, views: Scene, indices: tuple[int, ...] = (0,), hooks: QuantHooks | None = None,
                downscale: int = 1) -> list[FrameTrace]:
    """Trace the given views (cold caches per frame), optionally at 1/downscale resolution."""
    traces = []
    for k in indices:
        if not 0 <= k < views.n_views:
            raise ValueError(f"view {k} out of range: the {views.split} split has {views.n_views} views")
        height, width = views.height // downscale, views.width // downscale
        traces.append(trace_view(model, views.poses[k], views.focal / downscale, height, width, hooks))
    return traces


def trace_workload(checkpoint: str, scene_dir: str, split: str = "test", views: int = 1, point_set: str = "hero",
                   full_size: bool = False, scene_downscale: int = 1) -> list[Workload]:
    """Workloads of the first `views` views of a split (read at 1/scene_downscale of the image
    size, `hero_lite.scenes.load_scene`), traced with an fp32 checkpoint."""
    from hero_lite.nerf.checkpoint import load_checkpoint
    from hero_lite.scenes import load_scene

    if not os.path.isdir(scene_dir):
        raise FileNotFoundError(f"scene folder not found: {scene_dir}")
    model, _ = load_checkpoint(checkpoint)
    scene = load_scene(scene_dir, split, scene_downscale)
    traces = trace_views(model, scene, tuple(range(min(views, scene.n_views))))
    return [workload_from_trace(t, model.config, point_set, full_size) for t in traces]


def mean_samples_per_ray(traces: list[FrameTrace]) -> float:
    return float(np.mean([t.samples_per_ray.mean() for t in traces]))
