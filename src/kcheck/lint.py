"""``kcheck lint``: check many kernel configurations at once, for CI.

A repository of kernel configurations (a distribution's, an appliance's, a
fleet's) is checked file by file through the same flow as ``kcheck --driver``
(:func:`kcheck.check.check_location`), so lint never makes a verdict of its
own: it finds the files, runs the check on each, and hands a :class:`LintRun`
to a reporter.

Which files a directory contributes (searched recursively, hidden directories
such as ``.git`` skipped): ``.config``, ``*.config``, ``config-*`` (the
``/boot/config-<release>`` naming) and the gzip forms ``config.gz`` and
``*.config.gz``. A file named on the command line is always checked, whatever
its name; a pattern with ``*``, ``?`` or ``[`` is expanded (``**`` recurses).

Speed: the files are spread over a process pool (one worker per CPU) when
there are enough of them to pay for it. In Kconfig mode (``--kernel-dir``) the
tree is parsed once, before the pool is forked, so every worker starts with
the parsed tree in its (copy-on-write) memory and reuses it for all its files.
Measured on 2 cores (bench/lint_bench.py): a pool checks 1.8 times as many
plain files per second as one process, and 1.6 times as many in Kconfig mode,
for about 13 % more CPU there (each worker copies the pages of the tree it
re-evaluates). On cores busy with other work it gains nothing; ``--jobs 1``
then saves that CPU.
"""

from __future__ import annotations

import fnmatch
import gc
import glob
import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import click

from kcheck import dotconfig
from kcheck.check import check_location, initial_facts, profile_symbols, select_profiles
from kcheck.completion import complete_driver
from kcheck.progress import quiet_option
from kcheck.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, InputError, KcheckError
from kcheck.locate import KernelLocation, is_kernel_tree
from kcheck.model import Report
from kcheck.options import firewall_option, runtime_option
from kcheck.profile import Profile
from kcheck.reporters import LINT_FORMATS, render_lint

#: File names a directory contributes (matched against the name only).
CONFIG_PATTERNS = (".config", "*.config", "config-*", "config.gz", "*.config.gz")
#: Below this many files per worker a pool costs more than it saves: a plain check takes
#: about 10 ms a file, a Kconfig one tens of times more (bench/lint_bench.py).
MIN_FILES_PER_JOB = {"plain": 8, "kconfig": 2}

LINT_EXIT_HELP = """\b
Exit status:
  0  every configuration holds every required item
  1  at least one configuration fails a required item
     (a recommended one too, with --strict)
  2  usage error (unknown driver, bad profile, bad --kernel-dir), or at
     least one input is unusable (missing, unreadable, not a kernel
     config, or a pattern that matches nothing); the other files are
     still checked and reported. 2 wins over 1: the run is incomplete.
"""


@dataclass
class LintResult:
    """The outcome for one input: a report, or why the input could not be checked.

    ``last_line`` is the number of lines of the file, so reporters can point
    at the end of the file for a symbol the file does not mention;
    ``seconds`` is how long its check took.
    """

    path: Path
    report: Report | None = None
    error: str | None = None
    last_line: int = 1
    seconds: float = 0.0

    def status(self, strict: bool = False) -> str:
        """``ready``, ``not-ready`` or ``unusable``."""
        if self.report is None:
            return "unusable"
        return "not-ready" if self.report.failed(strict) else "ready"


