"""Event-driven NeRF accelerator simulator: latency, area, energy and cost efficiency of a policy.

Standalone (NumPy, Numba, stdlib only; no other hero_lite layer): it takes a `Workload` of plain
arrays, bit-widths by point name and an `AccelConfig`, and returns a `SimReport`.

    from hero_lite.accel import load_config, simulate, synthetic_workload, uniform_bits
    workload = synthetic_workload(100, 100)
    report = simulate(workload, uniform_bits(workload, 8), load_config("edge"))
    report.latency_ms, report.area_mm2, report.energy_uj, report.unit_shares()

For many policies of one frame (e.g. a budget search), `CostEstimator(workload, config)` profiles
the frame once (~1.5 s, `frame_profile.py`) and then estimates latency, energy, area and model size
in ~0.1-0.3 ms per policy (`estimate.py`; kernels in `_estimate_kernels.py`).

Organisation (NeuRex / ICARUS style): ray sampler -> hash-encoding engine (index generation,
banked grid SRAM for the levels on chip, set-associative LRU cache in front of DRAM for the
others, interpolation) -> MLP engine (R x C systolic array, bit-flexible PEs) -> volume-rendering
unit; a DRAM channel. A functional pass over the real index stream gives each unit's work per
tile of samples (`units.py`); a discrete-event timing pass in Numba gives the cycles
(`engine.py`); `costs.py` turns the counts into area and energy. Every configuration key, what
is and is not modelled: docs/accelerator.md.
"""

from hero_lite.accel.config import AccelConfig, load_config
from hero_lite.accel.estimate import CostEstimate, CostEstimator
from hero_lite.accel.report import SimReport
from hero_lite.accel.simulator import DEFAULT_SAMPLE_FRACTION, simulate
from hero_lite.accel.workload import (
    GridGeometry,
    MLPLayer,
    Workload,
    default_geometry,
    model_bytes,
    split_bits,
    synthetic_workload,
    uniform_bits,
)

__all__ = [
    "AccelConfig",
    "CostEstimate",
    "CostEstimator",
    "DEFAULT_SAMPLE_FRACTION",
    "GridGeometry",
    "MLPLayer",
    "SimReport",
    "Workload",
    "default_geometry",
    "load_config",
    "model_bytes",
    "simulate",
    "split_bits",
    "synthetic_workload",
    "uniform_bits",
]
