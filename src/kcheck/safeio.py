"""Reading small settings files that another user may have planted: bounded, regular files only.

kcheck runs as root (from emerge, from ``make install``) and reads files such
as ``/etc/docker/daemon.json``, ``storage.conf`` or a ``--profile`` that other
users can write. A FIFO would block the read forever, ``/dev/zero`` or a huge
file would fill memory, and a document nested 100,000 levels deep makes
Python's parsers raise RecursionError. :func:`read_text` refuses the first
three with a one-line :class:`~kcheck.errors.InputError`; :func:`parse_nested`
turns the last into one too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kcheck import readsafe
from kcheck.errors import InputError

#: Settings files kcheck reads are a few kilobytes; 4 MiB leaves room for comments and generated ones.
SETTINGS_LIMIT = 4 * 1024 * 1024

T = TypeVar("T")


def read_text(path: Path, *, what: str, next_step: str, limit: int = SETTINGS_LIMIT) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes.

    Raises FileNotFoundError when the file does not exist (callers treat that
    as "use the defaults"), and :class:`InputError` naming ``what``, the file
    and ``next_step`` when it is not a regular file, is larger than ``limit``,
    cannot be read or is not UTF-8. The file is opened without blocking, so a
    FIFO is refused instead of waited on.
    """
    try:
        fd = readsafe.open_nonblocking(path)
    except FileNotFoundError:
        raise  # not an error: the caller uses the defaults
    except OSError as exc:
        raise InputError(f"cannot read {what} {path} ({exc.strerror}); {next_step}") from None
    try:
        data = readsafe.read_fd(fd, path, limit, what=what)
    except readsafe.NotRegular:
        raise InputError(f"{what} {path} is not a regular file; {next_step}") from None
    except readsafe.TooLarge:
        raise InputError(f"{what} {path} is larger than {limit // (1024 * 1024)} MiB; {next_step}") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path} ({exc.strerror}); {next_step}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start}); {next_step}") from None


def parse_nested(parse: Callable[[str], T], text: str, *, path: Path, what: str, next_step: str) -> T:
    """``parse(text)``, with a RecursionError (absurdly deep nesting) turned into one line."""
    try:
        return parse(text)
    except RecursionError:
        raise InputError(f"{what} {path} is nested too deeply to be real settings; {next_step}") from None
