"""zfs on the host: /dev/zfs, the zfs and zpool commands, zfs.ko for the release that will boot."""

from __future__ import annotations

import os
from pathlib import Path

from kcheck import dotconfig
from kcheck.host import tools, zfs
from kcheck.model import CheckContext, Status
from kcheck.version import parse_release


def executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def ctx_for(root: Path) -> CheckContext:
    config = root / "config"
    config.write_text("# Linux/x86 6.6.30 Kernel Configuration\nCONFIG_MODULES=y\n")
    source = dotconfig.load(config)
    return CheckContext(root=root, source=source, tree=None, build_dir=None, kernel_version=parse_release("6.6.30", "config header"))


def test_dev_zfs_must_be_a_character_device(tmp_path):
    assert zfs.control_device_finding(tmp_path).status is Status.FAIL
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/zfs").write_text("")
    found = zfs.control_device_finding(tmp_path)
    assert found.status is Status.FAIL and "not a character device" in found.reason
    (tmp_path / "dev/zfs").unlink()
    os.symlink("/dev/null", tmp_path / "dev/zfs")  # a real character device, no privileges needed
    assert zfs.control_device_finding(tmp_path).status is Status.OK


def test_commands_are_searched_under_the_root_not_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    executable(tmp_path / "sbin/zfs")
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/zpool").write_text("not executable")
    assert tools.find_command(tmp_path, "zfs") == "/sbin/zfs"
    assert tools.find_command(tmp_path, "zpool") is None
    executable(tmp_path / "usr/bin/zpool")
    assert tools.find_command(tmp_path, "zpool") == "/usr/bin/zpool"


def test_zfs_findings_together(tmp_path):
    executable(tmp_path / "sbin/zfs")
    findings = {f.check: f for f in zfs.zfs_findings(ctx_for(tmp_path), "6.6.30")}
    assert findings["command:zfs"].status is Status.OK
    assert findings["command:zpool"].status is Status.FAIL and findings["command:zpool"].fix == "emerge sys-fs/zfs"
    assert findings["module:zfs"].status is Status.FAIL and "zfs-kmod" in findings["module:zfs"].fix
    assert "module:zfs" not in {f.check for f in zfs.zfs_findings(ctx_for(tmp_path), None)}  # nothing will boot yet
