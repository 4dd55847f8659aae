"""Timing pass: the event loop against an independent max-plus recurrence, closed forms, bounds,
monotonicity, Little's law on the DRAM queue and determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_lite.accel.engine import run_pipeline

from ._reference import pipeline_reference


@st.composite
def pipelines(draw, max_tiles=10):
    n = draw(st.integers(1, max_tiles))
    service = np.array(draw(st.lists(st.lists(st.integers(0, 60), min_size=n, max_size=n), min_size=6, max_size=6)))
    lines = np.array(draw(st.lists(st.integers(0, 25), min_size=n, max_size=n)))
    return dict(service=service, lines=lines, preload_lines=draw(st.integers(0, 12)),
                fifo_depth=draw(st.integers(1, 3)),
                bw_milli_bytes_per_cycle=draw(st.sampled_from([1000, 7500, 16000, 32000, 51200, 250])),
                line_bytes=draw(st.sampled_from([8, 32, 64])), latency_cycles=draw(st.integers(0, 80)),
                queue_depth=draw(st.integers(1, 10)))


def _run(p, **changes):
    q = dict(p, **changes)
    return run_pipeline(q["service"], q["lines"], q["preload_lines"], q["fifo_depth"], q["bw_milli_bytes_per_cycle"],
                        q["line_bytes"], q["latency_cycles"], q["queue_depth"])


@settings(max_examples=150, deadline=None)
@given(pipelines())
def test_event_loop_matches_the_max_plus_recurrence(p):
    r = _run(p)
    ref = pipeline_reference(p["service"], p["lines"], p["preload_lines"], p["fifo_depth"],
                             p["bw_milli_bytes_per_cycle"], p["line_bytes"], p["latency_cycles"], p["queue_depth"])
    assert r.total_cycles == ref["total"]
    np.testing.assert_array_equal(r.busy_cycles, ref["busy"])
    np.testing.assert_array_equal(r.stall_cycles, ref["stall"])
    assert r.dram_wait_cycles == ref["dram_wait"]
    assert r.dram_lines == len(ref["ret"]) == p["preload_lines"] + p["lines"].sum()
    # Little's law, each side measured independently: integral of outstanding requests over time
    # (event loop) = sum of per-request times in system (recurrence)
    assert r.dram_outstanding_area == sum(b - a for a, b in zip(ref["issue"], ref["ret"]))
    assert r.dram_sojourn_cycles == r.dram_outstanding_area


def test_single_tile_is_the_sum_of_its_services():
    service = np.array([[3], [5], [7], [11], [13], [17]])
    r = run_pipeline(service, np.array([0]), 0, 2, 32000, 32, 50, 8)
    assert r.total_cycles == 3 + 5 + 7 + 11 + 13 + 17
    assert r.n_events == 6


def test_identical_tiles_run_at_the_bottleneck_rate():
    # deterministic tandem line: total = first tile through all stages + (n - 1) * slowest service
    n = 20
    c = np.array([4, 2, 9, 3, 6, 1])
    service = np.repeat(c[:, None], n, axis=1)
    r = run_pipeline(service, np.zeros(n, np.int64), 0, 1, 32000, 32, 0, 4)
    assert r.total_cycles == c.sum() + (n - 1) * c.max()
    assert r.busy_cycles.tolist() == (n * c).tolist()


@pytest.mark.parametrize("bw_milli, line, expect_per_line", [(16000, 32, 2), (32000, 32, 1), (8000, 64, 8)])
def test_dram_bound_stream_is_bytes_over_bandwidth_plus_latency(bw_milli, line, expect_per_line):
    m, latency = 1000, 37
    service = np.zeros((6, 1), np.int64)
    r = run_pipeline(service, np.array([m]), 0, 2, bw_milli, line, latency, queue_depth=10**6)
    assert r.total_cycles == m * expect_per_line + latency  # bytes / bandwidth + latency
    assert r.dram_busy_cycles == m * expect_per_line
    # fractional bandwidth: 25.6 B/cycle moves 32 B lines in 1.25 cycles
    r = run_pipeline(service, np.array([m]), 0, 2, 25600, 32, latency, queue_depth=10**6)
    assert r.total_cycles == int(np.ceil(m * 32 / 25.6)) + latency


def test_queue_depth_one_serialises_latency():
    service = np.zeros((6, 1), np.int64)
    r = run_pipeline(service, np.array([50]), 0, 2, 32000, 32, 20, queue_depth=1)
    assert r.total_cycles == 50 * (1 + 20)
    # with q = 5 outstanding: 10 waves of 5 lines, each wave 1 + 20 cycles, the last line of the
    # last wave issued 4 transfers after its wave started
    r = run_pipeline(service, np.array([50]), 0, 2, 32000, 32, 20, queue_depth=5)
    assert r.total_cycles == 10 * 21 + 4


def test_preload_delays_the_hash_unit_only():
    service = np.array([[10], [10], [1], [1], [1], [1]])
    r = run_pipeline(service, np.array([0]), 30, 2, 32000, 32, 5, 64)
    # preload: 30 lines, 1 cycle each, last back at 35; sampler + IGU (20 cycles) overlap it
    assert r.total_cycles == 35 + 4
    assert r.stall_cycles[2] == 35 and r.dram_wait_cycles == 35


@settings(max_examples=80, deadline=None)
@given(pipelines(max_tiles=8))
def test_bounds_compute_and_memory(p):
    r = _run(p)
    service, lines = p["service"], p["lines"]
    t_line = p["line_bytes"] * 1000 / p["bw_milli_bytes_per_cycle"]
    n_lines = p["preload_lines"] + lines.sum()
    compute_lower = service.sum(axis=1).max()
    memory_lower = int(np.ceil(n_lines * t_line)) + (p["latency_cycles"] if n_lines else 0)
    assert r.total_cycles >= max(compute_lower, memory_lower)
    serial_compute = service.sum()
    serial_memory = n_lines * (int(np.ceil(t_line)) + p["latency_cycles"] + 1)
    assert r.total_cycles <= serial_compute + serial_memory


@settings(max_examples=80, deadline=None)
@given(pipelines(max_tiles=8), st.data())
def test_less_work_or_more_bandwidth_never_slower(p, data):
    base = _run(p).total_cycles
    s = data.draw(st.integers(0, 5))
    k = data.draw(st.integers(0, p["service"].shape[1] - 1))
    service = p["service"].copy()
    service[s, k] = data.draw(st.integers(0, service[s, k]))
    assert _run(p, service=service).total_cycles <= base
    lines = p["lines"].copy()
    lines[k] = data.draw(st.integers(0, lines[k]))
    assert _run(p, lines=lines).total_cycles <= base
    assert _run(p, bw_milli_bytes_per_cycle=p["bw_milli_bytes_per_cycle"] * 2).total_cycles <= base
    assert _run(p, latency_cycles=max(0, p["latency_cycles"] - 7)).total_cycles <= base
    assert _run(p, queue_depth=p["queue_depth"] + 3).total_cycles <= base
    assert _run(p, fifo_depth=p["fifo_depth"] + 1).total_cycles <= base


def test_deterministic_and_accounted():
    rng = np.random.default_rng(3)
    service = rng.integers(0, 400, size=(6, 200))
    lines = rng.integers(0, 300, size=200)
    a = run_pipeline(service, lines, 50, 2, 25600, 32, 50, 64, timeline=True)
    b = run_pipeline(service, lines, 50, 2, 25600, 32, 50, 64, timeline=True)
    assert a.total_cycles == b.total_cycles and a.n_events == b.n_events
    np.testing.assert_array_equal(a.stall_cycles, b.stall_cycles)
    for name in a.intervals:
        np.testing.assert_array_equal(a.intervals[name], b.intervals[name])
    # busy + stall never exceed the frame; events = line returns + tile completions (a hash tile
    # that ends with its last line's return needs no completion event of its own)
    assert np.all(a.busy_cycles + a.stall_cycles <= a.total_cycles)
    assert 5 * 200 + 50 + lines.sum() <= a.n_events <= 6 * 200 + 50 + lines.sum()
    # timeline: one interval per tile and stage, inside the frame; channel intervals merged, disjoint
    for s, name in enumerate(("sampler", "index_gen", "hash_memory", "interp", "mlp", "vru")):
        iv = a.intervals[name]
        assert iv.shape == (200, 2) and np.all(iv[:, 1] - iv[:, 0] == service[s])
        assert iv.min() >= 0 and iv.max() <= a.total_cycles
    d = a.intervals["dram"]
    assert np.all(d[1:, 0] > d[:-1, 1]) and (d[:, 1] - d[:, 0]).sum() >= a.dram_busy_cycles


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="service"):
        run_pipeline(np.zeros((5, 2)), np.zeros(2), 0, 1, 1000, 32, 0, 1)
    with pytest.raises(ValueError, match="non-negative"):
        run_pipeline(-np.ones((6, 2)), np.zeros(2), 0, 1, 1000, 32, 0, 1)
    with pytest.raises(ValueError, match="fifo_depth"):
        run_pipeline(np.ones((6, 2)), np.zeros(2), 0, 0, 1000, 32, 0, 1)