@dataclass
class LintRun:
    """All results of one ``kcheck lint`` run, in the order the inputs were given."""

    driver: str
    profiles: list[str]
    mode: str
    tree: Path | None
    strict: bool = False
    results: list[LintResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many inputs ended with ``status`` (see :meth:`LintResult.status`)."""
        return sum(r.status(self.strict) == status for r in self.results)

    def exit_status(self) -> int:
        """2 if any input is unusable, else 1 if any configuration fails, else 0."""
        if self.count("unusable"):
            return EXIT_USAGE
        return EXIT_FAIL if self.count("not-ready") else EXIT_OK

    def summary_line(self) -> str:
        """The one line that ends every run."""
        total = len(self.results)
        rate = f", {total / self.seconds:.0f} configs/s" if self.seconds > 0 and total > 1 else ""
        return (
            f"kcheck lint: {total} configuration{'s' if total != 1 else ''} checked for {' + '.join(self.profiles)}"
            f" ({self.mode} mode): {self.count('ready')} ready, {self.count('not-ready')} not ready,"
            f" {self.count('unusable')} unusable; exit {self.exit_status()} ({self.seconds:.2f}s{rate})"
        )


def is_config_name(name: str) -> bool:
    """True when a file found in a directory is named like a kernel configuration."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in CONFIG_PATTERNS)


def _walk(directory: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_config_name(name):
                yield Path(root) / name


def discover(arguments: Sequence[str]) -> list[LintResult]:
    """Expand the command-line inputs into one (unchecked) result per file.

    Inputs that name nothing (a missing path, a directory without
    configurations, a pattern matching no file) become unusable results, so
    they are reported and end the run with exit status 2.
    """
    found: list[LintResult] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(LintResult(path))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            before = len(found)
            for item in _walk(path):
                add(item)
            if len(found) == before:
                found.append(LintResult(path, error=f"{path} holds no file named {', '.join(CONFIG_PATTERNS)}; name the files instead"))
        elif path.exists() or path.is_symlink():
            add(path)
        elif not glob.has_magic(argument):
            found.append(LintResult(path, error=f"{path} does not exist; check the path"))
        else:
            files = [Path(m) for m in expand_pattern(argument) if not Path(m).is_dir()]
            for match in files:
                add(match)
            if not files:
                found.append(LintResult(path, error=f"the pattern {argument} matches no file; check it (quote it to let kcheck expand it)"))
    return found


def expand_pattern(pattern: str) -> list[str]:
    """The files a glob names (``**`` recurses), sorted; symlinked directories are never entered.

    Like the shell's globstar, but a symlink to a directory is not followed
    (``glob.glob`` follows them, and a symlink loop makes it run without end).
    Hidden names match only a pattern part that starts with a dot.
    """
    parts = pattern.split("/")
    fixed = 0
    while fixed < len(parts) - 1 and not glob.has_magic(parts[fixed]):
        fixed += 1
    base, wanted = "/".join(parts[:fixed]), [p for p in parts[fixed:] if p]
    if pattern.startswith("/") and not base:
        base = "/"
    recursive = "**" in wanted
    found = []
    for root, dirs, files in os.walk(base or ".", followlinks=False):
        rel = os.path.relpath(root, base or ".")
        names = [] if rel == "." else rel.split(os.sep)
        if not recursive and len(names) + 1 >= len(wanted):
            dirs[:] = []  # deeper files cannot match a pattern without **
        dirs.sort()
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            if _matches(wanted, names + [name]):
                found.append(os.path.join(base, *names, name) if base else os.path.join(*names, name))
    return sorted(found)


def _matches(pattern: list[str], names: list[str]) -> bool:
    if not pattern:
        return not names
    if pattern[0] == "**":
        if _matches(pattern[1:], names):
            return True
        return bool(names) and not names[0].startswith(".") and _matches(pattern, names[1:])
    if not names or (names[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(names[0], pattern[0]) and _matches(pattern[1:], names[1:])


# Per-process state: set in the parent before the pool forks, so workers inherit it.
_PROFILES: Sequence[Profile] = ()
_KERNEL_DIR: Path | None = None
_TREES: dict = {}
_ALLOW_SHELL = True
_FACTS: dict[str, str] = {}


def check_one(path: Path) -> LintResult:
    """Check one file with the profiles and tree of this process."""
    location = KernelLocation(path, "listed for kcheck lint", _KERNEL_DIR, _KERNEL_DIR, False)
    started = time.perf_counter()
    try:
        report = check_location(location, _PROFILES, use_kconfig=_KERNEL_DIR is not None, kconfig_trees=_TREES,
                                allow_shell=_ALLOW_SHELL, facts=_FACTS)
        lines = dotconfig.read_bytes(path).count(b"\n")
    except KcheckError as exc:
        return LintResult(path, error=exc.message)
    return LintResult(path, report=report, last_line=max(lines, 1), seconds=time.perf_counter() - started)


def _check_many(paths: list[Path], jobs: int, mode: str) -> list[LintResult]:
    per_job = MIN_FILES_PER_JOB[mode]
    if jobs <= 1 or len(paths) < 2 * per_job:
        return [check_one(p) for p in paths]
    jobs = min(jobs, math.ceil(len(paths) / per_job))
    # fork: workers inherit the profiles and the parsed Kconfig tree instead of rebuilding them.
    # Frozen objects are left alone by the collector, so the tree's pages stay shared.
    gc.freeze()
    context = multiprocessing.get_context("fork")
    chunk = max(1, math.ceil(len(paths) / (jobs * 4)))
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            return list(pool.map(check_one, paths, chunksize=chunk))
    except BrokenProcessPool:
        raise KcheckError("a kcheck lint worker died (out of memory?); run again with --jobs 1") from None
    finally:
        gc.unfreeze()


def _preload_tree(kernel_dir: Path, paths: Sequence[Path], allow_shell: bool) -> None:
    """Parse the Kconfig tree once, before any worker starts, for the first readable file's architecture.

    A file for another architecture gets its own parse, on first use, in the
    process that checks it (fleets rarely mix architectures in one run).
    """
    from kcheck.kconfig import KconfigTree  # the slow part; only with --kernel-dir

    for path in paths:
        try:
            arch = dotconfig.load(path).header_arch
        except InputError:
            continue  # reported as unusable when its turn comes
        tree = _TREES[arch] = KconfigTree.load(kernel_dir, arch=arch, allow_shell=allow_shell)
        # Rebuilt from the cache before the fork, the profiles' Kconfig cones are shared by every worker.
        try:
            tree.read(path).prepare(profile_symbols(_PROFILES))
        except InputError:
            pass  # reported when this file's turn comes
        return


def usable_cpus() -> int:
    """CPUs this process may run on (a CI container often gets fewer than the host has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_lint(
    arguments: Sequence[str],
    *,
    driver: str,
    profile_files: Sequence[Path] = (),
    kernel_dir: Path | None = None,
    jobs: int = 0,
    strict: bool = False,
    allow_shell: bool = True,
    runtime: str = "docker",
    firewall: str | None = None,
) -> LintRun:
    """Check every configuration the arguments name; the API behind ``kcheck lint``.

    ``jobs`` 0 means one worker per CPU. Raises :class:`KcheckError` for a
    usage error (bad profile, unknown driver, bad ``--kernel-dir``); a bad
    input file is a result, not an exception. ``allow_shell=False`` parses
    the tree without running its ``$(shell,...)`` probes (``--no-shell``).
    ``runtime`` and ``firewall`` choose the base profile and the firewall
    backend (see ``kcheck --help``).
    """
    global _PROFILES, _KERNEL_DIR, _ALLOW_SHELL, _FACTS
    started = time.perf_counter()
    profiles = select_profiles(driver, profile_files, runtime=runtime)
    _FACTS = initial_facts(runtime, firewall)
    if kernel_dir is not None and not is_kernel_tree(kernel_dir):
        raise InputError(f"{kernel_dir} is not a kernel source tree (no Makefile and Kconfig); check --kernel-dir")
    results = discover(arguments)
    pending = [r.path for r in results if r.error is None]
    _PROFILES, _KERNEL_DIR, _ALLOW_SHELL = profiles, kernel_dir, allow_shell
    _TREES.clear()
    if kernel_dir is not None:
        _preload_tree(kernel_dir, pending, allow_shell)
    mode = "kconfig" if kernel_dir is not None else "plain"
    checked = iter(_check_many(pending, jobs or usable_cpus(), mode))
    results = [next(checked) if r.error is None else r for r in results]
    run = LintRun(driver, [p.name for p in profiles], mode, kernel_dir, strict, results)
    run.seconds = time.perf_counter() - started
    return run


@click.command("lint", epilog=LINT_EXIT_HELP)
@quiet_option
@click.option("--driver", "-d", required=True, metavar="DRIVER", help="Storage driver to check for (see 'kcheck drivers').",
              shell_complete=complete_driver)
@runtime_option("docker")
@firewall_option("iptables-legacy, as check-config.sh checks")
@click.option("--profile", "profiles", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Also check your own requirement profile (TOML); repeatable.")
@click.option("--kernel-dir", "-k", type=click.Path(path_type=Path), metavar="DIR",
              help="Read every config through this kernel tree's Kconfig (parsed once).")
@click.option("--format", "fmt", type=click.Choice(list(LINT_FORMATS)), default="text",
              show_default=True, help="Output for people or for a CI system.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 means one per CPU.")
@click.option("--strict", is_flag=True, help="Count missing recommended items as failures too.")
@click.option("--no-shell", is_flag=True, help="With --kernel-dir: run nothing (no $(shell,...) Kconfig macro, no $CC --version).")
@click.option("--verbose", "-v", is_flag=True, help="Text format: the full report of every file.")
@click.argument("configs", nargs=-1, required=True, metavar="CONFIG...")
@click.pass_context
def lint(ctx: click.Context, driver, runtime, firewall, profiles, kernel_dir, fmt, jobs, strict, no_shell, verbose,
         configs) -> None:
    """Check many kernel configurations for docker and a storage driver, for CI.

    CONFIG may be files (any name, plain or .gz), directories (searched
    recursively for .config, *.config, config-*, config.gz and *.config.gz)
    and glob patterns (quoted; ** recurses). Every file is checked, in
    parallel when there are many, and one summary line ends the output
    (on stderr for json, junit and sarif, whose stdout is the document).
    """
    from kcheck.cli import echo_cache_notes, use_colour

    run = run_lint(configs, driver=driver, profile_files=profiles, kernel_dir=kernel_dir, jobs=jobs, strict=strict,
                   allow_shell=not no_shell, runtime=runtime or "docker", firewall=firewall)
    click.echo(render_lint(fmt, run, verbose=verbose), color=use_colour())
    if verbose:
        echo_cache_notes()
    document = fmt in ("json", "junit", "sarif")
    click.echo(run.summary_line(), err=document)
    ctx.exit(run.exit_status())
