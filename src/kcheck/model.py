"""The nouns every part of kcheck shares.

kcheck is one flow: locate the kernel -> read its configuration -> evaluate
requirement sets -> findings -> a reporter. The front ends (check, fix, lint,
the Portage hook, host checks) all meet in the types defined here:

- :class:`ConfigValue` is what a configuration says about one symbol.
- :class:`SymbolState` is what a *reader* knows about one symbol: the value
  that counts, where it was written, and (in Kconfig mode only) whether the
  symbol exists in the tree and why Kconfig gave it its value.
- :class:`ConfigSource` is the protocol both readers (the plain ``.config``
  reader and the Kconfig-aware one) implement, so the engine never knows
  which one it has.
- :class:`Finding` is one verdict; a :class:`Report` is all of them for one
  input, produced once and only formatted by reporters.

Symbol names never carry the ``CONFIG_`` prefix inside kcheck.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.version import Version

#: Tristate/bool values as a ``.config`` spells them.
TRISTATE_VALUES = ("n", "m", "y")


@dataclass(frozen=True)
class ConfigValue:
    """One symbol's assignment in a ``.config`` file.

    ``value`` is ``"y"``, ``"m"`` or ``"n"`` for bool/tristate symbols (a
    ``# CONFIG_X is not set`` line reads as ``"n"``), the unquoted text for
    strings, and the literal as written for ints and hex. ``line`` is the
    1-based line of the assignment that counts (the last one).
    """

    symbol: str
    value: str
    line: int

    @property
    def enabled(self) -> bool:
        """True when the symbol is built in or a module."""
        return self.value in ("y", "m")


@dataclass(frozen=True)
class SymbolState:
    """What a reader knows about one symbol of one configuration.

    ``value`` is the value that counts: for the plain reader, what the file
    says (``"n"`` when absent); for the Kconfig reader, what Kconfig computes.
    ``written`` is the value the file itself assigns, or None when the file
    does not mention the symbol. ``exists`` is None when the reader cannot
    know (plain reader), otherwise whether the tree defines the symbol.
    ``note`` explains a Kconfig decision a user would not expect, for example
    "BTRFS_FS=y in the file but Kconfig turns it off because BLOCK is n".
    ``type`` is the symbol's Kconfig type (``bool``, ``tristate``, ``string``,
    ``int``, ``hex``) when the reader knows the tree, else None.
    """

    symbol: str
    value: str
    line: int | None = None
    written: str | None = None
    exists: bool | None = None
    note: str | None = None
    type: str | None = None

    @property
    def enabled(self) -> bool:
        """True when the symbol is built in or a module."""
        return self.value in ("y", "m")


class ConfigSource(Protocol):
    """A configuration as the engine sees it (plain or Kconfig-aware)."""

    #: The file the values came from (None for a configuration built in memory).
    path: Path | None
    #: ``"plain"`` or ``"kconfig"``; reported so a user knows how far to trust it.
    mode: str

    def state(self, symbol: str) -> SymbolState:
        """Return what this configuration says about ``symbol``."""
        ...


class Status(str, enum.Enum):
    """The verdict of one finding."""

    OK = "ok"
    FAIL = "fail"  # a required or forbidden item does not hold
    WARN = "warn"  # a recommended item does not hold, or advice
    SKIP = "skip"  # does not apply to this kernel version
    INFO = "info"  # a fact worth showing, never a problem


class Severity(str, enum.Enum):
    """How much a requirement matters."""

    REQUIRED = "required"
    RECOMMENDED = "recommended"
    FORBIDDEN = "forbidden"
    INFO = "info"


@dataclass(frozen=True)
class KernelVersion:
    """The version of the kernel a configuration is for, and where it came from.

    ``source`` names the evidence: ``"Makefile"``, ``"kernel.release"``,
    ``"config header"``, ``"--kernel-version"``.
    """

    version: Version
    release: str
    source: str

    def __str__(self) -> str:
        return self.release


@dataclass(frozen=True)
class Finding:
    """One verdict about one requirement or one host/tree fact.

    ``check`` is the symbol a requirement names (its canonical name) or a
    check id such as ``"aufs-provider"``; ``symbol`` is the name actually
    found in the configuration when an alias satisfied it. ``section`` groups
    findings in reports: ``"config"``, ``"driver"``, ``"host"``, ``"portage"``.
    """

    profile: str
    check: str
    status: Status
    severity: Severity
    reason: str
    expected: str | None = None
    actual: str | None = None
    line: int | None = None
    symbol: str | None = None
    detail: str | None = None
    group: str | None = None
    section: str = "config"
    fix: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class InputProblem:
    """Something wrong in an input file that does not stop the check."""

    path: Path
    line: int | None
    message: str


@dataclass
class Report:
    """Everything one check produced, ready for any reporter."""

    config_path: Path | None
    config_reason: str
    mode: str
    kernel_version: KernelVersion | None
    profiles: list[str]
    findings: list[Finding] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    tree: Path | None = None

    def failed(self, strict: bool = False) -> bool:
        """True when a required item fails (or, with ``strict``, a recommended one).

        Advice (severity ``info``) never fails a check, even with ``strict``.
        """
        return any(
            f.status is Status.FAIL or (strict and f.status is Status.WARN and f.severity is Severity.RECOMMENDED)
            for f in self.findings
        )

    def unapplied_rules(self) -> int:
        """How many version-dependent requirements were skipped because the kernel version is unknown."""
        if self.kernel_version is not None:
            return 0
        return sum(f.status is Status.SKIP and f.expected is not None for f in self.findings)

    def exit_status(self, strict: bool = False) -> int:
        """0 when everything required holds, 1 otherwise (see ``kcheck --help``).

        With ``strict``, rules left unapplied because the kernel version is
        unknown (:meth:`unapplied_rules`) fail the check too: an unchecked rule
        is not a rule that holds. (``kcheck lint`` counts findings only.)
        """
        return 1 if self.failed(strict) or (strict and self.unapplied_rules()) else 0


@dataclass
class CheckContext:
    """Everything a check may look at besides the requirement data.

    Profiles may name extra check functions (``checks = ["kcheck.module:function"]``
    in their TOML, from :data:`kcheck.profile.CALLABLES` only); each is called
    with this context and returns findings.
    ``root`` prefixes every system path (``--root``). ``live`` is True when
    the configuration belongs to the machine kcheck runs on (host checks
    apply); ``facts`` carries named facts such as ``aufs-provider``,
    ``runtime`` or ``firewall`` that requirements can be conditioned on
    (``when = "aufs-provider:sources"``, ``when = "firewall:nftables"``).
    ``host_checked`` is True when this run's host checks (:mod:`kcheck.host`)
    report the kernel's built/installed/booted state; other checks then leave
    those facts out instead of reporting them a second time.
    """

    root: Path
    source: ConfigSource
    tree: Path | None
    build_dir: Path | None
    kernel_version: KernelVersion | None
    live: bool = False
    facts: dict[str, str] = field(default_factory=dict)
    host_checked: bool = False
