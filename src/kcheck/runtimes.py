"""podman and containerd: which runtime this machine uses, the storage driver its settings choose, and where its layers live.

docker's own settings are :mod:`kcheck.host.docker`; this module reads the
others' files, all TOML, bounded and depth-safe (:mod:`kcheck.safeio`):

- podman (containers/storage, as podman 5.8 and containers-storage 1.64
  read it): the main ``storage.conf`` is the first that exists of
  ``$XDG_CONFIG_HOME/containers/storage.conf`` (rootless podman only),
  ``/etc/containers/storage.conf`` and ``/usr/share/containers/storage.conf``;
  the drop-in files of ``storage.conf.d/``, ``storage.rootful.conf.d/`` or
  ``storage.rootless.conf.d/`` (and its ``<UID>/``) under both directories,
  then the user's ``storage.conf.d/``, are read after it in name order, a
  later file's key winning. ``[storage] driver`` (``overlay``, ``btrfs``,
  ``zfs``, ``vfs``; ``overlay`` with ``mount_program`` naming fuse-overlayfs
  is the user-space overlay; with no driver containers/storage tries overlay
  first). The layers live in ``graphroot`` (default
  ``/var/lib/containers/storage``; rootless: ``rootless_storage_path``,
  else ``$XDG_DATA_HOME/containers/storage`` or
  ``~/.local/share/containers/storage``; a ``graphroot`` set anywhere wins
  over ``rootless_storage_path``), after ``$UID`` and environment
  variables are expanded. ``containers.conf``'s ``[network]
  firewall_driver`` chooses netavark's firewall.
- containerd: ``/etc/containerd/config.toml``; the CRI snapshotter is
  ``[plugins."io.containerd.grpc.v1.cri".containerd] snapshotter`` in a
  ``version = 2`` file and ``[plugins."io.containerd.cri.v1.images"]
  snapshotter`` from ``version = 3`` (containerd 2.x); the default is
  overlayfs. A snapshotter keeps its layers in its plugin root,
  ``<root>/io.containerd.snapshotter.v1.<name>`` (``root`` defaults to
  ``/var/lib/containerd``) unless its plugin table sets ``root_path``.

Every system path is read under ``--root``.
"""

from __future__ import annotations

import os
import re
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
#: containerd's ``root`` when config.toml sets none (containerd-config.toml(5)).
CONTAINERD_DEFAULT_ROOT = "/var/lib/containerd"
#: containers/storage's graphroot for rootful podman when no storage.conf sets one.
PODMAN_DEFAULT_GRAPHROOT = "/var/lib/containers/storage"
#: More drop-in files than this is not a configuration but an attack on the reader.
MAX_DROP_INS = 64
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
    """podman's storage settings and where each came from.

    ``path`` is the file that set the driver, else the main storage.conf
    (None: no storage.conf at all). ``graphroot`` is the system path of the
    layers (None when it cannot be known, ``graphroot_why`` says why);
    ``files`` are the files read, main file first.
    """

    driver: str
    path: str | None
    configured: bool
    mount_program: str | None = None
    graphroot: str | None = PODMAN_DEFAULT_GRAPHROOT
    graphroot_why: str = "containers/storage's default"
    files: tuple[str, ...] = ()

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
            files = self.path if len(self.files) < 2 else f"{self.path} and its drop-in files"
            return f"{files} name{'s' if len(self.files) < 2 else ''} no driver: containers/storage tries {PODMAN_DEFAULT_DRIVER} first"
        extra = f" with mount_program {self.mount_program}" if self.profile == "fuse-overlayfs" else ""
        return f"driver = \"{self.driver}\"{extra} in {self.path}"


