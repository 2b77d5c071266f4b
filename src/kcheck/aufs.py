"""Which aufs provider a kernel has, from the configuration and the tree.

aufs reaches a kernel in two ways with opposite expectations (see the
README's aufs section): aufs-sources puts ``fs/aufs/`` and the ``AUFS_FS``
symbol in the tree, so AUFS_FS must be y or m; the out-of-tree module
(sys-fs/aufs3, sys-fs/aufs4) patches the tree (``mm/prfile.c`` appears) but
adds no symbol, and needs AUFS_FS unset. This module names the case as the
fact ``aufs-provider``: ``sources``, ``standalone`` or ``none``.
"""

from __future__ import annotations

from kcheck.model import CheckContext

#: The fact name requirements are conditioned on (``when = "aufs-provider:..."``).
FACT = "aufs-provider"


def aufs_facts(ctx: CheckContext) -> dict[str, str]:
    """Name the aufs provider this configuration and tree show."""
    state = ctx.source.state("AUFS_FS")
    if state.enabled or state.exists:
        return {FACT: "sources"}
    if ctx.tree is not None and (ctx.tree / "fs" / "aufs" / "Kconfig").is_file():
        return {FACT: "sources"}
    if ctx.tree is not None and (ctx.tree / "mm" / "prfile.c").is_file():
        return {FACT: "standalone"}
    return {FACT: "none"}
