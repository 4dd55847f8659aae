"""Regression: reports of two fixed frames against golden JSON files in tests/accel/data/.

Integers (cycles, bytes, levels) must match exactly, floats to 1e-9 relative. After an intended
change of the model or a preset (which means re-running every published comparison), regenerate
with `HERO_LITE_REGEN_GOLDEN=1 python -m pytest tests/accel/test_golden.py`.
"""

import json
import os
import pathlib

import pytest

from hero_lite.accel import SimReport, load_config, simulate, split_bits, synthetic_workload

DATA = pathlib.Path(__file__).parent / "data"
CASES = {"edge_h6_m4": ("edge", 6, 4, None), "server_h8_m8_sampled": ("server", 8, 8, 0.125)}


def _compare(got, want, path=""):
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            _compare(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want)):
            _compare(a, b, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), path
    else:
        assert got == want, path


@pytest.mark.parametrize("case", list(CASES))
def test_report_matches_golden(case):
    preset, hash_bits, mlp_bits, fraction = CASES[case]
    w = synthetic_workload(48, 40, seed=3)
    report = simulate(w, split_bits(w, hash_bits, mlp_bits), load_config(preset), sample_fraction=fraction)
    path = DATA / f"golden_{case}.json"
    if os.environ.get("HERO_LITE_REGEN_GOLDEN"):
        path.write_text(report.to_json() + "\n")
    want = json.loads(path.read_text())
    _compare(report.to_dict(), want)
    assert SimReport.from_dict(want).total_cycles == report.total_cycles
