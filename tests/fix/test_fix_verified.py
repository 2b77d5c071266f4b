"""The pieces around the kernel's conf, without a real tree: the minimal edit, values, the cache's trust."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtrees import load, plan
from kcheck.fix import oracle, verified

CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_MODULES=y
# CONFIG_BTRFS_FS is not set
CONFIG_LOCALVERSION="-gentoo \\"x\\""
CONFIG_MD=y"""


def test_minimal_edit_replaces_lines_in_place_and_appends_the_rest():
    edited = verified.minimal_edit(CONFIG, {"BTRFS_FS": "m", "MD": "n", "XFS_FS": "y"})
    lines = edited.splitlines()
    assert lines[:4] == CONFIG.splitlines()[:4]  # header and untouched lines stay byte for byte
    assert lines[4] == "CONFIG_BTRFS_FS=m"
    assert lines[6] == "# CONFIG_MD is not set"
    assert lines[7] == "CONFIG_XFS_FS=y" and edited.endswith("\n")


def test_values_read_strings_as_kconfiglib_holds_them():
    assert verified.values(CONFIG) == {"MODULES": "y", "BTRFS_FS": "n", "LOCALVERSION": '-gentoo "x"', "MD": "y"}


CHOICE = """
config MODULES
	bool "modules"
	option modules

choice
	prompt "Preemption"
	default PREEMPT_NONE
config PREEMPT_NONE
	bool "none"
config PREEMPT
	bool "full"
endchoice

config RT_FEATURE
	bool "needs full preemption"
	depends on PREEMPT
"""


def test_a_moved_choice_turns_its_old_selection_off_in_the_edit(tmp_path):
    text = "CONFIG_MODULES=y\nCONFIG_PREEMPT_NONE=y\n# CONFIG_PREEMPT is not set\n"
    kconf = load(tmp_path, CHOICE, text)
    p = plan(kconf, [("RT_FEATURE", "y")])
    assert p.ok
    edits = verified.plan_edits(p, kconf, verified.values(text))
    assert edits == {"PREEMPT": "y", "RT_FEATURE": "y", "PREEMPT_NONE": "n"}


def test_an_untrusted_cache_never_runs_conf(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = oracle.conf_root()
    root.mkdir(parents=True)
    os.chmod(root, 0o777)  # another user could replace conf in here
    with pytest.raises(oracle.OracleError, match="not safe to run programs from: .* writable by its group or others"):
        oracle.prepare(Path("/nonexistent-tree"), "x86_64")
    os.chmod(root, 0o700)
    (root / "link").symlink_to(tmp_path)
    assert "not a directory" in oracle.trusted(root / "link")


def test_missing_tools_are_named(monkeypatch):
    monkeypatch.setattr(oracle, "TOOLS", {"make": "make", "kcheck-no-such-flex": "flex"})
    with pytest.raises(oracle.OracleError, match=r"cannot be built here \(no kcheck-no-such-flex\)"):
        oracle.prepare(Path("/nonexistent-tree"), "x86_64")


def test_make_gets_no_outside_build_directory():
    env = oracle.make_env({"PATH": "/usr/bin", "O": "/elsewhere", "KBUILD_OUTPUT": "/x", "MAKEFLAGS": "-j8 w",
                           "KCONFIG_CONFIG": "/home/u/.config", "CC": "clang"})
    assert env == {"PATH": "/usr/bin", "CC": "clang", "LC_ALL": "C"}


def test_a_failed_make_is_an_oracle_error_and_leaves_no_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(oracle.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    entry = tmp_path / "entry"
    (entry / "src").mkdir(parents=True)  # no Makefile: make fails at once
    conf = oracle.Conf(tmp_path, "x86_64", entry, oracle.make_env())
    with pytest.raises(oracle.OracleError, match="make olddefconfig failed"):
        conf.olddefconfig("CONFIG_MODULES=y\n")
    assert list((tmp_path / "tmp").iterdir()) == []
