"""aufs on the real aufs-standalone patches, applied to copies of Debian's 6.1 and 6.12 trees.

Both install styles, as their README describes them: aufs-sources (kbuild + base
+ mmap + standalone, ``fs/aufs`` copied in) and aufs3/aufs4 with USE=kernel-patch
(base + mmap + standalone only). The patches reject some mm/mmap.c hunks on
Debian's newer stable trees; the tests expect exactly those rejects and check
that kcheck names the same hunks. No kernel is compiled: a "build" writes what
``make`` leaves (``mm/prfile.o``, ``Module.symvers`` listing the exports the
tree's sources declare, a bzImage with a real version header), an "install"
copies it to ``/boot``, a "module rebuild" writes an aufs.ko that needs the
exports the real standalone patch adds, and "booted" fakes ``/proc`` under
``--root``. Every aufs3 stage is checked three ways (Portage's API, ``portageq``
with the module hidden, neither) and must get the same verdict.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import aufs_trees
import realkernel
from gentoo_root import Situation
from kernel_files import bzimage, elf_with_modinfo

from kcheck.cli import main
from kcheck.portage.aufs_state import read_tree
from kcheck.portage.facts import portage_facts
from kcheck.portage.hook import hook_messages

pytestmark = pytest.mark.realtree

VENV_BIN = str(Path(sys.executable).parent)
AUFS3 = "sys-fs/aufs3-6.1_p20240701"
HOUR = 3600
T0 = 1_767_225_600


def real_exports(series: str) -> list[str]:
    """The exports the real standalone patch adds, read from the patch itself (not kcheck's data)."""
    text = (aufs_trees.patch_dir(series) / "aufs6-standalone.patch").read_text()
    return sorted(set(re.findall(r"^\+EXPORT_SYMBOL(?:_GPL)?\((\w+)\)", text, re.M)))


def rejected_at(output: str, file: str, patch: Path) -> set[str]:
    """``file:line`` (the hunk's line in the original, as its ``@@ -line`` says) of each hunk of ``patch``
    that ``patch`` reported FAILED for ``file``."""
    starts, current = [], None
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("+++ "):
            current = line[4:].split("\t")[0].removeprefix("b/")
        elif line.startswith("@@") and current == file:
            starts.append(int(re.match(r"@@ -(\d+)", line).group(1)))
    found, current = set(), None
    for line in output.splitlines():
        if line.startswith("patching file "):
            current = line.removeprefix("patching file ").strip()
        elif current == file and (m := re.match(r"Hunk #(\d+) FAILED", line)):
            found.add(f"{file}:{starts[int(m.group(1)) - 1]}")
    return found


def _stamp(path: Path, when: float, data: bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    os.utime(path, (when, when))


def build(tree: Path, release: str, when: float, number: int) -> str:
    """What ``make`` leaves: objects, Module.symvers (every export the sources declare), the image, the release."""
    exports = set()
    for source in tree.rglob("*.c"):
        exports |= set(re.findall(r"EXPORT_SYMBOL(?:_GPL)?\((\w+)\)", source.read_text(errors="replace")))
    symvers = "".join(f"0x00000000\t{name}\tvmlinux\tEXPORT_SYMBOL_GPL\t\n" for name in sorted(exports | {"printk"}))
    _stamp(tree / "Module.symvers", when, symvers.encode())
    if (tree / "mm/prfile.c").exists():
        _stamp(tree / "mm/prfile.o", when, b"\x7fELF")
    version = f"{release} (root@gentoo) #{number} SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026"
    _stamp(tree / "vmlinux", when, b"\x7fELF")
    _stamp(tree / "arch/x86/boot/bzImage", when, bzimage(version))
    _stamp(tree / "include/config/kernel.release", when, f"{release}\n".encode())
    return version


def boot(root: Path, version: str, exports: list[str]) -> None:
    """The machine runs ``version``; its /proc/kallsyms lists ``exports`` as exported."""
    release, _, rest = version.partition(" ")
    (root / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "proc/sys/kernel/version").write_text(rest.split(") ", 1)[1] + "\n")
    (root / "proc/filesystems").write_text("nodev\tproc\n\text4\n")
    (root / "proc/kallsyms").write_text("".join(f"0000000000000000 r __ksymtab_{n}\n" for n in ["printk", *exports]))


def check(root: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    """``kcheck --root ROOT --driver aufs --no-kconfig --format json``: exit status and findings by check."""
    portage_facts.cache_clear()
    result = CliRunner().invoke(main, ["--root", str(root), "--driver", "aufs", "--no-kconfig", "--format", "json", *extra],
                                catch_exceptions=False)
    findings = json.loads(result.stdout)["findings"]
    return result.exit_code, {f["check"]: f for f in findings if f["check"] != "advice"}


def verdict(findings: dict[str, dict]) -> list[tuple[str, str]]:
    """What a user acts on about aufs: each aufs check (and the host's running:aufs) that fails or warns."""
    return sorted((c, f["status"]) for c, f in findings.items()
                  if f["status"] in ("fail", "warn") and (f["profile"] == "aufs" or c == "running:aufs"))


def three_ways(root: Path, monkeypatch, *extra: str) -> tuple[int, dict]:
    """Check through Portage's API, then through portageq (module hidden), then with neither; all must agree."""
    status, found = check(root, *extra)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "portage", None)
        m.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin")
        status_q, found_q = check(root, *extra)
        assert found_q["portage"]["reason"] == "installed packages read through portageq"
        m.setenv("PATH", "/nonexistent")
        status_t, found_t = check(root, *extra)
        assert "installed packages unknown" in found_t["aufs-provider"]["reason"]
    assert (status_q, verdict(found_q)) == (status, verdict(found))
    assert (status_t, verdict(found_t)) == (status, verdict(found))
    assert found["aufs-reboot"]["reason"] == found_q["aufs-reboot"]["reason"]
    portage_facts.cache_clear()
    return status, found


@pytest.fixture
def gentoo(tmp_path, linux_6_1, debian_configs_6_1, monkeypatch):
    """A Gentoo-like root whose /usr/src/linux is a copy of Debian's 6.1 tree with Debian's config."""
    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)
    try:
        aufs_trees.patch_dir("6.1")
    except aufs_trees.PatchesMissing as exc:
        pytest.skip(str(exc))
    root = tmp_path / "root"
    (root / "var/db/pkg").mkdir(parents=True)
    release = "6.1.192"
    tree = aufs_trees.copy_tree(linux_6_1, root / f"usr/src/linux-{release}", "6.1", kconfig=False)
    shutil.copyfile(debian_configs_6_1["amd64_none_amd64"], tree / ".config")
    for path in tree.rglob("*"):
        os.utime(path, (T0, T0), follow_symlinks=False)
    (root / "usr/src/linux").symlink_to(tree.name)
    return Situation(root, release=release), linux_6_1


def test_aufs3_through_every_stage(gentoo, tmp_path, linux_6_12, monkeypatch):
    s, pristine = gentoo
    root, tree = s.root, s.tree
    s.merge("sys-kernel/gentoo-sources-6.1.192", 5, T0)
    old = build(tree, s.release, T0 + HOUR, number=1)
    s.install_kernel(T0 + HOUR)
    boot(root, old, [])  # running the unpatched build: it exports none of the aufs symbols

    # 1. sys-fs/aufs3[kernel-patch] merges: pkg_setup patches the tree (base + mmap + standalone; mmap rejects).
    before = hook_messages(phase="pre_pkg_setup", category="sys-fs", pn="aufs3", root=root)
    out = aufs_trees.apply(tree.resolve(), "6.1", ("base", "mmap", "standalone"))
    rejects = rejected_at(out["mmap"], "mm/mmap.c", aufs_trees.patch_dir("6.1") / "aufs6-mmap.patch")
    assert rejects and aufs_trees.failed_hunks(out["standalone"]) == 0
    for rel in aufs_trees.touched("6.1"):
        if (tree / rel).exists():
            os.utime(tree / rel, (T0 + 2 * HOUR, T0 + 2 * HOUR))  # the test's clock, not the wall clock
    s.merge(AUFS3, 10, T0 + 2 * HOUR, use="kernel-patch", iuse="+kernel-patch",
            files=(f"/lib/modules/{s.release}/misc/aufs.ko",))
    # aufs3 builds aufs.ko against the patched tree as it merges: it needs what the real patch exports.
    ko = root / f"lib/modules/{s.release}/misc/aufs.ko"
    module = elf_with_modinfo([f"vermagic={s.release} SMP preempt mod_unload"], undefined=["printk", *real_exports("6.1")])
    _stamp(ko, T0 + 2 * HOUR, module)
    ev = read_tree(tree)
    assert sorted(ev.exports) == real_exports("6.1") and ev.exports_missing == []
    assert set(ev.mmap_missing) == rejects  # kcheck names exactly the hunks patch rejected
    messages = hook_messages(phase="post_pkg_postinst", category="sys-fs", pn="aufs3", root=root)
    assert before == [] and messages[0][1].startswith("this merge patched") and messages[-1][0] == "error"
    status, found = three_ways(root, monkeypatch)
    assert status == 1
    assert verdict(found) == sorted([("aufs-mmap", "warn"), ("aufs-rebuild", "fail"), ("aufs-reboot", "fail"), ("running:aufs", "fail")])
    # The host section agrees: the running kernel lacks the exports, so aufs.ko could not load now either.
    assert "will not load into the running kernel (Unknown symbol " in found["running:aufs"]["reason"]

    # 2. The kernel is rebuilt (not yet installed).
    new = build(tree, s.release, T0 + 3 * HOUR, number=2)
    status, found = three_ways(root, monkeypatch, "--no-host")
    assert ("aufs-install", "fail") in verdict(found) and ("aufs-rebuild", "fail") not in verdict(found)

    # 3. Installed in /boot; aufs.ko (built at merge time) is older than the kernel now.
    s.install_kernel(T0 + 3 * HOUR)
    status, found = three_ways(root, monkeypatch, "--no-host")
    assert verdict(found) == sorted([("aufs-mmap", "warn"), ("aufs-module", "fail"), ("aufs-reboot", "fail")])

    # 4. emerge @module-rebuild: an aufs.ko that needs what the real standalone patch exports.
    _stamp(ko, T0 + 4 * HOUR, module)
    status, found = three_ways(root, monkeypatch, "--no-host")
    assert status == 0 and verdict(found) == [("aufs-mmap", "warn")]
    assert found["aufs-reboot"]["status"] == "ok" and found["aufs-boot"]["status"] == "info"

    # 5. Booted into the patched build: the host section reads the exports from /proc/kallsyms and agrees.
    boot(root, new, real_exports("6.1"))
    status, found = three_ways(root, monkeypatch)
    assert verdict(found) == [("aufs-mmap", "warn")], [f["reason"] for f in found.values() if f["status"] == "fail"]
    assert found["running:aufs"]["status"] == "ok" and found["aufs-reboot"]["status"] == "ok"
    # The same machine whose kallsyms lacks one export: the host says aufs.ko will not load, and why.
    boot(root, new, real_exports("6.1")[1:])
    _, found = check(root)
    assert found["running:aufs"]["status"] == "fail" and real_exports("6.1")[0] in found["running:aufs"]["reason"]
    boot(root, new, real_exports("6.1"))

    # 6. The sources are re-merged: their files come back, mm/prfile.c (owned by no package) stays.
    hook_messages(phase="pre_pkg_setup", category="sys-kernel", pn="gentoo-sources", root=root)
    for rel in aufs_trees.touched("6.1"):
        if (pristine / rel).is_file():
            shutil.copy2(pristine / rel, tree / rel)
            os.utime(tree / rel, (T0 + 5 * HOUR, T0 + 5 * HOUR))
    s.merge("sys-kernel/gentoo-sources-6.1.192", 20, T0 + 5 * HOUR)
    assert read_tree(tree).lost
    messages = hook_messages(phase="post_pkg_postinst", category="sys-kernel", pn="gentoo-sources", root=root)
    assert ("info", f"this merge removed the aufs patch from {tree.resolve()}") in messages
    # The running kernel keeps its patch: the danger is the next build, not the reboot.
    assert messages[-1][0] == "error" and messages[-1][1].startswith("do not build a kernel from")
    status, found = three_ways(root, monkeypatch)
    assert verdict(found) == sorted([("aufs-patch", "fail"), ("aufs-reboot", "fail")])
    assert found["running:aufs"]["status"] == "ok"
    assert found["aufs-reboot"]["reason"].startswith("do not build a kernel from")

    # 7. Upgraded to a new, unpatched tree (6.12), /usr/src/linux moved to it.
    newtree = aufs_trees.copy_tree(linux_6_12, root / "usr/src/linux-6.12.117", "6.12", kconfig=False)
    shutil.copyfile(tree / ".config", newtree / ".config")
    (root / "usr/src/linux").unlink()
    (root / "usr/src/linux").symlink_to(newtree.name)
    s.merge("sys-kernel/gentoo-sources-6.12.117", 30, T0 + 6 * HOUR)
    ev = read_tree(newtree)
    assert ev.branch == "aufs6.x-rcN" and ev.exports == [] and ev.prfile is None
    status, found = three_ways(root, monkeypatch, "--no-host")
    assert status == 1 and ("aufs-patch", "fail") in verdict(found)
    assert "cannot load" in found["aufs-patch"]["reason"] or "does not carry" in found["aufs-patch"]["reason"]


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_aufs_sources_fix_keeps_aufs_and_is_never_safe_unbuilt(series, request, tmp_path, make_config, monkeypatch):
    """aufs-sources on a copy of Debian's tree: fix sets AUFS_FS, the kernel's own olddefconfig keeps it,
    and the check never says "safe to reboot" for a tree that was never built."""
    source = request.getfixturevalue("linux_" + series.replace(".", "_"))
    configs = request.getfixturevalue("debian_configs_" + series.replace(".", "_"))
    try:
        aufs_trees.patch_dir(series)
    except aufs_trees.PatchesMissing as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = aufs_trees.copy_tree(source, tmp_path / "tree", series, kconfig=True)
    out = aufs_trees.apply(tree, series, ("kbuild", "base", "mmap", "standalone"))
    assert aufs_trees.failed_hunks(out["kbuild"]) == 0 and aufs_trees.failed_hunks(out["standalone"]) == 0
    aufs_trees.add_aufs_sources(tree, series)
    ev = read_tree(tree)
    rejects = rejected_at(out["mmap"], "mm/mmap.c", aufs_trees.patch_dir(series) / "aufs6-mmap.patch")
    assert ev.aufs_sources and rejects and set(ev.mmap_missing) == rejects
    config = tmp_path / "aufs.config"
    shutil.copyfile(configs["amd64_none_amd64"], config)
    root = tmp_path / "root"
    root.mkdir()

    runner = CliRunner()
    fixed = runner.invoke(main, ["fix", "-d", "aufs", "-k", str(tree), "-c", str(config), "--write", "--root", str(root)],
                          catch_exceptions=False)
    assert fixed.exit_code == 0, fixed.output
    assert "AUFS_FS" in fixed.output
    # What no configuration change can do is said by fix too, as the check says it.
    assert "Left outside the configuration" in fixed.output and "left to do: rebuild the kernel" in fixed.output
    written = realkernel.read_assignments(config)
    assert written["AUFS_FS"] in ("y", "m")
    oracle = realkernel.read_assignments(make_config(tree, "olddefconfig", config))
    assert oracle["AUFS_FS"] == written["AUFS_FS"]

    checked = runner.invoke(main, ["--driver", "aufs", "-k", str(tree), "-c", str(config), "--root", str(root),
                                   "--no-host", "-v", "--format", "json"], catch_exceptions=False)
    findings = {f["check"]: f for f in json.loads(checked.stdout)["findings"] if f["check"] != "advice"}
    assert checked.exit_code == 1
    assert findings["AUFS_FS"]["status"] == "ok"
    assert findings["aufs-rebuild"]["status"] == "fail" and "no kernel image was built" in findings["aufs-rebuild"]["reason"]
    assert findings["aufs-reboot"]["status"] == "fail" and "safe to reboot:" not in findings["aufs-reboot"]["reason"]
    # The commands aim at --root, not at this machine's /boot.
    assert f"make INSTALL_PATH={root}/boot install" in findings["aufs-rebuild"]["fix"]
