"""The symbol names a kernel tree defines, for shell completion: cheap, cached, data only.

``kcheck explain <TAB>`` must answer at once, so this does not parse Kconfig.
It reads the ``config NAME`` and ``menuconfig NAME`` lines of every
``Kconfig*`` file under the tree (every architecture's: for completion a
superset is right) and keeps the sorted list as JSON in kcheck's per-user
cache directory, one file per tree. The entry is stamped with the path, size
and mtime of every file read; a patch that adds a Kconfig file also edits the
file that sources it, so the stamp catches it and the list is rebuilt.

Completion may run as root in a shell whose ``HOME`` another user controls,
so an entry is read only when it and every directory up to the cache base
belong to the current user and nobody else can write them (the parse cache's
rule and code, :func:`kcheck.kconfig.cache.untrusted`), judged on the
descriptor it is read from, and only as JSON: nothing read here is executed or unpickled. Reading
the tree is bounded too: no symlinks followed, regular files only, at most
1 MiB a file and :data:`MAX_FILES` files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

#: Bump when the entry's layout changes.
FORMAT = 1
#: A Kconfig file larger than this is not a Kconfig file (Linux's largest is ~60 KB).
MAX_FILE_BYTES = 1 << 20
#: Linux has ~1,800 Kconfig files; far more means this is not a kernel tree.
MAX_FILES = 20_000
#: A cache entry larger than this is not one of ours (Linux's list is ~400 KB).
MAX_ENTRY_BYTES = 16 << 20
#: Top-level directories whose Kconfig-like files the kernel's Kconfig never sources.
_SKIP_TOP = {"Documentation", "tools"}
_DEFINITION = re.compile(rb"^[ \t]*(?:menu)?config[ \t]+([A-Za-z0-9_]+)[ \t]*(?:#.*)?$", re.M)


def entry_path(srctree: Path) -> Path:
    """The cache file holding ``srctree``'s names."""
    from kcheck.kconfig.cache import cache_dir

    digest = hashlib.sha256(str(Path(srctree).resolve()).encode()).hexdigest()[:24]
    return cache_dir() / f"names-{digest}.json"


def _read_bounded(path: str) -> bytes | None:
    """The bytes of a regular file (None for anything else, or when too large)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def kconfig_files(srctree: Path) -> list[str]:
    """Paths (relative to ``srctree``) of the tree's ``Kconfig*`` files, sorted; symlinks not followed."""
    found: list[str] = []
    root = str(srctree)
    for dirpath, dirnames, filenames in os.walk(root):
        top = dirpath == root
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (top and d in _SKIP_TOP))
        for name in filenames:
            if name.startswith("Kconfig"):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
                if len(found) > MAX_FILES:
                    return sorted(found)
    return sorted(found)


def _stamps(srctree: Path, files: list[str]) -> list[list]:
    stamps = []
    for rel in files:
        try:
            info = os.lstat(os.path.join(srctree, rel))
        except OSError:
            stamps.append([rel, None, None])
            continue
        stamps.append([rel, info.st_mtime_ns, info.st_size])
    return stamps


def scan(srctree: Path) -> tuple[list[str], list[list]]:
    """Return the sorted names defined under ``srctree`` and the stamps of the files read."""
    files = kconfig_files(srctree)[:MAX_FILES]
    names: set[str] = set()
    for rel in files:
        data = _read_bounded(os.path.join(srctree, rel))
        if data:
            names.update(m.decode("ascii") for m in _DEFINITION.findall(data))
    return sorted(names), _stamps(srctree, files)


def _load(entry: Path, srctree: Path) -> list[str] | None:
    """The cached names if the entry is trusted, well-formed and still matches the tree."""
    from kcheck.kconfig import cache

    if cache.untrusted(entry):
        return None
    data = cache.read_entry(entry, MAX_ENTRY_BYTES)
    if data is None:
        return None
    try:
        stored = json.loads(data)
    except ValueError:
        return None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("tree") != str(srctree):
        return None
    names, files = stored.get("names"), stored.get("files")
    if not isinstance(names, list) or not isinstance(files, list) or not all(isinstance(n, str) for n in names):
        return None
    try:
        rels = [str(item[0]) for item in files]
    except (TypeError, IndexError):
        return None
    if _stamps(srctree, rels) != files:
        return None
    return names


def _store(entry: Path, srctree: Path, names: list[str], files: list[list]) -> None:
    """Write the entry atomically; a cache that cannot be written only costs a rescan."""
    from kcheck import safewrite
    from kcheck.errors import KcheckError

    try:
        from kcheck.kconfig import cache

        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if cache.untrusted_dirs(entry):
            return  # a directory we do not own alone: never write where we would not read
        data = json.dumps({"format": FORMAT, "tree": str(srctree), "files": files, "names": names})
        safewrite.write_atomic(entry, data, backup=False)
    except (OSError, KcheckError):
        pass


def symbol_names(srctree: Path) -> list[str]:
    """The names of every symbol ``srctree``'s Kconfig files define (from the cache when still valid)."""
    srctree = Path(srctree).resolve()
    if not (srctree / "Kconfig").is_file():
        return []
    entry = entry_path(srctree)
    names = _load(entry, srctree)
    if names is None:
        names, files = scan(srctree)
        _store(entry, srctree, names, files)
    return names
