"""Glue between the model and the simulator: frame traces, workloads, policy costs, `simulate`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hero_lite.accel import load_config, model_bytes, simulate
from hero_lite.accel.units import corner_indices as accel_corner_indices
from hero_lite.cli import cli
from hero_lite.nerf.checkpoint import load_checkpoint
from hero_lite.nerf.evaluate import render_view
from hero_lite.nerf.hashgrid import corner_indices as model_corner_indices
from hero_lite.quant.policy import uniform_policy
from hero_lite.search.cost import policy_cost
from hero_lite.search.workload import trace_views, workload_from_trace


@pytest.fixture(scope="module")
def traced(tiny_checkpoint, tiny_scenes):
    model, _ = load_checkpoint(tiny_checkpoint)
    test = tiny_scenes[2]
    return model, test, trace_views(model, test, (0, 1))


def test_trace_matches_the_render(traced):
    model, test, traces = traced
    trace = traces[0]
    image, spr = render_view(model, test.poses[0], test.focal, test.height, test.width)
    np.testing.assert_array_equal(trace.samples_per_ray, spr)  # the composited samples, ray by ray
    np.testing.assert_array_equal(trace.image, image)
    assert trace.n_samples == spr.sum() > 0
    assert trace.positions.min() >= 0.0 and trace.positions.max() <= 1.0
    # marching visits at least as many positions as it composites
    assert np.all(trace.march_steps_per_ray >= trace.samples_per_ray)
    # rays that composite nothing still march through the box (or miss it: 0 steps)
    assert trace.march_steps_per_ray.sum() > trace.samples_per_ray.sum()


def test_simulator_indices_are_the_models(traced):
    model, _, traces = traced
    workload = workload_from_trace(traces[0], model.config)
    positions = traces[0].positions[:500]
    expected = model_corner_indices(positions, model.layout)  # (n, L, 8)
    for level in (0, 3, 4, 15):
        np.testing.assert_array_equal(accel_corner_indices(positions, workload.grid, level), expected[:, level, :])


@pytest.mark.parametrize("point_set", ["hero", "caq"])
def test_model_bytes_is_one_number(traced, point_set):
    model, _, traces = traced
    workload = workload_from_trace(traces[0], model.config, point_set)
    for hash_bits, mlp_bits in ((8, 8), (3, 5), (16, 2), (32, 32)):
        policy = uniform_policy(model.config, hash_bits, mlp_bits, point_set)
        assert model_bytes(workload, policy.bits) == policy.model_bytes(model.config)
        report = simulate(workload, policy.bits, load_config("edge"), sample_fraction=0.125)
        assert report.model_bytes == policy.model_bytes(model.config)


def test_policy_cost_averages_views_and_full_size_is_bigger(traced):
    model, _, traces = traced
    workloads = [workload_from_trace(t, model.config) for t in traces]
    policy = uniform_policy(model.config, 8, 8)
    cost = policy_cost(workloads, policy, load_config("edge"))
    assert len(cost.reports) == 2
    assert cost.latency_ms == pytest.approx(np.mean([r.latency_ms for r in cost.reports]))
    assert cost.cost_efficiency == pytest.approx(1.0 / (cost.latency_ms * cost.area_mm2))
    big = workload_from_trace(traces[0], model.config, full_size=True)
    assert int(big.grid.sizes.max()) == 1 << 19 and int(big.grid.resolutions.max()) > 1000
    big_report = simulate(big, policy.bits, load_config("edge"))
    assert big_report.model_bytes > 10 * cost.model_bytes  # 12.2 M parameters against 0.9 M


def test_simulate_command(tiny_checkpoint, tiny_dir, tmp_path):
    out = tmp_path / "sim.json"
    timeline = tmp_path / "t.png"
    result = CliRunner().invoke(cli, ["simulate", str(tiny_checkpoint), str(tiny_dir), "--hash-bits", "6", "--mlp-bits",
                                      "4", "--accel", "edge", "--views", "2", "--json", str(out), "--timeline",
                                      str(timeline)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in ("latency_ms", "area_mm2", "energy_uj", "cost_efficiency", "model_bytes", "fps", "views"):
        assert key in report
    assert len(report["views"]) == 2 and timeline.stat().st_size > 0
    assert report["views"][0]["units"]["mlp"]["busy_cycles"] > 0
    result = CliRunner().invoke(cli, ["simulate", "--synthetic", "--uniform", "8", "--accel", "server"])
    assert result.exit_code == 0 and "server" in result.output


@pytest.mark.parametrize("args, needle", [
    (["simulate", "--uniform", "8"], "CHECKPOINT and SCENE_DIR"),
    (["simulate", "--synthetic", "--uniform", "8", "--accel", "nope.toml"], "not a preset"),
    (["simulate", "--synthetic"], "exactly one of"),
])
def test_simulate_bad_input(args, needle):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and needle in result.output
