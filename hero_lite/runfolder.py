"""Run folders: one writer at a time, no surprise overwrites, digests of the inputs a run stands on.

A command that writes a folder (`train`, `search`, `run`, `compare`, `reproduce`) claims it first:
- the folder must be new, empty, or a folder of the same command (the hidden file `.hero-lite`
  names the command that made it); a folder of the same command is continued only with
  `--resume` or replaced only with `--force`, where the command offers them;
- the claim holds an exclusive lock (`flock`) on `.hero-lite` until the command ends, so a second
  command on the same folder gets a clear error instead of mixing its files in; the kernel drops
  the lock when a process dies, so a killed run never leaves the folder locked;
- leftovers of writes that a kill interrupted (`.NAME.tmpPID`) are removed once the lock is held.

Standard library only; any layer may use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from typing import Iterator

MARKER = ".hero-lite"
REPLACEABLE = (".json", ".png")  # results a command may write again; anything else needs --force
_TMP = re.compile(r"^.+\.tmp\d+$")


def folder_command(folder: str) -> str | None:
    """The command that made `folder` (from its `.hero-lite` file), or None."""
    try:
        with open(os.path.join(folder, MARKER)) as f:
            return json.load(f).get("command")
    except (OSError, ValueError, AttributeError):
        return None


def check_claim(folder: str, command: str, resume: bool = False, force: bool = False) -> bool:
    """Raise ValueError unless `command` may write `folder`; True when it holds an earlier run.

    New or empty folders are free; a folder of the same command needs `resume` or `force`; any
    other folder (another command's, or files hero-lite did not write) is refused.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--out {folder} is a file, not a folder")
    entries = [e for e in os.listdir(folder) if e != MARKER] if os.path.isdir(folder) else []
    owner = folder_command(folder) if os.path.isdir(folder) else None
    if not entries and owner in (None, command):
        return False
    if owner != command:
        made_by = f"a `{owner}` folder" if owner else "files hero-lite did not write"
        raise ValueError(f"--out {folder} holds {made_by}; give `{command}` a new or empty folder")
    if not (resume or force):
        options = "--resume to continue it, --force to replace it" if command in ("search", "run") else \
            "--force to replace it"
        raise ValueError(f"--out {folder} already holds a `{command}` run; use {options}, or another --out")
    return True


@contextlib.contextmanager
def claimed(folder: str, command: str, resume: bool = False, force: bool = False) -> Iterator[bool]:
    """Claim `folder` for `command` (see `check_claim`) and hold its lock while the block runs.

    Yields True when the folder holds an earlier run of the command (emptied first with `force`).
    Raises ValueError when the folder is in use by another hero-lite process, is refused, or
    cannot be written. The lock is taken before the folder is judged, so two commands started
    together cannot both pass the check.
    """
    marker = os.path.join(folder, MARKER)
    created = not os.path.isdir(folder)
    fd = None
    try:
        if os.path.exists(marker):
            fd = _open_locked(marker, folder)
        earlier = check_claim(folder, command, resume, force)
        if fd is None:
            try:
                os.makedirs(folder, exist_ok=True)
                fd = _open_locked(marker, folder)
            except OSError as exc:
                raise ValueError(f"--out {folder} cannot be written: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({"command": command, "pid": os.getpid()}) + "\n").encode())
        if earlier and force:
            for name in os.listdir(folder):
                if name != MARKER:
                    path = os.path.join(folder, name)
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
        for root, _, files in os.walk(folder):
            for name in files:
                if _TMP.match(name):  # a write that a kill interrupted; nobody else writes here now
                    os.remove(os.path.join(root, name))
        yield earlier
    except BaseException:
        if created and fd is not None and os.listdir(folder) == [MARKER]:  # nothing written: leave no folder
            os.remove(marker)
            os.rmdir(folder)
        raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _open_locked(marker: str, folder: str) -> int:
    """A descriptor of `marker` (created if missing) holding its exclusive lock."""
    fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = folder_command(folder) or "hero-lite"
        pid = _marker(folder).get("pid", "?")
        raise ValueError(f"--out {folder} is in use by another `{holder}` (pid {pid}); wait for it to end or "
                         "use another --out") from None
    return fd


def _marker(folder: str) -> dict:
    try:
        with open(os.path.join(folder, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def check_output_file(path: str | None, inputs: dict[str, str | None], option: str, force: bool = False) -> None:
    """Raise ValueError unless `path` may be written: never an input (by name or by inode), never a
    symlink or a folder; an existing file only with `force`, unless it is a result file (JSON, PNG).

    inputs : option or argument name -> path of every file or folder the command reads.
    """
    if path is None:
        return
    if os.path.islink(path):
        raise ValueError(f"{option} {path} is a symbolic link; give the path of a regular file")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder; give a file path")
    target = os.path.abspath(path)
    for name, source in inputs.items():
        if source is None or not os.path.exists(source):
            continue
        if os.path.abspath(source) == target or (os.path.exists(path) and os.path.samefile(source, path)):
            raise ValueError(f"{option} {path} is the {name} this command reads; write next to it, not over it")
        if os.path.isdir(source) and target.startswith(os.path.abspath(source) + os.sep):
            raise ValueError(f"{option} {path} is inside the {name} {source}; write elsewhere")
    if os.path.exists(path) and not force and not path.endswith(REPLACEABLE):
        raise ValueError(f"{option} {path} exists; use --force to replace it, or another path")


def folder_digest(folder: str) -> str:
    """SHA-256 over every file under `folder` (relative path and bytes, sorted by path)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def file_digest(path: str) -> str:
    """SHA-256 of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path), then rename tmp_path to path; on failure remove tmp_path.

    An existing file at `path` is replaced only once the new one is complete; a kill leaves at
    most `.NAME.tmpPID` beside it, which the next `claimed` of the folder removes.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` (temp file, then rename)."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    write_atomically(path, write)


def write_json_atomically(path: str | os.PathLike, payload) -> None:
    """Write `payload` as indented JSON to `path` (temp file, then rename)."""
    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")
