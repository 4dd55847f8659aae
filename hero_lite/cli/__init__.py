"""The `hero-lite` command line: thin click commands over the library.

Every command parses its options, builds configs, calls one library function and prints a
summary. `group.py` holds the group and its error handling, `options.py` the options several
commands share; the commands live in `*_commands.py`, one module per area.
"""

from hero_lite.cli import model_commands, quant_commands, scene_commands, search_commands  # noqa: F401  (registers)
from hero_lite.cli import sweep_commands  # noqa: F401  (registers)
from hero_lite.cli.group import cli, main

__all__ = ["cli", "main"]
