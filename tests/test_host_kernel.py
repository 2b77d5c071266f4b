"""Kernel readiness: bzImage version strings, built/installed/booted, modules and vermagic."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kernel_files import elf_with_modinfo, make_bzimage

from kcheck import dotconfig
from kcheck.host import kernel
from kcheck.model import CheckContext, Finding, Severity, Status
from kcheck.version import parse_release

RELEASE = "6.6.30-gentoo"
BUILD = "#2 SMP PREEMPT_DYNAMIC Fri Nov 27 12:00:00 UTC 2026"


def touch(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def make_tree(root: Path, config: str = "CONFIG_MODULES=y\nCONFIG_OVERLAY_FS=m\n") -> Path:
    """A kernel tree under root/usr/src/linux with a .config and a Makefile version."""
    tree = root / "usr/src/linux"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = 30\nEXTRAVERSION = -gentoo\n")
    (tree / "Kconfig").write_text("mainmenu \"Linux\"\n")
    (tree / ".config").write_text("# Linux/x86 6.6.30 Kernel Configuration\n" + config)
    return tree


def running(root: Path, release: str, version: str) -> None:
    (root / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "proc/sys/kernel/version").write_text(version + "\n")


def context(root: Path, tree: Path | None, *, live: bool = False, config: Path | None = None) -> CheckContext:
    config = config or tree / ".config"
    source = dotconfig.load(config)
    version = parse_release(source.header_version, "config header") if tree is None else parse_release("6.6.30-gentoo", "Makefile")
    return CheckContext(root=root, source=source, tree=tree, build_dir=tree, kernel_version=version, live=live)


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


# --- the bzImage version string ------------------------------------------------


def test_bzimage_version_from_a_real_header_layout(tmp_path):
    text = f"{RELEASE} (root@box) {BUILD}"
    assert kernel.bzimage_version(make_bzimage(tmp_path / "bzImage", text)) == text
    assert kernel.split_version(text) == (RELEASE, BUILD)


def test_not_a_bzimage(tmp_path):
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF" + b"\0" * 0x400)
    assert kernel.bzimage_version(tmp_path / "vmlinux") is None
    assert kernel.bzimage_version(make_bzimage(tmp_path / "old", "2.4", protocol=0x0105)) is None
    assert kernel.bzimage_version(tmp_path / "missing") is None


def test_boot_images_by_header_then_by_name(tmp_path):
    make_bzimage(tmp_path / "boot/vmlinuz-6.6.30-gentoo", f"{RELEASE} (root@box) {BUILD}")
    (tmp_path / "boot/vmlinuz-6.1.0-gentoo.old").write_bytes(b"arm64 Image")
    (tmp_path / "boot/config-6.6.30-gentoo").write_text("")
    (tmp_path / "boot/0123abcd/6.7.1-gentoo").mkdir(parents=True)
    (tmp_path / "boot/0123abcd/6.7.1-gentoo/linux").write_bytes(b"arm64 Image")
    images = {i.release: i.uts_version for i in kernel.boot_images(tmp_path)}
    assert images == {RELEASE: BUILD, "6.1.0-gentoo": None, "6.7.1-gentoo": None}


def test_boot_images_in_efi_subdirectories_and_links_skipped(tmp_path):
    make_bzimage(tmp_path / "boot/EFI/gentoo/vmlinuz-6.8.1-gentoo", f"6.8.1-gentoo (root@box) {BUILD}")
    (tmp_path / "boot/EFI/gentoo/vmlinuz").symlink_to("vmlinuz-6.8.1-gentoo")
    (tmp_path / "boot/grub/x86_64-efi").mkdir(parents=True)
    (tmp_path / "boot/grub/x86_64-efi/linux.mod").write_bytes(b"\x7fELF")
    images = kernel.boot_images(tmp_path)
    assert [(i.path.name, i.release, i.uts_version) for i in images] == [("vmlinuz-6.8.1-gentoo", "6.8.1-gentoo", BUILD)]


def test_running_build_from_proc_version_when_proc_sys_is_absent(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/version").write_text(f"Linux version {RELEASE} (root@box) (gcc (Gentoo 13.2.1_p20240210 p14) 13.2.1, GNU ld 2.41) {BUILD}\n")
    now = kernel.running_kernel(tmp_path)
    assert (now.release, now.uts_version) == (RELEASE, BUILD)
    assert kernel.booted(now, RELEASE, BUILD) and not kernel.booted(now, RELEASE, "#1 SMP")


# --- built, installed, booted --------------------------------------------------


def stage_root(tmp_path: Path, *, built: bool, installed: bool, booted: bool, stale: bool = False) -> tuple[Path, Path]:
    root = tmp_path / "root"
    tree = make_tree(root)
    (tree / "include/config").mkdir(parents=True)
    (tree / "include/config/kernel.release").write_text(RELEASE + "\n")
    touch(tree / ".config", 1_700_000_000)
    text = f"{RELEASE} (root@box) {BUILD}"
    if built:
        image = make_bzimage(tree / "arch/x86/boot/bzImage", text)
        touch(image, 1_700_000_000 - 100 if stale else 1_700_000_100)
    (root / "boot").mkdir()
    if installed:
        make_bzimage(root / "boot/vmlinuz-6.6.30-gentoo", text)
    running(root, RELEASE if booted else "6.1.0-gentoo", BUILD if booted else "#1 SMP Mon Jan 1 00:00:00 UTC 2024")
    return root, tree


def test_not_built_yet(tmp_path):
    root, tree = stage_root(tmp_path, built=False, installed=False, booted=False)
    found, boot = kernel.readiness_findings(context(root, tree))
    checks = by_check(found)
    assert checks["kernel-release"].actual == RELEASE
    assert checks["kernel-built"].status is Status.WARN and "not built" in checks["kernel-built"].reason
    assert boot is None


def test_config_newer_than_the_build_needs_a_rebuild(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=True, stale=True)
    checks = by_check(kernel.readiness_findings(context(root, tree))[0])
    assert checks["kernel-built"].status is Status.WARN and "rebuild" in checks["kernel-built"].fix
    assert "kernel-booted" not in checks  # a stale build proves nothing about this configuration


def test_built_but_not_installed(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=False, booted=False)
    checks = by_check(kernel.readiness_findings(context(root, tree))[0])
    assert checks["kernel-built"].status is Status.OK
    assert checks["kernel-installed"].status is Status.WARN and "install" in checks["kernel-installed"].fix


def test_installed_but_not_booted_asks_for_a_reboot(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    found, boot = kernel.readiness_findings(context(root, tree))
    checks = by_check(found)
    assert checks["kernel-installed"].status is Status.OK
    assert checks["kernel-booted"].status is Status.WARN and "reboot" in checks["kernel-booted"].fix
    assert "6.1.0-gentoo" in checks["kernel-booted"].reason
    assert boot == RELEASE
    # Planned progress, never an exit status 1, not even with --strict.
    assert checks["kernel-booted"].severity is Severity.INFO


def test_booted(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=True)
    checks = by_check(kernel.readiness_findings(context(root, tree))[0])
    assert checks["kernel-booted"].status is Status.OK


def test_an_older_build_of_the_same_release_is_installed(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=False, booted=False)
    make_bzimage(root / "boot/vmlinuz-6.6.30-gentoo", f"{RELEASE} (root@box) #1 SMP Thu Nov 26 09:00:00 UTC 2026")
    checks = by_check(kernel.readiness_findings(context(root, tree))[0])
    assert checks["kernel-installed"].status is Status.WARN


def test_same_release_running_but_an_older_build(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=True)
    running(root, RELEASE, "#1 SMP Thu Nov 26 09:00:00 UTC 2026")
    checks = by_check(kernel.readiness_findings(context(root, tree))[0])
    assert checks["kernel-booted"].status is Status.WARN and "older build" in checks["kernel-booted"].reason


def test_booted_without_an_image_in_boot(tmp_path):
    """/boot unmounted, or a kernel booted directly by a hypervisor: the running build still counts."""
    root, tree = stage_root(tmp_path, built=True, installed=False, booted=True)
    found, boot = kernel.readiness_findings(context(root, tree))
    checks = by_check(found)
    assert checks["kernel-booted"].status is Status.OK and "not in /boot" in checks["kernel-booted"].reason
    assert "kernel-installed" not in checks and boot == RELEASE


def test_a_bare_config_of_the_running_release_has_no_build_to_judge(tmp_path):
    running(tmp_path, "6.6.30-gentoo", BUILD)
    config = tmp_path / "config-6.6.30-gentoo"
    config.write_text('# Linux/x86 6.6.30 Kernel Configuration\nCONFIG_LOCALVERSION="-gentoo"\n')
    checks = by_check(kernel.readiness_findings(context(tmp_path, None, config=config))[0])
    assert checks["kernel-release"].actual == RELEASE
    assert "kernel-built" not in checks
    assert checks["kernel-booted"].status is Status.OK


def test_release_from_makefile_localversion_files_and_config(tmp_path):
    root = tmp_path
    tree = make_tree(root, 'CONFIG_LOCALVERSION="-docker"\n')
    (tree / "localversion-a").write_text("-a\n")
    (tree / "localversion-b").write_text("-b\n")
    release, how = kernel.target_release(context(root, tree))
    assert release == "6.6.30-gentoo-a-b-docker"
    assert "CONFIG_LOCALVERSION" in how


# --- modules ------------------------------------------------------------------


def ok_m(symbol: str) -> Finding:
    return Finding(profile="overlay2", check=symbol, symbol=symbol, status=Status.OK, severity=Severity.REQUIRED,
                   reason="", expected="y-or-m", actual="m")


def test_required_modules_for_the_release_that_will_boot(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    moddir = root / f"lib/modules/{RELEASE}/kernel"
    (moddir / "fs/overlayfs").mkdir(parents=True)
    (moddir / "fs/overlayfs/overlay.ko.xz").write_bytes(b"")
    (root / f"lib/modules/{RELEASE}/modules.builtin").write_text("kernel/net/bridge/bridge.ko\n")
    findings = kernel.module_findings(context(root, tree), [ok_m("OVERLAY_FS"), ok_m("BRIDGE"), ok_m("DM_THIN_PROVISIONING")], RELEASE)
    checks = by_check(findings)
    assert checks["modules"].status is Status.OK and "overlay" in checks["modules"].detail and "bridge" in checks["modules"].detail
    assert checks["modules-missing"].status is Status.FAIL and checks["modules-missing"].detail == "dm-thin-pool"


def test_modules_directory_missing_means_modules_install_was_forgotten(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    (found,) = kernel.module_findings(context(root, tree), [ok_m("OVERLAY_FS")], RELEASE)
    assert found.status is Status.FAIL and "modules_install" in found.fix


# --- .modinfo and vermagic -----------------------------------------------------


@pytest.mark.parametrize(("wide", "order"), [(True, "<"), (False, "<"), (True, ">")])
def test_modinfo_of_hand_built_elf(tmp_path, wide, order):
    path = tmp_path / "aufs.ko"
    path.write_bytes(elf_with_modinfo(["license=GPL", f"vermagic={RELEASE} SMP preempt mod_unload "], wide=wide, order=order))
    assert kernel.modinfo(path)["vermagic"].split()[0] == RELEASE


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler to build a real ELF object")
def test_modinfo_of_an_object_built_by_the_compiler(tmp_path):
    source = tmp_path / "m.c"
    source.write_text(
        '__attribute__((section(".modinfo"), used)) static const char a[] = "vermagic=6.1.0-gentoo SMP mod_unload ";\n'
        '__attribute__((section(".modinfo"), used)) static const char b[] = "name=zfs";\n'
    )
    subprocess.run(["gcc", "-c", "-o", str(tmp_path / "zfs.ko"), str(source)], check=True)
    info = kernel.modinfo(tmp_path / "zfs.ko")
    assert info["vermagic"].startswith("6.1.0-gentoo ") and info["name"] == "zfs"


def install_module(root: Path, name: str, vermagic: str, suffix: str = ".ko") -> Path:
    data = elf_with_modinfo([f"vermagic={vermagic}"])
    data = {".ko": lambda d: d, ".ko.xz": lzma.compress, ".ko.gz": gzip.compress}[suffix](data)
    path = root / f"lib/modules/{RELEASE}/extra/{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("suffix", [".ko", ".ko.xz", ".ko.gz"])
def test_out_of_tree_module_built_for_the_release(tmp_path, suffix):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    install_module(root, "zfs", f"{RELEASE} SMP mod_unload modversions ", suffix)
    (found,) = kernel.out_of_tree_findings(context(root, tree), "zfs", RELEASE, "sys-fs/zfs-kmod")
    assert found.status is Status.OK


def test_out_of_tree_module_built_for_another_kernel(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    install_module(root, "aufs", "6.1.0-gentoo SMP mod_unload ")
    (found,) = kernel.out_of_tree_findings(context(root, tree), "aufs", RELEASE, "sys-fs/aufs4")
    assert found.status is Status.FAIL and found.actual == "6.1.0-gentoo" and "module-rebuild" in found.fix


def test_out_of_tree_module_missing(tmp_path):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    (found,) = kernel.out_of_tree_findings(context(root, tree), "zfs", RELEASE, "sys-fs/zfs-kmod")
    assert found.status is Status.FAIL and "sys-fs/zfs-kmod" in found.fix


def test_no_module_support_means_no_out_of_tree_verdict(tmp_path):
    """CONFIG_MODULES unset fails in the configuration check; the host check does not repeat it."""
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    (tree / ".config").write_text("# Linux/x86 6.6.30 Kernel Configuration\n# CONFIG_MODULES is not set\n")
    assert kernel.out_of_tree_findings(context(root, tree), "zfs", RELEASE, "sys-fs/zfs-kmod") == []


def test_zstd_module_read_or_said_unreadable(tmp_path, monkeypatch):
    root, tree = stage_root(tmp_path, built=True, installed=True, booted=False)
    plain = install_module(root, "zfs", f"{RELEASE} SMP ")
    zstd = shutil.which("zstd")
    if zstd:
        subprocess.run([zstd, "-q", "--rm", str(plain)], check=True)
        (found,) = kernel.out_of_tree_findings(context(root, tree), "zfs", RELEASE, "sys-fs/zfs-kmod")
        assert found.status is Status.OK
    else:
        plain.rename(plain.with_name("zfs.ko.zst"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    import sys
    monkeypatch.setitem(sys.modules, "compression", None)  # as on Python < 3.14
    (found,) = kernel.out_of_tree_findings(context(root, tree), "zfs", RELEASE, "sys-fs/zfs-kmod")
    assert found.status is Status.WARN and "zstd" in found.reason


# --- the running kernel ----------------------------------------------------------


def test_filesystems_available_now_or_loadable(tmp_path):
    root = tmp_path
    running(root, RELEASE, BUILD)
    (root / "proc/filesystems").write_text("nodev\tproc\nnodev\toverlay\n\text4\n")
    cfg = root / "config"
    cfg.write_text("# Linux/x86 6.6.30 Kernel Configuration\nCONFIG_OVERLAY_FS=y\nCONFIG_BTRFS_FS=m\nCONFIG_FUSE_FS=m\n")
    ctx = context(root, None, live=True, config=cfg)
    assert kernel.running_fs_findings(ctx, "overlay", "OVERLAY_FS")[0].status is Status.OK
    assert kernel.running_fs_findings(ctx, "btrfs", "BTRFS_FS")[0].status is Status.FAIL
    ko = root / f"lib/modules/{RELEASE}/kernel/fs/btrfs/btrfs.ko"
    ko.parent.mkdir(parents=True)
    ko.write_bytes(elf_with_modinfo([f"vermagic={RELEASE} SMP"], undefined=["printk", "crc32c"]))
    # The file alone proves nothing: without the running kernel's exports the answer is "cannot tell".
    unknown = kernel.running_fs_findings(ctx, "btrfs", "BTRFS_FS")[0]
    assert unknown.status is Status.WARN and "cannot tell" in unknown.reason
    (root / "proc/kallsyms").write_text("0000000000000000 r __ksymtab_printk\n0000000000000000 T printk\n")
    failing = kernel.running_fs_findings(ctx, "btrfs", "BTRFS_FS")[0]
    assert failing.status is Status.FAIL and "Unknown symbol crc32c" in failing.reason
    (root / "proc/kallsyms").write_text("0000000000000000 r __ksymtab_printk\n0000000000000000 r __ksymtab_crc32c\n")
    assert kernel.running_fs_findings(ctx, "btrfs", "BTRFS_FS")[0].status is Status.OK
    assert kernel.running_fs_findings(ctx, "aufs", "AUFS_FS") == []  # not configured: the config check says so


def test_install_commands_aim_at_the_root(tmp_path):
    """With --root, a printed install command must not install into this machine's /boot."""
    build = tmp_path / "linux"
    assert kernel.install_command(Path("/"), build) == f"make -C {build} modules_install install"
    aimed = kernel.install_command(tmp_path, build)
    assert f"INSTALL_MOD_PATH={tmp_path} INSTALL_PATH={tmp_path}/boot" in aimed and "chroot" in aimed
