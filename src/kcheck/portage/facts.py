"""Installed-package facts, read through Portage itself.

Portage's installed-package database (the "vdb", ``<root>/var/db/pkg``)
changed format in 3.0.82 (a consolidated ``metadata`` file may replace the
per-field files), so kcheck never reads it by hand. Two ways in, in order:

1. Portage's Python API: ``portage.create_trees`` against the root being
   checked, then the vartree's ``match()`` / ``aux_get()`` / contents;
2. Portage's own command line, ``portageq`` (``match``, ``metadata ...
   installed``, ``contents``, ``owners``), present on every Gentoo system:
   kcheck installed with pip or pipx cannot import the system's ``portage``
   but can still ask it.

Portage reads a record's files by name and whole. Under a root other users
can write (an ``EROOT`` of a build, ``--root``) a FIFO there would block it
forever and a link to ``/dev/zero`` would fill memory, so kcheck looks at a
record before Portage reads it (:func:`record_problem`): anything but regular
files, or a file past :data:`MAX_RECORD_FILE`, makes the installed packages
unknown, with the file named.

``COUNTER`` orders merges on one root (each merge takes the next value);
``BUILD_TIME`` is when the package was built, which for a source merge is the
merge itself. When neither way works the facts say why
(:attr:`PortageFacts.reason`): "unknown", which the callers must never read
as "nothing installed".
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The installed-package fields kcheck reads for each match.
_AUX_KEYS = ("COUNTER", "BUILD_TIME", "USE", "IUSE", "repository")
#: Larger than any file of an installed-package record (a kernel-sources CONTENTS is about 10 MiB).
MAX_RECORD_FILE = 256 * 1024 * 1024


#: The files of every record an owner lookup reads (the other files are read for the owners found).
_OWNER_FILES = ("CONTENTS", "COUNTER")


def record_problem(root: Path, cpv: str | None = None, pattern: str = "*/*",
                   names: tuple[str, ...] | None = None) -> str | None:
    """Why Portage must not read the record of ``cpv``, or None.

    Without ``cpv``: every record of a package whose ``category/name``
    matches ``pattern`` (what :meth:`PortageFacts.installed` asks Portage
    to match; an owner lookup reads every record). ``names`` limits the
    files looked at.

    Portage opens each file of a record by name and reads it to the end: a
    FIFO, a device, a link (which may lead to ``/dev/zero``) or a huge file
    there would stall or flood it. Directories inside a record are not read
    and pass.
    """
    vdb = Path(root) / "var" / "db" / "pkg"
    if cpv is not None:
        records = [vdb / cpv]
    else:
        records = []
        categories, _, name = pattern.partition("/")
        for category in _entries(vdb):
            if not fnmatch.fnmatchcase(category.name, categories):
                continue
            if not category.is_dir(follow_symlinks=False):
                return _unusable(Path(category.path), "not a directory")
            # A record is <name>-<version>; the version starts with a digit.
            records += [Path(e.path) for e in _entries(Path(category.path))
                        if fnmatch.fnmatchcase(e.name, f"{name or '*'}-[0-9]*")]
    for record in records:
        try:
            info = os.lstat(record)
        except FileNotFoundError:
            continue  # Portage says what it says about a package it lists but cannot find
        except OSError as exc:
            return _unusable(record, exc.strerror or str(exc))
        if not stat.S_ISDIR(info.st_mode):
            return _unusable(record, "not a directory")
        for path in [record / n for n in names] if names else [Path(e.path) for e in _entries(record)]:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                return _unusable(path, exc.strerror or str(exc))
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                return _unusable(path, "not a regular file (a FIFO, device, socket or link)")
            if info.st_size > MAX_RECORD_FILE:
                return _unusable(path, f"larger than {MAX_RECORD_FILE // 2**20} MiB")
    return None


def _entries(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _unusable(path: Path, why: str) -> str:
    return (f"{path} is {why}: Portage would stall or read without end on it, so it was not asked; "
            "installed packages unknown (replace the file, or re-merge that package)")


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


class _Api:
    """The vartree through Portage's Python API."""

    via = "Portage's Python API"

    def __init__(self, vardb: object) -> None:
        self.db = vardb

    def match(self, pattern: str) -> list[str]:
        if any(c in pattern for c in "*?["):
            names = [cp for cp in self.db.cp_all() if fnmatch.fnmatchcase(cp, pattern)]
        else:
            names = [pattern]
        return [str(cpv) for cp in names for cpv in self.db.match(cp)]

    def aux(self, cpv: str, keys: list[str]) -> list[str]:
        return list(self.db.aux_get(cpv, keys))

    def contents(self, cpv: str) -> list[str]:
        eroot = self.db.settings["EROOT"].rstrip("/")
        return sorted(path[len(eroot):] for path in self.db._dblink(cpv).getcontents())

    def owners(self, paths: list[str]) -> list[str]:
        return sorted(str(link.mycpv) for link in self.db._owners.get_owners(paths))


