"""A per-user cache of parsed Kconfig trees, kept as data, so a repeated check skips the parse.

Parsing Linux's ~1,500 Kconfig files (and running their ``$(shell,...)``
probes) dominates a Kconfig-aware check. The parse, before any ``.config`` is
loaded, depends only on what the entry's *stamp* records:

- every Kconfig file kconfiglib read: its path, modification time (ns) and size;
- the environment: every variable the kernel's Makefile exports to Kconfig
  (the mapping :func:`kcheck.kconfig.env.kconfig_env` returns, so a variable
  added there is covered without touching this module), with unset ones
  recorded as unset, plus every other environment variable the Kconfig files
  read;
- the parse options (tree, arch, whether ``$(shell,...)`` ran) and the
  versions of this format, of kconfiglib and of the kcheck modules that shape
  the parse;
- for a parse that ran the tree's probes, the trust decision itself: every
  Kconfig file of the stamp, every directory above it and every probe script
  it ran must still pass :mod:`kcheck.kconfig.trust` (a directory made
  writable by every user, or a file given to another user, changes no
  modification time, yet a cold parse would now refuse its probes).

The entry is **data, not code**: a fixed header (magic, format version,
CRC-32 and the length of each section), a JSON object with the stamp and the
tree's names, one JSON record per symbol or choice with an offset table, the
menu tree as JSON and the expression table as 32-bit integers (see
:mod:`kcheck.kconfig.snapshot`). Nothing in it is
unpickled or executed; JSON can only produce strings, numbers and lists, and
records only rebuild kconfiglib's own classes. An entry whose length, version
or checksum is wrong, or whose stamp no longer matches, is ignored and
rebuilt.

Trust: an entry is read only when it is a regular file owned by the current
user and neither it nor any directory from it up to the cache's base
(``$XDG_CACHE_HOME``, else ``~/.cache``) belongs to another user or is
group/other-writable. Otherwise it is ignored (:func:`untrusted` says why;
``--verbose`` prints it) and never rewritten: root with another user's
``HOME`` neither reads nor writes that user's cache. Reads are bounded
(:data:`MAX_ENTRY`); a FIFO or device is refused before it is opened for reading.

Writing: after a parse, a child process writes the entry while kcheck goes
on with the check, and kcheck waits for it when it exits, after flushing the
report and closing stdout/stderr (so a pipe reading kcheck sees its end
first): no process outlives kcheck, unless ``KCHECK_CACHE_BACKGROUND=1`` asks
for a writer that finishes on its own (:func:`store_later`, :func:`flush`).
Entries are written to a temporary file and renamed into place, so a
concurrent reader never sees half a file.

Not covered: the output of ``$(shell,...)`` probes changing while every
variable stays the same (a compiler upgraded in place keeps ``CC=gcc`` but
changes ``CC_VERSION_TEXT``, which *is* covered), and new files matched by a
wildcard ``source`` (Linux does not use them).
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import stat
import struct
import sys
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import kconfiglib

from kcheck.kconfig import snapshot, trust
from kcheck.kconfig.env import key_variables

#: Bump when the layout of an entry or of its records changes.
FORMAT = 2
MAGIC = b"KCHECKKC"
#: magic, format, CRC-32 of everything after the header, then the length of each section
#: (stamp JSON, number of records, records, menu tree JSON, expression table).
_HEADER = struct.Struct("<8sIIQQQQQ")
#: No real tree comes near this (Linux 7.3 x86: about 12 MB); anything larger is refused unread.
MAX_ENTRY = 256 * 1024 * 1024
SUFFIX = ".kcc"
#: The kcheck modules whose code shapes what a parse produces.
_CODE = ("compat.py", "env.py", "probes.py", "snapshot.py", "cache.py", "trust.py")


def cache_base(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME``, or ``~/.cache`` when it is unset, empty or relative (as the XDG spec says)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(Path.home(), ".cache")
    return Path(base)


def cache_dir() -> Path:
    """Return the directory kcheck keeps its per-user cache in."""
    return cache_base() / "kcheck"


def entry_path(srctree: Path, arch: str, allow_shell: bool) -> Path:
    """Return the cache file for one tree, arch and shell mode."""
    key = f"{Path(srctree).resolve()}\0{arch}\0{allow_shell}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / f"kconfig-{digest}{SUFFIX}"


# ---------------------------------------------------------------------------------------------
# Trust
# ---------------------------------------------------------------------------------------------

def untrusted_dirs(path: Path) -> str | None:
    """Why the directories from ``path``'s parent up to the cache base cannot be trusted, or None."""
    base = cache_base()
    directory = path.parent
    chain = [directory]
    while directory != base and directory != directory.parent:
        directory = directory.parent
        chain.append(directory)
    if directory != base:
        return f"{path} is not under the cache base {base}"
    for directory in chain:
        try:
            reason = trust.ours_alone(os.stat(directory), directory, "cache directory")
        except OSError:
            continue  # missing: nothing there to trust or distrust yet
        if reason:
            return reason
    return None


