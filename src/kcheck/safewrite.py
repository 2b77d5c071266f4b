"""Replace a user's file so that no failure can leave it half-written.

The new content goes to a temporary file in the *same directory* (so the final
``rename`` is atomic on POSIX filesystems), is flushed and ``fsync``-ed, gets
the old file's permission bits and ownership, and only then is renamed over the
old name; the directory is ``fsync``-ed so the rename itself survives a crash.
A backup of the old file (``.config.old``, the kernel's own convention) is made
as a hard link or copy *before* the rename, so at every instant the original
content is reachable under its own name. Any exception (full disk, read-only
directory, a failing ``fsync``) removes the temporary file and leaves the
original byte for byte. SIGTERM, SIGHUP and SIGINT arriving during the write
are held until it has finished or cleaned up (:func:`signals_deferred`), then
act as usual; only SIGKILL, which nothing can hold, leaves a
``.<name>.kcheck-*`` temporary file, next to an intact original.

kcheck often runs as root (inside emerge), so a target is refused when it is
a symlink someone else planted in a sticky world-writable directory such as
``/tmp`` (the rule of the kernel's ``fs.protected_symlinks``, applied whatever
that sysctl says): see :func:`refuse_planted_symlink`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from kcheck.errors import InputError


def backup_path(path: Path) -> Path:
    """Where the previous version is kept: ``<name>.old`` (``.config`` -> ``.config.old``)."""
    return path.with_name(path.name + ".old")


def write_atomic(path: Path, data: bytes | str, *, backup: bool = True) -> Path | None:
    """Replace ``path`` with ``data`` atomically; return the backup's path (None when none was made).

    A missing ``path`` is created (mode 0644 minus the umask, like any new file).
    Raises :class:`~kcheck.errors.InputError` naming the file when it cannot be
    written; the original is then untouched.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    refuse_planted_symlink(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    with signals_deferred():
        return _replace(path, directory, data, old, backup)


def _replace(path: Path, directory: Path, data: bytes, old: os.stat_result | None, backup: bool) -> Path | None:
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.kcheck-", dir=directory)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if old is not None:
                os.fchmod(fd, old.st_mode & 0o7777)
                if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(fd, old.st_uid, old.st_gid)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)
            os.fsync(fd)
        finally:
            os.close(fd)
        saved = None
        if backup and old is not None:
            saved = backup_path(path)
            _backup(path, saved)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(directory)
        return saved
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror or exc}); nothing was changed: check free space and permissions of {directory}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


_DEFERRED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGHUP and SIGINT until the block ends, then let them act as they would have.

    A kill in the middle of a write would otherwise skip the clean-up and leave
    a temporary file; held, it lands once the file is replaced or removed.
    Only the main thread may set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def refuse_planted_symlink(path: Path) -> None:
    """Raise :class:`InputError` when ``path`` or its directory is a symlink planted by someone else.

    A symlink counts as planted when it sits in a sticky, world-writable
    directory (``/tmp``, ``/var/tmp``) and belongs neither to this user nor to
    the directory's owner: another user made it, and writing through it as
    root would let them choose which file kcheck reads, copies or replaces.
    """
    path = Path(os.path.abspath(path))
    for candidate in (path, path.parent):
        try:
            link = os.lstat(candidate)
        except OSError:
            continue
        if not stat.S_ISLNK(link.st_mode):
            continue
        try:
            holder = os.stat(os.path.realpath(candidate.parent))
        except OSError:
            continue
        sticky_shared = holder.st_mode & stat.S_ISVTX and holder.st_mode & stat.S_IWOTH
        if sticky_shared and link.st_uid not in (os.geteuid(), holder.st_uid):
            raise InputError(
                f"refusing to write {path}: {candidate} is a symlink owned by uid {link.st_uid} in the "
                f"world-writable directory {candidate.parent}; remove it or write somewhere else"
            )


def _backup(path: Path, saved: Path) -> None:
    """Keep the current ``path`` as ``saved`` (atomically replacing an older backup)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{saved.name}.kcheck-", dir=path.parent)
    os.close(fd)
    try:
        shutil.copy2(path, tmp)
        owner = os.stat(path)
        if (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, saved)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
