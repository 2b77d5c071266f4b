"""``kcheck lint --format sarif``: SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

One run, with one rule per requirement that produced a result (id
``profile/SYMBOL``, its reason as description). A result is emitted for
every failing requirement (level ``error``), every missing recommended
item (``warning``; ``error`` with ``--strict``) and every input problem
(``warning``), located at the file and the line of the symbol (its
``CONFIG_X=`` or ``# CONFIG_X is not set`` line), or the last line of the
file when the file does not mention it. An unusable input is an ``error``
result on the file and makes the invocation unsuccessful.

Relative paths are given relative to ``%SRCROOT%``, the directory kcheck
ran in, as code scanning expects paths relative to the repository.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import quote

from kcheck.model import Finding, Severity, Status
from kcheck.reporters import located

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: Rules of kcheck itself, beside those the profiles define.
INPUT_PROBLEM = "kcheck/input-problem"
UNUSABLE_INPUT = "kcheck/unusable-input"


def _kcheck_version() -> str:
    try:
        return version("kcheck")
    except PackageNotFoundError:
        return "0"


def _artifact(path: Path) -> dict:
    if path.is_absolute():
        return {"uri": path.as_uri()}
    # surrogateescape: a file name that is not UTF-8 keeps its own bytes, percent-encoded
    return {"uri": quote(path.as_posix(), errors="surrogateescape"), "uriBaseId": "%SRCROOT%"}


def _location(path: Path, line: int | None) -> dict:
    physical: dict = {"artifactLocation": _artifact(path)}
    if line:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


class _Rules:
    """The rules array, built as results need them, with their indices."""

    def __init__(self) -> None:
        self.rules: list[dict] = []
        self.index: dict[str, int] = {}

    def add(self, rule_id: str, description: str, level: str, **properties) -> int:
        if rule_id not in self.index:
            self.index[rule_id] = len(self.rules)
            rule = {
                "id": rule_id,
                "shortDescription": {"text": description},
                "defaultConfiguration": {"level": level},
            }
            if properties:
                rule["properties"] = properties
            self.rules.append(rule)
        return self.index[rule_id]

    def for_finding(self, finding: Finding) -> int:
        level = "warning" if finding.severity is Severity.RECOMMENDED else "error"
        properties = {"profile": finding.profile, "severity": finding.severity.value}
        if finding.expected is not None:
            properties["expected"] = finding.expected
        return self.add(located.rule_id(finding), finding.reason, level, **properties)


def _result(rule_id: str, index: int, level: str, text: str, location: dict) -> dict:
    return {"ruleId": rule_id, "ruleIndex": index, "level": level, "message": {"text": text}, "locations": [location]}


def sarif_dict(run) -> dict:
    """The run as a SARIF 2.1.0 log (JSON-ready data)."""
    rules = _Rules()
    results: list[dict] = []
    for result in run.results:
        if result.report is None:
            index = rules.add(UNUSABLE_INPUT, "the input could not be read as a kernel configuration", "error")
            results.append(_result(UNUSABLE_INPUT, index, "error", result.error or "unusable input", _location(result.path, None)))
            continue
        for problem in result.report.problems:
            index = rules.add(INPUT_PROBLEM, "a line of the configuration is wrong or repeated", "warning")
            results.append(_result(INPUT_PROBLEM, index, "warning", problem.message, _location(problem.path, problem.line)))
        for finding in result.report.findings:
            if not located.is_requirement(finding) or finding.status not in (Status.FAIL, Status.WARN):
                continue
            level = "error" if located.counts_as_failure(finding, run.strict) else "warning"
            index = rules.for_finding(finding)
            line = located.line_of(finding, result.last_line)
            results.append(_result(located.rule_id(finding), index, level, located.message(finding), _location(result.path, line)))
    exit_status = run.exit_status()
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kcheck",
                        "version": _kcheck_version(),
                        "informationUri": "https://example.invalid/kcheck",
                        "rules": rules.rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "invocations": [{"executionSuccessful": exit_status != 2, "exitCode": exit_status}],
                "results": results,
            }
        ],
    }


def render_lint(run, *, verbose: bool = False) -> str:
    """The run as indented SARIF JSON."""
    return json.dumps(sarif_dict(run), indent=2)
