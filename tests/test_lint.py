"""``kcheck lint``: which files it checks, its exit statuses, parallel runs, profiles, Kconfig mode."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kcheck.cli import main
from kcheck.errors import ProfileError
from kcheck.lint import discover, is_config_name, run_lint
from kcheck.reporters.json_report import lint_dict

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "kconfigs"
LINT_REPO = Path(__file__).resolve().parent / "data" / "lint-repo"
FLEET = REPO / "examples" / "fleet-policy.toml"

#: The lint-repo fixture: every file a directory scan must find, and its verdict for overlay2.
EXPECTED = {
    "kernels/broken/notes.config": "unusable",
    "kernels/broken/old.config.gz": "unusable",
    "kernels/db/config-6.1.0-13-amd64.gz": "ready",
    "kernels/edge/.config": "not-ready",
    "kernels/edge/edge-6.1.config": "not-ready",
    "kernels/web/build.config": "ready",
    "kernels/web/web-6.1.config": "ready",
}


def lint(*args: str, cwd: Path | None = None):
    """Run ``kcheck lint`` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, ["lint", *args], catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, ["lint", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def statuses(run) -> dict[str, str]:
    return {r.path.relative_to(LINT_REPO).as_posix(): r.status(run.strict) for r in run.results}


# --- which files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        (".config", True),
        ("web.config", True),
        ("config-6.1.0-13-amd64", True),
        ("config-6.1.0-13-amd64.gz", True),
        ("config.gz", True),
        ("web.config.gz", True),
        ("README.md", False),
        ("MANIFEST", False),
        ("Kconfig", False),
        ("config", False),
        ("web.config.orig", False),
    ],
)
def test_directory_scan_takes_files_named_like_configs(name, wanted):
    assert is_config_name(name) is wanted


def test_directory_scan_is_recursive_sorted_and_skips_hidden_directories():
    found = [r.path.relative_to(LINT_REPO).as_posix() for r in discover([str(LINT_REPO)])]
    assert found == sorted(EXPECTED)
    assert not any(part.startswith(".cache") for part in found)


def test_a_named_file_is_checked_whatever_its_name(tmp_path):
    odd = tmp_path / "kernel-settings.txt"
    shutil.copyfile(FIXTURES / "minimal-6.1-overlay2.config", odd)
    run = run_lint([str(odd)], driver="overlay2")
    assert [r.status() for r in run.results] == ["ready"]


def test_globs_expand_and_files_named_twice_are_checked_once():
    pattern = str(LINT_REPO / "kernels" / "**" / "*.config")
    run = run_lint([pattern, str(LINT_REPO / "kernels" / "web" / "web-6.1.config")], driver="overlay2")
    names = [r.path.name for r in run.results]
    assert names == ["notes.config", "edge-6.1.config", "build.config", "web-6.1.config"]


