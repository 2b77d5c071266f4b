"""The kernel's own ``conf`` as the final word on what ``kcheck fix`` writes.

kcheck plans with kconfiglib; the kernel configures with ``scripts/kconfig/conf``.
Where the two could differ, the kernel wins: before anything is written, the
planned file goes through the tree's own ``make olddefconfig`` and what
``conf`` writes is what kcheck writes (or refuses to, see
:mod:`kcheck.fix.verified`).

``conf`` is built once per tree and arch in kcheck's per-user cache
(``$XDG_CACHE_HOME/kcheck/conf/<key>/``), never in the user's tree:

- ``build-0/`` and ``build-1/`` are make's ``O=`` directories (``conf``,
  ``fixdep``; no ``.config``: every run names its own file with
  ``KCONFIG_CONFIG`` in a private temporary directory). Two, so that the run on
  the user's unchanged file and the run on the edited one can overlap: make
  rewrites a few files in ``O=`` on every run, so one directory serves one run
  at a time (``flock``);
- ``src/`` is a *shadow* of the tree: symlinks to its entries, minus what an
  in-tree build leaves behind (``.config``, ``include/config``,
  ``arch/<SRCARCH>/include/generated``). Gentoo users build in
  ``/usr/src/linux`` itself, and make refuses an ``O=`` build next to those
  ("the source tree is not clean"); through the shadow the same sources are
  read and nothing of the user's is touched.

``conf`` is a program kcheck runs, so the cache directory must be trusted
the way git trusts a repository: owned by the current user and writable by
no one else (:func:`trusted`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import ContextManager
from dataclasses import dataclass
from pathlib import Path

from kcheck import readsafe
from kcheck.kconfig import cache, trust
from kcheck.kconfig.env import srcarch

#: What building ``conf`` needs besides the tree (command -> what it is for).
TOOLS = {"make": "make", "flex": "flex", "bison": "bison"}
#: Variables of the caller's environment that would point make elsewhere than the private build.
_UNSET = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS", "KBUILD_OUTPUT", "O",
          "KCONFIG_CONFIG", "KCONFIG_ALLCONFIG", "KBUILD_EXTMOD", "M", "srctree", "objtree", "KBUILD_SRC")
#: Marks a build directory whose ``conf`` was built completely.
_BUILT = ".kcheck-conf-built"


class OracleError(Exception):
    """The kernel's conf cannot be used here; the message says why (a plain sentence)."""


def conf_root() -> Path:
    """Where the per-tree ``conf`` builds live (under kcheck's per-user cache)."""
    return cache.cache_dir() / "conf"


def trusted(path: Path) -> str | None:
    """Why ``path`` (a directory) must not hold a program kcheck runs, or None when it may.

    It must be a real directory (not a symlink), owned by the current user, and
    writable by nobody else: otherwise another user could swap ``conf`` for a
    program of theirs, which kcheck (perhaps as root, inside emerge) would run.
    """
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    return trust.ours_alone(st, path)


def _private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700 and check that every level kcheck owns is trusted."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise OracleError(f"kcheck's cache has no room for conf: cannot create {directory} ({exc.strerror})") from None
    for directory in (cache.cache_dir(), conf_root(), path):
        problem = trusted(directory)
        if problem:
            raise OracleError(f"kcheck's cache is not safe to run programs from: {problem}")


def entry_dir(srctree: Path, arch: str) -> Path:
    """The cache directory of one tree and arch."""
    key = f"{Path(srctree).resolve()}\0{arch}"
    return conf_root() / hashlib.sha256(key.encode()).hexdigest()[:24]


#: Build directories per tree: runs beyond this many wait for a free one.
SLOTS = 2


def _lock_fd(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)


