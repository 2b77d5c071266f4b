"""The emerge hook: its bash filter, its snapshots, and what it says."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from gentoo_root import HOUR, T0

from kcheck.cli import main
from kcheck.portage.hook import StateStore, hook_messages, snippet, storage_driver

AUFS3 = "sys-fs/aufs3-3_p20160219"
KCHECK = Path(sys.executable).with_name("kcheck")


def run_phase(s, phase, cp="sys-fs/aufs3", merge_type="source"):
    category, pn = cp.split("/")
    return hook_messages(phase=phase, category=category, pn=pn, merge_type=merge_type, root=s.root)


def test_aufs3_merge_that_patches_the_tree(situation):
    situation.make_tree(T0)
    situation.build(T0 + HOUR)
    situation.install_kernel(T0 + HOUR)
    assert run_phase(situation, "pre_pkg_setup") == []
    situation.patch(T0 + 2 * HOUR)  # what aufs3's pkg_setup does
    situation.merge(AUFS3, 10, T0 + 2 * HOUR, use="kernel-patch")
    messages = run_phase(situation, "post_pkg_postinst")
    levels = [level for level, _ in messages]
    texts = "\n".join(text for _, text in messages)
    assert messages[0][0] == "info" and messages[0][1].startswith("this merge patched")
    assert "was patched for aufs but not rebuilt since" in texts
    assert "fix: cd " in texts
    assert levels[-1] == "error" and "do not reboot yet" in messages[-1][1]
    # The snapshot was consumed.
    with StateStore(situation.root) as store:
        assert list(store.names()) == []


def test_sources_remerge_that_drops_the_patch(situation):
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    situation.patch(T0)
    situation.build(T0 + HOUR)
    run_phase(situation, "pre_pkg_setup", "sys-kernel/gentoo-sources")
    situation.unpatch(T0 + 2 * HOUR)
    situation.merge("sys-kernel/gentoo-sources-6.1.67", 20, T0 + 2 * HOUR)
    messages = run_phase(situation, "post_pkg_postinst", "sys-kernel/gentoo-sources")
    assert ("info", f"this merge removed the aufs patch from {situation.tree.resolve()}") in messages
    assert any("was merged after sys-fs/aufs3" in text for _, text in messages)
    root = situation.root
    assert any(m[1].startswith(f"  fix: KERNEL_DIR={situation.tree} emerge --root={root} --oneshot sys-fs/aufs3 && cd ")
               for m in messages)


def test_sources_without_aufs_say_nothing(situation):
    situation.make_tree(T0)
    assert run_phase(situation, "pre_pkg_setup", "sys-kernel/gentoo-sources") == []
    assert run_phase(situation, "post_pkg_postinst", "sys-kernel/gentoo-sources") == []


def test_binary_merge_is_skipped(situation):
    situation.make_tree(T0)
    assert run_phase(situation, "pre_pkg_setup", merge_type="binary") == []
    assert run_phase(situation, "post_pkg_postinst", merge_type="binary") == []
    assert not (situation.root / "var" / "lib" / "kcheck").exists()


def test_unusable_package_names_never_reach_a_path(situation):
    [(level, text)] = hook_messages(phase="pre_pkg_setup", category="sys-fs", pn="../../etc", root=situation.root)
    assert level == "warn" and "cannot use" in text
    assert not (situation.root / "var" / "lib" / "kcheck").exists()


def test_state_directory_permissions(situation):
    situation.make_tree(T0)
    run_phase(situation, "pre_pkg_setup")
    state = situation.root / "var" / "lib" / "kcheck"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for entry in state.iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600, entry
    snapshot = json.loads((state / "snapshot-sys-fs_aufs3.json").read_text())
    assert snapshot["evidence"]["prfile"] is None
    state.chmod(0o755)
    run_phase(situation, "post_pkg_postinst")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_planted_symlinks_are_not_followed(situation, tmp_path):
    situation.make_tree(T0)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    state = situation.root / "var" / "lib" / "kcheck"
    state.parent.mkdir(parents=True)
    # The whole state directory as a symlink: refused.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state.symlink_to(elsewhere)
    [(level, text)] = run_phase(situation, "pre_pkg_setup")
    assert level == "warn" and str(state) in text
    assert list(elsewhere.iterdir()) == []
    state.unlink()
    # A snapshot name or the temporary name pointing at another file: never written through.
    state.mkdir(mode=0o700)
    (state / f".snapshot-sys-fs_aufs3.json.{os.getpid()}.tmp").symlink_to(victim)
    run_phase(situation, "pre_pkg_setup")
    assert victim.read_text() == "precious\n"
    (state / "snapshot-sys-fs_aufs3.json").unlink()
    (state / "snapshot-sys-fs_aufs3.json").symlink_to(victim)
    [(level, text)] = run_phase(situation, "post_pkg_postinst")
    assert level == "warn" and "remove it" in text
    assert victim.read_text() == "precious\n"


def test_parallel_merges_wait_for_the_lock(situation):
    situation.make_tree(T0)
    with StateStore(situation.root):
        proc = subprocess.Popen(
            [
                str(KCHECK),
                "portage-hook",
                "run",
                "--phase",
                "pre_pkg_setup",
                "--category",
                "sys-fs",
                "--pn",
                "aufs4",
                "--root",
                str(situation.root),
            ],
        )
        time.sleep(1.0)
        assert proc.poll() is None, "the hook ran while another held the lock"
    assert proc.wait(timeout=60) == 0
    assert (situation.root / "var/lib/kcheck/snapshot-sys-fs_aufs4.json").is_file()


def test_lock_is_an_flock_on_the_lock_file(situation):
    with StateStore(situation.root):
        fd = os.open(situation.root / "var/lib/kcheck/lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)


def test_storage_driver(tmp_path):
    assert storage_driver(tmp_path) == ("overlay2", None)
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"storage-driver": "btrfs", "data-root": "/srv/docker"}')
    assert storage_driver(tmp_path) == ("btrfs", None)
    daemon.write_text('{"data-root": "/srv/docker"}')
    assert storage_driver(tmp_path) == ("overlay2", None)
    daemon.write_text("{not json")
    driver, problem = storage_driver(tmp_path)
    assert driver == "overlay2" and str(daemon) in problem


def test_cli_snippet_and_run(situation):
    runner = CliRunner()
    result = runner.invoke(main, ["portage-hook", "--snippet"])
    assert result.exit_code == 0 and result.output == snippet()
    assert "pre_pkg_setup()" in result.output and "post_pkg_postinst()" in result.output
    situation.make_tree(T0)
    situation.merge(AUFS3, 10, T0, iuse="kernel-patch")
    result = runner.invoke(
        main,
        [
            "portage-hook",
            "run",
            "--phase",
            "post_pkg_postinst",
            "--category",
            "sys-fs",
            "--pn",
            "aufs3",
            "--root",
            str(situation.root),
        ],
    )
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith(f"warn {AUFS3} is installed but ")
    assert all(line.split(" ", 1)[0] in ("info", "warn", "error") for line in lines)


# --- the bash side -----------------------------------------------------------

BASH_HARNESS = r"""
ewarn() { echo "EWARN: $*"; }
eerror() { echo "EERROR: $*"; }
elog() { echo "ELOG: $*"; }
source "$SNIPPET"
pre_pkg_setup
post_pkg_postinst
"""


def run_snippet(tmp_path, category, pn, merge_type="source", with_kcheck=True, extra_env=None):
    """Source the snippet in bash as Portage would and call both hooks."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bindir / "kcheck"
    if with_kcheck:
        fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "warn patched, rebuild"\necho "error do not reboot"\n')
        fake.chmod(0o755)
    elif fake.exists():
        fake.unlink()
    path_file = tmp_path / "snippet.bash"
    path_file.write_text(snippet())
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin" if with_kcheck else "/nonexistent",
        "SNIPPET": str(path_file),
        "CATEGORY": category,
        "PN": pn,
        "MERGE_TYPE": merge_type,
        "EROOT": "/",
        **(extra_env or {}),
    }
    bash = shutil.which("bash")
    out = subprocess.run([bash, "-c", BASH_HARNESS], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout, (calls.read_text().splitlines() if calls.exists() else [])


def test_snippet_ignores_unrelated_packages(tmp_path):
    assert run_snippet(tmp_path, "dev-libs", "foo") == ("", [])


def test_snippet_skips_binary_aufs3(tmp_path):
    assert run_snippet(tmp_path, "sys-fs", "aufs3", merge_type="binary") == ("", [])


def test_snippet_runs_kcheck_for_aufs3_and_feeds_ewarn(tmp_path):
    out, calls = run_snippet(tmp_path, "sys-fs", "aufs3")
    assert len(calls) == 2
    assert calls[0].startswith(
        "portage-hook run --phase pre_pkg_setup --category sys-fs --pn aufs3 --merge-type source --root /"
    )
    assert calls[1].startswith("portage-hook run --phase post_pkg_postinst ")
    assert out.splitlines() == ["EWARN: kcheck: patched, rebuild", "EERROR: kcheck: do not reboot"] * 2


def test_snippet_knows_overlay_and_listed_aufs_packages(tmp_path):
    """Gentoo's aufs4 stops at 4.16: 6.x users take sys-fs/aufs6 (or any name) from overlays."""
    _, calls = run_snippet(tmp_path, "sys-fs", "aufs6")
    assert [c.split()[3] for c in calls] == ["pre_pkg_setup", "post_pkg_postinst"]
    (tmp_path / "b").mkdir()
    assert run_snippet(tmp_path / "b", "sys-fs", "aufs6", merge_type="binary") == ("", [])
    (tmp_path / "u").mkdir()
    assert run_snippet(tmp_path / "u", "sys-fs", "aufs-util") == ("", [])
    (tmp_path / "o").mkdir()
    assert run_snippet(tmp_path / "o", "sys-fs", "unionfs-kmod") == ("", [])
    (tmp_path / "l").mkdir()
    _, calls = run_snippet(tmp_path / "l", "sys-fs", "unionfs-kmod", extra_env={"KCHECK_AUFS_PACKAGES": "x/y sys-fs/unionfs-kmod"})
    assert len(calls) == 2 and "--pn unionfs-kmod" in calls[0]


def test_overlay_aufs6_merge_that_patches_the_tree(situation, monkeypatch):
    """The Python side recognises an overlay's package by name, and one listed by the user."""
    situation.make_tree(T0)
    situation.build(T0 + HOUR)
    assert run_phase(situation, "pre_pkg_setup", "sys-fs/aufs6") == []
    situation.patch(T0 + 2 * HOUR)
    situation.merge("sys-fs/aufs6-6.1_p20240701", 10, T0 + 2 * HOUR,
                    files=(f"/lib/modules/{situation.release}/extra/aufs.ko",))
    messages = run_phase(situation, "post_pkg_postinst", "sys-fs/aufs6")
    assert messages[0][1].startswith("this merge patched")
    assert run_phase(situation, "pre_pkg_setup", "sys-fs/unionfs-kmod") == []
    assert not list((situation.root / "var/lib/kcheck").glob("snapshot-sys-fs_unionfs*"))
    monkeypatch.setenv("KCHECK_AUFS_PACKAGES", "sys-fs/unionfs-kmod")
    run_phase(situation, "pre_pkg_setup", "sys-fs/unionfs-kmod")
    assert (situation.root / "var/lib/kcheck/snapshot-sys-fs_unionfs-kmod.json").is_file()


def test_snippet_checks_docker_after_the_merge_only(tmp_path):
    _, calls = run_snippet(tmp_path, "app-containers", "docker")
    assert [c.split()[3] for c in calls] == ["post_pkg_postinst"]


def test_snippet_does_nothing_once_kcheck_is_gone(tmp_path):
    assert run_snippet(tmp_path, "sys-fs", "aufs3", with_kcheck=False) == ("", [])


def test_snippet_keeps_the_users_own_hooks(tmp_path):
    harness = tmp_path / "h.bash"
    harness.write_text('pre_pkg_setup() { echo mine; }\nsource "$SNIPPET"\npre_pkg_setup\n')
    (tmp_path / "s.bash").write_text(snippet())
    out = subprocess.run(
        ["bash", str(harness)],
        env={"SNIPPET": str(tmp_path / "s.bash"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "mine\n"


def test_docker_merge_checks_the_configured_driver(situation):
    """The docker case goes through the shared checker (kcheck.check.run_check)."""
    pytest.importorskip("kcheck.check")
    situation.make_tree(T0, config="CONFIG_MODULES=y\nCONFIG_NAMESPACES=y\n")
    daemon = situation.root / "etc" / "docker" / "daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"storage-driver": "btrfs"}')
    messages = hook_messages(phase="post_pkg_postinst", category="app-containers", pn="docker", root=situation.root)
    assert any(level == "error" and "BTRFS_FS" in text for level, text in messages)
    level, text = messages[-1]
    assert level == "error" and "does not fit docker's btrfs storage driver" in text
    assert hook_messages(phase="pre_pkg_setup", category="app-containers", pn="docker", root=situation.root) == []
