"""What the zfs driver needs of the host besides the kernel configuration.

ZFS is not in the kernel tree: ``sys-fs/zfs-kmod`` builds ``zfs.ko`` for one
kernel release, ``sys-fs/zfs`` brings the ``zfs`` and ``zpool`` commands
docker calls, and the loaded module creates the ``/dev/zfs`` control device
they talk through.
"""

from __future__ import annotations

import stat
from pathlib import Path

from kcheck.host import kernel
from kcheck.host.tools import command_findings
from kcheck.locate import under_root
from kcheck.model import CheckContext, Finding, Severity, Status

GROUP = "zfs"


def control_device_finding(root: Path) -> Finding:
    """Is ``/dev/zfs`` a character device (the zfs module is loaded)?"""
    path = under_root(root, "/dev/zfs")
    try:
        is_char = stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        is_char = None
    if is_char:
        return Finding(profile="host", check="dev-zfs", status=Status.OK, severity=Severity.REQUIRED,
                       reason="/dev/zfs is there: the zfs module is loaded", section="host", group=GROUP)
    what = "is missing" if is_char is None else "is not a character device"
    return Finding(profile="host", check="dev-zfs", status=Status.FAIL, severity=Severity.REQUIRED,
                   reason=f"/dev/zfs {what}: the zfs module is not loaded, so docker cannot manage datasets",
                   section="host", group=GROUP, fix="modprobe zfs (and add zfs to /etc/modules-load.d or the zfs service to the boot runlevel)")


def zfs_findings(ctx: CheckContext, release: str | None) -> list[Finding]:
    """/dev/zfs, the zfs and zpool commands, and zfs.ko for the release that will boot."""
    out = [control_device_finding(ctx.root)]
    out += command_findings(ctx.root, ("zfs", "zpool"), "sys-fs/zfs", "docker's zfs driver runs it to manage datasets", GROUP)
    if release is not None:
        out += kernel.out_of_tree_findings(ctx, "zfs", release, "sys-fs/zfs-kmod")
    return out