@contextlib.contextmanager
def _locked(entry: Path, name: str = "prepare") -> Iterator[None]:
    fd = _lock_fd(entry / f"{name}.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _free_slot(entry: Path) -> Iterator[Path]:
    """A build directory no other run uses now (waiting for the first one when all are busy)."""
    fds = []
    try:
        for i in range(SLOTS):
            fd = _lock_fd(entry / f"slot-{i}.lock")
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield entry / f"build-{i}"
            return
        fcntl.flock(fds[0], fcntl.LOCK_EX)
        yield entry / "build-0"
    finally:
        for fd in fds:
            os.close(fd)


@contextlib.contextmanager
def _all_slots(entry: Path) -> Iterator[None]:
    """Every build directory, for (re)building them."""
    with contextlib.ExitStack() as stack:
        for i in range(SLOTS):
            stack.enter_context(_locked(entry, f"slot-{i}"))
        yield


#: Entries an in-tree build leaves that make refuses next to an O= build (its "not clean" test).
def _hidden(src_arch: str) -> set[str]:
    return {".config", "include/config", "include/generated", f"arch/{src_arch}/include/generated"}


def _shadow(srctree: Path, shadow: Path, src_arch: str) -> None:
    """Make ``shadow`` a symlink view of ``srctree`` without the in-tree build state (see the module docs)."""
    hidden = _hidden(src_arch)
    # Directories on the way to a hidden entry are real directories; everything else is a link.
    real = {"/".join(h.split("/")[:i]) for h in hidden for i in range(1, h.count("/") + 1)}

    def fill(rel: str) -> None:
        here = srctree / rel if rel else srctree
        for entry in sorted(os.listdir(here)):
            name = f"{rel}/{entry}" if rel else entry
            if name in hidden:
                continue
            if name in real and (here / entry).is_dir():
                (shadow / name).mkdir()
                fill(name)
            else:
                os.symlink(here / entry, shadow / name)

    if shadow.exists():
        shutil.rmtree(shadow)
    shadow.mkdir()
    fill("")


def _shadow_is_current(srctree: Path, shadow: Path) -> bool:
    """Whether the shadow still mirrors the tree's top level (a tree moved or gained entries)."""
    try:
        top = {e for e in os.listdir(srctree) if e != ".config"}
        return {e for e in os.listdir(shadow)} == top and os.readlink(shadow / "Kconfig") == str(srctree / "Kconfig")
    except OSError:
        return False


def make_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment for make, minus what would send it elsewhere (``O``, ``MAKEFLAGS``...).

    The toolchain variables (``CC``, ``LLVM``, ``CROSS_COMPILE``...) stay: the
    kernel is configured with the compiler that will build it.
    """
    env = dict(os.environ if environ is None else environ)
    for name in _UNSET:
        env.pop(name, None)
    env["LC_ALL"] = "C"
    return env


@dataclass
class Conf:
    """The tree's ``conf``, built in kcheck's cache; :meth:`olddefconfig` runs it on a file's text."""

    srctree: Path
    arch: str
    entry: Path
    env: dict[str, str]

    @property
    def shadow(self) -> Path:
        return self.entry / "src"

    def _command(self, build: Path, config: Path) -> list[str]:
        return ["make", "-s", "-C", str(self.shadow), f"O={build}", f"ARCH={self.arch}",
                f"KCONFIG_CONFIG={config}", "olddefconfig"]

    def olddefconfig(self, text: str) -> str:
        """What ``make olddefconfig`` writes for a ``.config`` holding ``text`` (in a private temp dir)."""
        return self.start(text).result()

    def start(self, text: str) -> Run:
        """Start :meth:`olddefconfig` on ``text`` in the background (see :class:`Run`)."""
        return Run(self, text)


class Run:
    """One ``make olddefconfig`` of a text in a private temporary directory, running in the background.

    :meth:`result` waits for conf's output (raising :class:`OracleError` when
    make fails); :meth:`cancel` stops it. Either removes the directory; a
    command that ends early calls :meth:`cancel` so that no make outlives it.
    """

    def __init__(self, conf: Conf, text: str, build: Path | None = None) -> None:
        self._cancelled = threading.Event()
        _active.add(self)  # first: cancel_all() must see it whenever its directory exists
        self._tmp = Path(tempfile.mkdtemp(prefix="kcheck-conf-"))
        self._config = self._tmp / ".config"
        self._config.write_text(text, encoding="utf-8")
        self._proc: subprocess.Popen[str] | None = None
        self._output: tuple[int, str] | None = None
        self._thread = threading.Thread(target=self._run, args=(conf, build), name="kcheck-conf", daemon=True)
        self._thread.start()

    def _run(self, conf: Conf, fixed: Path | None) -> None:
        try:
            # ``fixed``: the build directory the caller already holds (the first build of conf).
            with contextlib.nullcontext(fixed) if fixed is not None else _free_slot(conf.entry) as build:
                if self._cancelled.is_set():
                    return
                # Its own process group, so that cancel() stops make and everything it started; its own
                # TMPDIR, so that what a stopped compiler probe leaves goes with the directory.
                env = dict(conf.env, TMPDIR=str(self._tmp))
                self._proc = subprocess.Popen(conf._command(build, self._config), env=env, text=True,
                                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, start_new_session=True)
                out, _ = self._proc.communicate()
                self._output = (self._proc.returncode, out)
        except OSError as exc:
            self._output = (-1, str(exc))

    def result(self) -> str:
        """conf's ``.config`` for the text (waits for make)."""
        self._thread.join()
        try:
            if self._output is None:
                raise OracleError("the kernel's make olddefconfig was stopped")
            code, out = self._output
            if code != 0:
                lines = [line.strip(" *") for line in out.splitlines() if line.strip(" *")]
                raise OracleError(f"the kernel's make olddefconfig failed: {lines[-1] if lines else f'exit status {code}'}")
            return readsafe.read_text(self._config, what="configuration conf wrote")
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
            _active.discard(self)

    def cancel(self) -> None:
        """Stop make if it still runs, and clean up (nothing happens after :meth:`result`)."""
        self._cancelled.set()
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
        if hasattr(self, "_thread"):
            self._thread.join()
        if hasattr(self, "_tmp"):
            shutil.rmtree(self._tmp, ignore_errors=True)
        _active.discard(self)


#: Runs whose temporary directory may still exist (see :func:`cancel_all`).
_active: set[Run] = set()


def cancel_all() -> None:
    """Stop every background run of this process and remove its directory (a command's clean-up)."""
    for run in list(_active):
        run.cancel()


def missing_tools(env: Mapping[str, str]) -> list[str]:
    """The commands building ``conf`` needs that are not on ``PATH`` (the host C compiler included)."""
    hostcc = (env.get("HOSTCC") or ("clang" if env.get("LLVM") else "gcc")).split()[0]
    return [t for t in [*TOOLS, hostcc] if shutil.which(t, path=env.get("PATH")) is None]


def prepare(srctree: Path, arch: str, *, progress: Callable[[str], ContextManager[object]] | None = None,
            environ: Mapping[str, str] | None = None) -> Conf:
    """The tree's ``conf``, built on first use (once per tree and arch); raises :class:`OracleError`.

    The one-time build runs inside ``progress(what)`` (a context manager, such
    as :func:`kcheck.progress.step`), so a user sees what the wait is for.
    """
    srctree = Path(srctree).resolve()
    env = make_env(environ)
    missing = missing_tools(env)
    if missing:
        raise OracleError(f"the kernel's conf cannot be built here (no {', '.join(missing)})")
    entry = entry_dir(srctree, arch)
    _private_dir(entry)
    conf = Conf(srctree, arch, entry, env)
    with _locked(entry):
        built = all((entry / f"build-{i}" / "scripts" / "kconfig" / "conf").is_file() for i in range(SLOTS))
        if built and (entry / _BUILT).exists() and _shadow_is_current(srctree, conf.shadow):
            return conf
        with (progress or (lambda _: contextlib.nullcontext()))(f"building the kernel's conf for {srctree}"), \
                _all_slots(entry):
            (entry / _BUILT).unlink(missing_ok=True)
            _shadow(srctree, conf.shadow, srcarch(arch))
            first = entry / "build-0"
            first.mkdir(mode=0o700, exist_ok=True)
            try:
                # make olddefconfig on an empty file builds conf; as a Run, a terminated kcheck stops it too.
                Run(conf, "", build=first).result()
            except OracleError as exc:
                raise OracleError(f"building the kernel's conf in {first} failed: {exc}") from None
            # The other slots are copies: make finds them up to date (their paths are all relative or the shadow's).
            for i in range(1, SLOTS):
                other = entry / f"build-{i}"
                if other.exists():
                    shutil.rmtree(other)
                shutil.copytree(first, other, symlinks=True)
            (entry / _BUILT).write_text(f"{srctree}\n")
    return conf
