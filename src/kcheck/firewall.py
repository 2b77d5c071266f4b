"""Which firewall backend the container runtime drives, and what to do when the kernel cannot have it.

A runtime's netfilter needs depend on the backend, so the base profiles
declare one requirement set per backend (``when = "firewall:<backend>"``):

- ``iptables-legacy``: the ``iptables`` command over the x_tables tables
  (``iptable_filter``, ``iptable_nat``, ...); from Linux 6.17 those need
  NETFILTER_XTABLES_LEGACY, which ``depends on !PREEMPT_RT``.
- ``iptables-nft``: the same ``iptables`` command over nf_tables, with
  NFT_COMPAT running the xt matches and targets the rules use.
- ``nftables``: the runtime writes nftables rules itself (docker 29's
  ``"firewall-backend": "nftables"``, netavark's ``firewall_driver``).

:func:`firewall_facts` decides the backend (``--firewall``, else on a live
run the runtime's own setting and the host's ``iptables`` variant, else
docker's default) and records why; :func:`firewall_findings` says so in the
report and, when the chosen backend fails, names the backends this kernel
configuration does support, with what each still lacks.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from kcheck.locate import under_root
from kcheck.model import CheckContext, Finding, Severity, Status

#: The backends, in the order a report offers them as ways out (the runtime-native one first).
BACKENDS = ("iptables-legacy", "iptables-nft", "nftables")
#: When nothing tells: docker's default backend is ``iptables``; kcheck then checks the x_tables
#: tables moby's check-config.sh asks for.
DEFAULT_BACKEND = "iptables-legacy"
#: Where a system keeps the ``iptables`` command (a symlink to the variant on Debian and Gentoo).
IPTABLES_PATHS = ("/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables", "/bin/iptables")
_VARIANT = re.compile(r"\((nf_tables|legacy)\)")
#: The facts this module reads and writes: the backend, why it was chosen, and the runtime it is for.
FIREWALL_FACT = "firewall"
WHY_FACT = "firewall-why"
RUNTIME_FACT = "runtime"


def iptables_variant(root: Path) -> tuple[str | None, str]:
    """``iptables-nft`` or ``iptables-legacy`` as the host's ``iptables`` command is, and how that was found.

    The symlink chain of the command names the variant on Debian
    (``/etc/alternatives``) and Gentoo (``xtables-nft-multi``); only on the
    machine itself (``root`` is ``/``) and only for a root-owned command that
    nobody else can write is ``iptables -V`` run to ask it.
    """
    seen = None
    for system_path in IPTABLES_PATHS:
        path = under_root(root, system_path)
        if not os.path.lexists(path):
            continue
        try:
            target = os.path.realpath(path)
        except OSError:
            continue
        name = Path(target).name
        if "nft" in name:
            return "iptables-nft", f"{system_path} is {name}"
        if "legacy" in name:
            return "iptables-legacy", f"{system_path} is {name}"
        seen = seen or f"{system_path} is {name}"
        if root == Path("/") and _trusted(Path(target)):
            said = _ask_version(target)
            if said:
                return ("iptables-nft" if said == "nf_tables" else "iptables-legacy"), f"'iptables -V' says ({said})"
    if seen:
        asked = ("'iptables -V' did not tell (it is run only when root owns the command and only root can write it)"
                 if root == Path("/") else "'iptables -V' is asked only on this machine's own root")
        return None, f"{seen}, which does not name its variant, and {asked}"
    return None, "no iptables command found"


def _trusted(path: Path) -> bool:
    """A command kcheck (maybe root) may run: a root-owned regular file that only root can write."""
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _ask_version(command: str) -> str | None:
    try:
        proc = subprocess.run([command, "-V"], capture_output=True, text=True, timeout=5,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VARIANT.search(proc.stdout + proc.stderr)
    return match.group(1) if match else None


def configured_backend(ctx: CheckContext) -> tuple[str | None, str]:
    """The backend the runtime's own settings choose (``nftables``/``iptables``), and where that was read."""
    runtime = ctx.facts.get(RUNTIME_FACT, "docker")
    if runtime == "docker":
        from kcheck.host import docker

        settings = docker.read_settings(ctx.root)
        if settings.firewall_backend:
            return settings.firewall_backend, f"firewall-backend in {settings.origin_of('firewall-backend')}"
        return None, f"no firewall-backend in {docker.DAEMON_JSON}"
    if runtime == "podman":
        from kcheck import runtimes

        driver, where = runtimes.podman_firewall_driver(ctx.root)
        if driver in ("nftables", "iptables"):
            return driver, f"firewall_driver in {where}"
        return None, f"no firewall_driver in {where}" if where else "no containers.conf"
    return None, f"{runtime} leaves the firewall to its network plugins"