def untrusted(path: Path) -> str | None:
    """Why the cache entry at ``path`` must not be read, or None when it may (see the module docs).

    The one rule for every file kcheck keeps in its cache (parse entries here,
    symbol names in :mod:`kcheck.kconfig.names`).
    """
    reason = untrusted_dirs(path)
    if reason:
        return reason
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"cache entry {path} is not a regular file"
    return trust.ours_alone(st, path, "cache entry")


def read_entry(path: Path, limit: int = MAX_ENTRY) -> bytes | None:
    """The bytes of the cache entry ``path``, judged on the descriptor they are read from; None if refused.

    Opened without following a link or blocking, then its ``fstat`` must
    show a regular file of at most ``limit`` bytes that is ours alone
    (:func:`~kcheck.kconfig.trust.ours_alone`): a file swapped in after
    :func:`untrusted` looked at the name is not the one read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit or trust.ours_alone(st, path, "cache entry"):
            return None
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                return None  # truncated while we read
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Stamp
# ---------------------------------------------------------------------------------------------

def _code_stamp() -> list:
    here = Path(__file__).parent
    out = []
    for name in _CODE:
        try:
            st = os.stat(here / name)
            out.append([name, st.st_mtime_ns, st.st_size])
        except OSError:
            out.append([name, None, None])
    return out


def _file_stamps(srctree: str, filenames, lstats: dict | None = None) -> list | None:
    """[name, mtime_ns, size] of each file (a symlink's target's); ``lstats`` collects each name's ``lstat``."""
    stamps = []
    for name in dict.fromkeys(filenames):
        path = os.path.join(srctree, name)
        try:
            st = os.lstat(path)
            st_target = os.stat(path) if stat.S_ISLNK(st.st_mode) else st
        except OSError:
            return None  # a file vanished: never matches a stored stamp
        if lstats is not None:
            lstats[name] = st
        stamps.append([name, st_target.st_mtime_ns, st_target.st_size])
    return stamps


def env_stamp(names, env: Mapping[str, str]) -> dict:
    """name -> value (None when unset) for ``names`` plus every variable of ``env``, as the parse saw them."""
    return key_variables(env, names)


def _options(srctree: str, arch: str, allow_shell: bool) -> dict:
    return {
        "format": FORMAT,
        "kconfiglib": getattr(kconfiglib, "__version__", "14.1.0"),
        "code": _code_stamp(),
        "srctree": str(srctree),
        "arch": arch,
        "allow_shell": allow_shell,
    }


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

class Entry:
    """A validated cache entry: its stamp and the records :class:`snapshot.LazyKconfig` rebuilds from."""

    def __init__(self, meta: dict, data: bytes, offsets: tuple, records_at: int, tree_at: int, exprs_at: int) -> None:
        self.meta = meta
        self._data = memoryview(data)
        self._offsets = offsets
        self._records_at = records_at
        self._tree_at = tree_at
        self._exprs_at = exprs_at
        self._lazy: snapshot.LazyKconfig | None = None

    def record(self, i: int) -> bytes:
        """The JSON bytes of item ``i``."""
        base = self._records_at
        return bytes(self._data[base + self._offsets[i]: base + self._offsets[i + 1]])

    def tree(self) -> bytes:
        """The JSON bytes of the menu tree."""
        return bytes(self._data[self._tree_at: self._exprs_at])

    def lazy(self) -> snapshot.LazyKconfig:
        """A :class:`~kcheck.kconfig.snapshot.LazyKconfig` over this entry (made once).

        Raises :class:`~kcheck.kconfig.snapshot.SnapshotError` when the entry's
        description of the tree is not what this version writes.
        """
        if self._lazy is None:
            try:
                self._lazy = snapshot.LazyKconfig(self.meta["tree"], self.record, self.tree,
                                                  self._data[self._exprs_at:])
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise snapshot.SnapshotError(f"the tree's description is damaged: {exc!r}") from None
        return self._lazy


