"""kcheck fix on Debian's real 6.1 and 6.12 trees, judged by the kernel's own ``make olddefconfig``.

For each profile and each starting configuration (the tree's tinyconfig and
defconfig, Debian's amd64 config with the driver's own symbols turned off):
the plan is made, the written file goes through ``make olddefconfig``, and

- the kernel writes back exactly what kcheck wrote (a following make asks nothing);
- every required item holds in the kernel's result;
- every value that differs from the kernel's reading of the starting file is
  one the plan announced (a change the user makes, or a consequence it listed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import aufs_trees
import realkernel
from kcheck.check import select_profiles
from kcheck.engine import satisfied
from kcheck.fix.cli import plan_for_tree

pytestmark = [pytest.mark.realtree, pytest.mark.slow]

#: Profile -> symbols turned off in Debian's config to give the fix something to do.
CASES = {
    "btrfs": ["BTRFS_FS"],
    "devicemapper": ["BLK_DEV_DM", "DM_THIN_PROVISIONING", "MD"],
    "overlay2": ["OVERLAY_FS"],
    "fuse-overlayfs": ["FUSE_FS", "CUSE", "VIRTIO_FS"],
    "docker": ["VETH", "BRIDGE", "NF_NAT", "IP_NF_NAT", "CGROUP_FREEZER"],
}


def _starts(source, make_config, debian):
    return {
        "tinyconfig": make_config(source, "tinyconfig"),
        "defconfig": make_config(source, "defconfig"),
        "debian": debian["amd64_none_amd64"],
    }


@pytest.fixture(scope="session")
def starts(linux_6_1, make_config, debian_configs_6_1):
    """6.1's starting configurations by name (the Debian one still has every symbol on)."""
    return _starts(linux_6_1, make_config, debian_configs_6_1)


@pytest.fixture(scope="session")
def starts_6_12(linux_6_12, make_config, debian_configs_6_12):
    """6.12's starting configurations by name."""
    return _starts(linux_6_12, make_config, debian_configs_6_12)


def turned_off(config: Path, symbols, dest: Path) -> Path:
    lines = []
    for line in config.read_text().splitlines():
        name = line[len("CONFIG_"):].partition("=")[0] if line.startswith("CONFIG_") else None
        lines.append(f"# CONFIG_{name} is not set" if name in symbols else line)
    dest.write_text("\n".join(lines) + "\n")
    return dest


@pytest.mark.parametrize("series", ["6.1", "6.12"])
@pytest.mark.parametrize("start", ["tinyconfig", "defconfig", "debian"])
@pytest.mark.parametrize("profile", sorted(CASES))
def test_fix_survives_make_olddefconfig(profile, start, series, request, make_config, tmp_path, record_property):
    suffix = series.replace(".", "_")
    tree = request.getfixturevalue(f"kconfig_{suffix}")
    source = request.getfixturevalue(f"linux_{suffix}")
    base = request.getfixturevalue("starts" if series == "6.1" else "starts_6_12")[start]
    config = tmp_path / ".config"
    if start == "debian":
        turned_off(base, CASES[profile], config)
    else:
        shutil.copyfile(base, config)
    profiles = select_profiles(None if profile == "docker" else profile)
    plan, _ = plan_for_tree(tree, config, profiles)
    assert plan.ok, plan.conflicts
    assert plan.changes, "the starting configuration lacked something, so the plan cannot be empty"
    assert plan.rejected == 0, "the model disagreed with the Kconfig layer on this tree"
    record_property("plan_size", len(plan.changes))

    written = tmp_path / "fixed.config"
    written.write_text(plan.config_text)
    after = realkernel.read_assignments(make_config(source, "olddefconfig", written))
    assert after == realkernel.read_assignments(written), "make olddefconfig changed what kcheck wrote"

    for w in plan.wanted:
        values = [after.get(name, "n") for name in w.requirement.names]
        if w.requirement.expect == "not-set":
            assert all(satisfied("not-set", v) for v in values), w.requirement.symbol
        else:
            assert any(satisfied(w.requirement.expect, v) for v in values), (w.requirement.symbol, values)

    before = realkernel.read_assignments(make_config(source, "olddefconfig", config))
    announced = {c.symbol for c in plan.changes} | {d.symbol for d in plan.derived}
    differs = {name for name in before.keys() | after.keys() if before.get(name, "n") != after.get(name, "n")}
    assert differs <= announced, sorted(differs - announced)[:20]


