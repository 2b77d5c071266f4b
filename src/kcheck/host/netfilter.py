"""The firewall commands the chosen backend runs: ``nft`` for nftables, the right ``iptables`` for the iptables ones.

The kernel side of each backend is the base profile's (:mod:`kcheck.firewall`);
this is the userland side, on a live run:

- ``nftables``: dockerd writes its rules by running ``nft -f -``; docker
  29.0 to 29.5 look the command up when the backend is enabled and refuse
  to start without it ("failed to find nft tool"), and from 29.6 only a
  dockerd built with the opt-in ``libnftables`` tag does without it (moby
  ``daemon/libnetwork/internal/nftables``). netavark's nftables driver
  applies its rules through the nftables crate, which runs ``nft`` too
  (Debian's netavark recommends the nftables package for it).
- ``iptables-nft`` and ``iptables-legacy``: dockerd runs ``iptables`` (moby
  ``daemon/libnetwork/iptables``: "iptables not found"); so does netavark's
  iptables driver, but only netavark 1.x has one (2.0 removed it), so for
  podman a missing command is a note. Which variant the command is (its
  symlink, or ``iptables -V`` on the machine itself, see
  :func:`kcheck.firewall.iptables_variant`) decides which kernel tables it
  uses, so it must be the backend checked.

containerd leaves the firewall to kube-proxy and the CNI plugins; nothing is
said for it. A machine where the runtime itself is not installed yet gets a
note instead of a failure for a missing command: the runtime's package pulls
its firewall command in (Gentoo's app-containers/docker depends on iptables).
"""

from __future__ import annotations

from kcheck import firewall
from kcheck.host.tools import find_command
from kcheck.model import CheckContext, Finding, Severity, Status

#: What runs the backend's command, per runtime, and where that is written.
RUNNER = {
    "docker": {
        "nftables": ("dockerd with \"firewall-backend\": \"nftables\" writes its rules with 'nft -f -' and does not start "
                     "without it (\"failed to find nft tool\")",
                     "moby daemon/libnetwork/internal/nftables (nft_exec_linux.go; Enable in docker 29.0-29.5)"),
        "iptables": ("dockerd writes its rules with it (\"iptables not found\")", "moby daemon/libnetwork/iptables/iptables.go"),
    },
    "podman": {
        "nftables": ("netavark's nftables firewall driver applies its rules by running nft",
                     "netavark src/firewall/nft.rs (the nftables crate's helper runs nft); Debian's netavark recommends nftables"),
        "iptables": ("netavark 1.x's iptables firewall driver writes its rules with it (netavark 2.0 has no iptables driver)",
                     "netavark 1.17 src/firewall/iptables.rs; removed in 2.0"),
    },
}
#: The multi-call binary each iptables backend's ``iptables`` is (xtables-monolithic).
MULTI = {"iptables-nft": "xtables-nft-multi", "iptables-legacy": "xtables-legacy-multi"}
VARIANT_WORD = {"iptables-nft": "nf_tables", "iptables-legacy": "legacy"}
#: The exception to the nft rule, for the finding's detail.
LIBNFTABLES = "only a dockerd built with the opt-in libnftables tag, from docker 29.6 on, does without it"


def _finding(check: str, status: Status, severity: Severity, reason: str, **extra) -> Finding:
    return Finding(profile="host", check=check, status=status, severity=severity, reason=reason, section="host",
                   group="Firewall", **extra)


#: The command whose presence says the runtime itself is installed under the root.
DAEMON = {"docker": "dockerd", "podman": "podman"}


def _not_yet(ctx: CheckContext, runtime: str, name: str, why: str, fix: str, source: str) -> Finding | None:
    """A note instead of a failure when the runtime is not installed either: its package brings the command along."""
    if find_command(ctx.root, DAEMON[runtime]):
        return None
    return _finding(f"command:{name}", Status.INFO, Severity.INFO,
                    f"the {name} command is not installed, nor is {runtime} ({DAEMON[runtime]}): {why}",
                    source=source, detail=f"install it with {runtime}: {fix}")


def firewall_host_findings(ctx: CheckContext) -> list[Finding]:
    """Whether the command the chosen firewall backend runs is here, and for iptables, whether it is that variant."""
    runtime = ctx.facts.get(firewall.RUNTIME_FACT, "docker")
    if runtime not in RUNNER:
        return []
    backend = ctx.facts.get(firewall.FIREWALL_FACT, firewall.DEFAULT_BACKEND)
    if backend == "nftables":
        return [_nft(ctx, runtime)]
    return _iptables(ctx, runtime, backend)


def _nft(ctx: CheckContext, runtime: str) -> Finding:
    why, source = RUNNER[runtime]["nftables"]
    where = find_command(ctx.root, "nft")
    detail = LIBNFTABLES if runtime == "docker" else None
    if where:
        return _finding("command:nft", Status.OK, Severity.REQUIRED, f"nft is installed ({where})", detail=why, source=source)
    if note := _not_yet(ctx, runtime, "nft", why, "emerge net-firewall/nftables", source):
        return note
    return _finding("command:nft", Status.FAIL, Severity.REQUIRED, f"the nft command is missing: {why}", detail=detail,
                    source=source, fix="emerge net-firewall/nftables")


def _iptables(ctx: CheckContext, runtime: str, backend: str) -> list[Finding]:
    why, source = RUNNER[runtime]["iptables"]
    variant, how = firewall.iptables_variant(ctx.root)
    where = find_command(ctx.root, "iptables")
    if variant is None and where is None and how == "no iptables command found":
        fix = "emerge net-firewall/iptables" + (" with USE=nftables" if backend == "iptables-nft" else "")
        if runtime == "podman":
            # netavark may well use nftables instead: the backend kcheck checks was only inferred.
            return [_finding("command:iptables", Status.INFO, Severity.INFO, f"the iptables command is not installed: {why}",
                             source=source, detail=f"if podman's networks use iptables: {fix}")]
        return [_not_yet(ctx, runtime, "iptables", why, fix, source)
                or _finding("command:iptables", Status.FAIL, Severity.REQUIRED, f"the iptables command is missing: {why}",
                            source=source, fix=fix)]
    if variant is None:
        return [_finding("iptables-variant", Status.INFO, Severity.INFO,
                         f"iptables is installed, but whether it is the nf_tables or the legacy variant is not known: {how}",
                         detail=f"this configuration was checked for {backend}; run 'iptables -V' and check with "
                                f"--firewall iptables-nft if it says (nf_tables)")]
    word = VARIANT_WORD[variant]
    if variant == backend:
        return [_finding("iptables-variant", Status.OK, Severity.RECOMMENDED, f"iptables is the {word} variant, as {backend} needs ({how})",
                         expected=VARIANT_WORD[backend], actual=word)]
    chosen = ctx.facts.get(firewall.WHY_FACT) or "given with --firewall"
    return [_finding("iptables-variant", Status.WARN, Severity.RECOMMENDED,
                     f"the host's iptables is the {word} variant ({how}), but this configuration was checked for {backend} ({chosen}): "
                     f"{runtime} will use the {'nf_tables' if variant == 'iptables-nft' else 'x_tables'} tables",
                     expected=VARIANT_WORD[backend], actual=word,
                     fix=f"check with --firewall {variant}, or make iptables {MULTI[backend]} (Gentoo: eselect iptables set "
                         f"{MULTI[backend]}; Debian: update-alternatives --set iptables /usr/sbin/iptables-{backend.split('-')[1]})")]
