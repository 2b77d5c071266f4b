"""``kcheck installkernel-hook``: check a kernel as it is installed, before the reboot.

Every ``make install`` and every Gentoo distribution kernel goes through
``installkernel``, which runs two kinds of plugins:

- traditional installkernel (Debian style): the executables in
  ``/etc/kernel/preinst.d`` (and, in Gentoo's installkernel 14+,
  ``/usr/lib/kernel/preinst.d``), called as ``PLUGIN VERSION IMAGE`` before the
  image is copied, where IMAGE is the image ``make install`` built
  (``arch/x86/boot/bzImage``, relative to the build directory, which is the
  current directory); a plugin that fails stops the install;
- systemd's ``kernel-install`` (installkernel with USE=systemd, or
  ``SYSTEMD_KERNEL_INSTALL=1``): the ``*.install`` executables in
  ``/etc/kernel/install.d`` and ``/usr/lib/kernel/install.d``, called as
  ``PLUGIN add KERNEL_VERSION ENTRY_DIR_ABS KERNEL_IMAGE [INITRD...]`` (or
  ``remove KERNEL_VERSION ENTRY_DIR_ABS``), in lexical order; a plugin that
  fails stops the install (77 stops it quietly).

kcheck ships one plugin for each (``src/kcheck/data/kcheck-preinst.install``,
``src/kcheck/data/kcheck-kernel-install.install``); both call ``kcheck
installkernel-hook VERSION IMAGE``. It finds the configuration of the kernel
being installed, checks it for the storage driver docker is configured for,
prints the findings and exits 0: an install is never blocked unless the user
asks for it with ``KCHECK_INSTALLKERNEL_STRICT=1`` or ``strict=1`` in
``/etc/kcheck/installkernel.conf``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from kcheck import readsafe
from kcheck.errors import KcheckError
from kcheck.locate import KernelLocation, is_kernel_tree, under_root

#: The user's settings for the hook, below ``--root``: ``strict=1``, ``driver=NAME``.
CONFIG_FILE = "/etc/kcheck/installkernel.conf"
STRICT_ENV = "KCHECK_INSTALLKERNEL_STRICT"
_TRUE = ("1", "yes", "true", "on")


def settings(root: Path) -> dict[str, str]:
    """``key=value`` lines of ``/etc/kcheck/installkernel.conf`` (comments and blanks ignored; absent: none)."""
    try:
        text = readsafe.read_head(under_root(root, CONFIG_FILE), 65536, what="settings file").decode("utf-8", "replace")
    except readsafe.UNREADABLE:
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.split("#", 1)[0].partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip("'\"")
    return out


def strict_wanted(root: Path) -> bool:
    """True when a failing check must stop the install: the environment first, then the config file."""
    env = os.environ.get(STRICT_ENV)
    if env is not None and env.strip():
        return env.strip().lower() in _TRUE
    return settings(root).get("strict", "").lower() in _TRUE


def tree_of_image(image: Path) -> Path | None:
    """The build directory an image was built in: ``<dir>/arch/<arch>/boot/<image>`` or ``<dir>/vmlinux``."""
    parts = image.parts
    if len(parts) >= 4 and parts[-4] == "arch" and parts[-2] == "boot":
        return image.parents[3]
    if image.name == "vmlinux":
        return image.parent
    return None


def find_config(version: str, image: Path, root: Path) -> tuple[KernelLocation, str] | None:
    """The configuration of the kernel ``version`` being installed from ``image``, and a note (or "").

    In order: the build directory the image sits in, ``/lib/modules/VERSION/build``,
    ``/usr/src/linux-VERSION``, then a ``config-VERSION`` beside the image and
    ``/lib/modules/VERSION/config`` (distribution kernels). A tree whose last
    build names another release (``include/config/kernel.release``) is passed
    over while another candidate fits.
    """
    trees = [t for t in (tree_of_image(image),
                         under_root(root, f"/lib/modules/{version}/build"),
                         under_root(root, f"/usr/src/linux-{version}")) if t is not None]
    found: list[tuple[KernelLocation, str]] = []
    for tree in dict.fromkeys(trees):
        config = tree / ".config"
        if not config.is_file():
            continue
        try:
            built = readsafe.read_text(tree / "include/config/kernel.release", readsafe.MAX_SMALL_BYTES,
                                       what="kernel.release").strip()
        except readsafe.UNREADABLE:
            built = None
        note = "" if built in (None, version) else f"{tree} last built {built}, not {version}"
        location = KernelLocation(config=config, reason="the tree of the kernel being installed", tree=tree.resolve()
                                  if is_kernel_tree(tree) else None, build_dir=tree.resolve())
        found.append((location, note))
        if not note:
            return location, note
    for config in (image.parent / f"config-{version}", under_root(root, f"/lib/modules/{version}/config")):
        if config.is_file():
            found.append((KernelLocation(config=config, reason="the configuration installed beside the kernel", tree=None,
                                         build_dir=None), ""))
            break
    return found[0] if found else None


def hook(version: str, image: Path, root: Path) -> tuple[list[str], int]:
    """What the hook prints and its exit status (0 unless strict and the check fails)."""
    from kcheck.check import check_location, select_profiles
    from kcheck.host.docker import default_driver, read_settings
    from kcheck.reporters import render

    strict = strict_wanted(root)
    stop = 1 if strict else 0
    if not image.is_absolute():
        image = Path.cwd() / image  # make install runs installkernel from the build directory
    try:
        driver = settings(root).get("driver")
        why = f"driver= in {CONFIG_FILE}" if driver else ""
        if not driver:
            driver, why = default_driver(read_settings(root))
        located = find_config(version, image, root)
        if located is None:
            return [f"kcheck: no configuration found for kernel {version} (looked beside {image}, in "
                    f"/lib/modules/{version}/build and /usr/src/linux-{version}); not checked"
                    + ("; stopping the install (strict)" if strict else "")], stop
        location, note = located
        # The installer names the release being installed: the rules are that kernel's.
        report = check_location(location, select_profiles(driver), root=root, host=False, explicit=True, kernel_version=version,
                                use_kconfig=location.tree is not None)
    except KcheckError as exc:
        return [f"kcheck: {exc.message}" + ("; stopping the install (strict)" if strict else "")], stop
    lines = [f"kcheck: checking kernel {version} before it is installed, for docker's {driver} storage driver ({why})"]
    if note:
        lines.append(f"kcheck: note: {note}")
    lines.append(render("text", report))
    if report.failed():
        lines.append("kcheck: the install goes on; set KCHECK_INSTALLKERNEL_STRICT=1 (or strict=1 in "
                     f"{CONFIG_FILE}) to stop it instead" if not strict else "kcheck: stopping the install (strict)")
    return lines, (report.exit_status() if strict else 0)


@click.command("installkernel-hook")
@click.argument("version")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), show_default=True,
              help="Prefix for every system path.")
def installkernel_hook(version: str, image: Path, root: Path) -> None:
    """Check the kernel VERSION being installed from IMAGE, for docker's configured storage driver.

    \b
    Called by kcheck's installkernel plugins (preinst.d and kernel-install's
    install.d). Exit status: 0, unless KCHECK_INSTALLKERNEL_STRICT=1 (or
    strict=1 in /etc/kcheck/installkernel.conf) and a required item fails
    or no configuration is found (1): the installer then stops.
    """
    lines, status = hook(version, image, root)
    for line in lines:
        click.echo(line, err=False)
    raise click.exceptions.Exit(status)
