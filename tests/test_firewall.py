"""Firewall backends: which one is checked and why, what each needs, and the ways out on a real-time kernel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_host_cli import live_root

from kcheck import firewall, options, profile
from kcheck.check import check_location, initial_facts, select_profiles
from kcheck.cli import main
from kcheck.dotconfig import load
from kcheck.locate import KernelLocation
from kcheck.model import CheckContext, Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
DEBIAN_6_12 = FIXTURES / "debian-6.12-amd64_none_amd64.config"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def findings(config: Path, firewall_backend: str | None = None, **kwargs) -> dict[str, object]:
    report = check_location(KernelLocation(config, "test", kwargs.pop("tree", None), None), select_profiles("overlay2"),
                            facts=initial_facts("docker", firewall_backend), **kwargs)
    return report


def without(config: Path, tmp_path: Path, *symbols: str) -> Path:
    """A copy of ``config`` with ``symbols`` switched off, the way a user's .config says it."""
    lines = []
    for line in config.read_text().splitlines():
        name = line.split("=")[0].removeprefix("CONFIG_")
        lines.append(f"# CONFIG_{name} is not set" if line.startswith("CONFIG_") and name in symbols else line)
    out = tmp_path / f"no-{'-'.join(symbols).lower()}.config"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_choices_are_the_backends_and_runtimes():
    assert options.FIREWALL_CHOICES == firewall.BACKENDS and options.RUNTIME_CHOICES == profile.RUNTIMES


@pytest.mark.parametrize(("backend", "status"), [("iptables-legacy", Status.WARN), ("iptables-nft", Status.FAIL),
                                                 ("nftables", Status.FAIL)])
def test_a_config_without_nf_tables_is_told(tmp_path, backend, status):
    config = without(DEBIAN_6_12, tmp_path, "NF_TABLES")
    report = findings(config, backend)
    nf_tables = [f for f in report.findings if f.check == "NF_TABLES"]
    assert [f.status for f in nf_tables] == [status]
    assert report.exit_status() == (0 if backend == "iptables-legacy" else 1)
    assert nf_tables[0].source  # every requirement names who asks for it


def test_each_backend_checks_its_own_symbols():
    checked = {b: {f.check for f in findings(DEBIAN_6_12, b).findings if f.status is not Status.INFO} for b in firewall.BACKENDS}
    assert "IP_NF_FILTER" in checked["iptables-legacy"] and "IP_NF_FILTER" not in checked["nftables"]
    assert "NFT_COMPAT" in checked["iptables-nft"] and "NFT_COMPAT" not in checked["iptables-legacy"]
    assert "NFT_FIB_IPV4" in checked["nftables"] and "NETFILTER_XT_MATCH_IPVS" not in checked["nftables"]


def _rt_outcome(report) -> tuple[int, str]:
    text = " ".join(f"{f.reason} {f.detail or ''}" for f in report.findings if f.group == "Firewall" or f.check == "PREEMPT_RT")
    return report.exit_status(), text


def _assert_rt_acceptance(check):
    """``check(backend)`` -> report of Debian's 7.3 RT config; the issue's acceptance, for one reader."""
    status, _ = _rt_outcome(check("nftables"))
    assert status == 0
    status, text = _rt_outcome(check("iptables-legacy"))
    assert status == 1 and "PREEMPT_RT" in text
    status, text = _rt_outcome(check(None))  # no --firewall, no host
    assert status == 1 and "PREEMPT_RT" in text
    ways = text.split("ways out:")[1]
    assert "nftables (everything it needs is there)" in ways
    assert "iptables-nft (after enabling NETFILTER_XT_NAT, NETFILTER_XT_TARGET_MASQUERADE)" in ways


@pytest.mark.realtree
def test_debian_7_3_rt_config_plain(debian_configs_7_3):
    config = debian_configs_7_3["amd64_none_rt-amd64"]
    _assert_rt_acceptance(lambda backend: findings(config, backend))


@pytest.mark.realtree
@pytest.mark.slow
def test_debian_7_3_rt_config_kconfig_mode(debian_configs_7_3, linux_7_3):
    config = debian_configs_7_3["amd64_none_rt-amd64"]
    trees: dict = {}
    _assert_rt_acceptance(lambda backend: findings(config, backend, tree=linux_7_3, kconfig_trees=trees))
    assert trees  # really read through the tree's Kconfig


