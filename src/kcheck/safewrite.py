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

kcheck often runs as root (inside emerge), so a target is refused when any
component of its path is a symlink someone else planted in a sticky
world-writable directory such as ``/tmp`` (the rule of the kernel's
``fs.protected_symlinks``, applied whatever that sysctl says, at every level):
see :func:`resolve_target`. A target that exists must be a regular file: a
device, FIFO or socket is refused, never replaced. A symlink to a regular
file is written *through*: the file it points to is replaced (and backed up
beside it), the link stays, as ``make`` does with ``KCONFIG_OVERWRITECONFIG``.

With ``expected`` (the bytes a caller read and planned from), the write takes
an exclusive ``fcntl`` lock on ``.<name>.lock`` beside the target, reads the
target again under it and refuses (exit status 1, nothing written) when it
changed: two ``kcheck fix --write`` at once, or an edit made meanwhile, never
lose a change.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kcheck import readsafe
from kcheck.errors import EXIT_FAIL, InputError

#: How long a write waits for another kcheck holding the target's lock.
LOCK_WAIT_SECONDS = 30.0
#: More symlinks than this on one path is a loop (the kernel's own limit is 40).
_MAX_LINKS = 40


def backup_path(path: Path) -> Path:
    """Where the previous version is kept: ``<name>.old`` (``.config`` -> ``.config.old``)."""
    return path.with_name(path.name + ".old")


def write_atomic(path: Path, data: bytes | str, *, backup: bool = True, expected: bytes | None = None) -> Path | None:
    """Replace ``path`` with ``data`` atomically; return the backup's path (None when none was made).

    A missing ``path`` is created (mode 0644 minus the umask, like any new file).
    ``expected``: the content ``path`` had when the caller read it; the write
    then happens under the target's lock and only if that is still the content
    (else :class:`InputError` with exit status 1). Raises
    :class:`~kcheck.errors.InputError` naming the file when it cannot be
    written; the original is then untouched.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    target = check_target(path)
    directory = target.parent
    with _locked(target) if expected is not None else contextlib.nullcontext():
        if expected is not None:
            try:
                current = readsafe.read_regular(target, max(len(expected), 1) * 2 + 4096, what="configuration")
            except (OSError, InputError):
                current = None
            if current != expected:
                raise InputError(
                    f"{path} changed since kcheck read it (another kcheck fix or an edit): nothing was written; "
                    "run kcheck fix again on the new content",
                    exit_status=EXIT_FAIL,
                )
        try:
            old = os.stat(target)
        except FileNotFoundError:
            old = None
        except OSError as exc:
            raise InputError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
        with signals_deferred():
            saved = _replace(target, directory, data, old, backup)
    if saved is not None and target == Path(os.path.abspath(path)):
        saved = backup_path(path)  # no symlink on the way: name the backup as the caller named the file
    return saved


def check_target(path: Path) -> Path:
    """The file a write to ``path`` replaces (symlinks followed, see :func:`resolve_target`); refuse what must not be.

    Raises :class:`InputError` (exit status 2) when ``path`` exists and is not
    a regular file (a device such as ``/dev/null``, a FIFO, a socket, a
    directory) or when a planted symlink is on the way.
    """
    path = Path(path)
    with contextlib.suppress(OSError):
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise InputError(f"refusing to write {path}: it is {kind}, not a regular file; name a regular file or a new one")
    target = resolve_target(path)
    if target.is_dir():
        raise InputError(f"refusing to write {path}: it is a directory, not a regular file; name a regular file or a new one")
    return target


def resolve_target(path: Path) -> Path:
    """Resolve every symlink of ``path``, refusing one planted in a sticky world-writable directory.

    A symlink counts as planted when it sits in a sticky, world-writable
    directory (``/tmp``, ``/var/tmp``) and belongs neither to this user nor to
    the directory's owner: another user made it, and writing through it as
    root would let them choose which file kcheck reads, copies or replaces.
    Every component is checked, the link targets' own components included.
    """
    pending = [part for part in os.path.join(os.getcwd(), str(path)).split("/") if part not in ("", ".")]
    current = "/"
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
        except OSError:
            current = candidate  # a new name (or unreadable): nothing to follow
            continue
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        _refuse_planted(Path(path), candidate, info, current)
        links += 1
        if links > _MAX_LINKS:
            raise InputError(f"refusing to write {path}: too many symlinks on the way (a loop?); name the real file")
        link = os.readlink(candidate)
        if link.startswith("/"):
            current = "/"
        pending[:0] = [p for p in link.split("/") if p not in ("", ".")]
    return Path(current)


def _refuse_planted(path: Path, candidate: str, link: os.stat_result, directory: str) -> None:
    try:
        holder = os.stat(directory)
    except OSError:
        return
    sticky_shared = holder.st_mode & stat.S_ISVTX and holder.st_mode & stat.S_IWOTH
    if sticky_shared and link.st_uid not in (os.geteuid(), holder.st_uid):
        raise InputError(
            f"refusing to write {path}: {candidate} is a symlink owned by uid {link.st_uid} in the "
            f"world-writable directory {directory}; remove it or write somewhere else"
        )


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``.<name>.kcheck-lock`` beside ``target``; remove it after.

    Waits up to :data:`LOCK_WAIT_SECONDS` for another holder. The file is
    removed while still locked, and a waiter that then holds a removed file's
    lock opens the new one again, so removing it never lets two in at once.
    """
    lock = target.with_name(f".{target.name.lstrip('.')}.kcheck-lock")
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            raise InputError(f"cannot write {target} ({exc.strerror} creating the lock file {lock.name}); nothing "
                             f"was changed: check free space and permissions of {target.parent}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(f"cannot write {target}: its lock file {lock} is not a regular file; remove it "
                                 "(nothing was changed)")
            _lock_until(fd, deadline, target, lock)
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(lock))
            except FileNotFoundError:
                same = False
            if same:
                try:
                    yield
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(lock)
                return
        finally:
            os.close(fd)


def _lock_until(fd: int, deadline: float, target: Path, lock: Path) -> None:
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                raise InputError(
                    f"{target} is locked by another process ({lock}) for more than {LOCK_WAIT_SECONDS:.0f} s: "
                    "nothing was written; try again when it has finished",
                    exit_status=EXIT_FAIL,
                ) from None
            time.sleep(0.05)


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