def podman_storage_files(root: Path, rootless: bool = False, environ: dict[str, str] | None = None,
                         uid: int | None = None) -> list[tuple[str, dict]]:
    """The storage.conf files podman reads, in order, each as ``(system path, parsed TOML)``.

    The main file is the first that exists; the drop-ins follow in file-name
    order, a later directory's file replacing an earlier one of the same name
    (containers-storage.conf(5), FILES).
    """
    what, next_step = "podman's storage.conf", "fix the file, or pass --driver and --no-host"
    out: list[tuple[str, dict]] = []
    for system_path in podman_conf_paths(root, "storage.conf", rootless, environ):
        data = _load_toml(under_root(root, system_path), what, next_step)
        if data is not None:
            out.append((system_path, data))
            break
    uid = os.getuid() if uid is None else uid
    special = "rootless" if rootless else "rootful"
    dirs = []
    for base in ("/usr/share/containers/storage", "/etc/containers/storage"):
        dirs += [f"{base}.conf.d", f"{base}.{special}.conf.d"] + ([f"{base}.{special}.conf.d/{uid}"] if rootless else [])
    config_home = _xdg_config_home(environ) if rootless else None
    if config_home:
        dirs.append(f"{config_home}/containers/storage.conf.d")
    by_name: dict[str, str] = {}
    for directory in dirs:
        try:
            with os.scandir(under_root(root, directory)) as entries:
                for entry in entries:
                    # As containers/storage does: regular files only (a symlink is skipped), named *.conf.
                    if entry.name.endswith(".conf") and entry.is_file(follow_symlinks=False):
                        by_name[entry.name] = f"{directory}/{entry.name}"
                        if len(by_name) > MAX_DROP_INS:
                            raise InputError(f"{under_root(root, directory)}: more than {MAX_DROP_INS} storage.conf drop-in "
                                             f"files; remove the ones podman does not need, or pass --driver and --no-host")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            raise InputError(f"cannot read {under_root(root, directory)} (permission denied); {next_step}") from None
    for name in sorted(by_name):
        data = _load_toml(under_root(root, by_name[name]), what, next_step)
        if data is not None:
            out.append((by_name[name], data))
    return out


def _last(files: list[tuple[str, dict]], *keys: str) -> tuple[object, str | None]:
    """The value of ``keys`` in the last of ``files`` that sets it, and that file."""
    for path, data in reversed(files):
        table = _table(data, *keys[:-1])
        if keys[-1] in table:
            return table[keys[-1]], path
    return None, None


_ENV_VAR = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z0-9_]+)")


def expand_storage_path(value: str, uid: int, environ: dict[str, str] | None = None) -> str:
    """A storage.conf path as containers/storage expands it: ``$UID``, then ``$VAR``/``${VAR}`` (unset: empty), cleaned."""
    env = os.environ if environ is None else environ
    value = value.replace("$UID", str(uid))
    value = _ENV_VAR.sub(lambda m: env.get(m.group(1) if m.group(1) is not None else m.group(2), ""), value)
    return os.path.normpath(value) if value else value


def podman_storage(root: Path, rootless: bool = False, environ: dict[str, str] | None = None,
                   uid: int | None = None) -> PodmanStorage:
    """Read podman's storage driver and graphroot from storage.conf and its drop-ins under ``root``."""
    files = podman_storage_files(root, rootless, environ, uid)
    uid = os.getuid() if uid is None else uid
    driver, driver_from = _last(files, "storage", "driver")
    if driver is not None and not isinstance(driver, str):
        raise InputError(f"{under_root(root, driver_from or '')}: [storage] driver must be a string such as \"overlay\"; fix the file")
    overlay_program, overlay_from = _last(files, "storage", "options", "overlay", "mount_program")
    program, program_from = _last(files, "storage", "options", "mount_program")
    for value, where in ((overlay_program, overlay_from), (program, program_from)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{under_root(root, where or '')}: mount_program must be a path such as \"/usr/bin/fuse-overlayfs\"; fix the file")
    driver = PODMAN_ALIASES.get(driver or "", driver or "")
    graphroot, graphroot_why = _podman_graphroot(root, files, rootless, uid, environ)
    main = files[0][0] if files else None
    return PodmanStorage(driver or PODMAN_DEFAULT_DRIVER, (driver_from if driver else main), bool(driver),
                         overlay_program or program or None, graphroot, graphroot_why, tuple(path for path, _ in files))


