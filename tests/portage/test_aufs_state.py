"""The aufs patch / rebuild / install / boot states, in small real roots."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gentoo_root import HOUR, T0
from kernel_files import bzimage, elf_with_modinfo

from kcheck.aufs import aufs_facts, aufs_findings
from kcheck.host.kernel import booted, bzimage_version, installed_image, parse_proc_version, split_version
from kcheck.model import Status
from kcheck.portage.aufs_state import assess, read_tree
from kcheck.portage.facts import portage_facts

AUFS3 = "sys-fs/aufs3-3_p20160219"
SOURCES = "sys-kernel/gentoo-sources-6.1.67"


def by_check(findings):
    """Findings keyed by check id (the last one wins)."""
    return {f.check: f for f in findings}


def reboot(findings):
    """The closing verdict."""
    summary = findings[-1]
    assert summary.check == "aufs-reboot"
    return summary


def standalone_ready(s):
    """aufs3 merged and patched, kernel rebuilt and installed, module rebuilt."""
    s.make_tree(T0)
    s.merge(SOURCES, 5, T0)
    s.merge(AUFS3, 10, T0 + HOUR, use="kernel-patch amd64", iuse="debug +kernel-patch nfs")
    s.patch(T0 + HOUR)
    s.build(T0 + 2 * HOUR, number=2)
    s.install_kernel(T0 + 2 * HOUR)
    s.install_module(T0 + 3 * HOUR)


def test_portage_api_reads_the_records(situation):
    situation.merge(AUFS3, 10, T0, use="kernel-patch", iuse="+kernel-patch debug")
    situation.merge(SOURCES, 5, T0)
    facts = portage_facts(situation.root)
    assert facts.available and facts.reason is None
    [pkg] = facts.installed("sys-fs/aufs3")
    assert (pkg.cpv, pkg.cp, pkg.version, pkg.counter, pkg.build_time) == (AUFS3, "sys-fs/aufs3", "3_p20160219", 10, T0)
    assert "kernel-patch" in pkg.use and "kernel-patch" in pkg.iuse
    assert [p.cpv for p in facts.installed("sys-kernel/*-sources")] == [SOURCES]
    assert facts.installed("sys-fs/aufs4") == []


def test_never_patched(situation):
    situation.make_tree(T0)
    situation.build(T0 + HOUR)
    findings = assess(situation.root, situation.tree, None, portage_facts(situation.root))
    assert [f.check for f in findings] == ["aufs-reboot"]
    assert reboot(findings).status is Status.OK
    # Through the driver entry point, a kernel with no aufs at all is not ready for aufs.
    ctx = situation.context()
    assert aufs_facts(ctx) == {"aufs-provider": "none"}
    summary = reboot(aufs_findings(ctx))
    assert summary.status is Status.FAIL and "give this kernel aufs" in summary.reason


def test_patched_and_rebuilt_is_safe_to_reboot(situation):
    standalone_ready(situation)
    ctx = situation.context()
    assert aufs_facts(ctx) == {"aufs-provider": "standalone"}
    findings = aufs_findings(ctx)
    checks = by_check(findings)
    for check in ("aufs-patch", "aufs-rebuild", "aufs-install", "aufs-module"):
        assert checks[check].status is Status.OK, checks[check]
    summary = reboot(findings)
    assert summary.status is Status.OK and "safe to reboot" in summary.reason
    assert AUFS3 in checks["aufs-provider"].reason


def test_patched_and_not_rebuilt(situation):
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0 + 2 * HOUR, use="kernel-patch")
    situation.build(T0 + HOUR)  # the last build was before the patch
    situation.patch(T0 + 2 * HOUR)
    findings = aufs_findings(situation.context())
    rebuild = by_check(findings)["aufs-rebuild"]
    assert rebuild.status is Status.FAIL
    assert "mm/prfile.o is missing" in rebuild.reason
    assert "Module.symvers lacks 25 of the patch's exports (__mnt_drop_write, alloc_empty_file, d_exchange, d_walk, ...)" in rebuild.reason
    assert "older than the patched files" in rebuild.reason
    assert rebuild.detail.startswith(f"{AUFS3} was merged after the last kernel build; ")
    # A test root is not this machine's: every command targets it (--root), never the host's /boot.
    root = situation.root
    assert f"make INSTALL_MOD_PATH={root} modules_install && make INSTALL_PATH={root}/boot install" in rebuild.fix
    assert f"emerge --root={root} --oneshot @module-rebuild" in rebuild.fix
    assert "inside the chroot" in rebuild.detail
    summary = reboot(findings)
    assert summary.status is Status.FAIL
    assert summary.reason == "not safe to reboot yet; left to do: rebuild the kernel"
    assert summary.fix == rebuild.fix


def test_objects_rebuilt_but_image_not_relinked(situation):
    """mm/prfile.o, Module.symvers and vmlinux are fresh, but the bzImage predates the patch."""
    standalone_ready(situation)
    assert read_tree(situation.tree).stale_build() == []
    old = T0 + HOUR / 2
    os.utime(situation.tree / "arch/x86/boot/bzImage", (old, old))
    assert read_tree(situation.tree).stale_build() == ["arch/x86/boot/bzImage is older than the patched files"]
    # A tree built without a boot image (make vmlinux) is judged by vmlinux.
    (situation.tree / "arch/x86/boot/bzImage").unlink()
    assert read_tree(situation.tree).stale_build() == []
    os.utime(situation.tree / "vmlinux", (old, old))
    assert read_tree(situation.tree).stale_build() == ["vmlinux is older than the patched files"]


def test_rebuilt_but_not_installed(situation):
    standalone_ready(situation)
    situation.build(T0 + 4 * HOUR, number=3)  # a newer build than the one in /boot
    findings = aufs_findings(situation.context())
    install = by_check(findings)["aufs-install"]
    assert install.status is Status.FAIL
    assert "#3" in install.reason and "not installed" in install.reason
    assert install.fix.endswith(f"make INSTALL_PATH={situation.root}/boot install")
    assert reboot(findings).status is Status.FAIL


def test_module_older_than_kernel(situation):
    standalone_ready(situation)
    situation.build(T0 + 4 * HOUR, number=3)
    situation.install_kernel(T0 + 4 * HOUR)
    module = by_check(aufs_findings(situation.context()))["aufs-module"]
    assert module.status is Status.FAIL
    assert module.fix == f"KERNEL_DIR={situation.tree} emerge --root={situation.root} --oneshot @module-rebuild"


def test_sources_remerged_after_aufs3(situation):
    standalone_ready(situation)
    situation.merge(SOURCES, 20, T0 + 5 * HOUR)  # same version re-merged: later COUNTER
    situation.unpatch(T0 + 5 * HOUR)
    ctx = situation.context()
    # The patch is gone, but the installed module still makes this the standalone case.
    assert aufs_facts(ctx) == {"aufs-provider": "standalone"}
    patch = by_check(aufs_findings(ctx))["aufs-patch"]
    assert patch.status is Status.FAIL
    assert f"{SOURCES} was merged after {AUFS3}" in patch.reason
    # The orphaned mm/prfile.c alone does not count as a patch.
    assert "mm/prfile.c is there but none of the 25 exports of the standalone patch" in patch.reason
    assert patch.fix.startswith(f"KERNEL_DIR={situation.tree} emerge --root={situation.root} --oneshot sys-fs/aufs3 && ")
    # The kernel built before the re-merge keeps its patch: the danger is the next build, not the reboot.
    assert reboot(aufs_findings(ctx)).reason.startswith(f"do not build a kernel from {situation.tree} yet")


def test_aufs3_installed_but_tree_never_patched(situation):
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0, use="", iuse="kernel-patch")
    patch = by_check(aufs_findings(situation.context()))["aufs-patch"]
    assert patch.status is Status.FAIL and "USE=kernel-patch" in patch.reason


def test_aufs_sources_with_aufs_fs(situation):
    situation.make_tree(T0)
    situation.add_aufs_sources_tree(T0)
    situation.merge("sys-kernel/aufs-sources-6.1.67", 5, T0, iuse="module")
    ctx = situation.context({"AUFS_FS": "m"})
    assert aufs_facts(ctx) == {"aufs-provider": "sources"}
    findings = aufs_findings(ctx)
    assert "aufs-sources" in by_check(findings)["aufs-provider"].reason
    # Configured but never built: never "safe to reboot".
    rebuild = by_check(findings)["aufs-rebuild"]
    assert rebuild.status is Status.FAIL and "not built that way yet: no kernel image was built" in rebuild.reason
    assert reboot(findings).status is Status.FAIL
    situation.build(T0 + HOUR)
    situation.install_kernel(T0 + HOUR)
    assert by_check(aufs_findings(ctx))["aufs-module"].status is Status.FAIL  # AUFS_FS=m: aufs.ko not installed
    ko = situation.root / "lib/modules" / situation.release / "kernel/fs/aufs/aufs.ko"
    ko.parent.mkdir(parents=True)
    ko.write_bytes(elf_with_modinfo([f"vermagic={situation.release} SMP"], undefined=["printk"]))
    findings = aufs_findings(ctx)
    assert by_check(findings)["aufs-module"].status is Status.OK
    assert reboot(findings).status is Status.OK
    # The configuration changed after the build: the build no longer holds it.
    os.utime(situation.tree / ".config", (T0 + 2 * HOUR, T0 + 2 * HOUR))
    assert by_check(aufs_findings(ctx))["aufs-rebuild"].reason.endswith("arch/x86/boot/bzImage is older than .config")


def test_aufs_sources_without_aufs_fs(situation):
    situation.make_tree(T0)
    situation.add_aufs_sources_tree(T0)
    situation.merge("sys-kernel/aufs-sources-6.1.67", 5, T0)
    summary = reboot(aufs_findings(situation.context({})))
    assert summary.status is Status.FAIL and "set CONFIG_AUFS_FS (y or m)" in summary.reason
    # Without a tree, only Portage can tell: aufs-sources still decides the provider.
    assert aufs_facts(situation.context({}, tree=False)) == {"aufs-provider": "sources"}


def test_module_package_with_aufs_fs_set(situation):
    standalone_ready(situation)
    findings = aufs_findings(situation.context({"AUFS_FS": "y"}))
    # The tree decides (standalone); the stale line is what must change, and the profile's requirement says so.
    assert aufs_facts(situation.context({"AUFS_FS": "y"})) == {"aufs-provider": "standalone"}
    assert "unset CONFIG_AUFS_FS (sys-fs/aufs3 builds aufs outside the tree)" in reboot(findings).reason


def test_overlay_module_recognised_by_its_signs(situation):
    situation.make_tree(T0)
    situation.merge("sys-fs/aufs5-5.10_p20210301", 7, T0, use="kernel-patch", iuse="+kernel-patch")
    situation.merge("sys-fs/aufs-util-4.14", 8, T0, iuse="debug")
    findings = aufs_findings(situation.context())
    assert by_check(findings)["aufs-patch"].reason.startswith("sys-fs/aufs5-5.10_p20210301 is installed")
    assert "aufs-util" not in by_check(findings)["aufs-provider"].reason


def test_booted_or_not(situation):
    standalone_ready(situation)
    version = bzimage_version(situation.tree / "arch/x86/boot/bzImage")
    release, _, rest = version.partition(" ")
    user, _, build = rest.partition(" ")
    running = f"Linux version {release} {user} (gcc (Gentoo 13.2.1_p20240210 p14) 13.2.1) {build}\n"
    assert booted(parse_proc_version(running), *split_version(version))
    assert not booted(parse_proc_version(running.replace("#2", "#1")), *split_version(version))
    (situation.root / "proc").mkdir()
    (situation.root / "proc" / "version").write_text(running.replace("#2", "#1"))
    boot = by_check(aufs_findings(situation.context()))["aufs-boot"]
    assert boot.status is Status.INFO and "not booted yet" in boot.reason
    (situation.root / "proc" / "version").write_text(running)
    assert by_check(aufs_findings(situation.context()))["aufs-boot"].status is Status.OK


def test_image_version(tmp_path):
    image = tmp_path / "bzImage"
    image.write_bytes(bzimage("6.12.1 (a@b) #7 SMP"))
    assert bzimage_version(image) == "6.12.1 (a@b) #7 SMP"
    image.write_bytes(b"\x7fELF" + bytes(0x400))
    assert bzimage_version(image) is None
    assert bzimage_version(tmp_path / "missing") is None


def test_without_portage_says_so_once(situation, tmp_path):
    """kcheck from PyPI on another distribution: the tree checks still work."""
    situation.make_tree(T0)
    situation.patch(T0 + HOUR)
    situation.build(T0 + 2 * HOUR)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["portage"] = None  # as if Portage were not installed
        from pathlib import Path
        from kcheck.aufs import aufs_findings
        from kcheck.model import CheckContext, SymbolState

        class Config:
            path = None
            mode = "plain"
            def state(self, symbol):
                return SymbolState(symbol, "n")

        root = Path({str(situation.root)!r})
        ctx = CheckContext(root=root, source=Config(), tree=root / "usr/src/linux", build_dir=None, kernel_version=None)
        for f in aufs_findings(ctx):
            print(f.check, f.status.value, f.reason)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.count("the portage module cannot be imported here") == 1
    assert "installed packages unknown" in out and "no aufs package installed" not in out
    assert "aufs-rebuild ok" in out and "aufs-install fail" in out


def test_tree_package_by_directory_name(situation, tmp_path):
    from kcheck.portage.aufs_state import tree_package

    situation.merge("sys-kernel/gentoo-sources-6.1.67-r1", 3, T0)
    situation.merge("sys-kernel/gentoo-sources-6.1.67", 4, T0)
    situation.merge("sys-kernel/vanilla-sources-6.1.67", 5, T0)
    packages = portage_facts(situation.root).installed("sys-kernel/*-sources")
    for dirname, expected in (
        ("linux-6.1.67-gentoo-r1", "sys-kernel/gentoo-sources-6.1.67-r1"),
        ("linux-6.1.67-gentoo", "sys-kernel/gentoo-sources-6.1.67"),
        ("linux-6.1.67", "sys-kernel/vanilla-sources-6.1.67"),
        ("linux-6.6.1-gentoo", None),
    ):
        (tmp_path / dirname).mkdir()
        found = tree_package(tmp_path / dirname, packages)
        assert (found.cpv if found else None) == expected, dirname


def test_image_without_version_header_is_matched_by_content(situation):
    """arm64's Image has no x86 setup header: /boot must hold the same bytes."""
    situation.make_tree(T0)
    situation.build(T0 + HOUR)
    (situation.tree / "arch/x86/boot/bzImage").unlink()
    image = situation.tree / "arch/arm64/boot/Image"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"ARM64 image #1" + bytes(4096))
    ev = read_tree(situation.tree)
    assert ev.image == "arch/arm64/boot/Image" and ev.built_version is None
    assert installed_image(situation.root, image) is None
    boot = situation.root / "boot" / f"vmlinuz-{situation.release}"
    boot.parent.mkdir()
    boot.write_bytes(b"ARM64 image #0" + bytes(4096))
    assert installed_image(situation.root, image) is None
    boot.write_bytes(image.read_bytes())
    assert installed_image(situation.root, image).path == boot


