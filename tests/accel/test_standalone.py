"""hero_lite.accel stands alone: no other hero_lite module, nothing done at import time; and a tiny
subset of the kernels runs as plain Python (NUMBA_DISABLE_JIT=1) so coverage sees kernel code."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import hero_lite.accel

ACCEL = pathlib.Path(hero_lite.accel.__file__).parent


def test_accel_imports_no_other_hero_lite_module_statically():
    for path in ACCEL.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith("hero_lite") or name.startswith("hero_lite.accel"), (path.name, name)
                assert name.split(".")[0] in {"hero_lite", "numpy", "numba", "scipy", "tomllib", "__future__",
                                              "dataclasses", "importlib", "json", "os", "typing", "math"}, name


def test_accel_imports_no_other_hero_lite_module_at_runtime():
    code = textwrap.dedent("""
        import sys
        import hero_lite.accel
        from hero_lite.accel import _kernels
        others = sorted(m for m in sys.modules if m.startswith("hero_lite.") and not m.startswith("hero_lite.accel"))
        assert others == [], others
        # nothing compiled at import time
        assert _kernels.pipeline_kernel.signatures == [] and _kernels.hash_memory_kernel.signatures == []
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_kernels_run_without_jit():
    code = textwrap.dedent("""
        import numba
        import numpy as np
        assert numba.config.DISABLE_JIT
        from hero_lite.accel import load_config, simulate, synthetic_workload, split_bits
        w = synthetic_workload(12, 10, samples_per_ray=3)
        cfg = load_config("edge").with_overrides({"tile_samples": 32, "cache": {"kib": 1.0, "ways": 2}})
        r = simulate(w, split_bits(w, 4, 8), cfg)
        s = simulate(w, split_bits(w, 32, 8), cfg, sample_fraction=0.5, timeline=True)
        v = simulate(w, split_bits(w, 8, 8), cfg.with_overrides({"hash_engine": {"bank_mapping": "vertex"}}))
        assert r.total_cycles > 0 and s.total_cycles > 0 and v.total_cycles > 0
        print(r.total_cycles)
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
