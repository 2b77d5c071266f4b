"""Run a Kconfig file's ``$(shell,...)`` probes in parallel, ahead of the parse.

Most of the time a cold parse of Linux takes goes to ~100 ``$(shell,...)``
probes (``$(cc-option,...)``, ``$(as-instr,...)``, ``$(ld-option,...)``), each
starting the compiler once; kconfiglib runs them one after the other, as
``conf`` does. When kconfiglib enters a Kconfig file, :class:`ProbeRunner`
expands the file's ``$(...)`` lines once in a dry run that only *records* the
shell commands (no command runs, no ``$(info)``/``$(error-if)`` fires, no
parser state changes) and starts them on a thread pool; the probe-heavy files
of Linux (:data:`EARLY_FILES`) are treated so as soon as the probe macros
exist, so their probes run while the parser is busy with probe-free files.
When the real parse reaches a probe, :func:`shell` takes the result if that
exact command ran, waits if it is running, and runs it itself if it is not
prefetched or still queued. A command depends only on its text and the
environment, which the dry run and the parse share, so results are exactly
those of running the probes in order; a dry run that guesses a command wrong
(because it depends on an earlier probe's output) only wastes that one run.

Security: these are the only shell commands kcheck runs, and their text comes
from the kernel tree's own Kconfig files (``scripts/Kconfig.include`` and the
files that call its macros), never from kcheck's command line, a ``.config``,
a profile or the Portage hook's arguments. They run through ``/bin/sh``
exactly as ``make olddefconfig`` runs them, with the same environment, so
evaluating a tree runs what building it would run. Whoever controls the tree
controls these commands: ``--no-shell`` (``allow_shell=False``) runs none of
them (each probe answers "n"), and running as root kcheck never runs them for
a tree any part of which belongs to another user (:mod:`kcheck.kconfig.trust`:
each file is checked before any of its probes starts, and every file of the
tree a probe command names before that command starts).

The prefetch runs nothing the parse would not: only lines kconfiglib expands
(not help text, not ``#`` comments, not what follows a trailing ``#``), and
only in files the parse enters, or, for :data:`EARLY_FILES`, files a
``source`` line of a file already read names. A termination signal during
the parse stops the running probes and removes their scratch directory.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_ASSIGNMENT = re.compile(r"^\s*[A-Za-z0-9_-]+\s*(:=|\+=|\?=|=)")
_SOURCE = re.compile(r'^\s*(o?r?source)\s+"([^"]*)"\s*$')

#: Linux Kconfig files that hold most of the probes, in the order the parse reaches them
#: (``{SRCARCH}`` is filled in). Their probes start as soon as the probe macros exist and a
#: file already read sources them, so they run while the parser is still in the long
#: probe-free stretch (drivers/, fs/...).
EARLY_FILES = (
    "init/Kconfig",
    "arch/Kconfig",
    "arch/{SRCARCH}/Kconfig",
    "arch/{SRCARCH}/Kconfig.assembler",
    "arch/{SRCARCH}/Kconfig.cpu",
    "security/Kconfig",
    "security/Kconfig.hardening",
    "lib/Kconfig.debug",
    "lib/Kconfig.ubsan",
    "lib/Kconfig.kasan",
    "lib/Kconfig.kcsan",
    "lib/Kconfig.kmsan",
    "kernel/trace/Kconfig",
)
#: A macro scripts/Kconfig.include defines; once it exists, probes can be expanded.
_PROBE_MACRO = "cc-option"
_SILENCED = ("info", "warning-if", "error-if")


def code_part(line: str) -> str:
    """``line`` up to a ``#`` outside quotes: kconfiglib's tokenizer stops there and expands nothing after it."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1  # an escaped character, whatever it is
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            return line[:i]
        i += 1
    return line


def _finished(result) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


