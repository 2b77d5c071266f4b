"""The docker profile agrees with docker's own contrib/check-config.sh on the symbols both check.

The oracle is the real script, from Debian's ``docker.io`` package (downloaded
and cached by the suite). It takes its version from ``uname -r``; a ``uname``
shim on PATH gives it the configuration's own version, so both sides apply the
same version rules. Known, deliberate differences are listed in README.md
("Deliberate differences from docker's check-config.sh"); the comparison here
is per symbol: "enabled" on one side must be "holds" on the other.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import realkernel

from kcheck.check import check_location, select_profiles
from kcheck.dotconfig import load
from kcheck.locate import KernelLocation
from kcheck.model import Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
CONFIGS = sorted(FIXTURES.glob("debian-*.config")) + sorted(FIXTURES.glob("minimal-*.config"))
_LINE = re.compile(r"- CONFIG_([A-Z0-9_]+): (enabled \(as module\)|enabled|missing)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# check-config.sh reports these as "bad" when *set*; the profile expects them not set, so the
# two sides speak of opposite polarities and are compared separately below.
_INVERTED = {"LEGACY_VSYSCALL_NATIVE", "LEGACY_VSYSCALL_NONE", "LEGACY_VSYSCALL_EMULATE"}


@pytest.fixture(scope="module")
def check_config_sh(tmp_path_factory) -> Path:
    try:
        deb = realkernel.deb_file("docker.io")
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("docker-io")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    script = next(out.rglob("check-config.sh"))
    return script


def run_script(script: Path, config: Path, release: str, tmp_path: Path) -> tuple[str, int]:
    """check-config.sh's output (colours removed) and exit status, ``uname -r`` saying ``release``."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "uname").write_text(f"#!/bin/sh\necho {release}\n")
    (shim / "uname").chmod(stat.S_IRWXU)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(script), str(config)], capture_output=True, text=True, env=env)
    return _ANSI.sub("", proc.stdout), proc.returncode


def oracle(output: str) -> dict[str, bool]:
    """symbol -> enabled, as check-config.sh reports it."""
    verdicts = {}
    for line in output.splitlines():
        match = _LINE.search(line)
        if match:
            verdicts[match.group(1)] = match.group(2) != "missing"
    assert verdicts, output
    return verdicts


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_docker_and_storage_verdicts_match_check_config(check_config_sh, config, tmp_path):
    output, _ = run_script(check_config_sh, config, load(config).header_version, tmp_path)
    theirs = oracle(output)
    location = KernelLocation(config, "test", None, None)
    ours = {}
    for driver in ("overlay2", "btrfs", "devicemapper", "aufs"):
        report = check_location(location, select_profiles(driver))
        for finding in report.findings:
            if finding.expected is not None and finding.status is not Status.SKIP:
                ours[finding.check] = finding.status is Status.OK
    common = sorted((set(theirs) & set(ours)) - _INVERTED)
    assert len(common) >= 40, common
    disagree = {s: (theirs[s], ours[s]) for s in common if theirs[s] != ours[s]}
    assert disagree == {}
    # Symbols the script checks only for some versions are checked by kcheck for the same ones.
    versioned = {"NF_NAT_IPV4", "NF_NAT_NEEDED", "DEVPTS_MULTIPLE_INSTANCES", "MEMCG_KMEM", "RESOURCE_COUNTERS"}
    assert {s for s in versioned if s in theirs} == {s for s in versioned if s in ours}
    # The script flags LEGACY_VSYSCALL_NONE as bad when set; kcheck warns about the same configs.
    flagged = "CONFIG_LEGACY_VSYSCALL_NONE: enabled" in output
    warned = any(f.check == "LEGACY_VSYSCALL_NONE" and f.status is Status.WARN
                 for f in check_location(location, select_profiles(None)).findings)
    assert flagged == warned
