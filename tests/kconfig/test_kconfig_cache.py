"""The per-user cache of parsed trees: reused when nothing changed, rebuilt when anything did."""

from __future__ import annotations

import os

import pytest

import kconfig_trees as kt
import realkernel
from kcheck.kconfig import KconfigTree, cache

KCONFIG = """\
    config MODULES
    \tbool "modules"
    \tmodules
    \tdefault y

    config FROM_ENV
    \tstring "from the environment"
    \tdefault "$(KCHECK_TEST_VAR)"

    source "sub/Kconfig"
    """

SUB = """\
    config SUB
    \tbool "sub"
    \tdefault y
    """


@pytest.fixture
def tree_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_VAR", "first")
    return kt.write_tree(tmp_path / "tree", KCONFIG, {"sub/Kconfig": SUB})


def load(root):
    tree = KconfigTree.load(root)
    cache.reap(wait=True)  # the entry is written by a background child
    return tree


def entry(tree):
    return cache.entry_path(tree.srctree, tree.arch, True)


def values(tree, tmp_path):
    src = tree.read(kt.write_config(tmp_path / "empty.config", ""))
    return src.state("FROM_ENV").value, src.state("SUB").value, src.state("NEW").exists


def test_second_load_comes_from_the_cache(tree_dir, tmp_path):
    first = load(tree_dir)
    assert not first.from_cache
    assert entry(first).is_file()
    assert entry(first).parent == tmp_path / "xdg" / "kcheck"
    second = load(tree_dir)
    assert second.from_cache
    assert values(second, tmp_path) == values(first, tmp_path) == ("first", "y", False)


def test_a_changed_kconfig_file_rebuilds(tree_dir, tmp_path):
    load(tree_dir)
    sub = tree_dir / "sub" / "Kconfig"
    sub.write_text(sub.read_text() + "\nconfig NEW\n\tbool \"new\"\n")
    st = sub.stat()
    os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path) == ("first", "y", True)
    assert load(tree_dir).from_cache


def test_a_touched_file_with_same_content_rebuilds(tree_dir):
    load(tree_dir)
    sub = tree_dir / "sub" / "Kconfig"
    st = sub.stat()
    os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert not load(tree_dir).from_cache


def test_a_changed_environment_variable_rebuilds(tree_dir, tmp_path, monkeypatch):
    load(tree_dir)
    monkeypatch.setenv("KCHECK_TEST_VAR", "second")
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path)[0] == "second"


def test_an_unrelated_environment_variable_does_not_rebuild(tree_dir, monkeypatch):
    load(tree_dir)
    monkeypatch.setenv("KCHECK_SOMETHING_ELSE", "x")
    assert load(tree_dir).from_cache


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_corrupt_entry_is_ignored_and_rewritten(tree_dir, tmp_path, damage):
    first = load(tree_dir)
    path = entry(first)
    path.write_bytes(damage if damage else path.read_bytes()[: path.stat().st_size // 2])
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path) == ("first", "y", False)
    assert load(tree_dir).from_cache


def test_no_cache_neither_reads_nor_writes(tree_dir, tmp_path):
    tree = KconfigTree.load(tree_dir, use_cache=False)
    cache.reap(wait=True)
    assert not tree.from_cache
    assert not (tmp_path / "xdg" / "kcheck").exists()


def test_shell_mode_has_its_own_entry(tree_dir):
    load(tree_dir)
    tree = KconfigTree.load(tree_dir, allow_shell=False)
    cache.reap(wait=True)
    assert not tree.from_cache
    assert cache.entry_path(tree_dir, tree.arch, False).is_file()


@pytest.mark.realtree
def test_cached_real_tree_computes_what_the_fresh_parse_does(tmp_path, kconfig_6_12,
                                                            debian_configs_6_12):
    cache.reap(wait=True)
    with pytest.MonkeyPatch.context() as mp:
        for var in realkernel.TOOLCHAIN_VARS:
            mp.delenv(var, raising=False)
        warm = KconfigTree.load(kconfig_6_12.srctree, arch=realkernel.ARCH)
    assert warm.from_cache
    given = debian_configs_6_12["amd64_none_cloud-amd64"]
    for name, tree in (("fresh", kconfig_6_12), ("warm", warm)):
        tree.read(given)
        tree.write_config(tmp_path / f"{name}.config")
    assert (tmp_path / "warm.config").read_text() == (tmp_path / "fresh.config").read_text()


def test_an_unset_variable_set_later_rebuilds(tmp_path, monkeypatch):
    # $(KCHECK_TEST_LATER) expands to "" while unset; setting it must not hit the old parse.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KCHECK_TEST_LATER", raising=False)
    root = kt.write_tree(tmp_path / "tree", KCONFIG.replace("KCHECK_TEST_VAR", "KCHECK_TEST_LATER"),
                         {"sub/Kconfig": SUB})
    assert values(load(root), tmp_path)[0] == ""
    assert load(root).from_cache
    monkeypatch.setenv("KCHECK_TEST_LATER", "now set")
    tree = load(root)
    assert not tree.from_cache
    assert values(tree, tmp_path)[0] == "now set"


PAHOLE_KCONFIG = """\
    config PAHOLE_VERSION
    \tint
    \tdefault "$(PAHOLE_VERSION)"

    config BTF
    \tbool "BTF"
    \tdefault y
    \tdepends on PAHOLE_VERSION >= 122
    """


def test_installing_pahole_rebuilds_a_7x_parse(tmp_path, monkeypatch):
    # 7.x: the Makefile exports PAHOLE_VERSION ("0" without pahole); a parse cached without
    # pahole must not be used once pahole is there.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PAHOLE_VERSION", raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("PAHOLE", str(bindir / "pahole"))
    root = kt.write_tree(tmp_path / "tree", PAHOLE_KCONFIG, version="7.3")
    config = kt.write_config(tmp_path / "empty.config", "")
    tree = load(root)
    assert tree.env["PAHOLE_VERSION"] == "0"
    assert tree.read(config).state("BTF").value == "n"
    pahole = bindir / "pahole"
    pahole.write_text("#!/bin/sh\necho v1.30\n")
    pahole.chmod(0o755)
    tree = load(root)
    assert not tree.from_cache
    assert tree.env["PAHOLE_VERSION"] == "130"
    assert tree.read(config).state("BTF").value == "y"
