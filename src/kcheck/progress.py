"""One progress line on stderr for the steps that make a user wait.

A first Kconfig-aware check parses the whole tree (2 s or more), a first
``fix`` may build the kernel's ``conf``: silence there reads as a hang. Each
such step runs inside :func:`step`, which prints one line saying what it does
and how often it happens, then ``done (2.1 s)`` on the same line.

The line appears only where a person watches: when stderr is a terminal and
``--quiet`` was not given. Pipes, files, CI logs and the emerge hook's
captured output stay exactly as they were.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

import click

_quiet = False
#: True while a step's line is open (printed without its end): a nested step ends it first.
_open = False


def set_quiet(quiet: bool) -> None:
    """Turn progress lines off (``--quiet``) or back on for this process."""
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    """True when a progress line would be shown: stderr is a terminal and not ``--quiet``."""
    if _quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):  # a terminal that went away must not fail the check
        pass


@contextlib.contextmanager
def step(what: str, *, how_often: str) -> Iterator[None]:
    """Show ``kcheck: WHAT (HOW_OFTEN)...`` while the block runs, then its duration.

    ``how_often`` tells the user whether to expect the wait again, e.g. "once
    per tree; later runs use the cache". Call it only around a step expected
    to take more than a second. Nothing is printed when :func:`enabled` is
    False; an exception ends the line so that the error starts on its own.
    """
    global _open
    if not enabled():
        yield
        return
    if _open:
        _write("\n")
    _write(f"kcheck: {what} ({how_often})...")
    _open = True
    started = time.monotonic()
    try:
        yield
    except BaseException:
        if _open:
            _write("\n")
        _open = False
        raise
    if _open:
        _write(f" done ({time.monotonic() - started:.1f} s)\n")
    else:
        _write(f"kcheck: {what}: done ({time.monotonic() - started:.1f} s)\n")
    _open = False


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        set_quiet(True)
    return value


#: ``--quiet``/``-q`` for any kcheck command: no progress lines (errors and the report are unchanged).
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, expose_value=False, is_eager=True, callback=_set_quiet,
    help="No progress lines on stderr (they appear only on a terminal anyway).",
)
