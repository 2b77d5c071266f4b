"""podman's and containerd's storage settings on this machine, and the filesystem under their layers.

docker's are :mod:`kcheck.host.docker`. The settings are read by
:mod:`kcheck.runtimes` (podman's storage.conf and its drop-ins, containerd's
config.toml); the layers' directory is podman's graphroot or the plugin root
of containerd's snapshotter, and :mod:`kcheck.host.fs` judges the filesystem
under it with the same rules as docker's data root.

A settings file that cannot be read is one finding here, not an error: when
``--driver`` was given, nothing else needed the file, and the runtime itself
will not start with it.
"""

from __future__ import annotations

import os

from kcheck import runtimes
from kcheck.errors import InputError
from kcheck.host import fs
from kcheck.model import CheckContext, Finding, Severity, Status


def _finding(runtime: str, check: str, status: Status, severity: Severity, reason: str, **extra) -> Finding:
    return Finding(profile="host", check=check, status=status, severity=severity, reason=reason, section="host",
                   group=runtime.capitalize(), **extra)


def storage_findings(ctx: CheckContext, runtime: str, drivers: list[str]) -> list[Finding]:
    """podman's or containerd's settings as the check used them, and the filesystem under their layers."""
    try:
        if runtime == "podman":
            return _podman(ctx, drivers)
        return _containerd(ctx, drivers)
    except InputError as exc:
        # The message's first clause names the file and what is wrong; its next step was for the driver's choice.
        return [_finding(runtime, f"{runtime}-settings", Status.FAIL, Severity.REQUIRED, exc.message.split("; ")[0],
                         detail="the backing filesystem of its layers is not checked",
                         fix=f"fix the file: {runtime} does not start with a settings file it cannot read")]


def _settings_findings(ctx: CheckContext, runtime: str, drivers: list[str], configured: str | None, where: str) -> list[Finding]:
    """The driver checked and why; a warning when the runtime's own settings choose another (``configured``, set in ``where``)."""
    checked = ctx.facts.get("driver") or (drivers[0] if drivers else None)
    what = "snapshotter" if runtime == "containerd" else "storage driver"
    out = [_finding(runtime, f"{runtime}-settings", Status.INFO, Severity.INFO, f"{runtime}: {what} {checked or 'not chosen'}",
                    detail=ctx.facts.get("driver-why") or "given with --driver")]
    if configured and drivers and configured not in drivers:
        out.append(_finding(runtime, f"{runtime}-driver", Status.WARN, Severity.RECOMMENDED,
                            f"{where} selects {what} {configured}, not {', '.join(drivers)}",
                            expected=", ".join(drivers), actual=configured,
                            fix=f"check with --driver {configured}, or change the {what} in {where}"))
    return out


def _podman(ctx: CheckContext, drivers: list[str]) -> list[Finding]:
    rootless = ctx.facts.get(runtimes.MODE_FACT) == "rootless"
    storage = runtimes.podman_storage(ctx.root, rootless, uid=os.getuid())
    out = _settings_findings(ctx, "podman", drivers, storage.profile if storage.configured else None, storage.path or "")
    if storage.graphroot is None:
        out.append(_finding("podman", "data-root", Status.INFO, Severity.INFO,
                            f"podman's graphroot is not known: {storage.graphroot_why}",
                            detail="the backing filesystem of its layers is not checked"))
        return out
    mode = "rootless " if rootless else ""
    data_root = fs.DataRoot(f"{mode}podman's graphroot", storage.graphroot,
                            f"graphroot under [storage] in {storage.files[0] if storage.files else '/etc/containers/storage.conf'}",
                            "podman")
    return out + fs.data_root_findings(ctx.root, drivers, data_root, detail=storage.graphroot_why)


def _containerd(ctx: CheckContext, drivers: list[str]) -> list[Finding]:
    own = runtimes.containerd_settings(ctx.root)
    out = _settings_findings(ctx, "containerd", drivers, own.snapshotter if own.configured else None, own.path or "")
    # The snapshotter checked may be --driver's rather than config.toml's; its own plugin root counts then.
    settings = runtimes.containerd_settings(ctx.root, drivers[0] if drivers else None)
    if settings.snapshotter == "devmapper":
        out.append(_devmapper_pool(settings))
    data_root = fs.DataRoot(f"containerd's {settings.snapshotter} snapshotter root", settings.snapshotter_root,
                            f"root_path under [plugins.\"{settings.plugin_id}\"] in {runtimes.CONTAINERD_CONFIG}", "containerd")
    return out + fs.data_root_findings(ctx.root, drivers, data_root, detail=settings.snapshotter_root_why)


def _devmapper_pool(settings: runtimes.ContainerdSettings) -> Finding:
    """containerd's devmapper snapshotter does not load without a thin pool (``pool_name``)."""
    pool = dict(settings.plugin).get("pool_name")
    if isinstance(pool, str) and pool:
        return _finding("containerd", "devmapper-pool", Status.OK, Severity.REQUIRED, f"devmapper thin pool {pool}",
                        actual=pool)
    return _finding("containerd", "devmapper-pool", Status.FAIL, Severity.REQUIRED,
                    f"the devmapper snapshotter has no pool_name under [plugins.\"{settings.plugin_id}\"]: "
                    "containerd does not load it without a thin pool (\"pool_name is required\")",
                    expected="pool_name", fix=f"create an LVM thin pool and name it in pool_name under "
                                              f"[plugins.\"{settings.plugin_id}\"] in {runtimes.CONTAINERD_CONFIG}",
                    source="containerd plugins/snapshots/devmapper (Config.Validate)")
