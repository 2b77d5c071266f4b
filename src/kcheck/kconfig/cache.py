"""A per-user cache of parsed Kconfig trees, so a repeated check skips the 2 s parse.

Parsing Linux's ~1,500 Kconfig files (and running their ``$(shell,...)``
probes) dominates a Kconfig-aware check; the parsed ``Kconfig`` object,
before any ``.config`` is loaded, only depends on

- the Kconfig files kconfiglib read (``kconf.kconfig_filenames``): their
  paths, modification times (ns) and sizes, and
- the environment: every variable the Makefile exports to Kconfig and every
  one the Kconfig files referenced, set or not (``CC``, ``SRCARCH``,
  ``CC_VERSION_TEXT``, ``PAHOLE_VERSION``...; see
  :func:`kcheck.kconfig.env.key_variables`), and their values,

plus the parse options (arch, whether ``$(shell,...)`` ran) and the versions
of kconfiglib and of this format. Those make up the *stamp* stored in front
of the pickled object. A cache entry whose stamp no longer matches is
rebuilt; an unreadable or corrupt one is ignored and rebuilt. Entries are
written to a temporary file and renamed into place, so a concurrent reader
never sees half a file.

Not covered: the output of ``$(shell,...)`` probes changing while every
variable stays the same (a compiler upgraded in place keeps ``CC=gcc`` but
changes ``CC_VERSION_TEXT``, which *is* covered), and new files matched by a
wildcard ``source`` (Linux does not use them).

Location: ``$XDG_CACHE_HOME/kcheck`` (default ``~/.cache/kcheck``), one file
per source tree, arch and shell mode.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import kconfiglib

from kcheck.kconfig.env import key_variables

#: Bump when the pickled layout or the compat layer's parse output changes.
FORMAT = 4


def cache_dir() -> Path:
    """Return the directory kcheck keeps its per-user cache in."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "kcheck"


def entry_path(srctree: Path, arch: str, allow_shell: bool) -> Path:
    """Return the cache file for one tree, arch and shell mode."""
    key = f"{Path(srctree).resolve()}\0{arch}\0{allow_shell}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / f"kconfig-{digest}.pickle"


def _file_stamps(srctree: str, filenames) -> tuple:
    stamps = []
    for name in dict.fromkeys(filenames):
        path = os.path.join(srctree, name)
        try:
            st = os.stat(path)
        except OSError:
            return ()  # a file vanished: never matches a stored stamp
        stamps.append((name, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def stamp(kconf: kconfiglib.Kconfig, env: Mapping[str, str]) -> dict:
    """Return what a parse depended on: file stamps and referenced env values."""
    return {
        "format": FORMAT,
        "kconfiglib": kconfiglib.__version__ if hasattr(kconfiglib, "__version__") else "14.1.0",
        "python": sys.version_info[:2],
        "files": _file_stamps(kconf.srctree, kconf.kconfig_filenames),
        "env": key_variables(env, kconf.env_vars),
    }


def _still_valid(stored: dict, srctree: str, env: Mapping[str, str]) -> bool:
    if stored.get("format") != FORMAT or stored.get("python") != sys.version_info[:2]:
        return False
    names = [name for name, _, _ in stored["files"]]
    if _file_stamps(srctree, names) != stored["files"]:
        return False
    return all(env.get(n, os.environ.get(n)) == v for n, v in stored["env"].items())


def _deep(fn, *args):
    """Run ``fn`` where deep recursion is safe: pickling recurses along long menu-node chains."""
    result: list = []
    error: list = []

    def run() -> None:
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, 200_000))
        try:
            result.append(fn(*args))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)
        finally:
            sys.setrecursionlimit(old_limit)

    old_size = threading.stack_size()
    threading.stack_size(512 * 1024 * 1024)
    try:
        thread = threading.Thread(target=run, name="kcheck-kconfig-cache")
        thread.start()
    finally:
        threading.stack_size(old_size)
    thread.join()
    if error:
        raise error[0]
    return result[0]


def load(path: Path, srctree: str, env: Mapping[str, str]) -> kconfiglib.Kconfig | None:
    """Return the cached parse at ``path`` if it is still valid, else None."""
    try:
        with open(path, "rb") as fh:
            stored = pickle.load(fh)
            if not isinstance(stored, dict) or not _still_valid(stored, srctree, env):
                return None
            gc_was_enabled = gc.isenabled()
            gc.disable()  # unpickling 300k small objects: the collector only slows it down
            try:
                kconf = pickle.load(fh)  # the unpickler is iterative: no deep recursion here
            finally:
                if gc_was_enabled:
                    # The parse lives as long as the process: keep later collections off it.
                    gc.freeze()
                    gc.enable()
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - any damage to a cache file means "rebuild it"
        return None
    return kconf if isinstance(kconf, kconfiglib.Kconfig) else None


def _share_empty(kconf: kconfiglib.Kconfig) -> None:
    """Make all empty property lists/sets one shared object each (a third fewer objects to unpickle).

    After parsing, kconfiglib only reads these containers; nothing appends to them.
    """
    empty_list: list = []
    empty_set: set = set()
    items = [*kconf.unique_defined_syms, *kconf.unique_choices, *kconf.menus, *kconf.comments]
    items += [node for sc in (*kconf.unique_defined_syms, *kconf.unique_choices) for node in sc.nodes]
    for item in items:
        for cls in type(item).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                value = getattr(item, slot, None)
                if value.__class__ is list and not value:
                    setattr(item, slot, empty_list)
                elif value.__class__ is set and not value:
                    setattr(item, slot, empty_set)


_pending: list[int] = []


def store_in_background(path: Path, kconf: kconfiglib.Kconfig, env: Mapping[str, str]) -> None:
    """Write the cache entry from a forked child, so the first run does not wait ~1 s for it.

    The child has its own copy of the parse; the caller goes on at once. Where
    ``fork`` is unavailable the entry is written in the foreground.
    """
    reap()
    if not hasattr(os, "fork"):
        store(path, kconf, env)
        return
    pid = os.fork()
    if pid == 0:  # the child: write, then leave without running the parent's cleanup
        ok = False
        try:
            # Let go of the parent's stdin/stdout/stderr: whoever reads kcheck's output
            # (a pipe, `$(kcheck ...)`) must not wait for the cache writer.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            ok = store(path, kconf, env)
        finally:
            os._exit(0 if ok else 1)
    _pending.append(pid)


def reap(*, wait: bool = False) -> None:
    """Collect finished background writers (all of them, waiting, with ``wait=True``)."""
    for pid in list(_pending):
        try:
            done, _ = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _pending.remove(pid)


def store(path: Path, kconf: kconfiglib.Kconfig, env: Mapping[str, str]) -> bool:
    """Write ``kconf`` (freshly parsed, no ``.config`` loaded) to ``path`` atomically.

    Returns False when the cache cannot be written (read-only home, full disk);
    kcheck then simply parses again next time.
    """
    from kcheck import safewrite

    try:
        _share_empty(kconf)
        data = pickle.dumps(stamp(kconf, env), protocol=pickle.HIGHEST_PROTOCOL)
        data += _deep(pickle.dumps, kconf, pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The same atomic replace as a user's .config: a reader sees the old entry or the new one, never half.
        safewrite.write_atomic(path, data, backup=False)
        return True
    except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
        return False