class _Portageq:
    """The vartree through ``portageq``: one short process per question (about 0.3 s each)."""

    via = "portageq"

    def __init__(self, exe: str, root: Path, stub: str) -> None:
        self.exe, self.root = exe, root
        # EPREFIX="": the root's own layout, as the API route opens it; the stub repository keeps
        # portageq from reading (or warning about) the machine's repositories.
        self.env = dict(
            os.environ,
            EPREFIX="",
            ROOT=str(root),
            PORTAGE_CONFIGROOT=str(root),
            PORTAGE_REPOSITORIES=f"[DEFAULT]\nmain-repo = kcheck-stub\n[kcheck-stub]\nlocation = {stub}\n",
        )
        self.eroot = str(root).rstrip("/") + "/"

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        proc = subprocess.run([self.exe, *args], capture_output=True, text=True, env=self.env, timeout=120)
        if proc.returncode not in ok:
            raise PortageUnavailable(f"portageq {args[0]} failed ({proc.stderr.strip().splitlines()[-1:] or proc.returncode})")
        return proc.stdout

    def match(self, pattern: str) -> list[str]:
        return self.run("match", self.eroot, pattern).split()

    def aux(self, cpv: str, keys: list[str]) -> list[str]:
        lines = self.run("metadata", self.eroot, "installed", cpv, *keys).split("\n")
        return (lines + [""] * len(keys))[: len(keys)]

    def contents(self, cpv: str) -> list[str]:
        prefix = self.eroot.rstrip("/")
        return [line[len(prefix):] for line in self.run("contents", self.eroot, cpv).splitlines() if line.startswith(prefix)]

    def owners(self, paths: list[str]) -> list[str]:
        # Exit status 1 means "no owner": an answer, not a failure.
        out = self.run("owners", self.eroot, *(self.eroot.rstrip("/") + p for p in paths), ok=(0, 1))
        return sorted(line for line in out.splitlines() if line and not line.startswith("\t"))


class PortageUnavailable(Exception):
    """Portage could not answer (the message says why)."""


