"""What the CI reporters (junit, sarif, github) share: a finding's one-line message and its place.

A finding points at the line of the symbol in its file (the ``CONFIG_X=...``
or ``# CONFIG_X is not set`` line) and, when the file does not mention the
symbol, at the file's last line: that is where a user would add it.
"""

from __future__ import annotations

from kcheck.model import Finding, Severity, Status

_WANT = {"y-or-m": "y or m", "not-set": "not set"}


def is_requirement(finding: Finding) -> bool:
    """True for a verdict about a requirement or a check, False for a profile's advice note."""
    return finding.check != "advice"


def counts_as_failure(finding: Finding, strict: bool) -> bool:
    """Whether ``finding`` makes its file fail (the rule of :meth:`kcheck.model.Report.failed`)."""
    return finding.status is Status.FAIL or (
        strict and finding.status is Status.WARN and finding.severity is Severity.RECOMMENDED
    )


def title(finding: Finding) -> str:
    """``CONFIG_X`` for a requirement, the check id otherwise."""
    return f"CONFIG_{finding.symbol or finding.check}" if finding.expected is not None else finding.check


def message(finding: Finding) -> str:
    """One line: what the configuration says, what is wanted, and why."""
    if finding.expected is None:
        return finding.reason + (f" ({finding.detail})" if finding.detail else "")
    if finding.status is Status.SKIP:
        return f"CONFIG_{finding.check}: {finding.detail}"
    text = f"CONFIG_{finding.symbol or finding.check} is {finding.actual}"
    if finding.status is not Status.OK:
        text += f"; want {_WANT.get(finding.expected, finding.expected)}: {finding.reason}"
    if finding.detail:
        text += f" ({finding.detail})"
    return text


def line_of(finding: Finding, last_line: int) -> int:
    """The line a finding points at: the symbol's own, else the end of the file."""
    return finding.line or last_line


def rule_id(finding: Finding) -> str:
    """A stable id for the requirement behind a finding: ``profile/SYMBOL``."""
    return f"{finding.profile}/{finding.check}"
