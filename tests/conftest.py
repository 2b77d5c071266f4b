"""Shared pytest fixtures: real Debian kernel trees, their configs and the kernel's own oracle.

Real-tree fixtures are session scoped (a tree is unpacked once per cache, see
``tests/realkernel.py``) and skip with a reason when the tree cannot be had.
Tests that use them are marked ``@pytest.mark.realtree``.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import realkernel


def _or_skip(fn, *args):
    try:
        return fn(*args)
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def linux_6_1() -> Path:
    """The unpacked Debian linux-source-6.1 tree (read-only: never write into it)."""
    return _or_skip(realkernel.source_tree, "6.1")


@pytest.fixture(scope="session")
def linux_6_12() -> Path:
    """The unpacked Debian linux-source-6.12 tree (read-only: never write into it)."""
    return _or_skip(realkernel.source_tree, "6.12")


@pytest.fixture(scope="session")
def debian_configs_6_1() -> dict[str, Path]:
    """Flavour (``amd64_none_amd64``, ...) -> Debian's 6.1 config, decompressed."""
    return _or_skip(realkernel.debian_configs, "6.1")


@pytest.fixture(scope="session")
def debian_configs_6_12() -> dict[str, Path]:
    """Flavour (``amd64_none_amd64``, ...) -> Debian's 6.12 config, decompressed."""
    return _or_skip(realkernel.debian_configs, "6.12")


@pytest.fixture(scope="session")
def linux_7_2() -> Path:
    """The unpacked Debian linux-source-7.2 tree, from Debian's newer suites (read-only)."""
    return _or_skip(realkernel.source_tree, "7.2")


@pytest.fixture(scope="session")
def debian_configs_7_2() -> dict[str, Path]:
    """Flavour (``amd64_none_amd64``, ``amd64_none_rt-amd64``, ...) -> Debian's 7.2 config."""
    return _or_skip(realkernel.debian_configs, "7.2")


@pytest.fixture(scope="session")
def linux_7_3() -> Path:
    """The unpacked Debian linux-source-7.3 tree, from Debian's newer suites (read-only)."""
    return _or_skip(realkernel.source_tree, "7.3")


@pytest.fixture(scope="session")
def debian_configs_7_3() -> dict[str, Path]:
    """Flavour (``amd64_none_amd64``, ``amd64_none_rt-amd64``, ...) -> Debian's 7.3 config."""
    return _or_skip(realkernel.debian_configs, "7.3")


@pytest.fixture(scope="session")
def make_config(tmp_path_factory) -> Callable[..., Path]:
    """The kernel's own ``make <target>`` as a function: ``make_config(tree, target, input=None)``.

    Returns a private copy of the ``.config`` it wrote. One ``O=`` build directory
    per tree is reused so ``conf`` is compiled once per session.
    """
    _or_skip(realkernel.ensure_build_tools)
    outdirs: dict[Path, Path] = {}
    counter = itertools.count()

    def run(tree: Path, target: str, input_config: Path | None = None) -> Path:
        outdir = outdirs.setdefault(tree, tmp_path_factory.mktemp("oracle-build"))
        written = realkernel.make_config(tree, target, input_config, outdir=outdir)
        copy = tmp_path_factory.getbasetemp() / f"oracle-{next(counter)}-{target}.config"
        shutil.copyfile(written, copy)
        return copy

    run.outdirs = outdirs  # type: ignore[attr-defined]
    return run


def _conf(tree: Path, make_config) -> Path:
    make_config(tree, "allnoconfig")
    return make_config.outdirs[tree] / "scripts" / "kconfig" / "conf"


@pytest.fixture(scope="session")
def kernel_conf(linux_6_12, make_config) -> Path:
    """The kernel's own ``conf`` program, built from the 6.12 tree (knows the bare ``modules``).

    Run it on a small Kconfig tree as ``srctree=<dir> conf --olddefconfig Kconfig``
    with ``KCONFIG_CONFIG`` naming the ``.config``.
    """
    return _conf(linux_6_12, make_config)


@pytest.fixture(scope="session")
def kernel_conf_6_1(linux_6_1, make_config) -> Path:
    """Like ``kernel_conf``, built from the 6.1 tree (choices still picked the pre-6.11 way)."""
    return _conf(linux_6_1, make_config)


@pytest.fixture(scope="session")
def kernel_conf_7_2(linux_7_2, make_config) -> Path:
    """Like ``kernel_conf``, built from the 7.2 tree (knows ``depends on X if Y``)."""
    return _conf(linux_7_2, make_config)


def pytest_report_header(config):
    """Say once, at the top, where the suite's downloads go and how big the first run's are."""
    return realkernel.cache_summary()


def pytest_configure(config):
    """Show each download as it starts, past pytest's output capture: a silent minute reads as a hang."""
    def notify(message: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or reporter is None:
            print(message, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(message)

    realkernel.notify = notify


@pytest.fixture(scope="session", autouse=True)
def _private_user_cache(tmp_path_factory):
    """Keep kcheck's per-user cache (parsed Kconfig trees) out of the real ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


def _kconfig_tree(tree: Path):
    from kcheck.kconfig import KconfigTree

    # The oracle runs without toolchain overrides from the developer's shell; so does kcheck here.
    with pytest.MonkeyPatch.context() as mp:
        for var in realkernel.TOOLCHAIN_VARS:
            mp.delenv(var, raising=False)
        return KconfigTree.load(tree, arch=realkernel.ARCH)


@pytest.fixture(scope="session")
def kconfig_6_1(linux_6_1):
    """The 6.1 tree parsed once by kcheck (a :class:`kcheck.kconfig.KconfigTree`, x86_64)."""
    return _kconfig_tree(linux_6_1)


@pytest.fixture(scope="session")
def kconfig_6_12(linux_6_12):
    """The 6.12 tree parsed once by kcheck (a :class:`kcheck.kconfig.KconfigTree`, x86_64)."""
    return _kconfig_tree(linux_6_12)


@pytest.fixture(scope="session")
def kconfig_7_3(linux_7_3):
    """The 7.3 tree parsed once by kcheck (a :class:`kcheck.kconfig.KconfigTree`, x86_64)."""
    return _kconfig_tree(linux_7_3)


@pytest.fixture(scope="module", autouse=True)
def _release_parsed_trees():
    """Let the collector free the Kconfig trees a finished test module parsed.

    kcheck.kconfig hides a parsed tree from the garbage collector (gc.freeze: a
    command keeps it to the end, and skips tearing it down at exit); a test
    process parses many, so it hands them back after each module.
    """
    yield
    cache = sys.modules.get("kcheck.kconfig.cache")
    if cache is not None:
        cache.flush(close_output=False)  # a pending cache entry holds its parsed tree
    gc.unfreeze()
    gc.collect()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI`` set), a skipped test fails: there every real part must be present.

    The suite installs what it needs itself (Debian trees, flex, bison,
    xfsprogs, Portage's sdist); a skip in CI would hide a missing install
    step behind a green run.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every real part must be present: {report.longrepr}"
