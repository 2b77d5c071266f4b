"""Reporters only format a :class:`~kcheck.model.Report`; they never decide a verdict.

Each module exposes ``render(report, *, verbose=False, strict=False) -> str``.
A module that formats ``kcheck lint`` runs (many reports at once) exposes
``render_lint(run, *, verbose=False) -> str`` for a :class:`kcheck.lint.LintRun`.
"""

from __future__ import annotations

import importlib

#: --format name -> module implementing it.
FORMATS = {"text": "kcheck.reporters.text", "json": "kcheck.reporters.json_report"}


def render(fmt: str, report, **options) -> str:
    """Format ``report`` with the reporter named ``fmt``."""
    return importlib.import_module(FORMATS[fmt]).render(report, **options)


#: kcheck lint --format name -> module implementing ``render_lint``.
LINT_FORMATS = {
    "text": "kcheck.reporters.lint_text",
    "json": "kcheck.reporters.json_report",
    "junit": "kcheck.reporters.junit",
    "sarif": "kcheck.reporters.sarif",
    "github": "kcheck.reporters.github",
}


def render_lint(fmt: str, run, **options) -> str:
    """Format a ``kcheck lint`` run with the reporter named ``fmt``."""
    return importlib.import_module(LINT_FORMATS[fmt]).render_lint(run, **options)
