"""Probes run ahead of the parse: the same results as running them in order, and no extra runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import kconfig_trees as kt
from kcheck.kconfig import KconfigTree, probes

INCLUDE = """\
    success = $(shell,{ $(1); } >/dev/null 2>&1 && echo y || echo n)
    counter := $(shell,echo start >> {log}; echo 1)
    """

TOP = """\
    source "Kconfig.include"
    source "sub/Kconfig"
    """

# Prefetching starts when a file is entered, so the probes sit in a file sourced
# after the macros are defined (as in Linux, where Kconfig.include comes first).
SUB = """\
    config A
    \tdef_bool $(success,echo a >> {log}; true)

    config B
    \tdef_bool $(success,echo b >> {log}; false)

    config C
    \tstring "c"
    \tdefault "$(shell,echo c >> {log}; echo value)"
    \thelp
    \t  Help text may say $(shell,echo help >> {log}) without running it.

    config D
    \tdef_bool $(success,echo a >> {log}; true)
    """


@pytest.mark.parametrize("allow_prefetch", [True, False])
def test_prefetched_probes_give_the_same_values(tmp_path, monkeypatch, allow_prefetch):
    log = tmp_path / "log"
    if not allow_prefetch:
        monkeypatch.setattr(probes.ProbeRunner, "prefetch", lambda self, kconf, text: None)
    root = kt.write_tree(tmp_path / "t", TOP, {
        "Kconfig.include": INCLUDE.replace("{log}", str(log)),
        "sub/Kconfig": SUB.replace("{log}", str(log)),
    })
    tree = KconfigTree.load(root, use_cache=False)
    src = tree.read(kt.write_config(tmp_path / "in.config", ""))
    assert [src.state(n).value for n in "ABCD"] == ["y", "n", "value", "y"]
    ran = sorted(log.read_text().split())
    # Help text never runs. Prefetching runs each distinct command once (D repeats A's
    # command, deterministic by definition); running in order, as conf does, runs it twice.
    assert ran == (["a", "b", "c", "start"] if allow_prefetch else ["a", "a", "b", "c", "start"])


def test_probes_run_in_a_private_scratch_directory(tmp_path, monkeypatch):
    # cc-option style probes make scratch directories in the current directory, which
    # may be read-only for kcheck (make runs them in the build directory).
    root = kt.write_tree(tmp_path / "t", """\
        config WHERE
        \tstring "where"
        \tdefault "$(shell,pwd)"
        """)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tree = KconfigTree.load(root, use_cache=False)
    where = tree.read(kt.write_config(tmp_path / "in.config", "")).state("WHERE").value
    assert where not in ("", str(cwd))
    assert "kcheck-probes-" in where
    assert not Path(where).exists()  # cleaned up after the parse


def test_probes_of_well_known_files_give_the_same_values_and_run_once(tmp_path):
    log = tmp_path / "log"
    include = f"""\
        cc-option = $(shell,echo "$(1)" >> {log}; echo y)
        """
    top = """\
        source "scripts/Kconfig.include"
        source "init/Kconfig"
        source "drivers/Kconfig"
        source "lib/Kconfig.debug"
        """
    init = "config INIT_PROBE\n\tdef_bool $(cc-option,-finit)\n"
    drivers = "".join(f"config D{i}\n\tbool \"d{i}\"\n" for i in range(200))
    debug = "config DEBUG_PROBE\n\tdef_bool $(cc-option,-fdebug)\n" \
            "config DEBUG_PROBE2\n\tdef_bool $(cc-option,-fdebug)\n"
    root = kt.write_tree(tmp_path / "t", top, {
        "scripts/Kconfig.include": include, "init/Kconfig": init,
        "drivers/Kconfig": drivers, "lib/Kconfig.debug": debug,
    })
    tree = KconfigTree.load(root, use_cache=False)
    src = tree.read(kt.write_config(tmp_path / "in.config", ""))
    assert src.state("INIT_PROBE").value == "y" and src.state("DEBUG_PROBE").value == "y"
    # Started early (lib/Kconfig.debug is one of probes.EARLY_FILES), asked for twice: run once.
    assert sorted(log.read_text().split()) == ["-fdebug", "-finit"]
