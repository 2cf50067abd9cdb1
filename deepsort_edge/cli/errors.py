"""How the command line reports user errors: one line on stderr, exit status 2.

A subcommand raises :class:`UserError` (or lets an ``OSError`` through) and
``deepsort-edge``'s ``main`` prints ``deepsort-edge <command>: error: <one
line>``; anything else is a bug, reported in one line with exit status 1 (set
``DEEPSORT_EDGE_DEBUG=1`` for the traceback).

Example:
    >>> one_line("bad value\\n  in line 3")
    'bad value; in line 3'
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NoReturn

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class UserError(Exception):
    """A problem with the user's input or environment (paths, formats, values)."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse``'s parser whose usage errors are one line, exit status 2.

    ``argparse`` prints the whole usage (dozens of lines for ``track``) before
    the error; here the error line stands alone and ``--help`` shows usage.
    Subparsers made by ``add_subparsers`` are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` on stderr and exit with status 2."""
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: object) -> str:
    """``message`` with its lines joined by ``"; "`` (stderr gets one line per error)."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def describe_os_error(exc: OSError) -> str:
    """``"<path>: <reason>"`` for an ``OSError`` (``"[Errno 21] ..."`` is for programmers)."""
    reason = exc.strerror or one_line(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def check_output_path(path: Path, option: str) -> None:
    """Fail early, naming ``option``, if ``path`` cannot be written as a file.

    Checks that ``path`` is not a folder, that the nearest existing folder
    above it is a folder (not a file) that may be written in, and that an
    existing file may be overwritten. Missing folders are created later.

    Raises:
        UserError: Saying which of these fails.
    """
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, so it cannot hold {path.name}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: no permission to write in {parent}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{option} {path}: the file exists and is not writable")
