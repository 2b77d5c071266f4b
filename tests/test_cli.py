"""End to end: the commands a user types, through click's runner and a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kcheck.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
DEBIAN_61 = FIXTURES / "debian-6.1-amd64_none_amd64.config"
SCHEMA = Path(__file__).resolve().parents[1] / "src" / "kcheck" / "data" / "report.schema.json"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env={"NO_COLOR": "1", **(env or {})})


@pytest.mark.parametrize("driver, status", [("overlay2", 0), ("btrfs", 0), ("devicemapper", 0), ("aufs", 1), ("vfs", 0),
                                            ("fuse-overlayfs", 0), ("zfs", 0)])
def test_debian_61_verdicts(driver, status):
    result = run("--driver", driver, "--config", DEBIAN_61)
    assert result.exit_code == status, result.output
    assert f"reading {DEBIAN_61}" in result.output and "kernel 6.1." in result.output


def test_aufs_names_aufs_fs_and_vfs_warns_about_copies():
    aufs = run("--driver", "aufs", "--config", DEBIAN_61)
    assert "FAIL  CONFIG_AUFS_FS" in aufs.output and "NOT READY for docker + aufs: AUFS_FS" in aufs.output
    vfs = run("--driver", "vfs", "--config", DEBIAN_61)
    assert "no copy-on-write" in vfs.output and vfs.exit_code == 0


def test_nf_nat_ipv4_follows_the_config_version():
    old = run("-d", "overlay2", "-c", FIXTURES / "minimal-4.4-no-nf-nat-ipv4.config")
    assert old.exit_code == 1 and "CONFIG_NF_NAT_IPV4 is not set" in old.output
    new = run("-d", "overlay2", "-c", FIXTURES / "minimal-6.1-no-nf-nat-ipv4.config")
    assert new.exit_code == 0 and "NF_NAT_IPV4" not in new.output


def test_version_override_changes_rules():
    result = run("-d", "overlay2", "-c", FIXTURES / "minimal-6.1-no-nf-nat-ipv4.config", "--kernel-version", "5.1")
    assert result.exit_code == 1 and "NF_NAT_IPV4" in result.output and "from --kernel-version" in result.output


def test_unknown_version_applies_only_unversioned_rules():
    result = run("-d", "overlay2", "-c", FIXTURES / "no-version-overlay2.config", "--format", "json")
    data = json.loads(result.output)
    assert data["kernel_version"] is None
    skipped = {f["check"] for f in data["findings"] if f["status"] == "skip"}
    assert {"NF_NAT_IPV4", "CGROUP_BPF", "DEVPTS_MULTIPLE_INSTANCES"} <= skipped
    assert result.exit_code == 0


def test_hand_made_verdicts():
    assert run("-d", "aufs", "-c", FIXTURES / "aufs-sources-6.1.config").exit_code == 0
    assert run("-d", "overlay2", "-c", FIXTURES / "minimal-6.1-overlay2.config").exit_code == 0
    for driver in ("overlay2", "btrfs", "devicemapper", "aufs", "fuse-overlayfs"):
        assert run("-d", driver, "-c", FIXTURES / "no-storage-6.1.config").exit_code == 1, driver
    assert run("-d", "vfs", "-c", FIXTURES / "no-storage-6.1.config").exit_code == 0


def test_strict_fails_on_recommended_but_not_on_advice():
    assert run("-d", "overlay2", "-c", FIXTURES / "minimal-6.1-overlay2.config", "--strict").exit_code == 1
    assert run("-d", "overlay2", "-c", DEBIAN_61, "--strict", "--profile", FIXTURES.parent / "nothing.toml").exit_code == 2


def test_json_follows_the_documented_schema():
    result = run("-d", "btrfs", "-c", DEBIAN_61, "--format", "json")
    data = json.loads(result.output)
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["exit_status"] == result.exit_code == 0
    btrfs = next(f for f in data["findings"] if f["check"] == "BTRFS_FS")
    lines = DEBIAN_61.read_text().splitlines()
    assert lines[btrfs["line"] - 1] == f"CONFIG_BTRFS_FS={btrfs['actual']}"


def test_user_profile_is_checked_too(tmp_path):
    mine = tmp_path / "fleet.toml"
    mine.write_text('name = "fleet"\n[[group]]\nseverity = "forbidden"\nrequirements = [\n'
                    '  { symbol = "LEGACY_VSYSCALL_NONE", reason = "we run old containers" },\n]\n')
    result = run("-d", "overlay2", "-c", DEBIAN_61, "--profile", mine)
    assert result.exit_code == 1 and "fleet" in result.output and "NOT READY" in result.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-d", "ntfs", "-c", DEBIAN_61], "unknown driver 'ntfs'"),
        (["-d", "docker", "-c", DEBIAN_61], "docker is the base profile"),
        (["-d", "overlay2", "-c", "/nonexistent/.config"], "/nonexistent/.config does not exist"),
        (["-d", "overlay2", "-c", FIXTURES], "is a directory"),
        (["-d", "overlay2", "-c", DEBIAN_61, "--kernel-version", "new"], "not a kernel version"),
        (["-d", "overlay2", "-c", DEBIAN_61, "--kernel-dir", "/nonexistent"], "does not exist"),
        (["-d", "overlay2", "-c", DEBIAN_61, "--format", "yaml"], "Invalid value for '--format'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    assert fragment in result.output
    assert "Traceback" not in result.output
    if "Invalid value" not in fragment:
        assert result.output.count("\n") == 1 and result.output.startswith("kcheck: ")


def test_not_a_config_and_binary(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just words\n")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(4096).replace(b"\x1f\x8b", b"xx") + b"\0")
    for path, fragment in ((text, "not a kernel configuration"), (garbage, "binary file")):
        result = run("-d", "overlay2", "-c", path)
        assert result.exit_code == 2 and fragment in result.output


def test_drivers_lists_every_profile_per_runtime():
    from kcheck.profile import RUNTIMES, shipped_names

    result = run("drivers")
    headings = [line.split()[0] for line in result.output.splitlines() if line and not line.startswith(" ")]
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ")]
    assert result.exit_code == 0 and headings == list(RUNTIMES)
    assert listed == [name for runtime in RUNTIMES for name in shipped_names(runtime)]
    podman = run("drivers", "--runtime", "podman").output.splitlines()
    assert podman[0].startswith("podman") and [line.split()[0] for line in podman[1:]] == shipped_names("podman")


def test_help_documents_exit_statuses():
    result = run("--help")
    assert "Exit status:" in result.output and "usage or input error" in result.output


def test_real_process_and_python_m(tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "kcheck", "--driver", "aufs", "--config", str(DEBIAN_61)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "AUFS_FS" in proc.stdout and "\x1b[" not in proc.stdout
    script = Path(sys.executable).with_name("kcheck")
    proc = subprocess.run([str(script), "-d", "overlay2", "-c", str(DEBIAN_61)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("READY for docker + overlay2 (1 recommended item missing)")
    missing = subprocess.run([str(script), "-d", "overlay2", "-c", str(tmp_path / "x")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and missing.stdout == ""


def test_tally_counts_only_requirements():
    """Checks without an expected value (advice, tree evidence) are not counted as held requirements."""
    result = run("-d", "aufs", "-c", FIXTURES / "aufs-sources-6.1.config", "--no-host")
    tally = next(line for line in result.output.splitlines() if line.startswith("aufs: "))
    held, total = (int(n) for n in tally.split()[1::2][:2])
    assert held <= total


def test_colour_on_a_terminal_and_no_color_honoured():
    args = ["-d", "aufs", "-c", str(DEBIAN_61), "--no-host"]
    coloured = CliRunner().invoke(main, args, color=True, env={"NO_COLOR": None})
    assert "\x1b[" in coloured.output
    plain = CliRunner().invoke(main, args, color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain.output and "FAIL  CONFIG_AUFS_FS" in plain.output
