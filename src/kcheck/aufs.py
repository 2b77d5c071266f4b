"""Which aufs provider a kernel has, and whether it is ready to boot.

aufs reaches a kernel in two ways with opposite expectations:
``sys-kernel/aufs-sources`` puts ``fs/aufs/`` and the ``AUFS_FS`` symbol in the
tree, so AUFS_FS must be y or m; the out-of-tree module (``sys-fs/aufs3``,
``sys-fs/aufs4``, an overlay's ``sys-fs/aufs6``) patches the tree (the
standalone exports, ``mm/prfile.c``) but adds no symbol, and needs AUFS_FS
unset. This module names the case as the fact
``aufs-provider`` (``sources``, ``standalone`` or ``none``) that the aufs
profile's requirements are conditioned on, and adds the findings no
configuration line can show: which package provides aufs, and whether the
patched kernel was rebuilt, installed and booted
(:mod:`kcheck.portage.aufs_state`; installed and booted only when the host
checks, which report those, are not part of the run).

The tree decides the provider; Portage (its Python API, else ``portageq``)
only when the tree cannot, and always for ``aufs_findings`` (the aufs driver
only). A configuration line that contradicts the tree is a finding, never the
decider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kcheck.model import CheckContext, Finding, Severity, Status

if TYPE_CHECKING:
    from kcheck.portage.aufs_state import AufsPackages

#: The fact name requirements are conditioned on (``when = "aufs-provider:..."``).
FACT = "aufs-provider"


def aufs_facts(ctx: CheckContext) -> dict[str, str]:
    """Name the aufs provider this tree, root and configuration show.

    The tree decides first, because a configuration line can be stale:
    ``fs/aufs/Kconfig`` -> sources; any sign of the standalone patch (one of
    its exports, or ``mm/prfile.c`` left behind) -> standalone. Without a
    tree, or with a tree that shows neither, the installed packages decide
    (an installed aufs3 whose patch was lost still makes the case
    standalone), then the configuration (AUFS_FS set or defined: only
    aufs-sources has the symbol), when there is no tree to contradict it.
    """
    from kcheck.portage.aufs_state import aufs_packages, out_of_tree_modules, read_tree
    from kcheck.portage.facts import portage_facts

    state = ctx.source.state("AUFS_FS")
    if state.exists:
        return {FACT: "sources"}
    if ctx.tree is not None and ctx.tree.is_dir():
        ev = read_tree(ctx.tree, ctx.build_dir)
        if ev.aufs_sources:
            return {FACT: "sources"}
        if ev.standalone_signs:
            return {FACT: "standalone"}
    facts = portage_facts(ctx.root)
    packages = aufs_packages(facts)
    if packages.modules:
        return {FACT: "standalone"}
    if packages.sources:
        return {FACT: "sources"}
    if not facts.available and out_of_tree_modules(ctx.root):
        # No package database to ask, but an aufs.ko built out of tree is installed: the standalone case.
        return {FACT: "standalone"}
    if state.enabled and (ctx.tree is None or not ctx.tree.is_dir()):
        return {FACT: "sources"}
    return {FACT: "none"}


def aufs_findings(ctx: CheckContext) -> list[Finding]:
    """The aufs provider, the patch/build/install state, and "safe to reboot" or what is left."""
    from kcheck.host.kernel import running_kernel
    from kcheck.portage.aufs_state import assess, aufs_packages
    from kcheck.portage.facts import portage_facts

    facts = portage_facts(ctx.root)
    packages = aufs_packages(facts)
    provider = ctx.facts.get(FACT) or aufs_facts(ctx)[FACT]
    aufs_fs = ctx.source.state("AUFS_FS")
    findings: list[Finding] = []
    left: list[str] = []
    # The profile's AUFS_FS requirements report these lines; here they only keep the reboot verdict honest.
    if provider == "sources" and not aufs_fs.enabled:
        left.append("set CONFIG_AUFS_FS (y or m) for the aufs-sources tree")
    elif provider == "none":
        left.append(
            "give this kernel aufs: sys-kernel/aufs-sources with CONFIG_AUFS_FS, "
            "or sys-fs/aufs3 / sys-fs/aufs4 (or your overlay's aufs module package) with USE=kernel-patch"
        )
    elif provider == "standalone" and facts.available and not packages.modules:
        left.append("install the aufs module: emerge sys-fs/aufs4 (or sys-fs/aufs3, or your overlay's aufs package), which builds aufs.ko for this tree")
    if provider == "standalone" and aufs_fs.enabled:
        # The tree is patched for the out-of-tree module: the configuration line is what is wrong, not the tree.
        builder = packages.modules[-1].cp if packages.modules else "the out-of-tree aufs module"
        left.append(f"unset CONFIG_AUFS_FS ({builder} builds aufs outside the tree)")
    if provider == "none" and aufs_fs.enabled and ctx.tree is not None:
        # Only aufs-sources has the symbol; this tree has no fs/aufs, so the line is stale, whatever it says.
        findings.append(
            Finding(profile="aufs", check="aufs-config", status=Status.FAIL, severity=Severity.REQUIRED,
                    reason=f"CONFIG_AUFS_FS={aufs_fs.value} in the configuration, but {ctx.tree} has no fs/aufs and no aufs patch: "
                           "the line is stale and this kernel has no aufs",
                    symbol="AUFS_FS", actual=aufs_fs.value, line=aufs_fs.line, section="driver")
        )
    findings.append(
        Finding(
            profile="aufs",
            check="aufs-provider",
            status=Status.INFO,
            severity=Severity.INFO,
            reason=_provider_reason(provider, packages, facts.reason),
            section="portage",
        )
    )
    findings += assess(
        ctx.root,
        ctx.tree,
        ctx.build_dir,
        facts,
        running=running_kernel(ctx.root),
        # The host section, when it runs, owns whether the build is installed and booted.
        kernel_state=not ctx.host_checked,
        also_left=left,
        aufs_fs=aufs_fs.value if aufs_fs.enabled else "n",
    )
    return findings


def _provider_reason(provider: str, packages: AufsPackages, reason: str | None) -> str:
    names = packages.describe(reason)
    if provider == "sources":
        return f"aufs is built from the kernel tree (aufs-sources; {names}): CONFIG_AUFS_FS must be y or m"
    if provider == "standalone":
        return f"aufs is an out-of-tree module ({names}): the tree needs the standalone patch and CONFIG_AUFS_FS unset"
    return f"no aufs provider found ({names})"
