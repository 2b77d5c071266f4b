"""podman and containerd: which runtime this machine uses, and the storage driver its settings choose.

docker's own settings are :mod:`kcheck.host.docker`; this module reads the
others' files, all TOML, bounded and depth-safe (:mod:`kcheck.safeio`):

- podman (containers/storage): ``storage.conf``'s ``[storage] driver``
  (``overlay``, ``btrfs``, ``zfs``, ``vfs``); ``overlay`` with
  ``mount_program`` naming fuse-overlayfs is the user-space overlay. The
  file is ``/etc/containers/storage.conf``, else
  ``/usr/share/containers/storage.conf``; rootless podman reads
  ``$XDG_CONFIG_HOME/containers/storage.conf`` first. With no driver set,
  containers/storage tries overlay first. ``containers.conf``'s
  ``[network] firewall_driver`` chooses netavark's firewall.
- containerd: ``/etc/containerd/config.toml``; the CRI snapshotter is
  ``[plugins."io.containerd.grpc.v1.cri".containerd] snapshotter`` in a
  ``version = 2`` file and ``[plugins."io.containerd.cri.v1.images"]
  snapshotter`` from ``version = 3`` (containerd 2.x); the default is
  overlayfs.

Every system path is read under ``--root``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kcheck import safeio
from kcheck.errors import InputError
from kcheck.host.tools import find_command
from kcheck.locate import under_root
from kcheck.model import CheckContext, Finding, Severity, Status
from kcheck.profile import driver_names

PODMAN_STORAGE_CONFS = ("/etc/containers/storage.conf", "/usr/share/containers/storage.conf")
PODMAN_CONTAINERS_CONFS = ("/etc/containers/containers.conf", "/usr/share/containers/containers.conf")
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
#: What containers/storage uses first when storage.conf names no driver.
PODMAN_DEFAULT_DRIVER = "overlay"
#: Names containers/storage accepts for one of its drivers.
PODMAN_ALIASES = {"overlay2": "overlay"}
CONTAINERD_DEFAULT_SNAPSHOTTER = "overlayfs"
#: Facts the podman profile's requirements are conditioned on.
MODE_FACT = "podman-mode"


def _load_toml(path: Path, what: str, next_step: str) -> dict | None:
    """A TOML file as a dict, None when it does not exist; bad files raise :class:`InputError`."""
    try:
        text = safeio.read_text(path, what=what, next_step=next_step)
    except FileNotFoundError:
        return None
    try:
        return safeio.parse_nested(tomllib.loads, text, path=path, what=what, next_step=next_step)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({str(exc).split(' (at')[0]}); {next_step}") from None


def _table(data: dict, *keys: str) -> dict:
    """``data[k1][k2]...`` when every step is a table, else an empty dict."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
        if not isinstance(data, dict):
            return {}
    return data


