"""Checks of output paths given on the command line, made before any work starts.

A command that runs for minutes (prove, demo, bench) must not find out at the end that its
--report, --junit or --out cannot be written. These functions only look: they create nothing,
and return None when the path can be written (creating missing parent folders), else one line
saying why not. A door still catches OSError where it writes: a check can race with the disk.
"""
from __future__ import annotations

import os
from pathlib import Path


def _first_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p):
        if p.parent == p:
            break
        p = p.parent
    return p


def _creatable(path: Path) -> str | None:
    """Why `path` (which does not exist) cannot be created with its missing parents, or None."""
    base = _first_existing(path.parent)
    if not base.is_dir():
        return "%s is not a directory" % base
    if not os.access(base, os.W_OK | os.X_OK):
        return "%s is not writable" % base
    return None


def writable_file(path: str | os.PathLike[str]) -> str | None:
    """None if a file can be written at `path` (missing parent folders are made), else why not."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path"
    p = Path(text)
    if os.path.lexists(p):
        if p.is_dir():
            return "%s is a directory" % p
        if not p.exists():
            return "%s is a dangling symbolic link" % p
        if not os.access(p, os.W_OK):
            return "%s is not writable" % p
        return None
    return _creatable(p)


def writable_dir(path: str | os.PathLike[str]) -> str | None:
    """None if `path` is a writable directory or can be made as one, else why not."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path"
    p = Path(text)
    if os.path.lexists(p):
        if not p.is_dir():
            return "%s exists and is not a directory" % p
        if not os.access(p, os.W_OK | os.X_OK):
            return "%s is not writable" % p
        return None
    return _creatable(p)


def shown(path: str | os.PathLike[str] | None) -> str:
    """A path for a message; the empty path as ''."""
    return (os.fspath(path) if path is not None else "") or "''"


def why(exc: OSError) -> str:
    """An OSError as a short reason: 'Not a directory: x/y'."""
    name = exc.filename if exc.filename is not None else ""
    return "%s%s" % (exc.strerror or type(exc).__name__, ": %s" % name if name else "")
