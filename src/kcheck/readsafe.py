"""Reading files other users may have planted: regular files only, never more than a bound.

kcheck runs as root on files other users can write (a kernel tree under
``/usr/src``, a build directory, a ``.config``). A FIFO there would block a
plain ``open()`` forever (and every ``emerge`` with it), ``/dev/zero`` or a
file that keeps growing would fill memory. :func:`read_regular` opens without
blocking (``O_NONBLOCK``), checks on the open descriptor that it is a regular
file (no race between the check and the read), and reads at most ``limit``
bytes, refusing anything larger.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kcheck.errors import InputError

#: Larger than any Kconfig file, Makefile or kernel source file kcheck reads.
MAX_SOURCE_BYTES = 16 * 1024 * 1024
#: One-line files (``kernel.release``, ``/proc/version``, ``localversion``) and short lists (``/proc/filesystems``).
MAX_SMALL_BYTES = 64 * 1024
#: Symbol listings (``/proc/kallsyms``, ``System.map``, ``Module.symvers``): tens of MiB on the largest kernels.
MAX_LISTING_BYTES = 256 * 1024 * 1024


class NotRegular(InputError):
    """The path is a FIFO, a device, a socket or a directory: kcheck does not read it."""


class TooLarge(InputError):
    """The file is larger than the bound kcheck reads."""


#: What a read through this module raises when a file cannot be had: callers that fall back
#: on "unknown" for a missing file (most of the host's files) catch these alike.
UNREADABLE = (OSError, NotRegular, TooLarge)


def read_regular(path: Path | str, limit: int = MAX_SOURCE_BYTES, *, what: str = "file") -> bytes:
    """Return the bytes of the regular file ``path`` (at most ``limit``).

    Raises :class:`NotRegular` for anything but a regular file, :class:`TooLarge`
    beyond ``limit`` bytes, and :class:`OSError` as ``open()`` would (missing
    file, permission denied); messages name the path and the next step.
    """
    fd = open_nonblocking(path)
    try:
        return read_fd(fd, path, limit, what=what)
    finally:
        os.close(fd)


def open_nonblocking(path: Path | str) -> int:
    """``os.open`` for reading that never blocks on a FIFO and never makes a terminal ours."""
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)


def read_fd(fd: int, path: Path | str, limit: int = MAX_SOURCE_BYTES, *, what: str = "file") -> bytes:
    """:func:`read_regular` on a descriptor already open (``path`` only names it in messages)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise NotRegular(f"{path} is {kind}; kcheck reads only regular files: replace it with the real {what}")
    if info.st_size > limit:
        raise TooLarge(f"{path} is larger than {limit // 1024 // 1024} MiB and cannot be a {what}; check the path")
    chunks = []
    size = 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            # Grew while being read (or lies about its size, as /proc files do).
            raise TooLarge(f"{path} is larger than {limit // 1024 // 1024} MiB and cannot be a {what}; check the path")
    return b"".join(chunks)


def open_path(path: Path | str) -> int:
    """A descriptor that names ``path`` without opening it (``O_PATH``: a device's open never runs)."""
    return os.open(path, getattr(os, "O_PATH", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) | os.O_CLOEXEC)


def reopen_regular(path_fd: int, path: Path | str, *, what: str = "file") -> int:
    """Open for reading the regular file ``path_fd`` names (from :func:`open_path`); refuse anything else."""
    info = os.fstat(path_fd)
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise NotRegular(f"{path} is {kind}; kcheck reads only regular files: replace it with the real {what}")
    try:
        return os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return open_nonblocking(path)  # no /proc: the path again (it is a regular file)


def fd_path(fd: int, path: Path | str) -> str:
    """The real path of the file open as ``fd`` (all symlinks resolved): one ``readlink`` of /proc, else realpath."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)
    return real if real.startswith("/") and not real.endswith(" (deleted)") else os.path.realpath(path)


def read_head(path: Path | str, size: int, *, what: str = "file") -> bytes:
    """The first ``size`` bytes of the regular file ``path`` (however large it is); errors as :func:`read_regular`."""
    return read_at(path, 0, size, what=what)


def read_text(path: Path | str, limit: int = MAX_SOURCE_BYTES, *, what: str = "file",
              encoding: str = "utf-8", errors: str = "replace") -> str:
    """:func:`read_regular`, decoded (undecodable bytes replaced by default)."""
    return read_regular(path, limit, what=what).decode(encoding, errors)


def iter_lines(path: Path | str, limit: int = MAX_LISTING_BYTES, *, what: str = "file"):
    """The lines (bytes, newline kept) of the regular file ``path``, read in chunks, at most ``limit`` bytes in all.

    For listings too large to hold twice (``/proc/kallsyms``): errors as
    :func:`read_regular`, raised when reached (a file that never ends
    raises :class:`TooLarge` after ``limit`` bytes, never hangs).
    """
    fd = open_nonblocking(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
            raise NotRegular(f"{path} is {kind}; kcheck reads only regular files: replace it with the real {what}")
        size, rest = 0, b""
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{path} is larger than {limit // 1024 // 1024} MiB and cannot be a {what}; check the path")
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line + b"\n"
        if rest:
            yield rest
    finally:
        os.close(fd)


def read_at(path: Path | str, offset: int, size: int, *, what: str = "file") -> bytes:
    """``size`` bytes at ``offset`` of the regular file ``path`` (fewer at its end); errors as :func:`read_regular`."""
    fd = open_nonblocking(path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(f"{path} is not a regular file; kcheck reads only regular files: replace it with the real {what}")
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
