"""Installed-package facts, read through Portage's own API.

Portage's installed-package database (the "vdb", ``<root>/var/db/pkg``)
changed format in 3.0.82 (a consolidated ``metadata`` file may replace the
per-field files), so kcheck never reads it by hand: it opens the vartree
with ``portage.create_trees`` against the root being checked and asks
``match()`` / ``aux_get()``. ``COUNTER`` orders merges on one root (each merge
takes the next value); ``BUILD_TIME`` is when the package was built, which for
a source merge is the merge itself.

The ``portage`` module is imported on first use only, and its absence is a
fact (:attr:`PortageFacts.reason`), not an error.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The installed-package fields kcheck reads for each match.
_AUX_KEYS = ("COUNTER", "BUILD_TIME", "USE", "IUSE", "repository")


@dataclass(frozen=True)
class InstalledPackage:
    """One installed package as Portage records it.

    ``cpv`` is ``category/name-version`` (``sys-fs/aufs3-3_p20160219``);
    ``counter`` orders merges on this root (higher = merged later);
    ``build_time`` is seconds since the epoch (0 when Portage did not record it).
    """

    cpv: str
    cp: str
    version: str
    counter: int
    build_time: int
    use: frozenset[str]
    iuse: frozenset[str]
    repo: str

    def __str__(self) -> str:
        return self.cpv


class PortageFacts:
    """The installed packages of one root, or the reason they cannot be known."""

    def __init__(self, root: Path, vardb: object | None, reason: str | None) -> None:
        self.root = root
        self._vardb = vardb
        #: Why Portage facts are unavailable (None when they are available).
        self.reason = reason

    @property
    def available(self) -> bool:
        """True when Portage could be asked about this root."""
        return self._vardb is not None

    def installed(self, pattern: str) -> list[InstalledPackage]:
        """Installed packages whose ``category/name`` matches ``pattern``.

        ``pattern`` is a ``category/name`` with optional shell wildcards
        (``sys-kernel/*-sources``); the result is ordered by merge (COUNTER).
        Empty when Portage is unavailable.
        """
        if self._vardb is None:
            return []
        db = self._vardb
        if any(c in pattern for c in "*?["):
            names = [cp for cp in db.cp_all() if fnmatch.fnmatchcase(cp, pattern)]
        else:
            names = [pattern]
        found = []
        for cp in names:
            for cpv in db.match(cp):
                found.append(self._package(cp, cpv))
        return sorted(found, key=lambda p: p.counter)

    def _package(self, cp: str, cpv: str) -> InstalledPackage:
        counter, build_time, use, iuse, repo = self._vardb.aux_get(cpv, list(_AUX_KEYS))
        # Portage hands out str subclasses that misbehave under str(); keep plain strings.
        cpv, cp = str(cpv), str(cp)
        return InstalledPackage(
            cpv=cpv,
            cp=cp,
            version=cpv[len(cp) + 1 :],
            counter=_int(counter),
            build_time=_int(build_time),
            use=frozenset(use.split()),
            # IUSE carries defaults as +flag / -flag; the flag's name is what counts.
            iuse=frozenset(flag.lstrip("+-") for flag in iuse.split()),
            repo=repo,
        )


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


@functools.lru_cache(maxsize=8)
def portage_facts(root: Path = Path("/")) -> PortageFacts:
    """Open the installed-package database of ``root`` through Portage.

    ``root`` is both Portage's config root and target root (kcheck's
    ``--root``, an ``EROOT`` inside an ebuild). Opened once per root per
    process; when ``portage`` cannot be imported, or the root has no
    installed-package database, the result says why instead of failing.
    """
    root = Path(root)
    # Checked first: on another distribution kcheck need not pay for importing Portage.
    if not (root / "var" / "db" / "pkg").is_dir():
        return PortageFacts(root, None, f"{root / 'var/db/pkg'} does not exist: not a Gentoo root")
    try:
        import portage
    except ImportError as exc:
        return PortageFacts(root, None, f"Portage is not installed here ({exc})")
    # A stub repository keeps Portage from looking for the user's (or the
    # build machine's) repositories: only the installed packages matter here.
    with tempfile.TemporaryDirectory(prefix="kcheck-repo-") as stub:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORTAGE_REPOSITORIES": f"[DEFAULT]\nmain-repo = kcheck-stub\n[kcheck-stub]\nlocation = {stub}\n",
        }
        try:
            trees = portage.create_trees(config_root=str(root), target_root=str(root), eprefix="", env=env)
        # A broken make.conf surfaces as shlex's ValueError, an unreadable file as OSError.
        except (portage.exception.PortageException, OSError, ValueError) as exc:
            return PortageFacts(root, None, f"Portage cannot read its configuration under {root} ({exc})")
    vardb = trees[trees._target_eroot]["vartree"].dbapi
    return PortageFacts(root, vardb, None)
