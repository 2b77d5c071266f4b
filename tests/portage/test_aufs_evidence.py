"""aufs evidence read from the real patch data, with and without Portage, in small real roots."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gentoo_root import AUFS_EXPORTS, HOUR, MMAP_HUNKS, T0
from kernel_files import elf_with_modinfo

from kcheck.aufs import aufs_facts, aufs_findings
from kcheck.model import Status
from kcheck.portage.aufs_state import aufs_packages, read_tree
from kcheck.portage.facts import portage_facts

AUFS3 = "sys-fs/aufs3-3_p20160219"
SOURCES = "sys-kernel/gentoo-sources-6.1.67"
VENV_BIN = str(Path(sys.executable).parent)


def by_check(findings):
    return {f.check: f for f in findings}


def use_route(route, monkeypatch):
    """Read the root through Portage's Python API, through portageq with the module hidden, or with neither."""
    if route != "api":
        monkeypatch.setitem(sys.modules, "portage", None)  # as kcheck from pip/pipx sees a Gentoo system
        monkeypatch.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin" if route == "portageq" else "/nonexistent")
    portage_facts.cache_clear()


def verdict(findings):
    """What a user acts on: each failing or warning check, and the closing line's status."""
    return sorted((f.check, f.status.value) for f in findings[:-1] if f.status in (Status.FAIL, Status.WARN)) + [
        ("aufs-reboot", findings[-1].status.value)
    ]


STAGES = ("patched", "rebuilt", "installed", "module", "remerged")


def stage_root(s, stage):
    """One stage of the aufs3 story in a small root (the real-tree test walks the same story on Debian's trees)."""
    s.make_tree(T0)
    s.merge(SOURCES, 5, T0)
    s.build(T0 + HOUR / 2, number=1)
    s.merge(AUFS3, 10, T0 + HOUR, use="kernel-patch", iuse="+kernel-patch",
            files=(f"/lib/modules/{s.release}/misc/aufs.ko",))
    s.patch(T0 + HOUR)
    if stage == "patched":
        return
    s.build(T0 + 2 * HOUR, number=2)
    if stage == "rebuilt":
        return
    s.install_kernel(T0 + 2 * HOUR)
    if stage == "installed":
        return
    s.install_module(T0 + 3 * HOUR)
    if stage == "module":
        return
    s.unpatch(T0 + 4 * HOUR)
    s.merge(SOURCES, 20, T0 + 4 * HOUR)


EXPECTED = {
    "patched": [("aufs-rebuild", "fail"), ("aufs-reboot", "fail")],
    "rebuilt": [("aufs-install", "fail"), ("aufs-reboot", "fail")],
    "installed": [("aufs-module", "fail"), ("aufs-reboot", "fail")],
    "module": [("aufs-reboot", "ok")],
    "remerged": [("aufs-patch", "fail"), ("aufs-reboot", "fail")],
}


# portageq costs a process per question (about 0.3 s): two stages here; the real-tree test walks all of them.
ROUTES = [(r, s) for s in STAGES for r in ("api", "tree-only")] + [("portageq", "patched"), ("portageq", "remerged")]


@pytest.mark.parametrize(("portage_route", "stage"), ROUTES)
def test_every_stage_same_verdict_with_or_without_portage(situation, monkeypatch, portage_route, stage):
    use_route(portage_route, monkeypatch)
    stage_root(situation, stage)
    ctx = situation.context()
    assert aufs_facts(ctx) == {"aufs-provider": "standalone"}
    findings = aufs_findings(ctx)
    assert verdict(findings) == EXPECTED[stage], [f.reason for f in findings]
    text = "\n".join(f.reason for f in findings)
    facts = portage_facts(situation.root)
    if portage_route == "tree-only":
        assert not facts.available and "installed packages unknown" in text
        assert "no aufs package installed" not in text
    else:
        assert facts.via == ("portageq" if portage_route == "portageq" else "Portage's Python API")
        assert AUFS3 in by_check(findings)["aufs-provider"].reason
    if stage == "remerged":
        assert "do not build a kernel from" in findings[-1].reason


def test_portageq_reads_what_the_api_reads(situation, monkeypatch):
    stage_root(situation, "module")
    api = aufs_packages(portage_facts(situation.root))
    monkeypatch.setitem(sys.modules, "portage", None)
    monkeypatch.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin")
    portage_facts.cache_clear()
    facts = portage_facts(situation.root)
    assert facts.via == "portageq"
    assert aufs_packages(facts) == api
    assert [p.cpv for p in api.modules] == [AUFS3] and [p.cpv for p in api.kernel_sources] == [SOURCES]
    assert facts.contents(api.modules[0])[-1] == f"/lib/modules/{situation.release}/misc/aufs.ko"