def parse_entry(data: bytes) -> Entry | None:
    """Validate an entry's layout (magic, version, lengths, CRC-32); None when anything is off."""
    if len(data) < _HEADER.size:
        return None
    magic, version, crc, meta_len, n_items, records_len, tree_len, exprs_len = _HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT:
        return None
    offsets_len = 8 * (n_items + 1)
    if _HEADER.size + meta_len + offsets_len + records_len + tree_len + exprs_len != len(data) or exprs_len % 12:
        return None
    if zlib.crc32(memoryview(data)[_HEADER.size:]) != crc:
        return None
    at = _HEADER.size
    try:
        meta = json.loads(bytes(data[at: at + meta_len]))
    except (ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("tree"), dict):
        return None
    at += meta_len
    offsets = struct.unpack_from(f"<{n_items + 1}Q", data, at)
    if offsets[0] != 0 or offsets[-1] != records_len or any(a > b for a, b in zip(offsets, offsets[1:])):
        return None
    names = meta["tree"].get("names")
    if not isinstance(names, list) or len(names) - meta["tree"].get("n_consts", 0) + 3 != n_items:
        return None
    at += offsets_len
    return Entry(meta, data, offsets, at, at + records_len, at + records_len + tree_len)


#: What was said about cache entries in this process (``--verbose`` prints these lines).
NOTES: list[str] = []


def note(text: str) -> str:
    """Record ``text`` for ``--verbose`` (see :data:`NOTES`) and return it."""
    if text not in NOTES:
        NOTES.append(text)
    return text


def load(path: Path, srctree: str, arch: str, allow_shell: bool, env: Mapping[str, str]) -> tuple[Entry | None, str | None]:
    """Return (the valid entry at ``path`` or None, why it was not used when that is worth saying)."""
    reason = untrusted(path)
    if reason:
        return None, note(f"{reason}: the Kconfig cache there is ignored and not rewritten")
    data = read_entry(path)
    if data is None:
        if os.path.lexists(path):
            return None, note(f"cache entry {path} is not a regular file of at most {MAX_ENTRY} bytes: parsed again")
        return None, None
    entry = parse_entry(data)
    if entry is None:
        return None, note(f"cache entry {path} is damaged or from another kcheck version: parsed again")
    stamp = entry.meta
    if stamp.get("options") != _options(srctree, arch, allow_shell):
        return None, None
    files = stamp.get("files")
    lstats: dict = {}
    if not isinstance(files, list) or _file_stamps(srctree, [f[0] for f in files], lstats) != files:
        return None, None
    stored_env = stamp.get("env")
    if not isinstance(stored_env, dict) or env_stamp(stored_env, env) != stored_env:
        return None, None
    if allow_shell:
        # Made running the tree's probes: valid only while the trust rule would let them run now.
        scripts = stamp.get("scripts")
        if not isinstance(scripts, list) or not all(isinstance(s, str) for s in scripts):
            return None, None
        if trust.TrustGuard(srctree).check_stamped(list(lstats), scripts, lstats):
            return None, note(f"cache entry {path} was made running the tree's probes, which the trust rule "
                              "now refuses: not used")
    try:
        entry.lazy()
    except snapshot.SnapshotError:
        return None, note(f"cache entry {path} is damaged or from another kcheck version: parsed again")
    return entry, None


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def serialize(kconf, srctree: str, arch: str, allow_shell: bool, env: Mapping[str, str],
              refused: dict | None = None) -> bytes:
    """Return the bytes of a cache entry for ``kconf`` (freshly parsed, no ``.config`` loaded).

    ``refused`` records the file that stopped the probes of a parse that was
    allowed to run them (see ``tree._refused_entry``).
    """
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of short-lived lists: collecting them only costs time
    try:
        tree, records, tree_json, expressions = snapshot.encode(kconf)
    finally:
        if enabled:
            gc.enable()
    meta = {
        "options": _options(srctree, arch, allow_shell),
        "files": _file_stamps(srctree, kconf.kconfig_filenames) or [],
        "env": env_stamp(kconf.env_vars, env),
        "refused": refused,
        "scripts": list(getattr(kconf, "probe_scripts", [])),
        "tree": tree,
    }
    meta_json = json.dumps(meta, separators=(",", ":")).encode()
    offsets = [0]
    for record in records:
        offsets.append(offsets[-1] + len(record))
    body = b"".join([meta_json, struct.pack(f"<{len(offsets)}Q", *offsets), *records, tree_json, expressions])
    header = _HEADER.pack(MAGIC, FORMAT, zlib.crc32(body), len(meta_json), len(records),
                          offsets[-1], len(tree_json), len(expressions))
    return header + body


