"""The docker profile agrees with today's check-config.sh (Debian sid's docker.io 28.x) on every config we have.

Like ``test_check_config_oracle.py`` (bookworm's 20.10 script), but with the
current script and over every shipped fixture and every downloaded Debian
configuration (6.1, 6.12, 7.2, 7.3, all amd64 flavours). The script takes its
version from ``uname -r``; a shim gives it the configuration's own. The
comparison is per symbol ("enabled" there must be "holds" here), for the
firewall backend check-config.sh assumes (iptables over the x_tables
tables: kcheck's default without a host). The deliberate differences are
listed in README.md ("Deliberate differences from docker's check-config.sh").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import realkernel
from test_check_config_oracle import _INVERTED, oracle, run_script

from kcheck.check import check_location, select_profiles
from kcheck.dotconfig import load
from kcheck.locate import KernelLocation
from kcheck.model import Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
SHIPPED = sorted(FIXTURES.glob("*.config"))
DOWNLOADED = [(series, flavour) for series in realkernel.ALL_SERIES for flavour in realkernel.flavours(series)]
#: Symbols the 28.x script checks that the 20.10 one did not: the profile must check them too.
NEW_IN_28 = {"NETFILTER_XT_MATCH_BPF", "NF_NAT_FTP", "NF_CONNTRACK_FTP", "NF_NAT_TFTP", "NF_CONNTRACK_TFTP",
             "EXT4_FS", "EXT4_FS_POSIX_ACL", "EXT4_FS_SECURITY"}
VERSIONED = {"NF_NAT_IPV4", "NF_NAT_NEEDED", "DEVPTS_MULTIPLE_INSTANCES", "MEMCG_KMEM", "RESOURCE_COUNTERS",
             "INET_XFRM_MODE_TRANSPORT", "MEMCG_SWAP_ENABLED"}


@pytest.fixture(scope="module")
def current_script(tmp_path_factory) -> Path:
    """check-config.sh from Debian sid's docker.io (28.x), extracted from the cached .deb."""
    try:
        _, data = realkernel.deb_member("docker.io", "contrib/check-config.sh", newer=True)
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    script = tmp_path_factory.mktemp("docker-io-sid") / "check-config.sh"
    script.write_bytes(data)
    assert "NF_NAT_TFTP" in script.read_text(), "not the 28.x script"
    return script


def ours(config: Path) -> tuple[dict[str, bool], bool]:
    """symbol -> holds, over docker's base and the four drivers the script knows; and whether the version is known."""
    location = KernelLocation(config, "test", None, None)
    verdicts: dict[str, bool] = {}
    known = True
    for driver in ("overlay2", "btrfs", "devicemapper", "aufs"):
        report = check_location(location, select_profiles(driver))
        known = report.kernel_version is not None
        for finding in report.findings:
            if finding.expected is not None and finding.status is not Status.SKIP:
                verdicts[finding.check] = finding.status is Status.OK
    return verdicts, known


def compare(script: Path, config: Path, tmp_path: Path) -> None:
    release = load(config).header_version or "0.0.0"
    output, _ = run_script(script, config, release, tmp_path)
    theirs = oracle(output)
    mine, known = ours(config)
    common = sorted((set(theirs) & set(mine)) - _INVERTED)
    assert len(common) >= 50, common
    assert {s: (theirs[s], mine[s]) for s in common if theirs[s] != mine[s]} == {}
    assert NEW_IN_28 <= set(common), NEW_IN_28 - set(common)
    if known:
        # Symbols the script checks only for some versions are checked by kcheck for the same ones.
        assert {s for s in VERSIONED if s in theirs} == {s for s in VERSIONED if s in mine}
    flagged = "CONFIG_LEGACY_VSYSCALL_NONE: enabled" in output
    location = KernelLocation(config, "test", None, None)
    warned = any(f.check == "LEGACY_VSYSCALL_NONE" and f.status is Status.WARN
                 for f in check_location(location, select_profiles(None)).findings)
    assert flagged == warned


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.stem)
def test_shipped_fixtures_match_current_check_config(current_script, config, tmp_path):
    compare(current_script, config, tmp_path)


@pytest.mark.realtree
@pytest.mark.parametrize(("series", "flavour"), DOWNLOADED, ids=lambda v: v)
def test_debian_configs_match_current_check_config(current_script, series, flavour, tmp_path):
    try:
        config = realkernel.debian_configs(series)[flavour]
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    compare(current_script, config, tmp_path)


def test_optional_failures_do_not_fail_kcheck_but_fail_the_28x_script(current_script, tmp_path):
    """The deliberate difference the README lists, measured: Debian's 6.1 config lacks only MEMCG_SWAP (an
    optional item that no longer exists from 6.1 on), and the 28.x script exits 1 for it; kcheck exits 0."""
    config = FIXTURES / "debian-6.1-amd64_none_amd64.config"
    output, status = run_script(current_script, config, load(config).header_version, tmp_path)
    missing = [s for s, enabled in oracle(output).items() if not enabled]
    report = check_location(KernelLocation(config, "test", None, None), select_profiles("overlay2"))
    assert missing == ["MEMCG_SWAP"] and status == 1
    assert report.exit_status() == 0
