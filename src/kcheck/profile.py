"""Requirement profiles: what a driver (or docker, or a user's fleet) needs, as data.

A profile is a TOML file. The shipped ones live in ``kcheck/profiles/`` and a
user passes their own with ``--profile FILE``; both use this format::

    name = "btrfs"
    kind = "driver"                 # base | driver | custom
    summary = "one line for 'kcheck drivers'"
    facts = ["kcheck.module:function"]   # optional: named facts for `when` (see CALLABLES)
    checks = ["kcheck.module:function"]  # optional: extra findings (tree, host, Portage)
    advice = [ { status = "warn", text = "..." } ]   # optional notes (warn or info)

    [[group]]
    name = "Storage driver"
    severity = "required"           # required | recommended | forbidden
    source = "who says so"          # optional: the default source of its requirements
    requirements = [
      { symbol = "BTRFS_FS", reason = "why a user needs it" },
      { symbol = "OVERLAY_FS", aliases = ["OVERLAYFS_FS"], versions = ">=3.18", expect = "y-or-m",
        when = "aufs-provider:sources|none", reason = "...", source = "..." },
    ]

``expect`` is ``y``, ``m``, ``y-or-m`` (the default), ``not-set`` (the
default for ``forbidden``), or a literal value such as ``"0x10"``.
``versions`` is a PEP 440 specifier matched against the kernel's
``major.minor.patch``. Any one of ``symbol`` and its ``aliases`` satisfies a
requirement (distributions backport renames, so names beat versions).
``source`` names who asks for the requirement (moby's check-config.sh, the
kernel's Kconfig, docker's documentation, ...), so a reader can check it.

``facts`` and ``checks`` may only name the functions in :data:`CALLABLES`:
a profile is data, and a user's profile must never make kcheck (often root)
import or call anything else.

Each container runtime has its own base profile and drivers (see
:data:`RUNTIMES`): docker's live in ``profiles/`` itself, the others in
``profiles/<runtime>/``, with the base profile named after the runtime.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from kcheck import safeio
from kcheck.errors import InputError, ProfileError
from kcheck.model import Severity

EXPECT_FORMS = ("y", "m", "y-or-m", "not-set")
_SYMBOL = re.compile(r"[A-Za-z0-9_]+")
_SHIPPED_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_PROFILE_KEYS = {"name", "kind", "summary", "facts", "checks", "advice", "group"}
_GROUP_KEYS = {"name", "severity", "source", "requirements"}
_REQ_KEYS = {"symbol", "expect", "versions", "aliases", "when", "reason", "source"}
#: The container runtimes kcheck knows, the default first.
RUNTIMES = ("docker", "podman", "containerd")
#: The only functions a profile's ``facts`` and ``checks`` may name: kcheck's own.
CALLABLES = frozenset({
    "kcheck.aufs:aufs_facts",
    "kcheck.aufs:aufs_findings",
    "kcheck.firewall:firewall_facts",
    "kcheck.firewall:firewall_findings",
    "kcheck.runtimes:podman_facts",
    "kcheck.runtimes:podman_findings",
    "kcheck.runtimes:containerd_findings",
})
#: A profile is a page of TOML; anything far larger is not one.
PROFILE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Requirement:
    """One symbol a profile wants in a given state, and why.

    ``when`` maps a fact name to the values under which the requirement
    applies (empty: always). ``line`` is where it is declared in its file.
    """

    symbol: str
    expect: str
    severity: Severity
    reason: str
    group: str
    versions: SpecifierSet | None = None
    aliases: tuple[str, ...] = ()
    when: tuple[tuple[str, frozenset[str]], ...] = ()
    line: int | None = None
    source: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The symbol followed by its aliases."""
        return (self.symbol, *self.aliases)


@dataclass(frozen=True)
class Advice:
    """A note a profile always gives (``warn`` or ``info``), such as vfs's disk use."""

    status: str
    text: str


@dataclass(frozen=True)
class Profile:
    """A named requirement set, loaded from one TOML file."""

    name: str
    kind: str
    summary: str
    path: Path | None
    requirements: tuple[Requirement, ...]
    facts: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    advice: tuple[Advice, ...] = field(default=())


#: Where the shipped profiles live (package data, installed beside this module).
SHIPPED_DIR = Path(__file__).with_name("profiles")


