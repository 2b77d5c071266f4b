"""Finding the commands a driver needs (``zfs``, ``zpool``, ``fuse-overlayfs``) under ``--root``.

``$PATH`` belongs to the shell kcheck runs in, not to the system being
checked, so the system directories are searched under the root instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from kcheck.locate import under_root
from kcheck.model import Finding, Severity, Status

#: Where a Gentoo (or any FHS) system keeps its commands.
COMMAND_DIRS = ("/sbin", "/usr/sbin", "/bin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def find_command(root: Path, name: str) -> str | None:
    """The system path of executable ``name`` under ``root``, or None."""
    for directory in COMMAND_DIRS:
        candidate = under_root(root, f"{directory}/{name}")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return f"{directory}/{name}"
    return None


def command_findings(root: Path, names: tuple[str, ...], package: str, why: str, group: str) -> list[Finding]:
    """One finding per command: found (ok) or missing (fail, naming the package)."""
    out = []
    for name in names:
        where = find_command(root, name)
        if where:
            out.append(Finding(profile="host", check=f"command:{name}", status=Status.OK, severity=Severity.REQUIRED,
                               reason=f"{name} is installed ({where})", section="host", group=group))
        else:
            out.append(Finding(profile="host", check=f"command:{name}", status=Status.FAIL, severity=Severity.REQUIRED,
                               reason=f"the {name} command is missing: {why}", section="host", group=group,
                               fix=f"emerge {package}"))
    return out