def test_a_module_package_is_known_by_the_aufs_ko_it_installs(situation):
    """A package whose name says nothing of aufs, found as the owner of aufs.ko."""
    situation.make_tree(T0)
    ko = f"/lib/modules/{situation.release}/extra/aufs.ko"
    situation.merge("sys-fs/unionfs-kmod-1.0", 9, T0, files=(ko,))
    situation.merge("sys-fs/aufs-util-4.14", 8, T0, iuse="debug")
    (situation.root / ko.lstrip("/")).parent.mkdir(parents=True)
    (situation.root / ko.lstrip("/")).write_bytes(elf_with_modinfo(["vermagic=x"]))
    portage_facts.cache_clear()
    packages = aufs_packages(portage_facts(situation.root))
    assert [p.cpv for p in packages.modules] == ["sys-fs/unionfs-kmod-1.0"]
    assert aufs_facts(situation.context()) == {"aufs-provider": "standalone"}


def test_a_module_package_listed_by_the_user(situation, monkeypatch):
    situation.make_tree(T0)
    situation.merge("sys-fs/my-union-2", 9, T0)
    assert aufs_packages(portage_facts(situation.root)).modules == []
    listing = situation.root / "etc/kcheck/aufs-packages"
    listing.parent.mkdir(parents=True)
    listing.write_text("# our own aufs build\nsys-fs/my-union\nnot an atom; rm -rf /\n")
    portage_facts.cache_clear()
    assert [p.cpv for p in aufs_packages(portage_facts(situation.root)).modules] == ["sys-fs/my-union-2"]


def test_partial_standalone_patch_names_the_missing_exports(situation):
    situation.make_tree(T0)
    situation.patch(T0 + HOUR, skip_exports=("d_walk", "vfs_read"))
    ev = read_tree(situation.tree)
    assert ev.partial and not ev.patched and ev.exports_missing == ["d_walk", "vfs_read"]
    patch = by_check(aufs_findings(situation.context()))["aufs-patch"]
    assert patch.status is Status.FAIL
    assert "partial: 2 of 25 exports missing (d_walk, vfs_read)" in patch.reason


def test_partial_mmap_patch_names_the_missing_hunks(situation):
    missing = tuple(h.describe() for h in MMAP_HUNKS if h.file == "mm/mmap.c")[:3]
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    situation.patch(T0 + HOUR, skip_mmap=missing)
    situation.build(T0 + 2 * HOUR)
    ev = read_tree(situation.tree)
    assert ev.patched and ev.mmap_missing == list(missing)
    mmap = by_check(aufs_findings(situation.context()))["aufs-mmap"]
    assert mmap.status is Status.WARN and f"3 of {len(MMAP_HUNKS)} hunks missing ({', '.join(missing)})" in mmap.reason


def test_lost_patch_without_any_package_database(situation, monkeypatch):
    """No Portage at all: mm/prfile.c without the exports is a lost patch, whatever the database would say."""
    monkeypatch.setitem(sys.modules, "portage", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    situation.make_tree(T0)
    situation.patch(T0)
    situation.build(T0 + HOUR)
    situation.unpatch(T0 + 2 * HOUR)
    portage_facts.cache_clear()
    ctx = situation.context()
    assert aufs_facts(ctx) == {"aufs-provider": "standalone"}
    findings = aufs_findings(ctx)
    patch = by_check(findings)["aufs-patch"]
    assert patch.status is Status.FAIL and "lost the aufs standalone patch" in patch.reason
    assert findings[-1].status is Status.FAIL


def test_stale_aufs_fs_line_on_a_standalone_tree(situation):
    """--no-kconfig with CONFIG_AUFS_FS=y on a standalone-patched tree: the tree decides, the line is the finding."""
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    situation.patch(T0)
    ctx = situation.context({"AUFS_FS": "y"})
    assert aufs_facts(ctx) == {"aufs-provider": "standalone"}
    summary = aufs_findings(ctx)[-1]
    assert "unset CONFIG_AUFS_FS" in summary.reason and "set CONFIG_AUFS_FS (y or m)" not in summary.reason


def test_stale_aufs_fs_line_on_a_tree_without_aufs(situation):
    situation.make_tree(T0)
    findings = by_check(aufs_findings(situation.context({"AUFS_FS": "y"})))
    assert findings["aufs-config"].status is Status.FAIL and "the line is stale" in findings["aufs-config"].reason


def test_both_providers_one_recommendation(situation):
    """aufs-sources tree plus sys-fs/aufs3: keep what the tree is built for, remove the other; never both."""
    situation.make_tree(T0)
    situation.add_aufs_sources_tree(T0)
    situation.merge("sys-kernel/aufs-sources-6.1.67", 5, T0)
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    ctx = situation.context({"AUFS_FS": "y"})
    assert aufs_facts(ctx) == {"aufs-provider": "sources"}
    findings = aufs_findings(ctx)
    summary = findings[-1].reason
    assert "remove the second aufs provider" in summary
    assert "unset CONFIG_AUFS_FS" not in summary
    assert "--depclean sys-fs/aufs3" in by_check(findings)["aufs-provider"].fix


def test_no_tree_never_reads_as_safe(situation):
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    summary = aufs_findings(situation.context(tree=False))[-1]
    assert summary.status is not Status.OK


def test_snapshot_from_an_older_kcheck_still_reads(situation):
    from kcheck.portage.aufs_state import TreeEvidence, diff

    situation.make_tree(T0)
    situation.patch(T0)
    old = TreeEvidence.from_dict({"tree": "/x", "build_dir": "/x", "exports": [], "prfile": None, "gone_field": 1})
    assert diff(old, read_tree(situation.tree))[0].startswith("this merge patched")
    assert len(AUFS_EXPORTS) == 25


def _live(situation, *extra):
    import json

    from click.testing import CliRunner

    from kcheck.cli import main

    portage_facts.cache_clear()
    result = CliRunner().invoke(main, ["--root", str(situation.root), "--driver", "aufs", "--no-kconfig", *extra],
                                catch_exceptions=False)
    if "--format" in extra:
        return {f["check"]: f for f in json.loads(result.output)["findings"]}
    return result.output


def _running(situation, version, exports):
    from kcheck.host.kernel import split_version

    release, uts = split_version(version)
    kernel = situation.root / "proc/sys/kernel"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "osrelease").write_text(release + "\n")
    (kernel / "version").write_text(uts + "\n")
    (situation.root / "proc/kallsyms").write_text(
        "".join(f"ffffffff81000000 r __ksymtab_{name}\n" for name in ["printk", *exports])
        + "ffffffff81000010 T d_walk\n"  # defined but not exported: does not count
    )


