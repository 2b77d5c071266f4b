"""``--format json``: the stable, documented schema (``kcheck/data/report.schema.json``)."""

from __future__ import annotations

import json

from kcheck.model import Finding, Report, Status

#: Bumped only on incompatible changes; additions keep the number.
SCHEMA_ID = "kcheck-report/1"
#: The ``kcheck lint`` document: one ``kcheck-report/1`` per file plus a summary.
LINT_SCHEMA_ID = "kcheck-lint/1"


def finding_dict(finding: Finding) -> dict:
    """One finding as JSON-ready data."""
    return {
        "profile": finding.profile,
        "section": finding.section,
        "group": finding.group,
        "check": finding.check,
        "symbol": finding.symbol,
        "status": finding.status.value,
        "severity": finding.severity.value,
        "expected": finding.expected,
        "actual": finding.actual,
        "line": finding.line,
        "reason": finding.reason,
        "detail": finding.detail,
        "fix": finding.fix,
        "source": finding.source,
    }


def report_dict(report: Report, *, strict: bool = False) -> dict:
    """A whole report as JSON-ready data."""
    version = report.kernel_version
    return {
        "schema": SCHEMA_ID,
        "input": {
            "config": str(report.config_path) if report.config_path else None,
            "reason": report.config_reason,
            "tree": str(report.tree) if report.tree else None,
            "mode": report.mode,
        },
        "kernel_version": (
            {"release": version.release, "version": str(version.version), "source": version.source} if version else None
        ),
        "profiles": report.profiles,
        "exit_status": report.exit_status(strict),
        "summary": {status.value: sum(f.status is status for f in report.findings) for status in Status},
        "findings": [finding_dict(f) for f in report.findings],
        "problems": [{"file": str(p.path), "line": p.line, "message": p.message} for p in report.problems],
    }


def render(report: Report, *, verbose: bool = False, strict: bool = False) -> str:
    """The report as indented JSON (every finding, whatever ``verbose`` says)."""
    return json.dumps(report_dict(report, strict=strict), indent=2)


def lint_dict(run) -> dict:
    """A ``kcheck lint`` run as JSON-ready data: a report per file, then the totals."""
    return {
        "schema": LINT_SCHEMA_ID,
        "driver": run.driver,
        "profiles": run.profiles,
        "mode": run.mode,
        "tree": str(run.tree) if run.tree else None,
        "strict": run.strict,
        "exit_status": run.exit_status(),
        "summary": {
            "files": len(run.results),
            "ready": run.count("ready"),
            "not_ready": run.count("not-ready"),
            "unusable": run.count("unusable"),
        },
        "files": [
            {
                "path": str(result.path),
                "status": result.status(run.strict),
                "error": result.error,
                "report": report_dict(result.report, strict=run.strict) if result.report else None,
            }
            for result in run.results
        ],
    }


def render_lint(run, *, verbose: bool = False) -> str:
    """A ``kcheck lint`` run as indented JSON (``kcheck-lint/1``)."""
    return json.dumps(lint_dict(run), indent=2)
