"""`hero_lite.rl` is standalone: no other hero_lite layer, only numpy, scipy, h5py and the standard
library, and importing it does nothing else."""

import ast
import subprocess
import sys
from pathlib import Path

import hero_lite.rl

PACKAGE_DIR = Path(hero_lite.rl.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "scipy", "h5py"}


def _imported_modules(source: Path):
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module or ""


def test_rl_imports_only_itself_numpy_scipy_h5py_and_stdlib():
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        for name in _imported_modules(source):
            top = name.split(".")[0]
            if top == "hero_lite":
                assert name.startswith("hero_lite.rl"), f"{source.name} imports {name}"
            else:
                assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", \
                    f"{source.name} imports {name}"


def test_importing_rl_loads_no_other_hero_lite_module():
    code = ("import sys, hero_lite.rl; "
            "print(sorted(m for m in sys.modules if m.startswith('hero_lite.') and not m.startswith('hero_lite.rl')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
