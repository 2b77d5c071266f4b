"""Docker's own storage settings, from ``/etc/docker/daemon.json``.

Only the keys that decide what the kernel and the host must offer are read:
``storage-driver`` (the driver to check when ``--driver`` is omitted),
``data-root`` (where layers live, so whose filesystem matters) and
``storage-opts`` (``dm.thinpooldev`` tells direct-lvm from loop-lvm). A
missing file means docker's defaults; a file that is not valid JSON stops
kcheck with the file and line, as docker itself would refuse to start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kcheck.errors import InputError
from kcheck.locate import under_root
from kcheck.profile import driver_names

DAEMON_JSON = "/etc/docker/daemon.json"
#: docker's data root when daemon.json does not name one.
DEFAULT_DATA_ROOT = "/var/lib/docker"
#: The driver docker picks on a current kernel when none is configured.
DEFAULT_DRIVER = "overlay2"


@dataclass(frozen=True)
class DockerSettings:
    """What daemon.json says about storage; ``path`` is None when there is no file.

    ``data_root`` is the system path (not prefixed with ``--root``);
    ``storage_driver`` is None when the file does not choose one.
    """

    path: Path | None
    storage_driver: str | None = None
    data_root: str = DEFAULT_DATA_ROOT
    storage_opts: tuple[str, ...] = ()

    def option(self, key: str) -> str | None:
        """The value of a ``key=value`` storage option such as ``dm.thinpooldev``."""
        for opt in self.storage_opts:
            name, sep, value = opt.partition("=")
            if sep and name.strip() == key:
                return value.strip()
        return None

    @property
    def source(self) -> str:
        """Where the settings came from, for a report line."""
        return f"from {DAEMON_JSON}" if self.path else f"no {DAEMON_JSON}: docker's defaults"


def read_settings(root: Path) -> DockerSettings:
    """Read ``<root>/etc/docker/daemon.json``; raise :class:`InputError` when it is not valid."""
    path = under_root(root, DAEMON_JSON)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DockerSettings(path=None)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}; fix its permissions or encoding, or pass --no-host") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}); "
            "docker will not start with it either: fix the file, or pass --no-host"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: must be a JSON object of daemon options; fix the file, or pass --no-host")
    driver = data.get("storage-driver")
    data_root = data.get("data-root", DEFAULT_DATA_ROOT)
    opts = data.get("storage-opts", [])
    if driver is not None and not (isinstance(driver, str) and driver):
        raise InputError(f"{path}: \"storage-driver\" must be a driver name such as \"overlay2\"; fix the file")
    if not (isinstance(data_root, str) and data_root.startswith("/")):
        raise InputError(f"{path}: \"data-root\" must be an absolute path such as \"/var/lib/docker\"; fix the file")
    if not (isinstance(opts, list) and all(isinstance(o, str) for o in opts)):
        raise InputError(f"{path}: \"storage-opts\" must be a list of \"key=value\" strings; fix the file")
    return DockerSettings(path=path, storage_driver=driver, data_root=data_root, storage_opts=tuple(opts))


def default_driver(settings: DockerSettings) -> tuple[str, str]:
    """The driver to check when ``--driver`` is omitted, and why (for the user)."""
    if settings.storage_driver:
        if settings.storage_driver not in driver_names():
            raise InputError(
                f"{settings.path}: storage-driver {settings.storage_driver!r} is not a driver kcheck knows "
                f"({', '.join(driver_names())}); pass --driver"
            )
        return settings.storage_driver, f"storage-driver in {settings.path}"
    return DEFAULT_DRIVER, "docker's default" + ("" if settings.path else f"; no {DAEMON_JSON}")
