"""The environment the kernel Makefile gives Kconfig, derived like the Makefile does."""

from __future__ import annotations

import pytest

import kconfig_trees as kt
from kcheck.errors import KcheckError
from kcheck.kconfig.env import (
    arch_from_config,
    kconfig_env,
    kernel_version,
    key_variables,
    makefile_probes,
    pahole_version,
    srcarch,
    subarch,
)


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("x86_64", "x86"), ("i686", "x86"), ("aarch64", "arm64"), ("armv7l", "arm"),
     ("ppc64le", "powerpc"), ("s390x", "s390"), ("riscv64", "riscv")],
)
def test_subarch_follows_the_makefile(machine, arch):
    assert subarch(machine) == arch


@pytest.mark.parametrize(("arch", "src"), [("x86_64", "x86"), ("i386", "x86"), ("x86", "x86"),
                                           ("sparc64", "sparc"), ("arm64", "arm64")])
def test_srcarch(arch, src):
    assert srcarch(arch) == src


def test_kernel_version_from_the_makefile(tmp_path):
    (tmp_path / "Makefile").write_text(
        "VERSION = 6\nPATCHLEVEL = 18\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\nNAME = x\n"
    )
    assert kernel_version(tmp_path) == "6.18.0-rc3"
    with pytest.raises(KcheckError, match="Makefile"):
        kernel_version(tmp_path / "missing")


def test_defaults_for_gcc(tmp_path):
    root = kt.write_tree(tmp_path / "t", "")
    env = kconfig_env(root, "x86_64", {"PATH": "/nonexistent"})
    assert env["srctree"] == str(root.resolve())
    assert (env["ARCH"], env["SRCARCH"], env["KERNELVERSION"]) == ("x86_64", "x86", "6.12.0")
    assert (env["CC"], env["LD"], env["OBJCOPY"], env["HOSTCC"]) == ("gcc", "ld", "objcopy", "gcc")
    assert (env["RUSTC"], env["BINDGEN"], env["PAHOLE"]) == ("rustc", "bindgen", "pahole")
    assert env["CC_VERSION_TEXT"] == ""  # no gcc on that PATH: as `make` would export


def test_cross_compile_and_llvm(tmp_path):
    root = kt.write_tree(tmp_path / "t", "")
    env = kconfig_env(root, "arm64", {"CROSS_COMPILE": "aarch64-linux-gnu-", "PATH": "/nonexistent"})
    assert (env["CC"], env["LD"], env["SRCARCH"]) == ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld", "arm64")
    env = kconfig_env(root, "x86_64", {"LLVM": "1", "PATH": "/nonexistent"})
    assert (env["CC"], env["LD"], env["OBJCOPY"]) == ("clang", "ld.lld", "llvm-objcopy")
    env = kconfig_env(root, "x86_64", {"LLVM": "-17", "PATH": "/nonexistent"})
    assert env["CC"] == "clang-17"
    env = kconfig_env(root, "x86_64", {"LLVM": "/opt/llvm/bin/", "PATH": "/nonexistent"})
    assert env["LD"] == "/opt/llvm/bin/ld.lld"


def test_the_users_environment_wins(tmp_path):
    root = kt.write_tree(tmp_path / "t", "")
    env = kconfig_env(root, None, {"ARCH": "arm64", "CC": "my-cc", "CC_VERSION_TEXT": "my cc 1.0",
                                    "PATH": "/nonexistent"})
    assert (env["ARCH"], env["SRCARCH"], env["CC"], env["CC_VERSION_TEXT"]) == (
        "arm64", "arm64", "my-cc", "my cc 1.0")
    # An explicit arch (--arch) beats $ARCH.
    assert kconfig_env(root, "x86_64", {"ARCH": "arm64", "PATH": "/nonexistent"})["SRCARCH"] == "x86"


def test_clang_gets_clang_flags(tmp_path):
    root = kt.write_tree(tmp_path / "t", "")
    env = kconfig_env(root, "x86_64", {"CC_VERSION_TEXT": "clang version 17", "PATH": "/nonexistent"})
    assert env["CLANG_FLAGS"].startswith("--target=x86_64-linux-gnu")


def test_arch_from_config_header(tmp_path):
    cfg = tmp_path / "c"
    cfg.write_text("#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.12.117 Kernel Configuration\n#\n")
    assert arch_from_config(cfg) == "x86"
    cfg.write_text("CONFIG_A=y\n")
    assert arch_from_config(cfg) is None
    assert arch_from_config(tmp_path / "missing") is None


def test_pahole_version_as_the_kernels_script_prints_it():
    assert pahole_version(None) == "0"  # scripts/pahole-version.sh: no such executable
    assert pahole_version("v1.30") == "130"
    assert pahole_version("v1.24") == "124"
    assert pahole_version("") == ""  # there, but printing nothing


@pytest.mark.parametrize(("series", "expected"), [
    ("6.1", ["CC_VERSION_TEXT"]),
    ("6.12", ["CC_VERSION_TEXT", "RUSTC_VERSION_TEXT"]),
    ("7.2", ["CC_VERSION_TEXT", "RUSTC_VERSION_TEXT", "PAHOLE_VERSION"]),
    ("7.3", ["CC_VERSION_TEXT", "RUSTC_VERSION_TEXT", "PAHOLE_VERSION"]),
])
def test_each_trees_makefile_says_what_it_computes(series, expected):
    import realkernel

    try:
        tree = realkernel.source_tree(series)
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    assert makefile_probes(tree, "0.0") == expected


def test_7x_always_exports_pahole_version(tmp_path):
    root = kt.write_tree(tmp_path / "t", "", version="7.3")
    env = kconfig_env(root, "x86_64", {"PATH": "/nonexistent"})
    assert env["PAHOLE_VERSION"] == "0"  # not "" and not missing: pahole-version.sh's answer
    assert "PAHOLE_VERSION" not in kconfig_env(kt.write_tree(tmp_path / "o", "", version="6.1"),
                                               "x86_64", {"PATH": "/nonexistent"})


def test_the_cache_key_holds_every_exported_and_referenced_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("KCHECK_UNSET_HERE", raising=False)
    root = kt.write_tree(tmp_path / "t", "", version="7.3")
    env = kconfig_env(root, "x86_64", {"PATH": "/nonexistent"})
    key = key_variables(env, {"CC", "KCHECK_UNSET_HERE"})
    assert set(env) <= set(key)
    assert key["PAHOLE_VERSION"] == "0"
    assert key["KCHECK_UNSET_HERE"] is None
