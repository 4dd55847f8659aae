"""The `hero-lite` command line: thin click commands over the library.

Every command parses its options, builds configs, calls one library function and prints a
summary. Library errors (`ValueError`, `TypeError`, `OSError`) become one clear line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from hero_lite import __version__


class UserError(click.ClickException):
    """A bad input reported as one line, exit code 2 (like click's usage errors)."""

    exit_code = 2


def _friendly_errors(fn):
    """Turn library errors into one clear line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ValueError, TypeError, KeyError, OSError) as exc:
            message = str(exc) or exc.__class__.__name__
            if isinstance(exc, KeyError):
                message = f"missing key {message}"
            raise UserError(message) from None

    return wrapper


def write_json(path: str, payload: dict) -> None:
    """Write `payload` as JSON to `path` atomically (a temp file, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


@click.group(name="hero-lite", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hero-lite")
def cli() -> None:
    """Hardware-aware mixed-precision quantization of NeRFs, on a CPU.

    Train an Instant-NGP-style NeRF, quantize it, simulate it on a NeRF accelerator and search
    bit-widths with a DDPG agent (the HERO method, arXiv 2510.09010).
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hero-lite")


if __name__ == "__main__":
    sys.exit(main())
