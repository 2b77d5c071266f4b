"""``kcheck lint`` for people: one line per configuration, the failures named.

With ``verbose`` every file gets the full text report of ``kcheck --driver``.
"""

from __future__ import annotations

import click

from kcheck.model import Severity, Status
from kcheck.reporters import text


def _names(findings) -> str:
    return ", ".join(dict.fromkeys(f"CONFIG_{f.symbol or f.check}" if f.expected else f.check for f in findings))


def render_lint(run, *, verbose: bool = False) -> str:
    """One line per input (``ready``, ``NOT READY: ...``, ``UNUSABLE: ...``) plus input problems."""
    out: list[str] = []
    for result in run.results:
        report = result.report
        if report is None:
            out.append(click.style(f"{result.path}: UNUSABLE: {result.error}", fg="red", bold=True))
            continue
        if verbose:
            out.append(text.render(report, verbose=False, strict=run.strict))
            out.append("")
            continue
        failed = [f for f in report.findings if f.status is Status.FAIL]
        warned = [f for f in report.findings if f.status is Status.WARN and f.severity is Severity.RECOMMENDED]
        version = f" [{report.kernel_version.release}]" if report.kernel_version else " [version unknown]"
        if report.failed(run.strict):
            names = _names(failed + (warned if run.strict else []))
            out.append(click.style(f"{result.path}{version}: NOT READY: {names}", fg="red"))
        else:
            tail = ""
            if warned:
                # A long list would drown the one line per file; --verbose shows them all.
                tail = f" (recommended missing: {_names(warned)})" if len(warned) <= 3 else f" ({len(warned)} recommended items missing)"
            out.append(click.style(f"{result.path}{version}: ready", fg="green") + tail)
        for problem in report.problems:
            where = f"{problem.path}:{problem.line}" if problem.line else str(problem.path)
            out.append(click.style(f"  input: {where}: {problem.message}", fg="yellow"))
    return "\n".join(out)
