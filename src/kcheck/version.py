"""The kernel version a configuration is for: from the tree or the config, never ``uname``.

Docker's own checker takes every version decision from the running kernel,
which is wrong for a kernel not booted yet. kcheck takes it, in order, from
``--kernel-version``, the tree's ``include/config/kernel.release`` (written
by the last build), the tree's top ``Makefile`` (VERSION, PATCHLEVEL,
SUBLEVEL, EXTRAVERSION), and the configuration header
(``# Linux/x86 6.1.0 Kernel Configuration``).
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import Version

from kcheck import readsafe
from kcheck.errors import KcheckError
from kcheck.model import KernelVersion

_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
#: A whole release as a user types it: 6.1, 6.1.55, 6.1.0-13-amd64, 6.12.9-gentoo, 6.1-rc3.
_WHOLE_RELEASE = re.compile(r"\d{1,4}\.\d{1,4}(?:\.\d{1,6})?(?:[-+_~][A-Za-z0-9._+~-]*)?")
_MAKEFILE_VAR = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def parse_release(release: str, source: str) -> KernelVersion | None:
    """Turn a release string like ``6.1.0-13-amd64`` into a :class:`KernelVersion`.

    Only the leading ``major.minor[.patch]`` decides version rules; the rest
    (local version, ``-rc``) is kept in ``release`` for display. Returns None
    when the string does not start with a version.
    """
    match = _RELEASE.match(release.strip())
    if not match:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    return KernelVersion(Version(f"{major}.{minor}.{patch}"), release.strip(), source)


def makefile_fields(tree: Path) -> dict[str, str] | None:
    """VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION from the tree's top Makefile, or None."""
    try:
        head = readsafe.read_head(tree / "Makefile", 4096, what="kernel Makefile").decode("utf-8", "replace")
    except (OSError, KcheckError):
        return None
    fields = dict(_MAKEFILE_VAR.findall(head))
    return fields if fields.get("VERSION", "").isdigit() else None


def kernelversion(fields: dict[str, str]) -> str:
    """KERNELVERSION exactly as the kernel's Makefile composes it (``6.12.117``, ``6.1-rc3``)."""
    text = fields["VERSION"]
    if fields.get("PATCHLEVEL"):
        text += "." + fields["PATCHLEVEL"]
        if fields.get("SUBLEVEL"):
            text += "." + fields["SUBLEVEL"]
    return text + fields.get("EXTRAVERSION", "")


def from_makefile(tree: Path) -> KernelVersion | None:
    """The version the tree's top Makefile declares, or None when it declares none."""
    fields = makefile_fields(tree)
    if fields is None or not fields.get("PATCHLEVEL", "").isdigit():
        return None
    return parse_release(kernelversion(fields), "Makefile")


def from_kernel_release(build_dir: Path) -> KernelVersion | None:
    """The release the last build of the tree produced, or None."""
    try:
        text = readsafe.read_text(build_dir / "include" / "config" / "kernel.release", 4096, what="kernel.release")
    except (OSError, KcheckError):
        return None
    return parse_release(text, "include/config/kernel.release")


def detect(
    *,
    override: str | None,
    tree: Path | None,
    build_dir: Path | None,
    header_version: str | None,
) -> KernelVersion | None:
    """Find the version of the kernel the configuration is for; None when nothing says.

    The Makefile outranks ``kernel.release``: the latter is only as new as
    the last build, while the Makefile is what the next build will be.
    ``kernel.release`` is used when it agrees on the version and adds the
    local version suffix.
    """
    if override is not None:
        # A version the user typed must be one whole release: '6.1garbage' or a second line is a typo.
        version = parse_release(override, "--kernel-version") if _WHOLE_RELEASE.fullmatch(override) else None
        if version is None:
            raise KcheckError(f"--kernel-version {override!r} is not a kernel version; use a form like 6.1 or 6.1.55")
        return version
    if tree is not None:
        declared = from_makefile(tree)
        built = from_kernel_release(build_dir or tree)
        if declared and built and built.version == declared.version:
            return built
        if declared:
            return declared
        if built:
            return built
    if header_version:
        return parse_release(header_version, "config header")
    return None
