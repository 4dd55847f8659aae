"""The `hero-lite` click group, its entry point and its error handling.

Library errors (`ValueError`, `TypeError`, `KeyError`, `OSError`) become one clear line on stderr
and exit code 2; any other failure is one line and exit code 1 (`--debug` or HERO_LITE_DEBUG=1
shows the traceback); usage errors are one line that points to `--help`.
"""

from __future__ import annotations

import functools
import os
import sys

import click

from hero_lite import __version__


class UserError(click.ClickException):
    """A bad input reported as one line, exit code 2 (like click's usage errors)."""

    exit_code = 2


class InternalError(click.ClickException):
    """A failure of hero-lite itself, reported as one line (exit code 1); --debug shows the traceback."""

    exit_code = 1


def _debugging() -> bool:
    """--debug on the command line or HERO_LITE_DEBUG=1 in the environment."""
    ctx = click.get_current_context(silent=True)
    flag = ctx is not None and ctx.find_root().params.get("debug", False)
    return flag or os.environ.get("HERO_LITE_DEBUG", "") not in ("", "0")


def friendly_errors(fn):
    """Turn library errors into one clear line and exit code 2, and any other failure into one line
    and exit code 1 (the traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ValueError, TypeError, KeyError, OSError) as exc:
            if _debugging():
                raise
            message = str(exc) or exc.__class__.__name__
            if isinstance(exc, KeyError):
                message = f"missing key {message}"
            raise UserError(message) from None
        except Exception as exc:
            if _debugging():
                raise
            raise InternalError(f"internal error ({exc.__class__.__name__}: {exc}); rerun with --debug "
                                "(or HERO_LITE_DEBUG=1) for the traceback") from None

    return wrapper


class _OneLineErrors(click.Group):
    """click's group, with a usage error printed as one line that points to --help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(name="hero-lite", cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hero-lite")
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure (also HERO_LITE_DEBUG=1).")
def cli(debug) -> None:
    """Hardware-aware mixed-precision quantization of NeRFs, on a CPU.

    Train an Instant-NGP-style NeRF, quantize it, simulate it on a NeRF accelerator and search
    bit-widths with a DDPG agent (the HERO method, arXiv 2510.09010).
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hero-lite")
