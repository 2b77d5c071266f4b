"""Docker's own storage settings, from ``/etc/docker/daemon.json`` and Gentoo's ``/etc/conf.d/docker``.

Only the keys that decide what the kernel and the host must offer are read:
``storage-driver`` (the driver to check when ``--driver`` is omitted),
``firewall-backend`` (docker 29: ``iptables`` or ``nftables``, see :mod:`kcheck.firewall`),
``data-root`` (where layers live, so whose filesystem matters) and
``storage-opts`` (``dm.thinpooldev`` tells direct-lvm from loop-lvm). A
missing file means docker's defaults; a file that is not valid JSON stops
kcheck with the file and line, as docker itself would refuse to start.

On Gentoo with OpenRC the daemon's flags live in ``DOCKER_OPTS`` of
``/etc/conf.d/docker`` (``--storage-driver``/``-s``, ``--data-root``,
``--storage-opt``); they are read too. dockerd refuses to start when one
setting is given both as a flag and in daemon.json, so that is reported.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from kcheck import safeio
from kcheck.errors import InputError
from kcheck.locate import under_root
from kcheck.profile import driver_names

DAEMON_JSON = "/etc/docker/daemon.json"
#: OpenRC's settings for the docker service (Gentoo): DOCKER_OPTS holds dockerd flags.
CONFD = "/etc/conf.d/docker"
#: docker's data root when daemon.json does not name one.
DEFAULT_DATA_ROOT = "/var/lib/docker"
#: The driver docker picks on a current kernel when none is configured.
DEFAULT_DRIVER = "overlay2"


@dataclass(frozen=True)
class DockerSettings:
    """docker's storage settings and where each came from.

    ``path`` is daemon.json (None when there is none); ``data_root`` is a
    system path (not prefixed with ``--root``); ``storage_driver`` is None
    when nothing chooses one. ``origin`` maps a setting name to the file that
    set it; ``conflicts`` names settings given both as a flag and in
    daemon.json (dockerd will not start).
    """

    path: Path | None
    storage_driver: str | None = None
    data_root: str = DEFAULT_DATA_ROOT
    storage_opts: tuple[str, ...] = ()
    firewall_backend: str | None = None
    origin: tuple[tuple[str, str], ...] = ()
    conflicts: tuple[str, ...] = ()

    def option(self, key: str) -> str | None:
        """The value of a ``key=value`` storage option such as ``dm.thinpooldev``."""
        for opt in self.storage_opts:
            name, sep, value = opt.partition("=")
            if sep and name.strip() == key:
                return value.strip()
        return None

    def origin_of(self, setting: str) -> str | None:
        """The file that set ``setting`` (``storage-driver``, ``data-root``, ``storage-opts``, ``firewall-backend``), or None."""
        return dict(self.origin).get(setting)

    @property
    def source(self) -> str:
        """Where the settings came from, for a report line."""
        files = list(dict.fromkeys(where for _, where in self.origin))
        if files:
            return "from " + " and ".join(files)
        return f"no {DAEMON_JSON}: docker's defaults" if self.path is None else f"from {DAEMON_JSON}"


def _read_daemon_json(root: Path) -> tuple[Path | None, dict]:
    """daemon.json's storage keys, validated; ``(None, {})`` when there is no file."""
    path = under_root(root, DAEMON_JSON)
    data = load_daemon_json(path)
    if data is None:
        return None, {}
    driver, data_root, opts = data.get("storage-driver"), data.get("data-root"), data.get("storage-opts")
    firewall = data.get("firewall-backend")
    if driver is not None and not (isinstance(driver, str) and driver):
        raise InputError(f"{path}: \"storage-driver\" must be a driver name such as \"overlay2\"; fix the file")
    if data_root is not None and not (isinstance(data_root, str) and data_root.startswith("/")):
        raise InputError(f"{path}: \"data-root\" must be an absolute path such as \"/var/lib/docker\"; fix the file")
    if opts is not None and not (isinstance(opts, list) and all(isinstance(o, str) for o in opts)):
        raise InputError(f"{path}: \"storage-opts\" must be a list of \"key=value\" strings; fix the file")
    if firewall is not None and firewall not in ("iptables", "nftables"):
        raise InputError(f"{path}: \"firewall-backend\" must be \"iptables\" or \"nftables\" (docker 29); fix the file")
    found = {"storage-driver": driver, "data-root": data_root, "storage-opts": tuple(opts) if opts is not None else None,
             "firewall-backend": firewall}
    return path, {key: value for key, value in found.items() if value is not None}


