"""The human report: what was read, then per profile what is missing and why.

Colour is added with click styles; ``click.echo`` drops it when the output is
not a terminal, and the CLI turns it off when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import click

from kcheck.model import Finding, Report, Severity, Status

_MARK = {
    Status.OK: ("ok", "green"),
    Status.FAIL: ("FAIL", "red"),
    Status.WARN: ("warn", "yellow"),
    Status.SKIP: ("skip", "bright_black"),
    Status.INFO: ("info", "cyan"),
}
_WANT = {"y-or-m": "y or m", "not-set": "not set"}


def _line(finding: Finding) -> str:
    word, colour = _MARK[finding.status]
    mark = click.style(f"{word:<4}", fg=colour, bold=finding.status is Status.FAIL)
    if finding.check == "advice" or finding.expected is None or finding.section == "host":
        text = f"  {mark}  {finding.reason}" + (f" ({finding.detail})" if finding.detail else "")
        if finding.fix and finding.status in (Status.FAIL, Status.WARN):
            text += f"\n        fix: {finding.fix}"
        return text
    name = f"CONFIG_{finding.symbol or finding.check}"
    where = f", line {finding.line}" if finding.line else ""
    text = f"  {mark}  {name} is {finding.actual}{where}"
    if finding.status is not Status.OK:
        want = _WANT.get(finding.expected or "", finding.expected)
        text += f"; want {want}: {finding.reason}"
    if finding.status is Status.SKIP:
        text = f"  {mark}  CONFIG_{finding.check}: {finding.detail}"
    elif finding.detail:
        text += f" ({finding.detail})"
    if finding.fix and finding.status in (Status.FAIL, Status.WARN):
        text += f"\n        fix: {finding.fix}"
    return text


def render(report: Report, *, verbose: bool = False, strict: bool = False) -> str:
    """The report as text; ``verbose`` lists items that hold and skipped ones too."""
    out = [f"kcheck: reading {report.config_path} ({report.config_reason})"]
    if report.kernel_version:
        out.append(f"kernel {report.kernel_version.release} (from {report.kernel_version.source})")
    else:
        skipped = report.unapplied_rules()
        why = "no version header in the file, no kernel tree" if report.tree is None else f"neither the file nor {report.tree} says"
        out.append(click.style(
            f"kernel version unknown ({why}): {skipped} version-dependent "
            f"rule{'s' if skipped != 1 else ''} not applied; pass --kernel-version V to apply them", fg="yellow"))
    if report.mode == "plain":
        out.append("plain reader: values as written in the file, Kconfig dependencies not evaluated")
    else:
        out.append(f"Kconfig-aware reader over {report.tree}")
    for problem in report.problems:
        where = f"{problem.path}:{problem.line}" if problem.line else str(problem.path)
        out.append(click.style(f"input: {where}: {problem.message}", fg="yellow"))
    shown = {Status.FAIL, Status.WARN, Status.INFO}
    if verbose:
        shown |= {Status.OK, Status.SKIP}
    for profile in report.profiles:
        findings = [f for f in report.findings if f.profile == profile]
        visible = [f for f in findings if f.status in shown]
        held = sum(f.status is Status.OK and f.expected is not None for f in findings)
        total = sum(f.status is not Status.SKIP and f.expected is not None for f in findings)
        tally = f"{held} of {total} hold" if total else "needs nothing from the kernel configuration"
        # Checks beyond the configuration (an aufs rebuild, say) fail too: the tally must not read as all clear.
        other = sum(f.status is Status.FAIL and f.expected is None for f in findings)
        if other:
            tally += f"; {other} other check{'s' if other != 1 else ''} fail{'s' if other == 1 else ''}"
        out.append("")
        out.append(click.style(profile, bold=True) + f": {tally}")
        group = None
        for finding in visible:
            label = finding.group or ("notes" if finding.check == "advice" else finding.section)
            if label != group:
                group = label
                out.append(f" {group}:")
            out.append(_line(finding))
    host = [f for f in report.findings if f.section == "host"]
    if host:
        problems = sum(f.status in (Status.FAIL, Status.WARN) for f in host)
        checked = any(f.check != "host" for f in host)  # "host" alone: the note saying why it was not checked
        tally = f"{problems or 'no'} problem{'s' if problems != 1 else ''}" if checked else "not checked"
        out.append("")
        out.append(click.style("host", bold=True) + f": {tally}")
        group = None
        for finding in host:
            if finding.group != group:
                group = finding.group
                out.append(f" {group}:")
            out.append(_line(finding))
    out.append("")
    out.append(_verdict(report, strict))
    return "\n".join(out)


def _verdict(report: Report, strict: bool) -> str:
    failed = [f for f in report.findings if f.status is Status.FAIL]
    warned = [f for f in report.findings if f.status is Status.WARN and f.severity is Severity.RECOMMENDED]
    what = " + ".join(report.profiles)
    skipped = report.unapplied_rules()
    # Rules that were never applied are a warning on the verdict itself, not a footnote above it.
    unknown = f"kernel version unknown: {skipped} rule{'s' if skipped != 1 else ''} not applied" if skipped else ""
    if report.exit_status(strict):
        names = list(dict.fromkeys(f.symbol or f.check for f in failed + (warned if strict else [])))
        if strict and unknown:
            names.append(f"({unknown})")
        return click.style(f"NOT READY for {what}: {', '.join(names)}", fg="red", bold=True)
    notes = [unknown] if unknown else []
    if warned:
        notes.append(f"{len(warned)} recommended item{'s' if len(warned) != 1 else ''} missing")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return click.style(f"READY for {what}{tail}", fg="yellow" if unknown else "green", bold=True)