def runtime_dir(runtime: str) -> Path:
    """The directory of ``runtime``'s shipped profiles (docker's are the top level)."""
    if runtime not in RUNTIMES:
        raise ProfileError(f"unknown runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
    return SHIPPED_DIR if runtime == "docker" else SHIPPED_DIR / runtime


def shipped_names(runtime: str = "docker") -> list[str]:
    """Names of ``runtime``'s shipped profiles, its base first, then drivers alphabetically."""
    names = sorted(p.stem for p in runtime_dir(runtime).glob("*.toml"))
    return sorted(names, key=lambda n: n != runtime)


def driver_names(runtime: str = "docker") -> list[str]:
    """Names of ``runtime``'s shipped storage-driver (or snapshotter) profiles."""
    return [n for n in shipped_names(runtime) if n != runtime]


@functools.lru_cache(maxsize=64)
def load_shipped(name: str, runtime: str = "docker") -> Profile:
    """Load one of ``runtime``'s shipped profiles by name; an unknown name is a usage error.

    Profiles are immutable, so each is parsed once per process (the firewall
    checks consult the base profile again for the other backends).
    """
    path = runtime_dir(runtime) / f"{name}.toml"
    if not _SHIPPED_NAME.fullmatch(name) or not path.is_file():
        what = "driver" if runtime != "containerd" else "snapshotter"
        raise ProfileError(f"unknown {what} {name!r} for {runtime}; choose one of: {', '.join(driver_names(runtime))} "
                           f"(see 'kcheck drivers')")
    return parse(path.read_text(encoding="utf-8"), path)


def load_base(runtime: str = "docker") -> Profile:
    """The base profile of ``runtime`` (what it needs whatever the storage driver)."""
    return load_shipped(runtime, runtime)


def load_file(path: Path) -> Profile:
    """Load a user's profile file (a regular file of at most :data:`PROFILE_LIMIT` bytes)."""
    try:
        text = safeio.read_text(path, what="profile", next_step="pass a .toml profile file", limit=PROFILE_LIMIT)
    except FileNotFoundError:
        raise ProfileError(f"profile {path} does not exist; check the --profile path") from None
    except InputError as exc:
        if path.is_dir():
            raise ProfileError(f"profile {path} is a directory; pass a .toml file") from None
        raise ProfileError(exc.message) from None
    return parse(text, path)


def parse(text: str, path: Path) -> Profile:
    """Parse and validate profile text; errors carry ``file:line``."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ProfileError(f"{path}:1: nested too deeply to be a profile; a profile is a flat list of groups") from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ProfileError(f"{path}:{line}: invalid TOML: {str(exc).split(' (at')[0]}") from None
    lines = text.splitlines()
    where = _Locator(path, lines)
    _unknown_keys(data, _PROFILE_KEYS, where, "profile", 1)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise where.error(1, "the profile needs a name = \"...\"")
    requirements: list[Requirement] = []
    groups = data.get("group", [])
    if not isinstance(groups, list):
        raise where.error(where.find("group"), "group must be an array of tables ([[group]])")
    for group in groups:
        group_line = where.find("[[group]]")
        _unknown_keys(group, _GROUP_KEYS, where, "group", group_line)
        if not isinstance(group, dict):
            raise where.error(group_line, "group must be an array of tables ([[group]])")
        group_name = group.get("name", name)
        severity = _severity(group.get("severity", "required"), where, group_line)
        group_source = _source(group.get("source"), where, group_line)
        entries = group.get("requirements", [])
        if not isinstance(entries, list):
            raise where.error(group_line, "requirements must be an array of inline tables")
        for entry in entries:
            if not isinstance(entry, dict):
                raise where.error(group_line, "each requirement must be a table like { symbol = \"X\", reason = \"...\" }")
            line = where.find(f'"{entry.get("symbol", "")}"') if entry.get("symbol") else group_line
            requirements.append(_requirement(entry, severity, str(group_name), where, line, group_source))
    advice_items = data.get("advice", [])
    if not isinstance(advice_items, list):
        raise where.error(where.find("advice"), "advice must be a list of { status = ..., text = ... } tables")
    advice = tuple(_advice(item, where) for item in advice_items)
    return Profile(
        name=name,
        kind=str(data.get("kind", "custom")),
        summary=str(data.get("summary", "")),
        path=path,
        requirements=tuple(requirements),
        facts=_callables(data.get("facts", []), where, "facts"),
        checks=_callables(data.get("checks", []), where, "checks"),
        advice=advice,
    )


class _Locator:
    """Maps parsed entries back to lines: tomllib keeps no positions."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.cursor = 0

    def find(self, needle: str) -> int:
        """The next line (after the previous hit) that contains ``needle``."""
        for index in range(self.cursor, len(self.lines)):
            if needle in self.lines[index].split("#")[0] or needle in self.lines[index]:
                self.cursor = index + 1
                return index + 1
        return self.cursor or 1

    def error(self, line: int, message: str) -> ProfileError:
        """A ProfileError located at ``file:line``."""
        return ProfileError(f"{self.path}:{line}: {message}")


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1


def _unknown_keys(table: dict, allowed: set[str], where: _Locator, what: str, line: int) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise where.error(line, f"unknown {what} key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _severity(value: object, where: _Locator, line: int) -> Severity:
    try:
        severity = Severity(value)
    except ValueError:
        severity = None
    if severity is None or severity is Severity.INFO:
        raise where.error(line, f"severity {value!r} is not one of required, recommended, forbidden")
    return severity


def _requirement(entry: dict, severity: Severity, group: str, where: _Locator, line: int,
                 group_source: str | None = None) -> Requirement:
    _unknown_keys(entry, _REQ_KEYS, where, "requirement", line)
    symbol = _symbol(entry.get("symbol"), where, line)
    expect = entry.get("expect", "not-set" if severity is Severity.FORBIDDEN else "y-or-m")
    if not isinstance(expect, str) or not expect:
        raise where.error(line, f"expect must be one of {', '.join(EXPECT_FORMS)} or a literal value")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason:
        raise where.error(line, f"requirement {symbol} needs a reason = \"...\" a user understands")
    versions = None
    if "versions" in entry:
        try:
            versions = SpecifierSet(str(entry["versions"]))
        except InvalidSpecifier:
            raise where.error(line, f"versions {entry['versions']!r} is not a version range like '>=4.15' or '<5.2'") from None
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list):
        raise where.error(line, "aliases must be a list of symbol names")
    return Requirement(
        symbol=symbol,
        expect=expect,
        severity=severity,
        reason=reason,
        group=group,
        versions=versions,
        aliases=tuple(_symbol(a, where, line) for a in aliases),
        when=_when(entry.get("when"), where, line),
        line=line,
        source=_source(entry.get("source"), where, line) or group_source,
    )


def _source(value: object, where: _Locator, line: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise where.error(line, "source must be a short text naming who asks for it, such as \"moby contrib/check-config.sh\"")
    return value


def _symbol(value: object, where: _Locator, line: int) -> str:
    if not isinstance(value, str) or not value:
        raise where.error(line, "a requirement needs symbol = \"NAME\" (without CONFIG_)")
    name = value.removeprefix("CONFIG_")
    if not _SYMBOL.fullmatch(name):
        raise where.error(line, f"{value!r} is not a Kconfig symbol name")
    return name


def _when(value: object, where: _Locator, line: int) -> tuple[tuple[str, frozenset[str]], ...]:
    if value is None:
        return ()
    if not isinstance(value, str) or ":" not in value:
        raise where.error(line, f"when {value!r} must read 'fact:value' or 'fact:value1|value2'")
    fact, _, values = value.partition(":")
    return ((fact.strip(), frozenset(v.strip() for v in values.split("|"))),)


def _advice(item: object, where: _Locator) -> Advice:
    line = where.find("text")
    if not isinstance(item, dict) or item.get("status") not in ("warn", "info") or not isinstance(item.get("text"), str):
        raise where.error(line, "advice entries read { status = \"warn\" or \"info\", text = \"...\" }")
    return Advice(item["status"], item["text"])


def _callables(value: object, where: _Locator, key: str) -> tuple[str, ...]:
    # Only names from the registry: a profile is data and must never make kcheck import other code.
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(where.find(key), f"{key} must be a list of \"kcheck.module:function\" names of kcheck's own functions")
    unknown = [v for v in value if v not in CALLABLES]
    if unknown:
        raise where.error(where.find(key), f"{key}: {unknown[0]!r} is not one of kcheck's own functions; "
                                           f"{key} must be a list of \"kcheck.module:function\" names from: "
                                           f"{', '.join(sorted(CALLABLES))}")
    return tuple(value)