def test_broken_portage_configuration_is_a_reason_not_a_crash(situation):
    conf = situation.root / "etc" / "portage" / "make.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text('FEATURES="unterminated\n')
    facts = portage_facts(situation.root)
    assert not facts.available and "Portage cannot read its configuration" in facts.reason
    assert facts.installed("sys-fs/aufs3") == []
    [note] = [f for f in aufs_findings(situation.context()) if f.check == "portage"]
    assert note.status is Status.INFO and facts.reason in note.reason


def test_patched_tree_without_a_module_package(situation):
    """The tree carries the standalone patch but nothing builds aufs.ko for it."""
    situation.make_tree(T0)
    situation.patch(T0)
    situation.build(T0 + HOUR)
    situation.install_kernel(T0 + HOUR)
    summary = reboot(aufs_findings(situation.context()))
    assert summary.status is Status.FAIL and "install the aufs module: emerge sys-fs/aufs4" in summary.reason


def test_live_run_reports_each_kernel_fact_once(situation, monkeypatch):
    """`kcheck --driver aufs` on a machine: the host section owns installed/booted, the aufs section the rest."""
    import json
    from collections import Counter

    from click.testing import CliRunner

    from kcheck.cli import main

    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)
    standalone_ready(situation)  # patched, rebuilt, installed in /boot, aufs.ko rebuilt
    (situation.tree / "Kconfig").write_text('mainmenu "Linux"\n')
    kernel = situation.root / "proc" / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "osrelease").write_text("6.1.0-old\n")  # still the kernel from before: installed, not booted
    (kernel / "version").write_text("#1 SMP PREEMPT_DYNAMIC Mon Dec  1 00:00:00 UTC 2025\n")

    def findings(*extra):
        result = CliRunner().invoke(main, ["--root", str(situation.root), "--driver", "aufs", "--no-kconfig", "--format", "json", *extra],
                                    catch_exceptions=False)
        return json.loads(result.output)["findings"]

    live = findings()
    # "advice" is the profile's notes, one id for several lines; every other check speaks once.
    checks = Counter((f["section"], f["check"]) for f in live if f["check"] != "advice")
    assert [c for c, n in checks.items() if n > 1] == []
    by = {f["check"]: f for f in live}
    assert by["kernel-installed"]["status"] == "ok" and by["kernel-booted"]["status"] == "warn"
    assert not {"aufs-install", "aufs-boot", "module:aufs"} & set(by)
    for check in ("aufs-patch", "aufs-rebuild", "aufs-module"):
        assert by[check]["status"] == "ok", by[check]
    assert by["aufs-reboot"]["status"] == "ok" and "host section" in by["aufs-reboot"]["reason"]
    assert sum("not booted" in f["reason"] for f in live) == 1
    assert sum("aufs.ko" in f["reason"] for f in live) == 1
    assert sum(f"vmlinuz-{situation.release}" in f["reason"] for f in live) == 1

    # Without the host checks the aufs section says it itself, once.
    alone = {f["check"]: f for f in findings("--no-host")}
    assert not any(f["section"] == "host" for f in alone.values())
    assert alone["aufs-install"]["status"] == "ok"
    assert alone["aufs-boot"]["status"] == "info" and "not booted yet" in alone["aufs-boot"]["reason"]
    assert alone["aufs-reboot"]["reason"] == "safe to reboot: nothing is left to do for aufs in the kernel tree"