def store(path: Path, kconf, srctree: str, arch: str, allow_shell: bool, env: Mapping[str, str],
          refused: dict | None = None) -> bool:
    """Write the entry for ``kconf`` to ``path`` atomically; False when it cannot or must not be written.

    Never writes into a directory another user owns or can write, and never
    changes an existing file's owner: root with another user's ``HOME`` leaves
    that user's cache alone.
    """
    from kcheck.safewrite import signals_deferred

    if untrusted(path):
        return False
    tmp = None
    try:
        data = serialize(kconf, srctree, arch, allow_shell, env, refused)
        base = cache_base()
        for directory in reversed([path.parent, *path.parent.parents]):
            if directory == base or base in directory.parents:
                try:
                    os.mkdir(directory, 0o700)
                except FileExistsError:
                    pass
        if untrusted_dirs(path):  # re-checked: nobody may swap a directory in meanwhile
            return False
        with signals_deferred():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, path)
            tmp = None
        _remove_pickles(path.parent)
        return True
    except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _remove_pickles(directory: Path) -> None:
    """Delete the pickled entries kcheck wrote before this format (``kconfig-*.pickle``): no pickle stays behind."""
    for old in directory.glob("kconfig-*.pickle"):
        try:
            st = os.lstat(old)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                os.unlink(old)
        except OSError:
            pass


_pending: list[tuple] = []  # entries to write at exit, where no writer could be started
_writers: list[int] = []  # children writing entries
_registered: list[bool] = []


def _in_worker() -> bool:
    """True in a worker process of a multiprocessing pool (``kcheck lint``)."""
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is not None and multiprocessing.parent_process() is not None


def _background() -> bool:
    return os.environ.get("KCHECK_CACHE_BACKGROUND") == "1"


def store_later(path: Path, kconf, srctree: str, arch: str, allow_shell: bool, env: Mapping[str, str],
                refused: dict | None = None) -> None:
    """Have the entry written by the time kcheck exits (see the module docs).

    The entry is written by a child started now, so that on a machine with a
    core to spare the writing overlaps the check instead of following it;
    :func:`flush` (run at exit) closes stdout/stderr and waits for it, so no
    process outlives kcheck, unless ``KCHECK_CACHE_BACKGROUND=1`` asks for
    exactly that. Without ``fork`` the entry is written at exit, in this
    process.
    """
    if not _registered:
        atexit.register(flush)
        _registered.append(True)
    job = (path, kconf, srctree, arch, allow_shell, dict(env), refused)
    if _in_worker():
        store(*job)  # a lint worker ends without running exit handlers: write now, leave nothing behind
        return
    pid = None
    if hasattr(os, "fork"):
        try:
            pid = os.fork()
        except OSError:
            pid = None
        if pid == 0:  # the writer: it must not hold the caller's terminal or pipes open
            ok = False
            try:
                _detach_stdio()
                ok = store(*job)
            finally:
                os._exit(0 if ok else 1)
    if pid:
        _writers.append(pid)
        return
    if _pending:  # one parse kept alive at a time (a test session parses many trees)
        flush(close_output=False)
    _pending.append(job)


def flush(*, close_output: bool = True) -> None:
    """Finish the cache writes: close stdout/stderr, write what is pending, wait for the writers.

    Runs at exit (registered by :func:`store_later`); with
    ``KCHECK_CACHE_BACKGROUND=1`` the writers are left to finish on their own.
    """
    if not _pending and not _writers:
        return
    if close_output:
        _close_output()
    jobs = list(_pending)
    _pending.clear()
    for job in jobs:
        store(*job)
    if _background():
        return
    for pid in list(_writers):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        except KeyboardInterrupt:
            break  # the writer got the same signal; its temporary file is its own to remove
        _writers.remove(pid)


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _close_output() -> None:
    """Flush the output and let go of stdout/stderr, so whoever reads them sees the end now."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)
