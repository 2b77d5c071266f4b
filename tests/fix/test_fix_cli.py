"""``kcheck fix`` end to end on the real 6.1 tree: every output applied the way a user would apply it."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import pytest
from click.testing import CliRunner

import realkernel
from kcheck.check import run_check
from kcheck.cli import main
from kcheck.model import Status

pytestmark = [pytest.mark.realtree, pytest.mark.slow]


@pytest.fixture(scope="module")
def defconfig(linux_6_1, make_config):
    return make_config(linux_6_1, "defconfig")


@pytest.fixture
def config(defconfig, tmp_path):
    path = tmp_path / "build" / ".config"
    path.parent.mkdir()
    shutil.copyfile(defconfig, path)
    return path


def fix(*args):
    return CliRunner().invoke(main, ["fix", *map(str, args)], catch_exceptions=False)


def required_hold(path, driver) -> list[str]:
    """Required items that fail in ``path``, read as written (plain reader, independent of kconfiglib)."""
    report = run_check(driver=driver, config=path, use_kconfig=False)
    return [f.check for f in report.findings if f.status is Status.FAIL]


def test_dry_run_prints_the_plan_and_writes_nothing(linux_6_1, config):
    before = config.read_bytes()
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config)
    assert result.exit_code == 0, result.output
    assert "BTRFS_FS" in result.output and "fs/btrfs/Kconfig:" in result.output
    assert "Dry run: nothing written" in result.output
    assert "needs" in result.output  # at least one extra change says why
    assert config.read_bytes() == before
    assert sorted(p.name for p in config.parent.iterdir()) == [".config"]


def test_write_in_place_keeps_a_backup_and_asks_for_module_rebuild(linux_6_1, config, tmp_path):
    before = config.read_bytes()
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.1.0-kcheck\n")
    (root / "lib/modules/6.1.0-kcheck/misc").mkdir(parents=True)
    (root / "lib/modules/6.1.0-kcheck/misc/zfs.ko").write_bytes(b"\x7fELF")
    result = fix("-d", "devicemapper", "-k", linux_6_1, "-c", config, "--write", "--root", root)
    assert result.exit_code == 0, result.output
    assert config.with_name(".config.old").read_bytes() == before
    assert "emerge @module-rebuild" in result.output
    assert required_hold(config, "devicemapper") == []
    # What was written is the kernel's own fixed point.
    again = realkernel.read_assignments(realkernel.make_config(linux_6_1, "olddefconfig", config, outdir=tmp_path / "o"))
    assert again == realkernel.read_assignments(config)


def test_output_elsewhere_leaves_the_input(linux_6_1, config, tmp_path):
    before = config.read_bytes()
    out = tmp_path / "fixed.config"
    result = fix("-d", "overlay2", "-k", linux_6_1, "-c", config, "--output", out, "--no-backup")
    assert result.exit_code == 0, result.output
    assert config.read_bytes() == before
    assert required_hold(out, "overlay2") == []
    assert not out.with_name("fixed.config.old").exists()


def test_fragment_merged_by_merge_config_sh(linux_6_1, config, tmp_path):
    frag = tmp_path / "kcheck.config"
    result = fix("-d", "fuse-overlayfs", "-k", linux_6_1, "-c", config, "--fragment", frag)
    assert result.exit_code == 0, result.output
    merged_dir = tmp_path / "merged"
    merged_dir.mkdir()
    proc = subprocess.run(
        [str(linux_6_1 / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(merged_dir), str(config), str(frag)],
        capture_output=True, text=True, env=realkernel.oracle_env(),
    )
    assert proc.returncode == 0, proc.stderr
    final = realkernel.make_config(linux_6_1, "olddefconfig", merged_dir / ".config", outdir=tmp_path / "o")
    assert required_hold(final, "fuse-overlayfs") == []


def test_dist_kernel_fragment_goes_to_etc_kernel_config_d(linux_6_1, config, tmp_path):
    root = tmp_path / "root"
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--dist-kernel", "--root", root)
    assert result.exit_code == 0, result.output
    frag = root / "etc/kernel/config.d/kcheck-btrfs.config"
    text = frag.read_text()
    assert "CONFIG_BTRFS_FS=" in text and "CONFIG_BTRFS_FS_POSIX_ACL=y" in text
    assert all(line.startswith(("#", "CONFIG_")) and " #" not in line for line in text.splitlines() if line)


def test_scripts_config_commands_reproduce_the_fix(linux_6_1, config, tmp_path):
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--format", "scripts-config")
    assert result.exit_code == 0, result.output
    commands = [line for line in result.output.splitlines() if line.startswith("scripts/config")]
    assert len(commands) == 1
    argv = shlex.split(commands[0])
    subprocess.run([str(linux_6_1 / argv[0]), *argv[1:]], check=True)
    final = realkernel.make_config(linux_6_1, "olddefconfig", config, outdir=tmp_path / "o")
    assert required_hold(final, "btrfs") == []


def test_json_plan(linux_6_1, config):
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["conflicts"] == []
    change = next(c for c in data["changes"] if c["symbol"] == "BTRFS_FS")
    assert change["old"] == "n" and change["new"] in ("y", "m") and change["location"].startswith("fs/btrfs/Kconfig:")
    assert {"profile": "btrfs", "symbol": "BTRFS_FS", "expect": "y-or-m", "severity": "required"} in data["requirements"]


def test_conflict_exits_1_and_writes_nothing(linux_6_1, config):
    before = config.read_bytes()
    result = fix("-d", "aufs", "-k", linux_6_1, "-c", config, "--write")
    assert result.exit_code == 1
    assert "AUFS_FS does not exist in this tree" in result.output and "nothing was written" in result.output
    assert config.read_bytes() == before
    assert not config.with_name(".config.old").exists()


def test_config_without_tree_is_a_usage_error(config):
    result = CliRunner().invoke(main, ["fix", "-d", "btrfs", "-c", str(config)])
    assert result.exit_code == 2
    assert "--kernel-dir" in result.output


def test_dependency_impossible_on_this_arch_is_a_conflict(linux_6_1, config, tmp_path):
    profile = tmp_path / "pae.toml"
    profile.write_text('name = "pae"\n[[group]]\nname = "Memory"\nseverity = "required"\n'
                       'requirements = [{ symbol = "X86_PAE", reason = "36-bit physical addresses" }]\n')
    before = config.read_bytes()
    result = fix("-d", "overlay2", "--profile", profile, "-k", linux_6_1, "-c", config, "--write")
    assert result.exit_code == 1
    assert "cannot all hold" in result.output and "X86_PAE" in result.output and "X86_32" in result.output
    assert config.read_bytes() == before


def test_write_with_nothing_to_change_leaves_the_file_alone(linux_6_1, config):
    assert fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--write").exit_code == 0
    fixed = config.read_bytes()
    config.with_name(".config.old").unlink()
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--write")
    assert result.exit_code == 0 and "already holds" in result.output
    assert config.read_bytes() == fixed and not config.with_name(".config.old").exists()
