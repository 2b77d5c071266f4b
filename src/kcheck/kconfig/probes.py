"""Run a Kconfig file's ``$(shell,...)`` probes in parallel, ahead of the parse.

Most of the time a cold parse of Linux takes goes to ~100 ``$(shell,...)``
probes (``$(cc-option,...)``, ``$(as-instr,...)``, ``$(ld-option,...)``), each
starting the compiler once; kconfiglib runs them one after the other, as
``conf`` does. When kconfiglib enters a Kconfig file, :class:`ProbeRunner`
expands the file's ``$(...)`` lines once in a dry run that only *records* the
shell commands (no command runs, no ``$(info)``/``$(error-if)`` fires, no
parser state changes) and starts them on a thread pool. When the real parse
reaches a probe, :func:`shell` takes the result if that exact command was
started, else runs it then. A command depends only on its text and the
environment, which the dry run and the parse share, so results are exactly
those of running the probes in order; a dry run that guesses a command wrong
(because it depends on an earlier probe's output) only wastes that one run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor

_ASSIGNMENT = re.compile(r"^\s*[A-Za-z0-9_-]+\s*(:=|\+=|\?=|=)")
_SILENCED = ("info", "warning-if", "error-if")


def _run(command: str, cwd: str | None = None) -> tuple[bytes, bytes]:
    proc = subprocess.run(command, shell=True, capture_output=True, cwd=cwd)
    return proc.stdout, proc.stderr


class ProbeRunner:
    """Starts the probes of each Kconfig file on a thread pool (see the module docs)."""

    def __init__(self, workers: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                       thread_name_prefix="kcheck-probe")
        self.futures: dict[str, Future] = {}
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

    def result(self, command: str) -> tuple[bytes, bytes]:
        """Return (stdout, stderr) of ``command``: the prefetched run, or a run now."""
        future = self.futures.get(command)
        return future.result() if future is not None else _run(command, self.workdir)

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
