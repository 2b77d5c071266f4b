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
a tree that belongs to another user (:func:`kcheck.kconfig.tree.untrusted_tree`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor

_ASSIGNMENT = re.compile(r"^\s*[A-Za-z0-9_-]+\s*(:=|\+=|\?=|=)")

#: Linux Kconfig files that hold most of the probes, in the order the parse reaches them
#: (``{SRCARCH}`` is filled in). Their probes start as soon as the probe macros exist, so
#: they run while the parser is still in the long probe-free stretch (drivers/, fs/...).
EARLY_FILES = (
    "init/Kconfig",
    "arch/Kconfig",
    "arch/{SRCARCH}/Kconfig",
    "arch/{SRCARCH}/Kconfig.assembler",
    "arch/{SRCARCH}/Kconfig.cpu",
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


def _run(command: str, cwd: str | None = None) -> tuple[bytes, bytes]:
    proc = subprocess.run(command, shell=True, capture_output=True, cwd=cwd)
    return proc.stdout, proc.stderr


def _finished(result) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


class ProbeRunner:
    """Starts the probes of each Kconfig file on a thread pool (see the module docs)."""

    def __init__(self, workers: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                       thread_name_prefix="kcheck-probe")
        self.futures: dict[str, Future] = {}
        self.early_done = False
        # Probes such as cc-option write scratch files into the current directory
        # (make runs them in the build directory); kcheck's may be read-only.
        self.workdir = tempfile.mkdtemp(prefix="kcheck-probes-")

    def prefetch(self, kconf, code_lines: list[str]) -> None:
        """Start the probes a Kconfig file about to be parsed will run.

        ``code_lines`` are the file's lines outside help texts (help text is
        never expanded, so its ``$(shell,...)`` must not run).
        """
        lines = [ln for ln in code_lines if "$(" in ln and not _ASSIGNMENT.match(ln)]
        if not lines:
            return
        commands: list[str] = []
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
            for line in lines:
                try:
                    kconf._expand_whole(line, ())
                except Exception:  # noqa: BLE001 - a dry run may fail; the real parse decides
                    for name, count in saved_counts.items():
                        if name in kconf.variables:
                            kconf.variables[name]._n_expansions = count
        finally:
            kconf._functions = saved_functions
            kconf.env_vars.clear()
            kconf.env_vars.update(saved_env_vars)
        for command in commands:
            if command not in self.futures:
                self.futures[command] = self.pool.submit(_run, command, self.workdir)

    def prefetch_early(self, kconf, srctree: str, srcarch: str, code_lines_of) -> None:
        """Once the probe macros are defined, start the probes of :data:`EARLY_FILES`.

        ``code_lines_of(text)`` returns a file's lines outside help texts.
        """
        if self.early_done or _PROBE_MACRO not in kconf.variables:
            return
        self.early_done = True
        for relpath in EARLY_FILES:
            path = os.path.join(srctree, relpath.format(SRCARCH=srcarch))
            try:
                with open(path, encoding=kconf._encoding, errors="replace") as fh:
                    text = fh.read()
            except OSError:
                continue
            if "$(" in text:
                self.prefetch(kconf, code_lines_of(text))

    def result(self, command: str) -> tuple[bytes, bytes]:
        """Return (stdout, stderr) of ``command``: the prefetched run, or a run now."""
        future = self.futures.get(command)
        if future is None or future.cancel():
            # Not prefetched, or still queued behind probes the parse needs later: the
            # parse needs it now, so run it here instead of waiting for the queue.
            result = _run(command, self.workdir)
            if future is not None:
                self.futures[command] = _finished(result)
            return result
        return future.result()

    def close(self) -> None:
        """Drop probes not started yet and wait for the running ones."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def shell(kconf, _name, command):
    """``$(shell,command)`` for kcheck's parse: its output, newlines as spaces, as Kconfig defines.

    Uses the prefetched result when the parse's :class:`ProbeRunner` started this
    exact command. Anything the command writes to stderr becomes a kconfiglib warning.
    """
    runner = getattr(kconf, "_probe_runner", None)
    stdout, stderr = runner.result(command) if runner is not None else _run(command)
    out = stdout.decode(kconf._encoding, errors="replace")
    err = stderr.decode(kconf._encoding, errors="replace")
    if err:
        kconf._warn(f"'{command}' wrote to stderr: {' '.join(err.splitlines())}",
                    kconf.filename, kconf.linenr)
    return "\n".join(out.splitlines()).rstrip("\n").replace("\n", " ")


def no_shell(kconf, _name, command):
    """``$(shell,...)`` when running commands is not allowed: every probe answers "n"."""
    return "n"