@pytest.mark.realtree
def test_debian_7_3_rt_config_from_the_command_line(debian_configs_7_3):
    config = str(debian_configs_7_3["amd64_none_rt-amd64"])
    assert run("--no-host", "-c", config, "--firewall", "nftables").exit_code == 0
    legacy = run("--no-host", "-c", config, "--firewall", "iptables-legacy")
    assert legacy.exit_code == 1 and "PREEMPT_RT" in legacy.output
    default = run("--no-host", "-c", config, "--format", "json")
    data = json.loads(default.output)
    ways = next(f for f in data["findings"] if f["check"] == "firewall-ways-out")
    assert "nftables" in ways["detail"] and "iptables-nft" in ways["detail"]
    assert all(f["source"] for f in data["findings"] if f["expected"] is not None and f["profile"] in ("docker", "overlay2"))


def test_unknown_firewall_is_a_usage_error():
    result = CliRunner().invoke(main, ["--firewall", "ipchains", "-c", str(DEBIAN_6_12)])
    assert result.exit_code == 2 and "ipchains" in result.output


def _ctx(root: Path, host: bool = True, **facts) -> CheckContext:
    return CheckContext(root=root, source=load(DEBIAN_6_12), tree=None, build_dir=None, kernel_version=None,
                        live=host, host_checked=host, facts={"runtime": "docker", **facts})


def test_backend_from_daemon_json(tmp_path):
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text('{"firewall-backend": "nftables"}')
    assert firewall.choose_backend(_ctx(tmp_path)) == ("nftables", "firewall-backend in /etc/docker/daemon.json")
    # Without host checks (--no-host, or another machine's config) the host is not asked.
    assert firewall.choose_backend(_ctx(tmp_path, host=False))[0] == firewall.DEFAULT_BACKEND
    # --firewall wins over the host.
    assert firewall.choose_backend(_ctx(tmp_path, firewall="iptables-nft"))[0] == "iptables-nft"


@pytest.mark.parametrize(("target", "variant"), [("xtables-nft-multi", "iptables-nft"),
                                                 ("xtables-legacy-multi", "iptables-legacy")])
def test_backend_from_the_iptables_command(tmp_path, target, variant):
    sbin = tmp_path / "usr/sbin"
    sbin.mkdir(parents=True)
    (sbin / target).write_text("#!/bin/sh\n")
    os.symlink(target, sbin / "iptables")
    backend, why = firewall.choose_backend(_ctx(tmp_path))
    assert backend == variant and target in why and "no firewall-backend" in why


def test_bad_firewall_backend_in_daemon_json_is_one_line(tmp_path):
    root = live_root(tmp_path, daemon='{"firewall-backend": "pf"}')
    result = CliRunner().invoke(main, ["--root", str(root)])
    assert result.exit_code == 2 and "firewall-backend" in result.output and "Traceback" not in result.output


@pytest.mark.realtree
@pytest.mark.slow
def test_fix_follows_the_firewall_backend(debian_configs_7_3, kconfig_7_3):
    """On the RT kernel, fix for nftables changes nothing; for iptables-nft, two xt targets; never real time off."""
    from kcheck.fix.cli import plan_for_tree

    tree = kconfig_7_3
    config = debian_configs_7_3["amd64_none_rt-amd64"]
    profiles = select_profiles("overlay2")
    nft, _ = plan_for_tree(tree, config, profiles, facts=initial_facts("docker", "nftables"))
    assert nft.ok and nft.changes == []
    xt, _ = plan_for_tree(tree, config, profiles, facts=initial_facts("docker", "iptables-nft"))
    changed = {c.symbol: c.new for c in xt.changes}
    assert xt.ok and {"NETFILTER_XT_NAT", "NETFILTER_XT_TARGET_MASQUERADE"} <= set(changed)
    assert "PREEMPT_RT" not in changed and changed["NETFILTER_XT_NAT"] in ("y", "m")


@pytest.mark.realtree
@pytest.mark.slow
def test_fix_without_firewall_says_real_time_can_stay(debian_configs_7_3, linux_7_3):
    config = str(debian_configs_7_3["amd64_none_rt-amd64"])
    result = CliRunner().invoke(main, ["fix", "-d", "overlay2", "-k", str(linux_7_3), "-c", config])
    assert result.exit_code == 0 and "PREEMPT_RT" in result.output
    # Without --firewall, fix plans for the backend that keeps real time (a plan that only adds wins), and says so.
    assert "no --firewall given: planned for iptables-nft, which keeps PREEMPT_RT" in result.output
    assert "--firewall iptables-legacy to insist" in result.output
