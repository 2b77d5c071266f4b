"""Whose ``$(shell,...)`` may kcheck run? Only a tree's whose every part the user trusts.

(The stricter rule for kcheck's own cache, :func:`ours_alone`, lives here too:
one place says what kcheck trusts.)

A Kconfig tree's probes are shell commands written in its files. kcheck runs
them only when every Kconfig file the parse reads, every directory from the
tree's top down to that file, and every file of the tree a probe command
names (``$(srctree)/scripts/cc-version.sh``) belongs to root or to the user
running kcheck (or the one who invoked it through sudo, ``SUDO_UID``) and is
not writable by every user. Otherwise the owner of one ``fs/`` directory in a
root-owned ``/usr/src/linux`` could have root run anything at the next emerge
(the reasoning of git's ``safe.directory``).

Each file is checked before anything of it is used: when the parse enters
it, and before a probe command naming it is started. A failed check raises
:class:`Untrusted`; :meth:`kcheck.kconfig.tree.KconfigTree.load` then parses
again without running any probe, and says why.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def ours_alone(info: os.stat_result, path: Path | str, what: str = "") -> str | None:
    """Why ``path`` (``info`` is its stat) is not the current user's alone, or None when it is.

    The rule for kcheck's own per-user cache, whatever it holds (parsed
    trees, symbol names, the ``conf`` program it builds and runs): the
    effective user owns it and neither its group nor others can write it,
    else another user could put there what kcheck, perhaps as root, loads or
    runs. ``what`` names the kind of thing in the message ("cache entry").
    """
    subject = f"{what} {path}" if what else str(path)
    if info.st_uid != os.geteuid():
        return f"{subject} belongs to uid {info.st_uid}, not to uid {os.geteuid()}"
    if info.st_mode & 0o022:
        return f"{subject} is writable by its group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


class Untrusted(Exception):
    """A file or directory of the tree belongs to another user (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def trusted_uids() -> set[int]:
    """root, this user, and the user who invoked kcheck through sudo."""
    uids = {0, os.geteuid()}
    with contextlib.suppress(ValueError):
        uids.add(int(os.environ.get("SUDO_UID", "")))
    return uids


class TrustGuard:
    """Checks the paths of one tree against :func:`trusted_uids` (results cached per path)."""

    def __init__(self, srctree: Path | str) -> None:
        self.srctree = os.path.realpath(srctree)
        self.uids = trusted_uids()
        self._checked: dict[str, str | None] = {}
        #: The probe scripts :meth:`require_script` let run (a cached parse records them, see :meth:`check_stamped`).
        self.scripts: set[str] = set()
        self._links: set[str] = set()

    def check(self, path: Path | str) -> str | None:
        """Why ``path`` (in the tree) and the directories above it up to the tree are not trusted, or None."""
        return self._check_real(os.path.realpath(path), path)

    def check_open(self, real: str, info: os.stat_result) -> str | None:
        """:meth:`check` for a file already open: ``real`` is its resolved path, ``info`` its ``fstat``."""
        if real == self.srctree:
            return self._verdict(real, info)
        return self._check_real(os.path.dirname(real), real) or self._verdict(real, info)

    def _check_real(self, real: str, shown: Path | str) -> str | None:
        if real != self.srctree and not real.startswith(self.srctree + os.sep):
            return f"{shown} is outside the kernel tree {self.srctree}: its $(shell,...) Kconfig probes were not run"
        # Walk up to the nearest path judged before (or the tree's top), then judge the rest top down:
        # an untrusted directory makes everything below it untrusted.
        chain = []
        current = real
        while current not in self._checked:
            chain.append(current)
            if current == self.srctree:
                break
            current = os.path.dirname(current)
        reason = self._checked.get(current)
        for path in reversed(chain):
            reason = reason or self._why(path)
            self._checked[path] = reason
        return reason

    def check_stamped(self, files, scripts=(), lstats=None) -> str | None:
        """Why a parse that read ``files`` and ran the probe ``scripts`` would be refused now, or None.

        Both are paths in the tree (relative to it or absolute). A cached parse
        made with probes stands only while this passes: a directory made
        writable, or a file given away, after the parse refuses it as a cold
        parse would. Cheap on purpose (one ``lstat`` a file and a directory):
        a path with no symlink on the way is its own real path, so only a
        path through a link pays for ``realpath``. ``lstats`` maps names of
        ``files`` to their ``lstat`` when the caller has it already.
        """
        top, uids, checked = self.srctree + os.sep, self.uids, self._checked
        for name in files:
            path = os.path.normpath(os.path.join(top, name))
            directory = os.path.dirname(path)
            reason = checked[directory] if directory in checked else self._check_real(directory, directory)
            info = lstats.get(name) if lstats else None
            if info is None:
                try:
                    info = os.lstat(path)
                except OSError:
                    continue  # gone: the stamp no longer matches anyway
            if stat.S_ISLNK(info.st_mode) or (self._links and self._through_link(directory)):
                reason = self.check(path)  # a link on the way: the real file and its real directories decide
            elif not reason and (info.st_uid not in uids or info.st_mode & stat.S_IWOTH):
                reason = self._verdict(path, info)
            if reason:
                return reason
        for name in scripts:
            try:
                self.require_script(os.path.join(self.srctree, name))
            except Untrusted as exc:
                return exc.reason
        return None

    def _through_link(self, path: str) -> bool:
        current = os.path.normpath(path)
        while current != self.srctree and current.startswith(self.srctree + os.sep):
            if current in self._links:
                return True
            current = os.path.dirname(current)
        return False

    def require(self, path: Path | str) -> None:
        """Raise :class:`Untrusted` unless :meth:`check` passes."""
        reason = self.check(path)
        if reason:
            raise Untrusted(reason)

    def require_script(self, path: Path | str) -> None:
        """Raise :class:`Untrusted` unless the script ``path`` and every file beside it are trusted.

        The tree's probe scripts run their neighbours (``scripts/cc-version.sh``
        runs ``$(dirname $0)/min-tool-version.sh``): a script is only as
        trustworthy as its directory's other files.
        """
        self.require(path)
        real = os.path.realpath(path)
        directory = os.path.dirname(real)
        key = directory + os.sep
        if key not in self._checked:
            self._checked[key] = None
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        reason = self._verdict(entry.path, entry.stat(follow_symlinks=False))
                        if not reason and entry.is_symlink():
                            # What runs is the link's target (scripts/kernel-doc -> kernel-doc.py).
                            try:
                                reason = self._verdict(os.path.realpath(entry.path), os.stat(entry.path))
                            except OSError:
                                reason = None  # a dangling link runs nothing
                        if reason:
                            self._checked[key] = reason
                            break
            except OSError:
                pass
        if self._checked[key]:
            raise Untrusted(self._checked[key])
        self.scripts.add(real)

    def _why(self, path: str) -> str | None:
        try:
            info = os.lstat(path)
        except OSError:
            return None  # nothing there: nothing of it can run
        if stat.S_ISLNK(info.st_mode):
            self._links.add(path)  # judged as itself here; check_stamped judges its target too
        return self._verdict(path, info)

    def _verdict(self, path: str, info: os.stat_result) -> str | None:
        if info.st_uid not in self.uids:
            return (
                f"{path} belongs to uid {info.st_uid}, not to root or the invoking user: the tree's $(shell,...) "
                "Kconfig probes were not run (toolchain-dependent symbols read as n); run kcheck as that user "
                "for an exact evaluation"
            )
        sticky_dir = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        # A symlink's own mode is always 0777 and means nothing: its directory decides who may
        # replace it, and its target is judged as itself.
        if info.st_mode & stat.S_IWOTH and not sticky_dir and not stat.S_ISLNK(info.st_mode):
            return (
                f"{path} is writable by every user: the tree's $(shell,...) Kconfig probes were not run "
                f"(toolchain-dependent symbols read as n); run 'chmod o-w {path}' for an exact evaluation"
            )
        return None
