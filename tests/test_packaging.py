"""What `pip install .` gives users: every package folder in the wheel, and the tests run against it."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import hero_lite

# The checkout the wheel is built from: .ci/run copies the tests out of it and names it here.
SOURCE = Path(os.environ.get("HERO_LITE_SOURCE", Path(__file__).resolve().parents[1]))


def _package_folders(root: Path) -> set[str]:
    """Folders under root/hero_lite holding .py files, as 'hero_lite/sub' paths."""
    folders = set()
    for folder, _, files in os.walk(root / "hero_lite"):
        if "__pycache__" not in folder and any(f.endswith(".py") for f in files):
            folders.add(Path(folder).relative_to(root).as_posix())
    return folders


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    """File names inside the wheel: $HERO_LITE_WHEEL (CI builds it), else a wheel built here."""
    wheel = os.environ.get("HERO_LITE_WHEEL")
    if not wheel:  # built from a copy, so the build leaves nothing in the checkout
        copy = tmp_path_factory.mktemp("source") / "hero-lite"
        shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info",
                                                                   "__pycache__", "venv", ".ci"))
        out = tmp_path_factory.mktemp("wheel")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                        str(copy)], check=True)
        [wheel] = out.glob("hero_lite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_every_package_folder(wheel_names):
    source = _package_folders(SOURCE)
    assert {"hero_lite", "hero_lite/nerf", "hero_lite/quant", "hero_lite/search"} <= source, f"no checkout at {SOURCE}"
    in_wheel = {os.path.dirname(name) for name in wheel_names if name.endswith(".py")}
    missing = sorted(source - in_wheel)
    assert not missing, f"package folders left out of the wheel (no __init__.py?): {missing}"
    for folder in source:
        assert f"{folder}/__init__.py" in wheel_names
    assert any(n.startswith("hero_lite/accel/presets/") and n.endswith(".toml") for n in wheel_names)


def test_the_tests_import_the_installed_package():
    where = Path(hero_lite.__file__).resolve()
    # an in-tree build leaves hero_lite.egg-info in the checkout: only installed metadata counts
    installed = [d for d in metadata.distributions(name="hero-lite")
                 if Path(d.locate_file("")).resolve() != SOURCE.resolve()]
    assert installed, "hero-lite is not installed: pip install '.[test]'"
    editable = any(json.loads(d.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable", False)
                   for d in installed)
    if editable:
        assert SOURCE.resolve() in where.parents
    else:
        assert SOURCE.resolve() not in where.parents, f"the tests import the checkout ({where}), not the install"
        assert "site-packages" in where.parts


@pytest.mark.parametrize("package", ["hero_lite.nerf", "hero_lite.quant", "hero_lite.search", "hero_lite.scenes",
                                     "hero_lite.accel", "hero_lite.rl"])
def test_every_public_name_is_importable(package):
    module = __import__(package, fromlist=["__all__"])
    assert module.__all__ and module.__doc__
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
