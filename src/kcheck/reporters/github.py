"""``kcheck lint --format github``: GitHub Actions workflow commands, one annotation per problem.

GitHub shows ``::error file=F,line=N,title=T::message`` lines of a step's
output as annotations on the file. Data is escaped as the runner expects
(``%``, CR, LF as ``%25``, ``%0D``, ``%0A``); property values also escape
``:`` and ``,`` (``%3A``, ``%2C``), which would otherwise end the value.
"""

from __future__ import annotations

from kcheck.model import Status
from kcheck.reporters import located


def escape_data(text: str) -> str:
    """Escape a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (file, title)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, text: str, **properties) -> str:
    """One workflow command line, properties in the given order, None ones left out."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{level} {props}::{escape_data(text)}" if props else f"::{level}::{escape_data(text)}"


def render_lint(run, *, verbose: bool = False) -> str:
    """An ``error`` per failure or unusable input, a ``warning`` per missing recommended item or input problem."""
    out: list[str] = []
    for result in run.results:
        path = str(result.path)
        if result.report is None:
            out.append(command("error", result.error or "unusable input", file=path, title="kcheck unusable input"))
            continue
        for problem in result.report.problems:
            out.append(command("warning", problem.message, file=str(problem.path), line=problem.line, title="kcheck input problem"))
        for finding in result.report.findings:
            if not located.is_requirement(finding) or finding.status not in (Status.FAIL, Status.WARN):
                continue
            level = "error" if located.counts_as_failure(finding, run.strict) else "warning"
            out.append(
                command(
                    level,
                    located.message(finding),
                    file=path,
                    line=located.line_of(finding, result.last_line),
                    title=f"{located.title(finding)} ({finding.profile})",
                )
            )
    return "\n".join(out)
