"""Finding the configuration the way a Gentoo user expects."""

from __future__ import annotations

import gzip

import pytest

from kcheck.errors import InputError
from kcheck.locate import locate


def make_tree(path, config=True):
    path.mkdir(parents=True)
    (path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (path / "Kconfig").write_text("mainmenu \"Linux\"\n")
    if config:
        (path / ".config").write_text("CONFIG_A=y\n")
    return path


def test_explicit_config_wins_and_trusts_no_implicit_tree(tmp_path):
    make_tree(tmp_path / "usr/src/linux")
    given = tmp_path / "mine.config"
    given.write_text("CONFIG_A=y\n")
    found = locate(config=given, root=tmp_path, environ={})
    assert found.config == given and found.tree is None and "--config" in found.reason


def test_default_tree_under_root(tmp_path):
    tree = make_tree(tmp_path / "usr/src/linux")
    found = locate(root=tmp_path, environ={})
    assert found.config == tree / ".config" and found.tree == tree and "default kernel tree" in found.reason


def test_kernel_dir_env_and_kbuild_output(tmp_path):
    tree = make_tree(tmp_path / "src", config=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".config").write_text("CONFIG_B=m\n")
    found = locate(root=tmp_path, environ={"KERNEL_DIR": str(tree), "KBUILD_OUTPUT": str(out)})
    assert found.config == out / ".config" and found.tree == tree and found.build_dir == out
    assert "$KBUILD_OUTPUT" in found.reason


def test_running_kernel_fallbacks_in_order(tmp_path):
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("6.9.9-gentoo\n")
    (tmp_path / "boot").mkdir()
    boot = tmp_path / "boot/config-6.9.9-gentoo"
    boot.write_text("CONFIG_A=y\n")
    found = locate(root=tmp_path, environ={})
    assert found.config == boot and found.live and "no .config in" in found.reason
    (tmp_path / "proc/config.gz").write_bytes(gzip.compress(b"CONFIG_A=y\n"))
    assert locate(root=tmp_path, environ={}).config == tmp_path / "proc/config.gz"


def test_dangling_symlink_is_named(tmp_path):
    (tmp_path / "usr/src").mkdir(parents=True)
    (tmp_path / "usr/src/linux").symlink_to(tmp_path / "usr/src/linux-6.6.6-gentoo")
    with pytest.raises(InputError, match="dangling symlink.*eselect kernel"):
        locate(root=tmp_path, environ={})


def test_nothing_found_names_the_next_step(tmp_path):
    with pytest.raises(InputError, match="pass --config PATH or --kernel-dir DIR"):
        locate(root=tmp_path, environ={})


def test_bad_kernel_dir(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        locate(kernel_dir=tmp_path / "nope", environ={})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a kernel source tree"):
        locate(kernel_dir=tmp_path / "empty", environ={})
    tree = make_tree(tmp_path / "t", config=False)
    with pytest.raises(InputError, match="make menuconfig"):
        locate(kernel_dir=tree, environ={})