class PortageFacts:
    """The installed packages of one root, or the reason they cannot be known."""

    def __init__(self, root: Path, backend: _Api | _Portageq | None, reason: str | None) -> None:
        self.root = root
        self._backend = backend
        #: Why Portage facts are unavailable (None when they are available).
        self.reason = reason
        #: Answers derived from these facts, kept for the process (each portageq question costs a process).
        self.memo: dict[str, object] = {}

    @property
    def available(self) -> bool:
        """True when Portage could be asked about this root."""
        return self._backend is not None

    @property
    def via(self) -> str | None:
        """How Portage was asked: "Portage's Python API", "portageq", or None."""
        return self._backend.via if self._backend is not None else None

    def installed(self, pattern: str) -> list[InstalledPackage]:
        """Installed packages whose ``category/name`` matches ``pattern``.

        ``pattern`` is a ``category/name`` with optional shell wildcards
        (``sys-kernel/*-sources``); the result is ordered by merge (COUNTER).
        Empty when Portage is unavailable (check :attr:`available`).
        """
        if self._backend is None:
            return []
        try:
            if self._refused(None, pattern):
                return []
            matches = self._backend.match(pattern)
            return sorted((self._package(cpv) for cpv in matches), key=lambda p: p.counter)
        except (PortageUnavailable, OSError, subprocess.SubprocessError) as exc:
            self._fail(exc)
            return []

    def contents(self, package: InstalledPackage) -> list[str]:
        """The paths ``package`` installed, as absolute paths inside the root (empty when unknown)."""
        if self._backend is None or self._refused(package.cpv):
            return []
        try:
            return self._backend.contents(package.cpv)
        except (PortageUnavailable, OSError, subprocess.SubprocessError, KeyError) as exc:
            self._fail(exc)
            return []

    def owners(self, paths: list[str]) -> list[InstalledPackage]:
        """The installed packages that own ``paths`` (absolute paths inside the root)."""
        if self._backend is None or not paths or self._refused(None, names=_OWNER_FILES):
            return []
        try:
            owners = self._backend.owners(paths)
            if any(self._refused(cpv) for cpv in owners):
                return []
            return [self._package(cpv) for cpv in owners]
        except (PortageUnavailable, OSError, subprocess.SubprocessError, KeyError) as exc:
            self._fail(exc)
            return []

    def _refused(self, cpv: str | None, pattern: str = "*/*", names: tuple[str, ...] | None = None) -> bool:
        """True (and the facts unknown from here on) when a record Portage is about to read is unsafe to read.

        ``cpv`` None: every record of the packages matching ``pattern`` (see :func:`record_problem`).
        """
        key = f"records checked {cpv} {pattern} {names}"
        if key in self.memo:
            return False
        problem = record_problem(self.root, cpv, pattern, names)
        if problem:
            self.reason, self._backend = problem, None
            return True
        self.memo[key] = True
        return False

    def _fail(self, exc: Exception) -> None:
        # One failed question makes every later answer suspect: from here on the facts are unknown.
        self.reason = f"{self.via} stopped answering ({exc})"
        self._backend = None

    def _package(self, cpv: str) -> InstalledPackage:
        counter, build_time, use, iuse, repo = self._backend.aux(cpv, list(_AUX_KEYS))
        # Portage hands out str subclasses that misbehave under str(); keep plain strings.
        cpv = str(cpv)
        cp = _cp(cpv)
        return InstalledPackage(
            cpv=cpv,
            cp=cp,
            version=cpv[len(cp) + 1 :],
            counter=_int(counter),
            build_time=_int(build_time),
            use=frozenset(use.split()),
            # IUSE carries defaults as +flag / -flag; the flag's name is what counts.
            iuse=frozenset(flag.lstrip("+-") for flag in iuse.split()),
            repo=repo.strip(),
        )


def _cp(cpv: str) -> str:
    """``sys-fs/aufs3-3_p20160219`` -> ``sys-fs/aufs3`` (the version starts at the first ``-<digit>``)."""
    category, _, pf = cpv.partition("/")
    parts = pf.split("-")
    for i in range(1, len(parts)):
        if parts[i][:1].isdigit():
            return f"{category}/{'-'.join(parts[:i])}"
    return cpv


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def portageq_command() -> str | None:
    """The ``portageq`` kcheck would run: the one on PATH, else Gentoo's own."""
    return shutil.which("portageq") or next((p for p in ("/usr/bin/portageq",) if os.access(p, os.X_OK)), None)


#: Stub repository directories made for portageq, removed when the process exits.
_STUBS: list[tempfile.TemporaryDirectory] = []


@functools.lru_cache(maxsize=8)
def portage_facts(root: Path = Path("/")) -> PortageFacts:
    """Open the installed-package database of ``root`` through Portage.

    ``root`` is both Portage's config root and target root (kcheck's
    ``--root``, an ``EROOT`` inside an ebuild). Opened once per root per
    process: through the ``portage`` module when it imports, else through
    ``portageq``; when neither works, or the root has no installed-package
    database, the result says why instead of failing.
    """
    root = Path(root)
    # Checked first: on another distribution kcheck need not pay for importing Portage.
    if not (root / "var" / "db" / "pkg").is_dir():
        return PortageFacts(root, None, f"{root / 'var/db/pkg'} does not exist: not a Gentoo root")
    try:
        import portage
    except ImportError as exc:
        return _through_portageq(root, f"the portage module cannot be imported here ({exc})")
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
    return PortageFacts(root, _Api(vardb), None)


def _through_portageq(root: Path, why: str) -> PortageFacts:
    exe = portageq_command()
    if exe is None:
        return PortageFacts(root, None, f"{why}, and portageq is not on PATH: installed packages unknown")
    stub = tempfile.TemporaryDirectory(prefix="kcheck-repo-")
    _STUBS.append(stub)
    backend = _Portageq(exe, root, stub.name)
    try:
        backend.run("vdb_path")
    except (PortageUnavailable, OSError, subprocess.SubprocessError) as exc:
        return PortageFacts(root, None, f"{why}, and {exe} does not answer ({exc}): installed packages unknown")
    return PortageFacts(root, backend, None)
