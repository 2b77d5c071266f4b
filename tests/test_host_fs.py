"""The backing filesystem of docker's data root: mount tables, statfs, XFS ftype, per-driver rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import realkernel

from kcheck.host import fs
from kcheck.host.docker import DockerSettings, read_settings
from kcheck.model import Status

REAL_ROOT = Path("/")


def mountinfo_line(n: int, point: str, fstype: str, source: str, options: str = "rw") -> str:
    """One mountinfo line in the kernel's layout (proc(5))."""
    return f"{n} 1 0:{n} / {point} rw,relatime shared:{n} - {fstype} {source} {options}"


def make_root(tmp_path: Path, mounts: list[tuple[str, str, str]], daemon: dict | None = None, dirs=("var/lib",)) -> Path:
    """A root with a crafted mount table, optional daemon.json and directories."""
    root = tmp_path / "root"
    (root / "proc/self").mkdir(parents=True)
    lines = [mountinfo_line(i + 20, *m) for i, m in enumerate(mounts)]
    (root / "proc/self/mountinfo").write_text("\n".join(lines) + "\n")
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    if daemon is not None:
        (root / "etc/docker").mkdir(parents=True)
        (root / "etc/docker/daemon.json").write_text(json.dumps(daemon))
    return root


def verdict(findings, check="backing-fs"):
    """The status of the one finding named ``check``."""
    (found,) = [f for f in findings if f.check == check]
    return found


# --- the mount table -----------------------------------------------------------


def test_mountinfo_fields_and_octal_escapes():
    text = "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    (mount,) = fs.parse_mountinfo(text)
    assert mount == fs.Mount("/mnt/my disk", "ext3", "/dev/root", "rw,errors=continue")


def test_mountinfo_skips_truncated_lines():
    text = mountinfo_line(1, "/", "ext4", "/dev/sda1") + "\n37 36 0:5 / /half rw\n"
    assert [m.mount_point for m in fs.parse_mountinfo(text)] == ["/"]


def test_longest_mount_point_wins_and_later_mounts_shadow_earlier():
    mounts = fs.parse_mountinfo("\n".join([
        mountinfo_line(1, "/", "ext4", "/dev/sda1"),
        mountinfo_line(2, "/var", "xfs", "/dev/sda2"),
        mountinfo_line(3, "/var/lib/docker", "btrfs", "/dev/sdb"),
        mountinfo_line(4, "/var/lib/docker", "zfs", "tank/docker"),
        mountinfo_line(5, "/var/lib/dockerx", "tmpfs", "tmpfs"),
    ]))
    assert fs.mount_of(mounts, "/var/lib/docker/overlay2").fstype == "zfs"
    assert fs.mount_of(mounts, "/var/lib/dockerx2").fstype == "xfs"  # a prefix of the name is not a parent
    assert fs.mount_of(mounts, "/var").fstype == "xfs"
    assert fs.mount_of(mounts, "/home").fstype == "ext4"


def test_nearest_existing_directory_under_a_root(tmp_path):
    (tmp_path / "var/lib").mkdir(parents=True)
    assert fs.nearest_existing(tmp_path, "/var/lib/docker/volumes") == "/var/lib"
    assert fs.nearest_existing(tmp_path, "/srv/docker") == "/"


# --- statfs and the real machine -----------------------------------------------


def test_statfs_names_this_machines_own_filesystems():
    """statfs(2) through ctypes agrees with the kernel's mount table for the mounts that exist here."""
    mounts = fs.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    checked = 0
    for point, expected in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/shm", "tmpfs"), ("/", None)):
        mount = fs.mount_of(mounts, point)
        if mount is None or mount.mount_point != point:
            continue
        want = expected or mount.fstype
        if want in ("ext2", "ext3"):
            want = "ext4"  # one magic number for the ext family
        if want not in fs.FS_MAGIC.values():
            continue
        assert fs.statfs_type(point) == want, point
        checked += 1
    assert checked >= 2
    assert fs.statfs_type("/no/such/path") is None


def test_backing_filesystem_of_the_real_root_matches_statfs():
    found = fs.backing_filesystem(REAL_ROOT, "/var/lib/docker")
    assert found.how == "mountinfo"
    assert Path(found.checked).is_dir()
    family = "ext4" if found.fstype in ("ext2", "ext3") else found.fstype
    if family in fs.FS_MAGIC.values():
        assert fs.statfs_type(found.checked) == family


def test_statfs_is_the_fallback_without_a_mount_table(tmp_path):
    (tmp_path / "var/lib").mkdir(parents=True)
    found = fs.backing_filesystem(tmp_path, "/var/lib/docker")
    assert found.how == "statfs"
    assert found.fstype == fs.statfs_type(tmp_path / "var/lib")


# --- per-driver rules on crafted roots -----------------------------------------


@pytest.mark.parametrize(
    ("driver", "fstype", "status"),
    [
        ("btrfs", "ext4", Status.FAIL),
        ("btrfs", "btrfs", Status.OK),
        ("zfs", "ext4", Status.FAIL),
        ("zfs", "zfs", Status.OK),
        ("overlay2", "ext4", Status.OK),
        ("overlay2", "btrfs", Status.OK),
        ("overlay2", "overlay", Status.FAIL),
        ("overlay2", "aufs", Status.FAIL),
        ("overlay2", "nfs4", Status.FAIL),
        ("overlay2", "f2fs", Status.WARN),
        ("aufs", "btrfs", Status.WARN),
        ("aufs", "ext4", Status.OK),
    ],
)
def test_driver_needs_of_the_backing_filesystem(tmp_path, driver, fstype, status):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1"), ("/var/lib/docker", fstype, "/dev/sdb")], dirs=("var/lib/docker",))
    findings = fs.backing_fs_findings(root, [driver], read_settings(root))
    assert verdict(findings).status is status
    assert verdict(findings, "data-root").actual == fstype


