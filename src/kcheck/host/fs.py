"""The backing filesystem under a runtime's layers, and what each driver needs of it.

The layers live in docker's data root, podman's graphroot or the plugin root
of containerd's snapshotter (:class:`DataRoot`); the rules are the same
kernel facts for all three (overlay2, podman's overlay and containerd's
overlayfs are one OverlayFS; vfs and containerd's native copy every layer).

How the filesystem is found (and why): the mount table
``<root>/proc/self/mountinfo`` is read and the longest mount point that
contains the data root (or its nearest existing parent, before docker ever
ran) wins. The mount table names the filesystem type exactly (``ext4``, not
the ext2/3/4 magic number ``statfs`` shares), gives the source device (needed
to read an XFS superblock for ``ftype``) and, unlike ``statfs``, can be
crafted under ``--root`` so every rule is testable without privileges. When
no mount table is readable, ``statfs(2)`` (through ctypes: Python's
``os.statvfs`` has no ``f_type``) of the real directory names the type from
its magic number instead.

The rules per driver are data (:data:`DRIVER_BACKING`), one line each;
:data:`SAME_RULE` names the other runtimes' drivers that follow one.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kcheck import readsafe
from kcheck.host.docker import DockerSettings
from kcheck.locate import under_root
from kcheck.model import Finding, Severity, Status

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")

#: statfs f_type magic numbers (linux/magic.h) of the filesystems a data root may sit on.
FS_MAGIC = {
    0xEF53: "ext4",  # ext2, ext3 and ext4 share it
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x2FC12FC1: "zfs",
    0x794C7630: "overlay",
    0x61756673: "aufs",
    0x6969: "nfs",
    0xFE534D42: "smb2",
    0x01021994: "tmpfs",
    0x858458F6: "ramfs",
    0xF2F52010: "f2fs",
    0x65735546: "fuse",
    0x73717368: "squashfs",
    0x9FA0: "proc",
    0x62656572: "sysfs",
    0xF15F: "ecryptfs",
    0x52654973: "reiserfs",
}


@dataclass(frozen=True)
class Mount:
    """One line of a mountinfo table: where, what type, from which source."""

    mount_point: str
    fstype: str
    source: str
    options: str = ""


@dataclass(frozen=True)
class DataRoot:
    """Where a runtime keeps its layers, in the report's words.

    ``what`` names it ("docker's data root", "podman's graphroot");
    ``path`` is a system path (not prefixed with ``--root``); ``setting``
    says how a user moves it, for the fixes; ``runtime`` names whose
    support lists apply.
    """

    what: str
    path: str
    setting: str
    runtime: str = "docker"


@dataclass(frozen=True)
class Backing:
    """The filesystem under a runtime's layers, and how it was found.

    ``checked`` is the existing directory that was looked at (the data root
    itself or its nearest existing parent); ``how`` is ``"mountinfo"`` or
    ``"statfs"``; ``mount`` is None when only statfs was available.
    """

    data_root: str
    checked: str
    fstype: str | None
    how: str
    mount: Mount | None = None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` table, in mount order (see proc(5)).

    Each line is ``id parent major:minor root mount-point options
    [optional fields...] - fstype source super-options``; malformed lines are
    skipped (a table being read while it changes may end mid-line).
    """
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 6 or len(rest) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), rest[0], _unescape(rest[1]), rest[2] if len(rest) > 2 else ""))
    return mounts