def _podman_graphroot(root: Path, files: list[tuple[str, dict]], rootless: bool, uid: int,
                      environ: dict[str, str] | None) -> tuple[str | None, str]:
    """Where podman keeps its layers, and why (``graphroot`` beats ``rootless_storage_path``, as containers/storage 1.64 does)."""
    env = os.environ if environ is None else environ
    for key in ("graphroot", "rootless_storage_path"):
        value, where = _last(files, "storage", key)
        if value is None or value == "" or (key == "rootless_storage_path" and not rootless):
            continue
        if not isinstance(value, str):
            raise InputError(f"{under_root(root, where or '')}: [storage] {key} must be a path such as "
                             f"\"{PODMAN_DEFAULT_GRAPHROOT}\"; fix the file")
        path = expand_storage_path(value, uid, environ)
        if not path.startswith("/"):
            return None, f"{key} = \"{value}\" in {where} is not an absolute path once expanded"
        return path, f"{key} in {where}" + (f" (\"{value}\")" if path != value else "")
    if not rootless:
        return PODMAN_DEFAULT_GRAPHROOT, "containers/storage's default"
    data_home = env.get("XDG_DATA_HOME") or ""
    if data_home.startswith("/"):
        return f"{os.path.normpath(data_home)}/containers/storage", "containers/storage's rootless default, under $XDG_DATA_HOME"
    home = env.get("HOME", "")
    if home.startswith("/"):
        return f"{os.path.normpath(home)}/.local/share/containers/storage", "containers/storage's rootless default, under $HOME/.local/share"
    return None, "rootless podman keeps its layers under $XDG_DATA_HOME or $HOME, and neither is set"


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
    """containerd's CRI snapshotter, the config version it was read as, from where, and where its layers live.

    ``plugin`` is the snapshotter's own plugin table (``root_path``,
    devmapper's ``pool_name``); ``root`` is containerd's ``root``.
    """

    snapshotter: str
    path: str | None
    version: int | None
    configured: bool
    root: str = CONTAINERD_DEFAULT_ROOT
    plugin: tuple[tuple[str, object], ...] = ()

    @property
    def why(self) -> str:
        """Where the snapshotter came from, for the report."""
        if self.path is None:
            return f"no {CONTAINERD_CONFIG}: containerd's default {CONTAINERD_DEFAULT_SNAPSHOTTER}"
        if not self.configured:
            return f"{self.path} (version {self.version}) names no snapshotter: containerd's default {CONTAINERD_DEFAULT_SNAPSHOTTER}"
        return f"snapshotter = \"{self.snapshotter}\" in {self.path} (config version {self.version})"

    @property
    def plugin_id(self) -> str:
        """The snapshotter's plugin table name: the full ID from version 2 on, the short one in version 1."""
        return self.snapshotter if self.version == 1 else f"io.containerd.snapshotter.v1.{self.snapshotter}"

    @property
    def snapshotter_root(self) -> str:
        """Where the snapshotter keeps its layers: its ``root_path``, else ``<root>/io.containerd.snapshotter.v1.<name>``."""
        root_path = dict(self.plugin).get("root_path")
        if isinstance(root_path, str) and root_path:
            return root_path
        return f"{self.root.rstrip('/')}/io.containerd.snapshotter.v1.{self.snapshotter}"

    @property
    def snapshotter_root_why(self) -> str:
        """Where :attr:`snapshotter_root` came from, for the report."""
        if dict(self.plugin).get("root_path"):
            return f"root_path under [plugins.\"{self.plugin_id}\"] in {self.path}"
        if self.path is not None and self.root != CONTAINERD_DEFAULT_ROOT:
            return f"the plugin root under root = \"{self.root}\" in {self.path}"
        return f"the plugin root under containerd's default root {CONTAINERD_DEFAULT_ROOT}"


def containerd_settings(root: Path, snapshotter: str | None = None) -> ContainerdSettings:
    """Read containerd's CRI snapshotter, its root and the snapshotter's plugin table from config.toml (version 1, 2 and 3+).

    ``snapshotter`` (``--driver``) replaces the one config.toml chooses; its
    own plugin table is read then.
    """
    path = under_root(root, CONTAINERD_CONFIG)
    data = _load_toml(path, "containerd's config", "fix the file, or pass --driver and --no-host")
    if data is None:
        return ContainerdSettings(snapshotter or CONTAINERD_DEFAULT_SNAPSHOTTER, None, None, False)
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{path}: version must be a number (2, or 3 for containerd 2.x); fix the file")
    state_root = data.get("root", CONTAINERD_DEFAULT_ROOT)
    if not (isinstance(state_root, str) and state_root.startswith("/")):
        raise InputError(f"{path}: root must be an absolute path such as \"{CONTAINERD_DEFAULT_ROOT}\"; fix the file")
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
    chosen, configured = CONTAINERD_DEFAULT_SNAPSHOTTER, False
    for table in candidates:
        value = table.get("snapshotter")
        # An empty name is containerd's own default config for the runc runtime: it means "the CRI-wide one".
        if value is not None and not isinstance(value, str):
            raise InputError(f"{path}: snapshotter must be a name such as \"overlayfs\"; fix the file")
        if value:
            chosen, configured = value, True
            break
    if snapshotter is not None and snapshotter != chosen:
        chosen, configured = snapshotter, False
    settings = ContainerdSettings(chosen, CONTAINERD_CONFIG, version, configured, state_root)
    plugin = _table(plugins, settings.plugin_id)
    root_path = plugin.get("root_path")
    if root_path not in (None, "") and not (isinstance(root_path, str) and root_path.startswith("/")):
        raise InputError(f"{path}: root_path under [plugins.\"{settings.plugin_id}\"] must be an absolute path; fix the file")
    kept = tuple((key, plugin[key]) for key in ("root_path", "pool_name") if key in plugin)
    return ContainerdSettings(chosen, CONTAINERD_CONFIG, version, configured, state_root, kept)


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
