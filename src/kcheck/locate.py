"""Finding the configuration to check, in the order a Gentoo user expects.

1. ``--config PATH`` (plain or gzip).
2. The kernel tree: ``--kernel-dir``, else ``$KERNEL_DIR``, else
   ``/usr/src/linux``; its ``.config`` is read from ``$KBUILD_OUTPUT`` when
   that is set (as Gentoo's linux-info does), else from the tree.
3. The running kernel's: ``/proc/config.gz``, ``/boot/config-<release>``,
   ``/lib/modules/<release>/build/.config``.

``--root`` prefixes every system path (a chroot or an install target); the
running release is then read from ``<root>/proc/sys/kernel/osrelease`` when
present. An explicit path (``--config``, ``--kernel-dir``) is taken as given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kcheck import readsafe
from kcheck.errors import InputError

DEFAULT_KERNEL_DIR = "/usr/src/linux"


@dataclass(frozen=True)
class KernelLocation:
    """The configuration file chosen, why, and the tree around it (if any).

    ``live`` is True when the file describes the kernel running on this
    machine (``/proc/config.gz`` or the running release's files), so host
    checks of the running kernel make sense.
    """

    config: Path
    reason: str
    tree: Path | None
    build_dir: Path | None
    live: bool = False


def under_root(root: Path, path: str) -> Path:
    """``path`` (absolute, a system path) as seen inside ``root``."""
    return root / path.lstrip("/")


def running_release(root: Path) -> str:
    """The release of the running kernel (or of ``root``'s ``/proc``, in tests)."""
    try:
        return readsafe.read_text(under_root(root, "/proc/sys/kernel/osrelease"), readsafe.MAX_SMALL_BYTES,
                                  what="osrelease").strip()
    except readsafe.UNREADABLE:
        return os.uname().release


def is_kernel_tree(path: Path) -> bool:
    """True when ``path`` looks like kernel sources (a Makefile and a top Kconfig)."""
    return (path / "Makefile").is_file() and (path / "Kconfig").is_file()


def locate(
    *,
    config: Path | None = None,
    kernel_dir: Path | None = None,
    root: Path = Path("/"),
    environ: dict[str, str] | None = None,
) -> KernelLocation:
    """Choose the configuration to read; raise :class:`InputError` when there is none."""
    env = os.environ if environ is None else environ
    explicit_tree = kernel_dir is not None or bool(env.get("KERNEL_DIR"))
    tree_dir = kernel_dir or (Path(env["KERNEL_DIR"]) if env.get("KERNEL_DIR") else None)
    if tree_dir is None:
        tree_dir = under_root(root, DEFAULT_KERNEL_DIR)
    output = Path(env["KBUILD_OUTPUT"]) if env.get("KBUILD_OUTPUT") else None
    if kernel_dir is not None and not kernel_dir.exists():
        raise InputError(f"kernel directory {kernel_dir} does not exist; pass the kernel sources with --kernel-dir")
    if kernel_dir is not None and not is_kernel_tree(kernel_dir):
        raise InputError(f"{kernel_dir} is not a kernel source tree (no Makefile and Kconfig); check --kernel-dir")
    tree = tree_dir if is_kernel_tree(tree_dir) else None

    if config is not None:
        # A tree is trusted for an explicit --config only when the user named it too.
        return KernelLocation(config, "given with --config", tree if kernel_dir else None, output or tree, False)

    build_dir = output or tree_dir
    candidate = build_dir / ".config"
    if candidate.is_file():
        why = "$KBUILD_OUTPUT" if output else ("--kernel-dir" if kernel_dir else ("$KERNEL_DIR" if explicit_tree else "default kernel tree"))
        return KernelLocation(candidate, f".config of the kernel tree ({why})", tree, build_dir, False)
    if kernel_dir is not None:
        raise InputError(f"{candidate} does not exist; run 'make menuconfig' in {kernel_dir} or pass --config")
    if tree_dir.is_symlink() and not tree_dir.exists():
        missing = f"{tree_dir} is a dangling symlink (eselect kernel set <n> repairs it)"
    else:
        missing = f"no .config in {build_dir}"

    release = running_release(root)
    for path, label in (
        ("/proc/config.gz", "the running kernel's /proc/config.gz"),
        (f"/boot/config-{release}", f"the running kernel's /boot/config-{release}"),
        (f"/lib/modules/{release}/build/.config", f"the running kernel's build tree ({release})"),
    ):
        found = under_root(root, path)
        if found.is_file():
            return KernelLocation(found, f"{label}; {missing}", None, None, True)
    raise InputError(
        f"no kernel configuration found ({missing}, no /proc/config.gz, no /boot/config-{release}); "
        "pass --config PATH or --kernel-dir DIR"
    )