def _xdg_config_home(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get("XDG_CONFIG_HOME", "")
    if value.startswith("/"):
        return value  # the XDG spec: a relative value is ignored
    home = env.get("HOME", "")
    return f"{home}/.config" if home.startswith("/") else None


def podman_rootless(live: bool) -> tuple[bool, str]:
    """Whether podman runs rootless here, and why: kcheck run by a user other than root on a live system."""
    if not live:
        return False, "not a live run: checked as rootful podman"
    if os.geteuid() != 0:
        return True, "kcheck runs as an unprivileged user, as rootless podman does"
    return False, "kcheck runs as root, as rootful podman does"


def podman_conf_paths(root: Path, name: str, rootless: bool, environ: dict[str, str] | None = None) -> list[str]:
    """The system paths podman reads ``name`` (storage.conf, containers.conf) from, first that exists wins."""
    system = [f"/etc/containers/{name}", f"/usr/share/containers/{name}"]
    config_home = _xdg_config_home(environ) if rootless else None
    return ([f"{config_home}/containers/{name}"] if config_home else []) + system


@dataclass(frozen=True)
class PodmanStorage:
    """podman's storage driver and where it came from (``path`` None: no storage.conf at all)."""

    driver: str
    path: str | None
    configured: bool
    mount_program: str | None = None

    @property
    def profile(self) -> str:
        """The kcheck driver profile for this setting (overlay with fuse-overlayfs is its own)."""
        if self.driver == "overlay" and self.mount_program and "fuse-overlayfs" in Path(self.mount_program).name:
            return "fuse-overlayfs"
        return self.driver

    @property
    def why(self) -> str:
        """Where the driver came from, for the report."""
        if self.path is None:
            return f"no storage.conf: containers/storage tries {PODMAN_DEFAULT_DRIVER} first"
        if not self.configured:
            return f"{self.path} names no driver: containers/storage tries {PODMAN_DEFAULT_DRIVER} first"
        extra = f" with mount_program {self.mount_program}" if self.profile == "fuse-overlayfs" else ""
        return f"driver = \"{self.driver}\"{extra} in {self.path}"


def podman_storage(root: Path, rootless: bool = False, environ: dict[str, str] | None = None) -> PodmanStorage:
    """Read podman's storage driver from the first storage.conf that exists under ``root``."""
    for system_path in podman_conf_paths(root, "storage.conf", rootless, environ):
        path = under_root(root, system_path)
        data = _load_toml(path, "podman's storage.conf", "fix the file, or pass --driver and --no-host")
        if data is None:
            continue
        storage = _table(data, "storage")
        driver = storage.get("driver", "")
        if not isinstance(driver, str):
            raise InputError(f"{path}: [storage] driver must be a string such as \"overlay\"; fix the file")
        options = _table(data, "storage", "options")
        mount_program = _table(options, "overlay").get("mount_program") or options.get("mount_program")
        if mount_program is not None and not isinstance(mount_program, str):
            raise InputError(f"{path}: mount_program must be a path such as \"/usr/bin/fuse-overlayfs\"; fix the file")
        driver = PODMAN_ALIASES.get(driver, driver)
        return PodmanStorage(driver or PODMAN_DEFAULT_DRIVER, system_path, bool(driver), mount_program or None)
    return PodmanStorage(PODMAN_DEFAULT_DRIVER, None, False)


def podman_firewall_driver(root: Path, rootless: bool = False) -> tuple[str | None, str | None]:
    """netavark's firewall driver from containers.conf's ``[network] firewall_driver``, and the file read."""
    for system_path in podman_conf_paths(root, "containers.conf", rootless):
        path = under_root(root, system_path)
        data = _load_toml(path, "podman's containers.conf", "fix the file, or pass --firewall")
        if data is None:
            continue
        value = _table(data, "network").get("firewall_driver")
        return (value if isinstance(value, str) and value else None), system_path
    return None, None


@dataclass(frozen=True)
class ContainerdSettings:
    """containerd's CRI snapshotter, the config version it was read as, and from where."""

    snapshotter: str
    path: str | None
    version: int | None
    configured: bool

    @property
    def why(self) -> str:
        """Where the snapshotter came from, for the report."""
        if self.path is None:
            return f"no {CONTAINERD_CONFIG}: containerd's default {CONTAINERD_DEFAULT_SNAPSHOTTER}"
        if not self.configured:
            return f"{self.path} (version {self.version}) names no snapshotter: containerd's default {CONTAINERD_DEFAULT_SNAPSHOTTER}"
        return f"snapshotter = \"{self.snapshotter}\" in {self.path} (config version {self.version})"


def containerd_settings(root: Path) -> ContainerdSettings:
    """Read containerd's CRI snapshotter from config.toml (version 1, 2 and 3+ layouts)."""
    path = under_root(root, CONTAINERD_CONFIG)
    data = _load_toml(path, "containerd's config", "fix the file, or pass --driver and --no-host")
    if data is None:
        return ContainerdSettings(CONTAINERD_DEFAULT_SNAPSHOTTER, None, None, False)
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{path}: version must be a number (2, or 3 for containerd 2.x); fix the file")
    plugins = _table(data, "plugins")
    # The default runtime's own snapshotter (runc's, unless default_runtime_name says otherwise) overrides the CRI-wide one.
    if version >= 3:
        cri = _table(plugins, "io.containerd.cri.v1.runtime", "containerd")
        default = cri.get("default_runtime_name") if isinstance(cri.get("default_runtime_name"), str) else "runc"
        candidates = [_table(cri, "runtimes", default), _table(plugins, "io.containerd.cri.v1.images")]
    elif version == 2:
        cri = _table(plugins, "io.containerd.grpc.v1.cri", "containerd")
        default = cri.get("default_runtime_name") if isinstance(cri.get("default_runtime_name"), str) else "runc"
        candidates = [_table(cri, "runtimes", default), cri]
    else:
        cri = _table(plugins, "cri", "containerd")
        candidates = [cri]
    for table in candidates:
        value = table.get("snapshotter")
        if value is not None and not (isinstance(value, str) and value):
            raise InputError(f"{path}: snapshotter must be a name such as \"overlayfs\"; fix the file")
        if value:
            return ContainerdSettings(value, CONTAINERD_CONFIG, version, True)
    return ContainerdSettings(CONTAINERD_DEFAULT_SNAPSHOTTER, CONTAINERD_CONFIG, version, False)


def detect_runtime(root: Path) -> tuple[str, str]:
    """The runtime this machine is set up for, and why: docker, then podman, then containerd alone.

    docker is looked for first because installing it brings containerd too;
    a runtime counts when its daemon or command is installed or its settings
    file exists.
    """
    signs = (
        ("docker", ("dockerd", "docker"), ("/etc/docker/daemon.json",)),
        ("podman", ("podman",), PODMAN_STORAGE_CONFS[:1] + PODMAN_CONTAINERS_CONFS[:1]),
        ("containerd", ("containerd",), (CONTAINERD_CONFIG,)),
    )
    for runtime, commands, files in signs:
        for command in commands:
            where = find_command(root, command)
            if where:
                return runtime, f"{where} is installed"
        for file in files:
            if under_root(root, file).is_file():
                return runtime, f"{file} exists"
    return "docker", "no container runtime found: docker's needs, the default"


def default_driver(runtime: str, root: Path, live: bool) -> tuple[str, str]:
    """The storage driver to check when ``--driver`` is omitted, and why (docker's is :mod:`kcheck.host.docker`)."""
    if runtime == "podman":
        if not live:
            return PODMAN_DEFAULT_DRIVER, "podman's default"
        storage = podman_storage(root, podman_rootless(live)[0])
        name, why = storage.profile, storage.why
    elif runtime == "containerd":
        if not live:
            return CONTAINERD_DEFAULT_SNAPSHOTTER, "containerd's default"
        settings = containerd_settings(root)
        name, why = settings.snapshotter, settings.why
    else:
        from kcheck.host.docker import DEFAULT_DRIVER
        from kcheck.host.docker import default_driver as docker_default
        from kcheck.host.docker import read_settings

        return docker_default(read_settings(root)) if live else (DEFAULT_DRIVER, "docker's default")
    if name not in driver_names(runtime):
        raise InputError(f"{why}: {name!r} is not a {runtime} driver kcheck knows ({', '.join(driver_names(runtime))}); "
                         f"pass --driver")
    return name, why


def podman_facts(ctx: CheckContext) -> dict[str, str]:
    """The ``podman-mode`` fact (``rootless`` or ``rootful``) and why."""
    if ctx.facts.get(MODE_FACT):
        return {}
    rootless, why = podman_rootless(ctx.host_checked)
    return {MODE_FACT: "rootless" if rootless else "rootful", f"{MODE_FACT}-why": why}


def podman_findings(ctx: CheckContext) -> list[Finding]:
    """Say how podman was checked: rootless or rootful, and where its storage driver came from."""
    out = [Finding(profile="podman", check="podman-mode", status=Status.INFO, severity=Severity.INFO,
                   reason=f"{ctx.facts.get(MODE_FACT, 'rootful')} podman", detail=ctx.facts.get(f"{MODE_FACT}-why"),
                   group="Runtime", section="driver")]
    if ctx.facts.get("driver-why"):
        out.append(Finding(profile="podman", check="podman-driver", status=Status.INFO, severity=Severity.INFO,
                           reason=f"storage driver {ctx.facts.get('driver')}", detail=ctx.facts["driver-why"],
                           group="Runtime", section="driver"))
    return out


def containerd_findings(ctx: CheckContext) -> list[Finding]:
    """Say where containerd's snapshotter came from."""
    if not ctx.facts.get("driver-why"):
        return []
    return [Finding(profile="containerd", check="containerd-snapshotter", status=Status.INFO, severity=Severity.INFO,
                    reason=f"snapshotter {ctx.facts.get('driver')}", detail=ctx.facts["driver-why"],
                    group="Runtime", section="driver")]
