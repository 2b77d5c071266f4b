"""Acceptance: kcheck's Kconfig evaluation is the kernel's, on real trees and real configs.

For Debian's 6.1 and 6.12 trees, every amd64 flavour config and the
tinyconfig / defconfig / allnoconfig the tree itself makes, the ``.config``
kcheck computes (``tree.read`` then ``tree.write_config``) must equal what
``make olddefconfig`` writes from the same input: symbol for symbol, and in
fact line for line (the header included). No toolchain line is exempt: kcheck
gives kconfiglib the environment the Makefile gives ``conf``.
"""

from __future__ import annotations

import difflib

import pytest

import realkernel
from kcheck.kconfig.compat import CHOICE_RULES_6_11

pytestmark = pytest.mark.realtree

INPUTS = [*realkernel.FLAVOURS, "tinyconfig", "defconfig", "allnoconfig"]


def _input(request, series, name, tree):
    if name in realkernel.FLAVOURS:
        return request.getfixturevalue(f"debian_configs_{series.replace('.', '_')}")[name]
    return request.getfixturevalue("make_config")(tree, name)


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("series", realkernel.SERIES)
def test_olddefconfig_matches_the_kernel(request, tmp_path, make_config, series, name):
    key = series.replace(".", "_")
    tree = request.getfixturevalue(f"linux_{key}")
    kconfig = request.getfixturevalue(f"kconfig_{key}")
    given = _input(request, series, name, tree)

    expected = make_config(tree, "olddefconfig", given)
    kconfig.read(given)
    ours = tmp_path / "kcheck.config"
    kconfig.write_config(ours)

    want, got = realkernel.read_assignments(expected), realkernel.read_assignments(ours)
    differing = {s: (got.get(s), want.get(s)) for s in want.keys() | got.keys() if got.get(s) != want.get(s)}
    assert not differing, f"kcheck vs make olddefconfig (kcheck, make): {sorted(differing.items())[:30]}"
    text_diff = list(difflib.unified_diff(expected.read_text().splitlines(),
                                          ours.read_text().splitlines(), lineterm="", n=1))
    assert not text_diff, "\n".join(text_diff[:40])


def test_inputs_really_differ_from_their_olddefconfig(debian_configs_6_12, kconfig_6_12):
    # Guard: the comparison above is not trivially "copy the input" - Debian's
    # configs come from another toolchain, so olddefconfig rewrites some lines.
    given = debian_configs_6_12["amd64_none_amd64"]
    source = kconfig_6_12.read(given)
    state = source.state("CC_VERSION_TEXT")
    assert state.written != state.value


def test_choice_rules_follow_each_trees_own_conf(kconfig_6_1, kconfig_6_12):
    assert kconfig_6_1.kconf.choice_rules is None
    assert kconfig_6_12.kconf.choice_rules == CHOICE_RULES_6_11


def test_the_config_headers_arch_agrees_with_make_on_this_machine(tmp_path, linux_6_12,
                                                                 debian_configs_6_12):
    # `make olddefconfig` in /usr/src/linux on an x86_64 box runs with ARCH=x86 (its
    # SUBARCH); kcheck takes the same from the config header ("# Linux/x86 ...").
    from kcheck.kconfig import KconfigTree
    from kcheck.kconfig.env import arch_from_config

    given = debian_configs_6_12["amd64_none_amd64"]
    arch = arch_from_config(given)
    assert arch == "x86"
    expected = realkernel.make_config(linux_6_12, "olddefconfig", given, outdir=tmp_path / "o",
                                      arch=arch)
    with pytest.MonkeyPatch.context() as mp:
        for var in realkernel.TOOLCHAIN_VARS:
            mp.delenv(var, raising=False)
        tree = KconfigTree.load(linux_6_12, arch=arch)
    tree.read(given)
    tree.write_config(tmp_path / "kcheck.config")
    assert (tmp_path / "kcheck.config").read_text() == expected.read_text()


def test_without_shell_only_toolchain_probes_differ(tmp_path, linux_6_12, debian_configs_6_12,
                                                   make_config):
    # --no-shell: no $(shell,...) runs, every probe answers n. The storage symbols kcheck
    # is about keep their values; what changes is what the toolchain probes decide.
    from kcheck.kconfig import KconfigTree

    given = debian_configs_6_12["amd64_none_amd64"]
    expected = realkernel.read_assignments(make_config(linux_6_12, "olddefconfig", given))
    tree = KconfigTree.load(linux_6_12, arch=realkernel.ARCH, allow_shell=False, use_cache=False)
    tree.read(given)
    tree.write_config(tmp_path / "noshell.config")
    got = realkernel.read_assignments(tmp_path / "noshell.config")
    differing = {s for s in expected.keys() | got.keys() if expected.get(s) != got.get(s)}
    assert "CC_IS_GCC" in differing  # the probes really did not run
    assert len(differing) < 0.02 * len(expected)
    for name in ("OVERLAY_FS", "BTRFS_FS", "BLK_DEV_DM", "DM_THIN_PROVISIONING", "EXT4_FS"):
        assert got[name] == expected[name]