class ProbeRunner:
    """Starts the probes of each Kconfig file on a thread pool (see the module docs).

    ``guard`` (a :class:`kcheck.kconfig.trust.TrustGuard`) is asked about every
    file of the tree a command names before the command starts.
    """

    def __init__(self, workers: int | None = None, guard=None, srctree: str | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                       thread_name_prefix="kcheck-probe")
        self.futures: dict[str, Future] = {}
        self.guard = guard
        self.srctree = os.path.realpath(srctree) if srctree else None
        self._tree_path = re.compile(re.escape(self.srctree) + r"/[^\s'\"`;|&<>()$]*") if self.srctree else None
        #: srctree-relative paths (or glob patterns) named by a ``source`` line of a file read so far.
        self.announced: set[str] = set()
        self._early_done: set[str] = set()
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._closing = False
        # Probes such as cc-option write scratch files into the current directory
        # (make runs them in the build directory); kcheck's may be read-only.
        self.workdir = tempfile.mkdtemp(prefix="kcheck-probes-")

    def _run(self, command: str) -> tuple[bytes, bytes]:
        with self._lock:
            if self._closing:
                return b"", b""
            # Its own process group, so that stopping it stops what the shell started too.
            proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)
            self._procs.add(proc)
        try:
            return proc.communicate()
        finally:
            with self._lock:
                self._procs.discard(proc)

    def _allow(self, command: str) -> None:
        if self.guard is not None and self._tree_path is not None:
            for path in self._tree_path.findall(command):
                self.guard.require_script(path)

    def enter(self, kconf, relpath: str, code_lines: list[str], srcarch: str, read_lines) -> None:
        """The parse is entering the Kconfig file ``relpath``: start its probes and the early ones now known.

        ``code_lines`` are the file's lines outside help texts (help text is
        never expanded, so its ``$(shell,...)`` must not run); ``read_lines(path)``
        returns those lines for another file of the tree (None when unreadable).
        """
        self._announce(kconf, relpath, code_lines)
        if _PROBE_MACRO in kconf.variables:
            self._prefetch_early(kconf, srcarch, read_lines)
        self.prefetch(kconf, code_lines)

    def _announce(self, kconf, relpath: str, code_lines: list[str]) -> None:
        for line in code_lines:
            if "source" not in line:
                continue  # cannot match _SOURCE; most lines, and code_part is slow
            match = _SOURCE.match(code_part(line))
            if not match:
                continue
            kind, pattern = match.groups()
            if "$(" in pattern:
                pattern = self._dry_expand(kconf, pattern)
                if pattern is None:
                    continue
            if kind in ("rsource", "orsource"):
                pattern = posixpath.join(posixpath.dirname(relpath), pattern)
            self.announced.add(posixpath.normpath(pattern))

    def _is_announced(self, relpath: str) -> bool:
        return relpath in self.announced or any(
            fnmatch.fnmatchcase(relpath, pattern) for pattern in self.announced if glob_magic(pattern))

    def _prefetch_early(self, kconf, srcarch: str, read_lines) -> None:
        progress = True
        while progress:
            progress = False
            for template in EARLY_FILES:
                relpath = template.format(SRCARCH=srcarch)
                if relpath in self._early_done or not self._is_announced(relpath):
                    continue
                self._early_done.add(relpath)
                progress = True
                lines = read_lines(relpath)
                if lines is None:
                    continue
                self._announce(kconf, relpath, lines)
                self.prefetch(kconf, lines)

    @contextlib.contextmanager
    def _dry_run(self, kconf, commands: list[str]) -> Iterator[None]:
        """Expand without side effects: ``$(shell,...)`` only records its command, messages are silenced."""
        saved_functions = kconf._functions
        saved_counts = {name: var._n_expansions for name, var in kconf.variables.items()}
        saved_env_vars = set(kconf.env_vars)
        functions = dict(saved_functions)
        functions["shell"] = (lambda _kc, _name, command: commands.append(command) or "", 1, 1)
        for name in _SILENCED:
            if name in functions:
                _, lo, hi = functions[name]
                functions[name] = (lambda *_args: "", lo, hi)
        kconf._functions = functions
        try:
            yield
        finally:
            for name, count in saved_counts.items():
                if name in kconf.variables:
                    kconf.variables[name]._n_expansions = count
            kconf._functions = saved_functions
            kconf.env_vars.clear()
            kconf.env_vars.update(saved_env_vars)

    def _dry_expand(self, kconf, text: str) -> str | None:
        with self._dry_run(kconf, []):
            try:
                return kconf._expand_whole(text, ())
            except Exception:  # noqa: BLE001 - a dry run may fail; the real parse decides
                return None

    def prefetch(self, kconf, code_lines: list[str]) -> None:
        """Start the probes of these lines (of a Kconfig file about to be parsed)."""
        lines = [code_part(ln) for ln in code_lines if "$(" in ln and not _ASSIGNMENT.match(ln)]
        lines = [ln for ln in lines if "$(" in ln]
        if not lines:
            return
        commands: list[str] = []
        with self._dry_run(kconf, commands):
            for line in lines:
                try:
                    kconf._expand_whole(line, ())
                except Exception:  # noqa: BLE001 - a dry run may fail; the real parse decides
                    continue
        for command in commands:
            if command not in self.futures:
                self._allow(command)
                self.futures[command] = self.pool.submit(self._run, command)

    def result(self, command: str) -> tuple[bytes, bytes]:
        """Return (stdout, stderr) of ``command``: the prefetched run, or a run now."""
        future = self.futures.get(command)
        if future is None or future.cancel():
            # Not prefetched, or still queued behind probes the parse needs later: the
            # parse needs it now, so run it here instead of waiting for the queue.
            self._allow(command)
            result = self._run(command)
            if future is not None:
                self.futures[command] = _finished(result)
            return result
        return future.result()

    def close(self, *, kill: bool = False) -> None:
        """Drop probes not started yet, wait for the running ones (``kill``: stop them), remove the scratch directory."""
        if kill:
            with self._lock:
                self._closing = True
                for proc in self._procs:
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, signal.SIGKILL)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def glob_magic(pattern: str) -> bool:
    """True when a ``source`` pattern is a glob (kconfiglib globs every source)."""
    return any(c in pattern for c in "*?[")


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during a parse; raised to run the clean-up, then re-delivered."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Terminated` for the block, then die of the signal as usual.

    Without this, a kill during a parse ends the process before the probes'
    scratch directory is removed. Only the main thread may set handlers;
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, _frame):
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    terminated = None
    try:
        yield
    except Terminated as exc:
        terminated = exc.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if terminated is not None:
        signal.raise_signal(terminated)
        raise SystemExit(128 + terminated)  # the previous handler chose to survive the signal


def shell(kconf, _name, command):
    """``$(shell,command)`` for kcheck's parse: its output, newlines as spaces, as Kconfig defines.

    Uses the prefetched result when the parse's :class:`ProbeRunner` started this
    exact command. Anything the command writes to stderr becomes a kconfiglib warning.
    """
    runner = getattr(kconf, "_probe_runner", None)
    if runner is not None:
        stdout, stderr = runner.result(command)
    else:
        proc = subprocess.run(command, shell=True, capture_output=True, stdin=subprocess.DEVNULL)
        stdout, stderr = proc.stdout, proc.stderr
    out = stdout.decode(kconf._encoding, errors="replace")
    err = stderr.decode(kconf._encoding, errors="replace")
    if err:
        kconf._warn(f"'{command}' wrote to stderr: {' '.join(err.splitlines())}",
                    kconf.filename, kconf.linenr)
    return "\n".join(out.splitlines()).rstrip("\n").replace("\n", " ")


def no_shell(kconf, _name, command):
    """``$(shell,...)`` when running commands is not allowed: every probe answers "n"."""
    return "n"
