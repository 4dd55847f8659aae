"""`hero_lite.scenes` is the bottom layer: it imports no other hero_lite module."""

import ast
from pathlib import Path

import hero_lite.scenes

PACKAGE_DIR = Path(hero_lite.scenes.__file__).parent


def test_scenes_imports_only_itself_from_hero_lite():
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.startswith("hero_lite"):
                    assert name.startswith("hero_lite.scenes"), f"{source.name} imports {name}"