def choose_backend(ctx: CheckContext) -> tuple[str, str]:
    """The backend to check and why: ``--firewall``, the live host's settings, or the default."""
    given = ctx.facts.get(FIREWALL_FACT)
    if given:
        return given, ctx.facts.get(WHY_FACT) or "given with --firewall"
    if not ctx.host_checked:
        return DEFAULT_BACKEND, ("no --firewall and no host to ask: the default, iptables, checked over the x_tables "
                                 "tables as check-config.sh does")
    setting, where = configured_backend(ctx)
    if setting == "nftables":
        return "nftables", where
    variant, how = iptables_variant(ctx.root)
    if variant:
        return variant, f"{where}: iptables, and {how}"
    return DEFAULT_BACKEND, f"{where}, and {how}: the default, iptables, over the x_tables tables"


def firewall_facts(ctx: CheckContext) -> dict[str, str]:
    """The ``firewall`` fact (one of :data:`BACKENDS`) and why, for ``when = "firewall:..."``."""
    backend, why = choose_backend(ctx)
    return {FIREWALL_FACT: backend, WHY_FACT: why}


def _base_profile(ctx: CheckContext):
    from kcheck.profile import load_base

    return load_base(ctx.facts.get(RUNTIME_FACT, "docker"))


def backend_gaps(ctx: CheckContext, backend: str) -> list[Finding]:
    """The failing findings of ``backend``'s own requirement set (those ``when = "firewall:<backend>"``)."""
    from kcheck import engine

    profile = _base_profile(ctx)
    facts = dict(ctx.facts)
    trial = CheckContext(root=ctx.root, source=ctx.source, tree=ctx.tree, build_dir=ctx.build_dir,
                         kernel_version=ctx.kernel_version, live=ctx.live, facts={**facts, FIREWALL_FACT: backend})
    gaps = []
    for req in profile.requirements:
        if not any(fact == FIREWALL_FACT for fact, _ in req.when) or req.severity is Severity.RECOMMENDED:
            continue
        finding = engine.evaluate_requirement(req, trial, profile.name)
        if finding is not None and finding.status is Status.FAIL:
            gaps.append(finding)
    return gaps


def firewall_findings(ctx: CheckContext) -> list[Finding]:
    """Which backend was checked and why; when it fails here, the backends that would work instead."""
    backend = ctx.facts.get(FIREWALL_FACT, DEFAULT_BACKEND)
    profile = ctx.facts.get(RUNTIME_FACT, "docker")
    out = [Finding(profile=profile, check="firewall-backend", status=Status.INFO, severity=Severity.INFO,
                   reason=f"firewall backend {backend}", detail=ctx.facts.get(WHY_FACT), group="Firewall", section="driver")]
    gaps = backend_gaps(ctx, backend)
    if not gaps:
        return out
    blocker = next((g for g in gaps if g.check == "PREEMPT_RT"), None)
    alternatives = []
    for other in BACKENDS:
        if other == backend:
            continue
        gaps_other = backend_gaps(ctx, other)
        blocked = [g.symbol or g.check for g in gaps_other if g.severity is Severity.FORBIDDEN]
        missing = [g.symbol or g.check for g in gaps_other if g.severity is not Severity.FORBIDDEN]
        if blocked:
            alternatives.append(f"{other} (not with this kernel: {', '.join(blocked)} is set)")
        elif missing:
            alternatives.append(f"{other} (after enabling {', '.join(missing)})")
        else:
            alternatives.append(f"{other} (everything it needs is there)")
    if blocker is not None:
        reason = (f"{backend} cannot work with this kernel: PREEMPT_RT is set, and from Linux 6.17 the legacy "
                  f"x_tables (NETFILTER_XTABLES_LEGACY) depend on !PREEMPT_RT")
    else:
        reason = f"{backend} lacks {', '.join(g.symbol or g.check for g in gaps)} in this configuration"
    out.append(Finding(profile=profile, check="firewall-ways-out", status=Status.INFO, severity=Severity.INFO,
                       reason=reason, group="Firewall", section="driver",
                       detail="ways out: " + "; ".join(alternatives) + "; " + _how_to_switch(profile)))
    return out


def _how_to_switch(runtime: str) -> str:
    if runtime == "podman":
        return "set firewall_driver under [network] in containers.conf, and check with --firewall BACKEND"
    if runtime == "docker":
        return ("for nftables set \"firewall-backend\": \"nftables\" in /etc/docker/daemon.json (docker 29, not with swarm); "
                "for iptables-nft use the nf_tables variant of iptables; check with --firewall BACKEND")
    return "check with --firewall BACKEND"