AUFS_KCONFIG = """\
# Modelled on aufs-sources' fs/aufs/Kconfig (written for kcheck's tests).
config AUFS_FS
	tristate "Aufs (advanced multi-layered unification filesystem)"
	depends on MULTIUSER
	help
	  Stacks several directories into one union mount.

if AUFS_FS
choice
	prompt "Maximum number of branches"
	default AUFS_BRANCH_MAX_127

config AUFS_BRANCH_MAX_127
	bool "127"

config AUFS_BRANCH_MAX_511
	bool "511"

endchoice

config AUFS_XATTR
	bool "Extended attributes in branches"
	depends on XATTR_USER_SUPPORT

config AUFS_EXPORT
	bool "Exportable over NFS"
	depends on EXPORTFS = y
endif
"""


@pytest.fixture(scope="session")
def aufs_tree(linux_6_1, tmp_path_factory):
    """The 6.1 tree as aufs-sources ships it: fs/aufs/Kconfig sourced from fs/Kconfig.

    A real copy of what Kconfig reads: a tree of symlinks out of itself is refused as a tree whose
    Kconfig files leave it.
    """
    root = aufs_trees.copy_tree(linux_6_1, tmp_path_factory.mktemp("aufs-sources") / "linux", "6.1", kconfig=True)
    (root / "fs" / "aufs").mkdir(exist_ok=True)
    (root / "fs" / "aufs" / "Kconfig").write_text(AUFS_KCONFIG)
    kconfig = (linux_6_1 / "fs" / "Kconfig").read_text()
    anchor = 'source "fs/overlayfs/Kconfig"'
    assert anchor in kconfig
    (root / "fs" / "Kconfig").write_text(kconfig.replace(anchor, anchor + '\nsource "fs/aufs/Kconfig"'))
    return root


def test_aufs_is_fixable_on_aufs_sources(aufs_tree, starts, tmp_path):
    from kcheck.kconfig import KconfigTree

    tree = KconfigTree.load(aufs_tree, arch="x86_64", use_cache=False)
    config = tmp_path / ".config"
    shutil.copyfile(starts["defconfig"], config)
    plan, _ = plan_for_tree(tree, config, select_profiles("aufs"))
    assert plan.ok, plan.conflicts
    aufs = {c.symbol: c for c in plan.changes}["AUFS_FS"]
    assert aufs.new in ("y", "m") and aufs.location == "fs/aufs/Kconfig:2"
    assert "CONFIG_AUFS_FS=" in plan.config_text


def test_aufs_is_refused_on_a_plain_tree_with_the_reason(kconfig_6_1, starts, tmp_path):
    config = tmp_path / ".config"
    shutil.copyfile(starts["defconfig"], config)
    before = config.read_bytes()
    plan, _ = plan_for_tree(kconfig_6_1, config, select_profiles("aufs"))
    assert not plan.ok and plan.config_text is None
    message = plan.conflicts[0].message
    assert "AUFS_FS does not exist in this tree" in message
    assert "aufs-sources" in message and "aufs3" in message
    assert config.read_bytes() == before


def test_aufs_standalone_module_needs_modules_and_no_aufs_symbol(linux_6_1, starts, tmp_path):
    """A tree patched by sys-fs/aufs3 (mm/prfile.c, no fs/aufs): the fix turns MODULES on, nothing else aufs."""
    from kcheck.kconfig import KconfigTree

    root = aufs_trees.copy_tree(linux_6_1, tmp_path / "linux", "6.1", kconfig=True)
    (root / "mm").mkdir(exist_ok=True)
    (root / "mm" / "prfile.c").write_text("/* added by the aufs standalone patch */\n")
    tree = KconfigTree.load(root, arch="x86_64", use_cache=False)
    config = tmp_path / ".config"
    shutil.copyfile(starts["tinyconfig"], config)  # tinyconfig has MODULES off
    plan, _ = plan_for_tree(tree, config, select_profiles("aufs"))
    assert plan.ok, plan.conflicts
    assert {c.symbol: c.new for c in plan.changes}["MODULES"] == "y"
    assert not any(c.symbol.startswith("AUFS") for c in plan.changes)