def load_daemon_json(path: Path) -> dict | None:
    """daemon.json as a dict (None when there is none); a bad file is a one-line :class:`InputError`.

    Read bounded and only when it is a regular file: another user may have
    made it a FIFO, ``/dev/zero`` or a document nested 100,000 levels deep.
    """
    next_step = "fix the file, or pass --no-host"
    try:
        text = safeio.read_text(path, what="docker's settings", next_step=next_step)
    except FileNotFoundError:
        return None
    try:
        data = safeio.parse_nested(json.loads, text, path=path, what="docker's settings", next_step=next_step)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}); "
            "docker will not start with it either: fix the file, or pass --no-host"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: must be a JSON object of daemon options; fix the file, or pass --no-host")
    return data


#: dockerd flags -> the daemon.json setting they stand for (``-g``/``--graph``: data-root before docker 17.05).
_FLAGS = {"--storage-driver": "storage-driver", "-s": "storage-driver", "--data-root": "data-root",
          "--graph": "data-root", "-g": "data-root", "--storage-opt": "storage-opts",
          "--firewall-backend": "firewall-backend"}
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?DOCKER_OPTS=(.*)$")


def _read_confd(root: Path) -> dict:
    """The storage flags in DOCKER_OPTS of ``/etc/conf.d/docker`` (the last assignment counts)."""
    path = under_root(root, CONFD)
    try:
        lines = safeio.read_text(path, what="docker's service settings", next_step="fix the file, or pass --no-host").splitlines()
    except FileNotFoundError:
        return {}
    words: list[str] = []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        if match:
            try:
                # The shell's quoting first (DOCKER_OPTS="..."), then the words the init script passes on.
                words = shlex.split(" ".join(shlex.split(match.group(1), comments=True)))
            except ValueError as exc:
                raise InputError(f"{path}: DOCKER_OPTS cannot be parsed ({exc}); fix the quoting, or pass --no-host") from None
    found: dict = {}
    for index, word in enumerate(words):
        flag, sep, arg = word.partition("=")
        if flag not in _FLAGS:
            continue
        if not sep:
            arg = words[index + 1] if index + 1 < len(words) else ""
        key = _FLAGS[flag]
        found[key] = found.get(key, ()) + (arg,) if key == "storage-opts" else arg
    return found


def read_settings(root: Path) -> DockerSettings:
    """Read docker's storage settings under ``root``; raise :class:`InputError` when daemon.json is not valid."""
    path, from_json = _read_daemon_json(root)
    from_flags = _read_confd(root)
    merged = {**from_json, **from_flags}
    origin = tuple((key, f"{CONFD} (DOCKER_OPTS)" if key in from_flags else DAEMON_JSON) for key in merged)
    return DockerSettings(
        path=path,
        storage_driver=merged.get("storage-driver") or None,
        data_root=merged.get("data-root") or DEFAULT_DATA_ROOT,
        storage_opts=tuple(merged.get("storage-opts", ())),
        firewall_backend=merged.get("firewall-backend"),
        origin=origin,
        conflicts=tuple(sorted(set(from_json) & set(from_flags))),
    )


def default_driver(settings: DockerSettings) -> tuple[str, str]:
    """The driver to check when ``--driver`` is omitted, and why (for the user)."""
    if settings.storage_driver:
        where = settings.origin_of("storage-driver")
        if settings.storage_driver not in driver_names():
            raise InputError(
                f"{where}: storage-driver {settings.storage_driver!r} is not a driver kcheck knows "
                f"({', '.join(driver_names())}); pass --driver"
            )
        return settings.storage_driver, f"storage-driver in {where}"
    return DEFAULT_DRIVER, "docker's default" + ("" if settings.path else f"; no {DAEMON_JSON}")
