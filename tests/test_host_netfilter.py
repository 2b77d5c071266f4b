"""The firewall commands on the host: nft for the nftables backend, the right iptables variant for the iptables ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_host_cli import live_root

from kcheck import firewall
from kcheck.cli import main


@pytest.fixture(autouse=True)
def no_kernel_env(monkeypatch):
    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)


def command(root: Path, path: str, target: str | None = None) -> None:
    """An executable at ``path`` under ``root``, or a relative symlink to ``target`` beside it (as Debian's and Gentoo's are)."""
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    if target is None:
        full.write_text("#!/bin/sh\n")
        full.chmod(0o755)
    else:
        command(root, str(Path(path).parent / target))
        os.symlink(target, full)


def run(root: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(main, ["--root", str(root), "--format", "json", *args], catch_exceptions=False)
    findings = {f["check"]: f for f in json.loads(result.stdout)["findings"] if f["section"] == "host"}
    return result.exit_code, findings


def test_docker_nftables_backend_needs_the_nft_command(tmp_path):
    root = live_root(tmp_path, daemon='{"firewall-backend": "nftables"}')
    command(root, "/usr/bin/dockerd")
    status, found = run(root)
    nft = found["command:nft"]
    assert status == 1 and nft["status"] == "fail" and nft["group"] == "Firewall"
    assert nft["reason"].startswith('the nft command is missing: dockerd with "firewall-backend": "nftables" writes its rules '
                                    "with 'nft -f -'")
    assert nft["fix"] == "emerge net-firewall/nftables" and nft["source"].startswith("moby daemon/libnetwork/internal/nftables")
    assert "libnftables" in nft["detail"]
    assert "iptables-variant" not in found and "command:iptables" not in found
    command(root, "/usr/sbin/nft")
    _, found = run(root)
    assert found["command:nft"]["status"] == "ok" and found["command:nft"]["reason"] == "nft is installed (/usr/sbin/nft)"


def test_podman_netavark_nftables_needs_nft_too(tmp_path):
    root = live_root(tmp_path)
    (root / "etc/containers").mkdir(parents=True)
    (root / "etc/containers/containers.conf").write_text('[network]\nfirewall_driver = "nftables"\n')
    command(root, "/usr/bin/podman")
    _, found = run(root, "--runtime", "podman", "--driver", "overlay")
    assert found["command:nft"]["status"] == "fail" and "netavark" in found["command:nft"]["reason"]


@pytest.mark.parametrize(("target", "backend"), [("xtables-nft-multi", "iptables-nft"), ("xtables-legacy-multi", "iptables-legacy")])
def test_iptables_variant_consistent_with_the_backend(tmp_path, target, backend):
    """No --firewall: the backend follows the host's iptables, and the host section says they agree."""
    root = live_root(tmp_path)
    command(root, "/usr/sbin/iptables", target)
    _, found = run(root)
    variant = found["iptables-variant"]
    assert variant["status"] == "ok" and f"as {backend} needs (/usr/sbin/iptables is {target})" in variant["reason"]


def test_firewall_option_against_the_hosts_iptables_warns(tmp_path):
    root = live_root(tmp_path)
    command(root, "/usr/sbin/iptables", "xtables-legacy-multi")
    _, found = run(root, "--firewall", "iptables-nft")
    variant = found["iptables-variant"]
    assert variant["status"] == "warn" and (variant["expected"], variant["actual"]) == ("nf_tables", "legacy")
    assert variant["reason"] == ("the host's iptables is the legacy variant (/usr/sbin/iptables is xtables-legacy-multi), but this "
                                 "configuration was checked for iptables-nft (given with --firewall): docker will use the x_tables tables")
    assert variant["fix"].startswith("check with --firewall iptables-legacy, or make iptables xtables-nft-multi")
    assert "eselect iptables set xtables-nft-multi" in variant["fix"]


def test_missing_iptables_fails_for_docker_and_is_a_note_for_podman(tmp_path):
    root = live_root(tmp_path)
    command(root, "/usr/bin/dockerd")
    command(root, "/usr/bin/podman")
    status, found = run(root)
    assert status == 1 and found["command:iptables"]["status"] == "fail"
    assert found["command:iptables"]["fix"] == "emerge net-firewall/iptables"
    _, found = run(root, "--runtime", "podman", "--driver", "overlay")
    assert found["command:iptables"]["status"] == "info" and "netavark 2.0 has no iptables driver" in found["command:iptables"]["reason"]
    # containerd leaves the firewall to kube-proxy and the CNI plugins: nothing is said.
    _, found = run(root, "--runtime", "containerd", "--driver", "overlayfs")
    assert not any(f["group"] == "Firewall" for f in found.values())


@pytest.mark.parametrize("daemon", [None, '{"firewall-backend": "nftables"}'])
def test_a_missing_command_is_a_note_while_docker_itself_is_not_installed(tmp_path, daemon):
    """Preparing a kernel before installing docker: its package brings iptables (or nft) along."""
    root = live_root(tmp_path, daemon=daemon)
    name = "nft" if daemon else "iptables"
    _, found = run(root)
    note = found[f"command:{name}"]
    assert note["status"] == "info" and note["reason"].startswith(f"the {name} command is not installed, nor is docker (dockerd): ")
    assert note["detail"].startswith("install it with docker: emerge net-firewall/")
    command(root, "/usr/bin/dockerd")
    _, found = run(root)
    assert found[f"command:{name}"]["status"] == "fail"


def test_an_iptables_that_does_not_name_its_variant(tmp_path):
    """A plain file (not a symlink to xtables-*-multi) under another root: iptables -V is not run there."""
    root = live_root(tmp_path)
    command(root, "/usr/sbin/iptables")
    variant, how = firewall.iptables_variant(root)
    assert variant is None and how == ("/usr/sbin/iptables is iptables, which does not name its variant, "
                                       "and 'iptables -V' is asked only on this machine's own root")
    _, found = run(root)
    assert found["iptables-variant"]["status"] == "info" and "command:iptables" not in found


@pytest.mark.parametrize(("said", "variant"), [("iptables v1.8.9 (nf_tables)", "nf_tables"), ("iptables v1.8.9 (legacy)", "legacy"),
                                               ("iptables v1.4.21", None)])
def test_iptables_minus_v_answer(tmp_path, said, variant):
    """What 'iptables -V' prints (iptables 1.8: the variant in parentheses) is read from stdout or stderr."""
    script = tmp_path / "iptables"
    script.write_text(f"#!/bin/sh\necho '{said}' >&2\n")
    script.chmod(0o755)
    assert firewall._ask_version(str(script)) == variant
