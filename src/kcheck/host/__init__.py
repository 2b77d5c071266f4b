"""Host readiness: what the machine must offer besides a right kernel configuration.

The host checks run on a live system only: the default run (the kernel tree
kcheck finds by itself, or the running kernel's configuration), or an
explicit ``--config`` / ``--kernel-dir`` whose release runs or is installed
here. ``--no-host`` turns them off. They read docker's settings
(:mod:`~kcheck.host.docker`) or podman's and containerd's
(:mod:`~kcheck.host.storage`), the filesystem under the runtime's layers
(:mod:`~kcheck.host.fs`), the firewall commands the backend runs
(:mod:`~kcheck.host.netfilter`), the state of the kernel
(:mod:`~kcheck.host.kernel`: built, installed, booted, modules) and the zfs
tools (:mod:`~kcheck.host.zfs`).
aufs.ko is the aufs checks' own (:mod:`kcheck.aufs`): they judge it against
the patched build, and the emerge hook needs them without the host.

Every finding has ``section="host"`` and ``profile="host"``, so reporters
print them in their own section; every path is read under ``ctx.root``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kcheck.host import docker, fs, kernel, netfilter, storage, zfs
from kcheck.host.tools import command_findings
from kcheck.locate import running_release, under_root
from kcheck.model import CheckContext, Finding, Severity, Status
from kcheck.profile import Profile

#: Driver -> (filesystem type the running kernel must mount, the Kconfig symbol providing it).
#: zfs is absent: /dev/zfs and zfs.ko say more about it (see :mod:`kcheck.host.zfs`).
DRIVER_FILESYSTEM = {
    "overlay2": ("overlay", "OVERLAY_FS"),
    "overlay": ("overlay", "OVERLAY_FS"),  # podman's name
    "overlayfs": ("overlay", "OVERLAY_FS"),  # containerd's snapshotter
    "btrfs": ("btrfs", "BTRFS_FS"),
    "aufs": ("aufs", "AUFS_FS"),
    "fuse-overlayfs": ("fuse", "FUSE_FS"),
}
#: The package that builds the out-of-tree aufs module (sys-fs/aufs3 for old kernels).
AUFS_PACKAGE = "sys-fs/aufs4 (or sys-fs/aufs3)"


def belongs_here(ctx: CheckContext, release: str | None) -> bool:
    """True when ``release`` runs on this machine or is installed in its /boot or /lib/modules."""
    if ctx.live:
        return True
    if release is None:
        return False
    return (
        release == running_release(ctx.root)
        or under_root(ctx.root, f"/lib/modules/{release}").is_dir()
        or any(image.release == release for image in kernel.boot_images(ctx.root))
    )


def _note(check: str, status: Status, reason: str, group: str = "Docker", **extra) -> Finding:
    return Finding(profile="host", check=check, status=status, severity=Severity.INFO, reason=reason,
                   section="host", group=group, **extra)


def applies(ctx: CheckContext, *, explicit: bool) -> bool:
    """True when the host checks speak for ``ctx``'s configuration.

    ``explicit`` is True when the user named the configuration (``--config``
    or ``--kernel-dir``); the host is then checked only when that
    configuration's release belongs to this machine. The caller stores the
    answer in ``ctx.host_checked`` before any check runs, so that checks
    which would repeat the host's kernel findings leave them out.
    """
    return not explicit or belongs_here(ctx, kernel.target_release(ctx)[0])


def host_findings(ctx: CheckContext, profiles: Sequence[Profile], config_findings: Sequence[Finding]) -> list[Finding]:
    """All host findings for the drivers among ``profiles`` (a note only, unless ``ctx.host_checked``; see :func:`applies`)."""
    if not ctx.host_checked:
        release, _ = kernel.target_release(ctx)
        what = f"builds {release}" if release else "builds an unknown release"
        return [_note("host", Status.INFO, f"host not checked: {ctx.source.path} {what}, which neither runs nor is installed here",
                      group="Scope", detail="run kcheck without --config/--kernel-dir to check this machine, or --no-host to silence this")]
    drivers = [p.name for p in profiles if p.kind == "driver"]
    runtime = ctx.facts.get("runtime", "docker")
    out = _docker_findings(ctx, drivers) if runtime == "docker" else storage.storage_findings(ctx, runtime, drivers)
    out += netfilter.firewall_host_findings(ctx)
    readiness, boot_release = kernel.readiness_findings(ctx)
    out += readiness
    # What the running kernel can mount now matters when it is the kernel this configuration describes.
    running_now = any(f.check == "kernel-booted" and f.status is Status.OK for f in readiness)
    if boot_release is not None:
        out += kernel.module_findings(ctx, config_findings, boot_release)
    if runtime == "podman" and ctx.facts.get("podman-mode") == "rootless":
        # Rootless podman maps its user's subordinate IDs with shadow's setuid helpers.
        out += command_findings(ctx.root, ("newuidmap", "newgidmap"), "sys-apps/shadow",
                                "rootless podman maps subordinate user and group IDs with it", "Podman")
    for driver in drivers:
        if driver == "zfs":
            out += zfs.zfs_findings(ctx, boot_release)
        elif driver == "fuse-overlayfs":
            out += command_findings(ctx.root, ("fuse-overlayfs",), "sys-fs/fuse-overlayfs",
                                    f"rootless {runtime} mounts layers with it", "fuse-overlayfs")
        if running_now and driver in DRIVER_FILESYSTEM:
            fstype, symbol = DRIVER_FILESYSTEM[driver]
            if driver == "aufs" and ctx.facts.get("aufs-provider") == "standalone":
                # The out-of-tree module has no Kconfig symbol; its package builds it.
                out += kernel.running_fs_findings(ctx, fstype, None, AUFS_PACKAGE)
            else:
                out += kernel.running_fs_findings(ctx, fstype, symbol)
    return out


def _docker_findings(ctx: CheckContext, drivers: list[str]) -> list[Finding]:
    """docker's settings and the filesystem under its data root."""
    settings = docker.read_settings(ctx.root)
    out = [_docker_note(settings)]
    if settings.conflicts:
        out.append(Finding(profile="host", check="docker-conflict", status=Status.FAIL, severity=Severity.REQUIRED,
                           reason=f"{', '.join(settings.conflicts)} set both in {docker.DAEMON_JSON} and as a flag in "
                                  f"{docker.CONFD}: dockerd refuses to start", section="host", group="Docker",
                           fix="keep each setting in one place only"))
    if settings.storage_driver and drivers and settings.storage_driver not in drivers:
        where = settings.origin_of("storage-driver")
        out.append(Finding(profile="host", check="docker-driver", status=Status.WARN, severity=Severity.RECOMMENDED,
                           reason=f"{where} selects storage-driver {settings.storage_driver}, not {', '.join(drivers)}",
                           section="host", group="Docker", expected=", ".join(drivers), actual=settings.storage_driver,
                           fix=f"check with --driver {settings.storage_driver}, or change storage-driver in {where}"))
    out += fs.backing_fs_findings(ctx.root, drivers, settings)
    return out


def _docker_note(settings: docker.DockerSettings) -> Finding:
    driver = settings.storage_driver or f"not set ({docker.DEFAULT_DRIVER} by default)"
    opts = f", storage-opts {', '.join(settings.storage_opts)}" if settings.storage_opts else ""
    return _note("docker-settings", Status.INFO, f"storage-driver {driver}, data-root {settings.data_root}{opts}",
                 detail=settings.source)
