"""``kcheck lint --format junit``: JUnit XML, as Jenkins, GitLab and most CI systems read it.

One ``<testsuite>`` per configuration file and one ``<testcase>`` per
requirement in it, named ``CONFIG_X`` with classname ``<file>.<profile>``
(so a viewer shows the file as package and the profile as class):

- a failing required or forbidden item (and, with ``--strict``, a missing
  recommended one) is a ``<failure>``;
- a requirement that does not apply to the kernel version is ``<skipped>``;
- a missing recommended item passes and says so in its ``<system-out>``;
- an unusable file is a suite with one ``<error>`` test case.

Profile advice notes are not requirements and have no test case.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from kcheck.model import Status
from kcheck.reporters import located


# XML 1.0 cannot carry these characters at all, not even escaped; a stray config line may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _suite(run, result) -> ET.Element:
    path = _clean(str(result.path))
    suite = ET.Element("testsuite", name=path, time=_seconds(result.seconds))
    tests = failures = errors = skipped = 0
    report = result.report
    if report is None:
        case = ET.SubElement(suite, "testcase", name="read configuration", classname=f"{path}.kcheck", time="0.000")
        ET.SubElement(case, "error", message=_clean(result.error or "unusable input"), type="unusable")
        tests, errors = 1, 1
    else:
        properties = ET.SubElement(suite, "properties")
        version = report.kernel_version
        for name, value in (
            ("mode", report.mode),
            ("kernel_version", version.release if version else "unknown"),
            ("kernel_version_source", version.source if version else "none"),
            ("profiles", " + ".join(report.profiles)),
        ):
            ET.SubElement(properties, "property", name=name, value=value)
        for finding in report.findings:
            if not located.is_requirement(finding):
                continue
            tests += 1
            case = ET.SubElement(
                suite, "testcase", name=located.title(finding), classname=f"{path}.{finding.profile}", time="0.000"
            )
            text = _clean(located.message(finding))
            where = f"{path}:{located.line_of(finding, result.last_line)}"
            if located.counts_as_failure(finding, run.strict):
                failures += 1
                failure = ET.SubElement(case, "failure", message=text, type=finding.severity.value)
                failure.text = f"{where}: {text}"
            elif finding.status is Status.SKIP:
                skipped += 1
                ET.SubElement(case, "skipped", message=text)
            elif finding.status is Status.WARN:
                ET.SubElement(case, "system-out").text = f"{where}: warning: {text}"
        if report.problems:
            ET.SubElement(suite, "system-err").text = _clean("\n".join(
                f"{p.path}:{p.line}: {p.message}" if p.line else f"{p.path}: {p.message}" for p in report.problems
            ))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    return suite


def render_lint(run, *, verbose: bool = False) -> str:
    """The whole run as one ``<testsuites>`` document."""
    root = ET.Element("testsuites", name=f"kcheck lint: {' + '.join(run.profiles)}")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for result in run.results:
        suite = _suite(run, result)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(run.seconds))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