def test_host_and_aufs_sections_agree(situation, monkeypatch):
    """The issue's case: patched, aufs.ko built, kernel not rebuilt, the old build running."""
    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)
    situation.make_tree(T0)
    (situation.tree / "Kconfig").write_text('mainmenu "Linux"\n')
    old = situation.build(T0 + HOUR, number=1)
    situation.install_kernel(T0 + HOUR)
    situation.merge(AUFS3, 10, T0 + 2 * HOUR, use="kernel-patch", iuse="+kernel-patch")
    situation.patch(T0 + 2 * HOUR)
    situation.install_module(T0 + 2 * HOUR)
    _running(situation, old, [])
    found = _live(situation, "--format", "json")
    assert found["aufs-rebuild"]["status"] == "fail"
    # Before: "ok aufs loads on first use (.../misc/aufs.ko)". The running kernel lacks the exports.
    host = found["running:aufs"]
    assert host["status"] == "fail" and "Unknown symbol" in host["reason"] and "d_walk" in host["reason"]
    # Rebuilt, installed, aufs.ko rebuilt, booted: the running kernel exports what aufs.ko needs.
    new = situation.build(T0 + 3 * HOUR, number=2)
    situation.install_kernel(T0 + 3 * HOUR)
    situation.install_module(T0 + 4 * HOUR)
    _running(situation, new, sorted(AUFS_EXPORTS))
    found = _live(situation, "--format", "json")
    assert found["running:aufs"]["status"] == "ok" and found["aufs-reboot"]["status"] == "ok"
    # One export short in /proc/kallsyms: the host section says which, and the check fails.
    _running(situation, new, sorted(AUFS_EXPORTS)[1:])
    found = _live(situation, "--format", "json")
    assert found["running:aufs"]["status"] == "fail" and sorted(AUFS_EXPORTS)[0] in found["running:aufs"]["reason"]
    # No /proc/kallsyms at all: "cannot tell", never "loads".
    (situation.root / "proc/kallsyms").unlink()
    found = _live(situation, "--format", "json")
    assert found["running:aufs"]["status"] == "warn" and "cannot tell" in found["running:aufs"]["reason"]
    # Without CONFIG_KALLSYMS_ALL: the System.map installed beside the running build's image tells.
    system_map = situation.root / f"boot/System.map-{situation.release}"
    system_map.write_text("".join(f"ffffffff82000000 r __ksymtab_{n}\n" for n in ["printk", *sorted(AUFS_EXPORTS)]))
    found = _live(situation, "--format", "json")
    assert found["running:aufs"]["status"] == "ok" and found["running:aufs"]["detail"] == f"exports read from {system_map}"
    # ...but only while that image is the build that runs.
    _running(situation, new.replace("#2", "#1"), [])
    (situation.root / "proc/kallsyms").unlink()
    found = _live(situation, "--format", "json")
    assert found.get("running:aufs", {}).get("status") != "ok"


def test_tally_never_reads_as_all_clear_above_failures(situation):
    situation.make_tree(T0, config="CONFIG_MODULES=y\n")
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    situation.patch(T0 + HOUR)
    (situation.tree / "Kconfig").write_text('mainmenu "Linux"\n')
    text = _live(situation, "--no-host")
    line = next(line for line in text.splitlines() if line.startswith("aufs: "))
    # Every configuration item holds, but the patched tree is not rebuilt: the tally says so.
    assert line == "aufs: 2 of 2 hold; 2 other checks fail"