def mount_of(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that holds ``path``: the longest mount point containing it, the last mounted on ties."""
    best: Mount | None = None
    target = PurePosixPath(path)
    for mount in mounts:
        point = PurePosixPath(mount.mount_point)
        if target == point or point in target.parents:
            if best is None or len(point.parts) >= len(PurePosixPath(best.mount_point).parts):
                best = mount
    return best


def nearest_existing(root: Path, path: str) -> str:
    """``path`` or its nearest parent that exists under ``root`` (a system path).

    On the real root, symlinks are resolved (``/var/lib/docker`` may link to
    another disk); under another root the path is taken as written, since
    its absolute symlinks point outside the root.
    """
    current = PurePosixPath(os.path.realpath(path)) if root == Path("/") else PurePosixPath(path)
    while not under_root(root, str(current)).is_dir() and current != current.parent:
        current = current.parent
    return str(current)


def statfs_type(path: str | Path) -> str | None:
    """The filesystem type of ``path`` from ``statfs(2)``'s magic number, None when unknown.

    ``f_type`` is the first field of ``struct statfs`` and a C ``long`` on
    the common Linux ABIs (x86, arm, riscv); the buffer is larger than the
    structure so the call never writes past it.
    """
    # Imported here: ctypes costs every run ~5-15 ms and is only needed when no mount table is readable.
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    buf = ctypes.create_string_buffer(512)
    if libc.statfs(os.fsencode(str(path)), buf) != 0:
        return None
    magic = ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF
    return FS_MAGIC.get(magic, f"unknown (magic {magic:#x})")


def backing_filesystem(root: Path, data_root: str) -> Backing:
    """Find the filesystem a data root lives (or will live) on."""
    checked = nearest_existing(root, data_root)
    try:
        mounts = parse_mountinfo(readsafe.read_text(under_root(root, MOUNTINFO), what="mount table"))
    except readsafe.UNREADABLE:
        mounts = []  # statfs instead, as when there is no mount table
    mount = mount_of(mounts, checked)
    if mount is not None:
        return Backing(data_root, checked, mount.fstype, "mountinfo", mount)
    return Backing(data_root, checked, statfs_type(under_root(root, checked)), "statfs")


#: XFS superblock: magic, versionnum (u16 at 100), features2 (u32 at 200), features_incompat (u32 at 216).
_XFS_MAGIC = b"XFSB"
_XFS_V2_FTYPE = 0x200  # v4 filesystems: XFS_SB_VERSION2_FTYPE in sb_features2
_XFS_INCOMPAT_FTYPE = 0x1  # v5 filesystems: XFS_SB_FEAT_INCOMPAT_FTYPE


def xfs_ftype_from_superblock(block: bytes) -> bool | None:
    """Whether an XFS primary superblock has ``ftype=1``; None when it is not one."""
    if len(block) < 220 or block[:4] != _XFS_MAGIC:
        return None
    (versionnum,) = struct.unpack_from(">H", block, 100)
    if versionnum & 0xF == 5:
        (incompat,) = struct.unpack_from(">I", block, 216)
        return bool(incompat & _XFS_INCOMPAT_FTYPE)
    (features2,) = struct.unpack_from(">I", block, 200)
    return bool(features2 & _XFS_V2_FTYPE)


def xfs_ftype(root: Path, mount: Mount) -> tuple[bool | None, str]:
    """``ftype`` of a mounted XFS filesystem and where it was learnt.

    The superblock of the source device is read first (no tool needed);
    ``xfs_info`` on the mount point is the fallback when the device cannot be
    read (no privileges, a device-mapper name that is not a file).
    """
    answer = xfs_ftype_from_superblock(_superblock(under_root(root, mount.source)))
    if answer is not None:
        return answer, f"the superblock of {mount.source}"
    tool = shutil.which("xfs_info")
    if tool and root == Path("/"):
        try:
            out = subprocess.run([tool, mount.mount_point], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for word in out.replace(",", " ").split():
            if word.startswith("ftype="):
                return word == "ftype=1", "xfs_info"
    return None, "neither the superblock nor xfs_info could be read"


def _superblock(device: Path) -> bytes:
    """The first 512 bytes of a block device (or a filesystem image); empty for anything else.

    The mount table names the source, and under ``--root`` anyone who can
    write there can make it a FIFO or a character device such as
    ``/dev/zero``: opened without blocking, judged on the descriptor.
    """
    try:
        fd = readsafe.open_nonblocking(device)
    except OSError:
        return b""
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISBLK(mode) or stat.S_ISREG(mode)):
            return b""
        return os.pread(fd, 512, 0)
    except OSError:
        return b""
    finally:
        os.close(fd)


@dataclass(frozen=True)
class BackingRule:
    """What one storage driver needs of the filesystem under its data root.

    ``required``: the only filesystems it works on (empty: any). ``refused``:
    filesystems it cannot run on. ``discouraged``: ones it runs on badly,
    with ``why``.
    """

    required: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    discouraged: frozenset[str] = frozenset()
    supported: frozenset[str] = frozenset()
    why: str = ""


#: The host-side storage knowledge, one driver a line (DOMAIN.md section 2, the seed article).
DRIVER_BACKING: dict[str, BackingRule] = {
    "overlay2": BackingRule(supported=frozenset({"ext4", "xfs", "btrfs"}),
                            refused=frozenset({"overlay", "aufs", "nfs", "nfs4", "ecryptfs"}),
                            why="OverlayFS cannot use that filesystem as its upper layer"),
    "btrfs": BackingRule(required=frozenset({"btrfs"}), why="the btrfs driver makes each layer a btrfs subvolume"),
    "zfs": BackingRule(required=frozenset({"zfs"}), why="the zfs driver makes each layer a zfs dataset clone"),
    "aufs": BackingRule(discouraged=frozenset({"btrfs"}),
                        why="aufs on a btrfs backing filesystem has many known problems (failed mounts, lost whiteouts)"),
}
#: podman's and containerd's drivers that need of their data root what a docker driver does.
SAME_RULE = {"overlay": "overlay2", "overlayfs": "overlay2", "native": "vfs"}


def _finding(check: str, status: Status, severity: Severity, reason: str, **extra) -> Finding:
    return Finding(profile="host", check=check, status=status, severity=severity, reason=reason,
                   section="host", group="Backing filesystem", **extra)


def backing_fs_findings(root: Path, drivers: list[str], settings: DockerSettings) -> list[Finding]:
    """The filesystem under docker's data root, and whether it suits each of ``drivers``."""
    data_root = DataRoot("docker's data root", settings.data_root, '"data-root" in /etc/docker/daemon.json')
    return data_root_findings(root, drivers, data_root, docker=settings)


def data_root_findings(root: Path, drivers: list[str], data_root: DataRoot, *, docker: DockerSettings | None = None,
                       detail: str | None = None) -> list[Finding]:
    """The filesystem under ``data_root``, and whether it suits each of ``drivers``.

    ``docker`` carries docker's storage options (devicemapper's thin pool);
    ``detail`` says where the data root's path came from.
    """
    found = backing_filesystem(root, data_root.path)
    where = data_root.path if found.checked == data_root.path else f"{data_root.path} (not created yet; {found.checked})"
    fstype = found.fstype or "unknown"
    how = f"from {found.how}" + (f", mounted at {found.mount.mount_point} from {found.mount.source}" if found.mount else "")
    findings = [_finding("data-root", Status.INFO, Severity.INFO, f"{data_root.what} {where} is on {fstype}", actual=fstype,
                         detail=f"{detail}; {how}" if detail else how)]
    for driver in drivers:
        findings.extend(_driver_findings(root, driver, data_root, found, where, docker))
    return findings


def _driver_findings(root: Path, driver: str, data_root: DataRoot, found: Backing, where: str,
                     docker: DockerSettings | None) -> list[Finding]:
    fstype = found.fstype or "unknown"
    kind = SAME_RULE.get(driver, driver)
    findings = []
    if kind == "devicemapper" and docker is not None:
        findings.append(_devicemapper(docker))
    elif kind == "vfs":
        findings.append(_vfs_space(root, found, driver))
    rule = DRIVER_BACKING.get(kind)
    if rule is None or found.fstype is None:
        return findings
    expected = "/".join(sorted(rule.required or rule.supported)) or None
    if rule.required and fstype not in rule.required:
        findings.append(_finding("backing-fs", Status.FAIL, Severity.REQUIRED,
                                 f"{driver} needs {data_root.what} on {expected}, but {where} is on {fstype}: {rule.why}",
                                 expected=expected, actual=fstype,
                                 fix=f"mount a {expected} filesystem at {data_root.path}, or set {data_root.setting} to a directory on one"))
    elif fstype in rule.refused:
        findings.append(_finding("backing-fs", Status.FAIL, Severity.REQUIRED,
                                 f"{driver} cannot run with its data root on {fstype}: {rule.why}", expected=expected, actual=fstype,
                                 fix=f"put {data_root.what} on {expected} ({data_root.setting})"))
    elif fstype in rule.discouraged:
        findings.append(_finding("backing-fs", Status.WARN, Severity.RECOMMENDED, rule.why, actual=fstype,
                                 fix=f"put {data_root.what} on ext4 or xfs"))
    elif kind == "overlay2" and fstype == "xfs":
        findings.append(_overlay_on_xfs(root, found, driver))
    elif rule.supported and fstype not in rule.supported:
        findings.append(_finding("backing-fs", Status.WARN, Severity.RECOMMENDED,
                                 f"{fstype} is not a backing filesystem {data_root.runtime} supports for {driver} ({expected} are)",
                                 expected=expected, actual=fstype))
    else:
        findings.append(_finding("backing-fs", Status.OK, Severity.REQUIRED, f"{fstype} suits {driver}", expected=expected, actual=fstype))
    return findings


def _overlay_on_xfs(root: Path, found: Backing, driver: str) -> Finding:
    ftype, source = xfs_ftype(root, found.mount) if found.mount else (None, "no mount table")
    if ftype:
        return _finding("backing-fs", Status.OK, Severity.REQUIRED, f"xfs with ftype=1 suits {driver}",
                        expected="xfs ftype=1", actual="xfs ftype=1", detail=f"from {source}")
    if ftype is False:
        return _finding("backing-fs", Status.FAIL, Severity.REQUIRED,
                        f"{driver} on xfs needs ftype=1 (d_type), and this filesystem was made with ftype=0",
                        expected="xfs ftype=1", actual="xfs ftype=0", detail=f"from {source}",
                        fix="recreate the filesystem with mkfs.xfs -n ftype=1 (back up first), or move the data root")
    return _finding("backing-fs", Status.WARN, Severity.RECOMMENDED,
                    f"{driver} on xfs needs ftype=1; it could not be verified ({source})",
                    expected="xfs ftype=1", actual="xfs", fix=f"run xfs_info {found.mount.mount_point if found.mount else found.checked} and look for ftype=1")


def _devicemapper(settings: DockerSettings) -> Finding:
    pool = settings.option("dm.thinpooldev")
    if pool:
        return _finding("devicemapper-mode", Status.OK, Severity.RECOMMENDED, f"direct-lvm: thin pool {pool}", actual="direct-lvm")
    return _finding("devicemapper-mode", Status.WARN, Severity.RECOMMENDED,
                    "devicemapper runs in loop-lvm mode (no dm.thinpooldev in storage-opts): its thin pool sits on "
                    "sparse loopback files, which is slow and only meant for testing",
                    expected="direct-lvm", actual="loop-lvm",
                    fix="create an LVM thin pool on a raw block device and set \"storage-opts\": [\"dm.thinpooldev=/dev/mapper/<pool>\"] (direct-lvm)")


def _vfs_space(root: Path, found: Backing, driver: str) -> Finding:
    try:
        space = os.statvfs(under_root(root, found.checked))
        free = f"{space.f_bavail * space.f_frsize / 2**30:.1f} GiB free"
    except OSError:
        free = "free space unknown"
    return _finding("vfs-space", Status.INFO, Severity.INFO,
                    f"every {driver} layer is a full copy on {found.checked}: {free}", actual=found.fstype)