def test_data_root_from_daemon_json_decides_the_filesystem(tmp_path):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1"), ("/srv", "btrfs", "/dev/sdb")],
                     daemon={"data-root": "/srv/docker"}, dirs=("srv",))
    findings = fs.backing_fs_findings(root, ["btrfs"], read_settings(root))
    assert verdict(findings).status is Status.OK
    assert "not created yet; /srv" in verdict(findings, "data-root").reason


def test_devicemapper_loop_lvm_warns_with_reason_and_remedy(tmp_path):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1")])
    (found,) = [f for f in fs.backing_fs_findings(root, ["devicemapper"], DockerSettings(None)) if f.check == "devicemapper-mode"]
    assert found.status is Status.WARN and found.actual == "loop-lvm"
    assert "slow" in found.reason and "direct-lvm" in found.fix and "raw block device" in found.fix
    pool = DockerSettings(None, storage_opts=("dm.basesize=20G", "dm.thinpooldev=/dev/mapper/docker-thinpool"))
    (found,) = [f for f in fs.backing_fs_findings(root, ["devicemapper"], pool) if f.check == "devicemapper-mode"]
    assert found.status is Status.OK and "docker-thinpool" in found.reason


def test_vfs_reports_the_space_layers_will_copy_into(tmp_path):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1")])
    (found,) = [f for f in fs.backing_fs_findings(root, ["vfs"], DockerSettings(None)) if f.check == "vfs-space"]
    assert "full copy" in found.reason and "GiB free" in found.reason


# --- XFS ftype -----------------------------------------------------------------


def xfs_superblock(version: int, ftype: bool) -> bytes:
    """A primary XFS superblock with only the fields ftype depends on filled in."""
    block = bytearray(512)
    block[:4] = b"XFSB"
    block[100:102] = (version | 0x8000 if version == 4 else version).to_bytes(2, "big")
    if version == 5:
        block[216:220] = (1 if ftype else 0).to_bytes(4, "big")
    else:
        block[200:204] = (0x200 if ftype else 0).to_bytes(4, "big")
    return bytes(block)


@pytest.mark.parametrize(("version", "ftype"), [(5, True), (5, False), (4, True), (4, False)])
def test_xfs_ftype_from_crafted_superblocks(version, ftype):
    assert fs.xfs_ftype_from_superblock(xfs_superblock(version, ftype)) is ftype


def test_not_an_xfs_superblock():
    assert fs.xfs_ftype_from_superblock(b"\0" * 512) is None


@pytest.fixture(scope="module")
def mkfs_xfs() -> None:
    """xfsprogs, installed by the suite's own setup where it can (as root on Debian)."""
    if realkernel.install_tools({"mkfs.xfs": "xfsprogs"}):
        pytest.skip("xfsprogs (mkfs.xfs) not installed")


@pytest.mark.parametrize(("options", "ftype"), [((), True), (("-m", "crc=0", "-n", "ftype=0"), False), (("-m", "crc=0", "-n", "ftype=1"), True)])
def test_xfs_ftype_of_filesystems_made_by_mkfs_xfs(tmp_path, options, ftype, mkfs_xfs):
    image = tmp_path / "xfs.img"
    with open(image, "wb") as handle:
        handle.truncate(320 * 2**20)
    subprocess.run(["mkfs.xfs", "-q", *options, str(image)], check=True, capture_output=True)
    assert fs.xfs_ftype_from_superblock(image.read_bytes()[:512]) is ftype


@pytest.mark.parametrize(("ftype", "status"), [(True, Status.OK), (False, Status.FAIL)])
def test_overlay2_on_xfs_reads_the_device_superblock(tmp_path, ftype, status):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1"), ("/var/lib/docker", "xfs", "/dev/sdb1")], dirs=("var/lib/docker", "dev"))
    (root / "dev/sdb1").write_bytes(xfs_superblock(5, ftype) + b"\0" * 4096)
    found = verdict(fs.backing_fs_findings(root, ["overlay2"], DockerSettings(None)))
    assert found.status is status
    assert "superblock of /dev/sdb1" in found.detail


def test_overlay2_on_xfs_with_unreadable_device_warns(tmp_path):
    root = make_root(tmp_path, [("/", "ext4", "/dev/sda1"), ("/var/lib/docker", "xfs", "/dev/mapper/vg-docker")], dirs=("var/lib/docker",))
    found = verdict(fs.backing_fs_findings(root, ["overlay2"], DockerSettings(None)))
    assert found.status is Status.WARN and "xfs_info" in found.fix


def test_a_real_mounted_xfs_when_this_machine_allows_it(tmp_path, mkfs_xfs):
    """statfs, the mount table and the superblock read of a real loop-mounted XFS (root and loop devices only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to loop-mount an XFS image")
    image, mnt = tmp_path / "xfs.img", tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(320 * 2**20)
    subprocess.run(["mkfs.xfs", "-q", str(image)], check=True, capture_output=True)
    if subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("this machine cannot loop-mount XFS")
    try:
        assert fs.statfs_type(mnt) == "xfs"
        settings = DockerSettings(None, data_root=f"{mnt}/docker")
        findings = fs.backing_fs_findings(REAL_ROOT, ["overlay2"], settings)
        assert verdict(findings, "data-root").actual == "xfs"
        found = verdict(findings)
        assert found.status is Status.OK and found.actual == "xfs ftype=1" and "/dev/loop" in found.detail
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
