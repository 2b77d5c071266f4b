"""End to end: the host section of `kcheck` on crafted roots (--root) and on this very machine."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kcheck.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kconfigs"
RELEASE = "6.6.30-gentoo"
CONFIG = FIXTURES / "minimal-6.1-overlay2.config"


@pytest.fixture(autouse=True)
def no_kernel_env(monkeypatch):
    """The user's $KERNEL_DIR / $KBUILD_OUTPUT must not leak into crafted roots."""
    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)


def live_root(tmp_path: Path, *, fstype: str = "ext4", daemon: str | None = None, filesystems=("overlay", "ext4")) -> Path:
    """A machine running RELEASE, with its config in /proc/config.gz and /var/lib/docker on ``fstype``."""
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/self").mkdir()
    (root / "var/lib/docker").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(RELEASE + "\n")
    (root / "proc/sys/kernel/version").write_text("#1 SMP PREEMPT_DYNAMIC Fri Nov 27 12:00:00 UTC 2026\n")
    (root / "proc/config.gz").write_bytes(gzip.compress(CONFIG.read_bytes()))
    (root / "proc/filesystems").write_text("".join(f"nodev\t{fs}\n" for fs in filesystems))
    (root / "proc/self/mountinfo").write_text(
        "20 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"21 20 8:2 / /var/lib/docker rw,relatime shared:2 - {fstype} /dev/sda2 rw\n"
    )
    if daemon is not None:
        (root / "etc/docker").mkdir(parents=True)
        (root / "etc/docker/daemon.json").write_text(daemon)
    return root


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def host_findings(output: str) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads(output)["findings"] if f["section"] == "host"}


def test_live_run_has_a_host_section(tmp_path):
    root = live_root(tmp_path)
    result = run("--root", str(root), "--format", "json")
    host = host_findings(result.output)
    assert host["backing-fs"]["status"] == "ok" and host["backing-fs"]["actual"] == "ext4"
    assert host["kernel-booted"]["status"] == "ok" and RELEASE in host["kernel-booted"]["reason"]
    assert host["running:overlay"]["status"] == "ok"
    assert all(f["profile"] == "host" for f in host.values())
    assert result.exit_code == json.loads(result.output)["exit_status"]


def test_text_report_prints_host_findings_in_their_own_section(tmp_path):
    root = live_root(tmp_path, fstype="overlay")
    result = run("--root", str(root))
    text = result.output
    host_part = text[text.index("\nhost: "):]
    assert "overlay2 cannot run with its data root on overlay" in host_part
    assert "fix: put docker's data root" in host_part
    assert text.rstrip().splitlines()[-1].startswith("NOT READY") and "backing-fs" in text.rstrip().splitlines()[-1]
    assert result.exit_code == 1


def test_driver_comes_from_daemon_json_when_omitted(tmp_path):
    root = live_root(tmp_path, fstype="ext4", daemon='{"storage-driver": "btrfs"}')
    result = run("--root", str(root))
    assert "checking btrfs (storage-driver in" in result.output  # stderr is part of the runner's output
    assert "btrfs needs docker's data root on btrfs, but /var/lib/docker is on ext4" in result.output
    assert result.exit_code == 1


def test_explicit_driver_differing_from_daemon_json_warns(tmp_path):
    root = live_root(tmp_path, daemon='{"storage-driver": "btrfs"}')
    host = host_findings(run("--root", str(root), "--driver", "overlay2", "--format", "json").output)
    assert host["docker-driver"]["status"] == "warn" and host["docker-driver"]["actual"] == "btrfs"


def test_invalid_daemon_json_exits_2_naming_file_and_line(tmp_path):
    root = live_root(tmp_path, daemon='{"storage-driver": "overlay2",}')
    result = CliRunner().invoke(main, ["--root", str(root)])
    assert result.exit_code == 2
    assert "etc/docker/daemon.json:1: not valid JSON" in result.output
    assert "Traceback" not in result.output
    assert run("--root", str(root), "--no-host", "--driver", "overlay2").exit_code == 0