def test_inputs_that_name_nothing_are_unusable_and_reported(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_lint([str(tmp_path / "missing.config"), str(tmp_path / "*.config"), str(empty)], driver="overlay2")
    errors = [r.error for r in run.results]
    assert all(r.status() == "unusable" for r in run.results)
    assert "missing.config does not exist" in errors[0]
    assert "matches no file" in errors[1]
    assert "holds no file named" in errors[2]
    assert run.exit_status() == 2


# --- verdicts and exit statuses --------------------------------------------------------------


def test_lint_repo_verdicts_per_file():
    run = run_lint([str(LINT_REPO)], driver="overlay2")
    assert statuses(run) == EXPECTED
    assert run.exit_status() == 2


def test_exit_0_when_every_file_holds():
    result = lint("--driver", "overlay2", str(LINT_REPO / "kernels" / "web"), str(LINT_REPO / "kernels" / "db"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("kcheck lint: 3 configurations checked")
    assert "3 ready, 0 not ready, 0 unusable; exit 0" in result.stdout


def test_exit_1_when_a_file_fails_a_required_item():
    result = lint("--driver", "overlay2", str(LINT_REPO / "kernels" / "web"), str(LINT_REPO / "kernels" / "edge"))
    assert result.exit_code == 1
    assert "edge-6.1.config [6.1.0]: NOT READY: CONFIG_OVERLAY_FS" in result.stdout
    assert ".config [4.4.0]: NOT READY: CONFIG_NF_NAT_IPV4" in result.stdout


def test_exit_2_wins_over_1_and_the_other_files_are_still_reported():
    result = lint("--driver", "overlay2", str(LINT_REPO))
    assert result.exit_code == 2
    assert "notes.config: UNUSABLE:" in result.stdout and "has no CONFIG_ lines" in result.stdout
    assert "old.config.gz: UNUSABLE:" in result.stdout and "corrupt or truncated gzip" in result.stdout
    assert "NOT READY: CONFIG_OVERLAY_FS" in result.stdout
    assert "3 ready, 2 not ready, 2 unusable; exit 2" in result.stdout


def test_strict_fails_missing_recommended_items():
    web = str(LINT_REPO / "kernels" / "web" / "web-6.1.config")
    assert lint("--driver", "overlay2", web).exit_code == 0
    strict = lint("--driver", "overlay2", "--strict", web)
    assert strict.exit_code == 1
    assert "NOT READY: CONFIG_USER_NS" in strict.stdout


def test_input_problems_are_shown_with_file_and_line():
    result = lint("--driver", "overlay2", str(LINT_REPO / "kernels" / "web" / "build.config"))
    assert result.exit_code == 0
    assert "build.config:41: CONFIG_VETH is assigned again (first at line 19)" in result.stdout
    assert "build.config:42: not a config line" in result.stdout


def test_verbose_shows_each_full_report():
    result = lint("--driver", "overlay2", "-v", str(LINT_REPO / "kernels" / "edge"))
    assert result.stdout.count("kcheck: reading ") == 2
    assert "NOT READY for docker + overlay2: OVERLAY_FS" in result.stdout


def test_driver_is_required_and_unknown_drivers_exit_2():
    assert lint(str(LINT_REPO)).exit_code == 2
    unknown = lint("--driver", "nosuchfs", str(LINT_REPO))
    assert unknown.exit_code == 2
    assert "unknown driver 'nosuchfs'" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_bad_kernel_dir_is_a_usage_error(tmp_path):
    result = lint("--driver", "overlay2", "--kernel-dir", str(tmp_path), str(LINT_REPO))
    assert result.exit_code == 2
    assert f"{tmp_path} is not a kernel source tree" in result.stderr


def test_help_documents_the_exit_statuses():
    result = CliRunner().invoke(main, ["lint", "--help"])
    assert result.exit_code == 0
    for line in ("0  every configuration holds", "1  at least one configuration fails", "2 wins over 1"):
        assert line in result.stdout


# --- custom profiles ---------------------------------------------------------------------------


def test_fleet_policy_example_applies_each_kind_of_rule():
    debian = [str(p) for p in sorted(FIXTURES.glob("debian-6.1-*.config"))]
    run = run_lint(debian, driver="overlay2", profile_files=[FLEET])
    assert run.profiles == ["docker", "overlay2", "fleet"]
    by_name = {r.path.name: r for r in run.results}
    cloud = by_name["debian-6.1-amd64_none_cloud-amd64.config"].report
    generic = by_name["debian-6.1-amd64_none_amd64.config"].report
    fleet = {f.check: f for f in generic.findings if f.profile == "fleet"}
    # expect = "y": a module is not enough
    assert fleet["EXT4_FS"].status.value == "fail" and fleet["EXT4_FS"].actual == "m"
    assert {f.check: f.status.value for f in cloud.findings if f.profile == "fleet"}["EXT4_FS"] == "ok"
    # versions: PSI applies to 6.1, NF_CONNTRACK_IPV4 does not
    assert fleet["PSI"].status.value == "ok"
    assert fleet["NF_CONNTRACK_IPV4"].status.value == "skip"
    # literal value and recommended not-set are warnings
    assert fleet["HZ"].status.value == "warn" and fleet["HZ"].actual == "250"
    assert fleet["MODULE_FORCE_UNLOAD"].status.value == "warn"
    # forbidden symbols that are off hold
    assert fleet["KASAN"].status.value == "ok" and fleet["AUFS_FS"].status.value == "ok"
    assert run.exit_status() == 1


def test_fleet_policy_alias_satisfies_a_renamed_symbol(tmp_path):
    old = tmp_path / "old.config"
    text = (FIXTURES / "minimal-6.1-overlay2.config").read_text().replace("CONFIG_MEMCG=y", "CONFIG_CGROUP_MEM_RES_CTLR=y")
    old.write_text(text)
    run = run_lint([str(old)], driver="overlay2", profile_files=[FLEET])
    memcg = [f for f in run.results[0].report.findings if f.profile == "fleet" and f.check == "MEMCG"]
    assert memcg[0].status.value == "ok" and memcg[0].symbol == "CGROUP_MEM_RES_CTLR"


def test_a_profile_error_names_file_and_line_and_exits_2(tmp_path):
    bad = tmp_path / "policy.toml"
    bad.write_text(
        'name = "fleet"\n'
        "[[group]]\n"
        'severity = "required"\n'
        "requirements = [\n"
        '  { symbol = "BPF_SYSCALL", reason = "tracing" },\n'
        '  { symbol = "PSI", versions = "four", reason = "autoscaler" },\n'
        "]\n"
    )
    result = lint("--driver", "overlay2", "--profile", str(bad), str(LINT_REPO))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"kcheck: {bad}:6: versions 'four' is not a version range like '>=4.15' or '<5.2'"
    assert result.stdout == ""


def test_a_profile_with_invalid_toml_gives_its_line(tmp_path):
    bad = tmp_path / "policy.toml"
    bad.write_text('name = "fleet"\nsummary = "unterminated\n')
    with pytest.raises(ProfileError, match=rf"^{bad}:2: invalid TOML"):
        run_lint([str(LINT_REPO)], driver="overlay2", profile_files=[bad])


# --- parallel runs -----------------------------------------------------------------------------


def test_a_pool_gives_the_same_results_in_the_same_order(tmp_path):
    sources = sorted(FIXTURES.glob("*.config")) + [LINT_REPO / "kernels" / "broken" / "notes.config"]
    for index in range(48):
        source = sources[index % len(sources)]
        target = tmp_path / f"host-{index:02d}.config"
        if index % 5 == 0:
            target = target.with_suffix(".config.gz")
            target.write_bytes(gzip.compress(source.read_bytes()))
        else:
            shutil.copyfile(source, target)
    serial = run_lint([str(tmp_path)], driver="btrfs", jobs=1)
    pooled = run_lint([str(tmp_path)], driver="btrfs", jobs=2)
    assert len(serial.results) == 48
    assert lint_dict(serial) == lint_dict(pooled)
    assert {r.status() for r in serial.results} == {"ready", "not-ready", "unusable"}


# --- a real process -----------------------------------------------------------------------------


def test_real_process_json_on_stdout_summary_on_stderr():
    proc = subprocess.run(
        [sys.executable, "-m", "kcheck", "lint", "--driver", "overlay2", "--format", "json", str(LINT_REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    document = json.loads(proc.stdout)
    assert document["summary"] == {"files": 7, "ready": 3, "not_ready": 2, "unusable": 2}
    assert proc.stderr.startswith("kcheck lint: 7 configurations checked")
    assert proc.stderr.count("\n") == 1


# --- Kconfig mode ----------------------------------------------------------------------------------


@pytest.mark.realtree
def test_kconfig_mode_parses_the_tree_once_for_all_files(request, monkeypatch):
    kconfig = pytest.importorskip("kcheck.kconfig", reason="the Kconfig-aware reader (kcheck.kconfig) is not merged yet")
    tree = request.getfixturevalue("linux_6_1")
    loads = []
    original = kconfig.KconfigTree.load

    def counting_load(*args, **kwargs):
        loads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(kconfig.KconfigTree, "load", counting_load)
    files = [str(p) for p in sorted(FIXTURES.glob("debian-6.1-*.config"))]
    run = run_lint(files, driver="overlay2", kernel_dir=tree, jobs=1)
    assert len(loads) == 1
    assert run.mode == "kconfig"
    assert all(r.report is not None and r.report.mode == "kconfig" for r in run.results)
    assert run.exit_status() == 0



@pytest.mark.realtree
def test_kconfig_mode_pool_forked_after_the_parse_agrees_with_one_process(request, tmp_path):
    pytest.importorskip("kcheck.kconfig", reason="the Kconfig-aware reader (kcheck.kconfig) is not merged yet")
    tree = request.getfixturevalue("linux_6_1")
    for index, source in enumerate(sorted(FIXTURES.glob("debian-6.1-*.config")) * 2):
        text = source.read_text()
        if index >= 3:  # the second copies lose OverlayFS, so the pool must also carry failures back
            text = text.replace("CONFIG_OVERLAY_FS=m", "# CONFIG_OVERLAY_FS is not set")
        (tmp_path / f"host-{index}.config").write_text(text)
    serial = run_lint([str(tmp_path)], driver="overlay2", kernel_dir=tree, jobs=1)
    pooled = run_lint([str(tmp_path)], driver="overlay2", kernel_dir=tree, jobs=2)
    assert lint_dict(serial) == lint_dict(pooled)
    assert [r.status() for r in serial.results] == ["ready"] * 3 + ["not-ready"] * 3