def test_no_host_checks_only_the_configuration(tmp_path):
    root = live_root(tmp_path, fstype="nfs4")
    result = run("--root", str(root), "--no-host", "--format", "json")
    assert host_findings(result.output) == {}
    assert result.exit_code == 0
    assert run("--root", str(root), "--format", "json").exit_code == 1


def test_a_foreign_config_is_not_checked_against_this_host(tmp_path):
    root = live_root(tmp_path, fstype="nfs4")
    result = run("--root", str(root), "--config", str(FIXTURES / "debian-6.1-amd64_none_amd64.config"), "--format", "json")
    host = host_findings(result.output)
    assert list(host) == ["host"] and "not checked" in host["host"]["reason"]
    assert result.exit_code == 0


def test_a_named_config_of_the_running_release_is_checked(tmp_path):
    root = live_root(tmp_path, fstype="nfs4")
    config = tmp_path / "config-6.6.30-gentoo"
    config.write_text(CONFIG.read_text().replace("6.1.0", "6.6.30") + 'CONFIG_LOCALVERSION="-gentoo"\n')
    result = run("--root", str(root), "--config", str(config), "--driver", "overlay2", "--format", "json")
    assert host_findings(result.output)["backing-fs"]["status"] == "fail"


def test_default_tree_run_reports_build_and_install_state(tmp_path):
    root = live_root(tmp_path)
    tree = root / "usr/src/linux"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 7\nSUBLEVEL = 2\nEXTRAVERSION = -gentoo\n")
    (tree / "Kconfig").write_text("")
    (tree / ".config").write_text(CONFIG.read_text().replace("6.1.0", "6.7.2"))
    result = run("--root", str(root), "--no-kconfig", "--format", "json")
    host = host_findings(result.output)
    assert host["kernel-release"]["actual"] == "6.7.2-gentoo"
    assert host["kernel-built"]["status"] == "warn"
    assert "running:overlay" not in host  # the running kernel is not the one configured
    text = run("--root", str(root), "--no-kconfig").output
    assert "6.7.2-gentoo is not built yet" in text and "fix: make -C" in text


def test_kcheck_with_no_arguments_on_this_machine():
    """The real default run: the machine's own config and host (skipped where no config can be found)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERNEL_DIR", "KBUILD_OUTPUT")}
    done = subprocess.run([sys.executable, "-m", "kcheck", "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    if done.returncode == 2 and "no kernel configuration found" in done.stderr:
        pytest.skip("this machine has no kernel configuration to read")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    host = {f["check"]: f for f in report["findings"] if f["section"] == "host"}
    assert "data-root" in host and ("kernel-release" in host or "kernel-booted" in host)
    if report["input"]["config"] == "/proc/config.gz":
        assert host["kernel-booted"]["actual"] == os.uname().release


def test_conflicting_docker_settings_fail_the_host(tmp_path):
    root = live_root(tmp_path, daemon='{"storage-driver": "overlay2"}')
    (root / "etc/conf.d").mkdir(parents=True)
    (root / "etc/conf.d/docker").write_text('DOCKER_OPTS="--storage-driver overlay2"\n')
    result = run("--root", str(root), "--format", "json")
    assert host_findings(result.output)["docker-conflict"]["status"] == "fail"
    assert result.exit_code == 1


def test_booted_tree_kernel_is_also_checked_for_what_it_can_mount_now(tmp_path):
    root = live_root(tmp_path, filesystems=("ext4",))
    tree = root / "usr/src/linux"
    (tree / "include/config").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 6\nSUBLEVEL = 30\nEXTRAVERSION = -gentoo\n")
    (tree / "Kconfig").write_text("")
    (tree / ".config").write_text(CONFIG.read_text().replace("6.1.0", "6.6.30"))
    (tree / "include/config/kernel.release").write_text(RELEASE + "\n")
    result = run("--root", str(root), "--no-kconfig", "--format", "json")
    host = host_findings(result.output)
    assert host["kernel-booted"]["status"] == "ok"
    assert host["running:overlay"]["status"] == "fail"  # OVERLAY_FS=m, but neither loaded nor installed
