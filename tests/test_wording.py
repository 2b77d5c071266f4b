"""Words that say exactly what is true: absent vs not set, what a bool can be, an unknown version.

- a symbol the file never mentions is "not in the file", one the file sets to n
  is "not set" (check and explain; the README promises they are told apart);
- the wanted value follows the symbol's Kconfig type when the tree is known
  (a bool wants y, never "y or m"), the profile's form when it is not;
- a configuration without a version header is READY only with a visible
  warning on the verdict line, and fails under --strict.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kcheck.check import select_profiles
from kcheck.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
DEBIAN_61 = FIXTURES / "debian-6.1-amd64_none_amd64.config"
NO_VERSION = FIXTURES / "no-version-overlay2.config"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"NO_COLOR": "1"})


def test_plain_reader_tells_absent_from_not_set(tmp_path):
    config = tmp_path / "c.config"
    config.write_text("# Linux/x86 6.1.0 Kernel Configuration\n# CONFIG_OVERLAY_FS is not set\n")
    out = run("-d", "overlay2", "-c", config, "--no-host").output
    assert "CONFIG_OVERLAY_FS is not set, line 2; want y or m" in out
    assert "CONFIG_NAMESPACES is not in the file; want y or m" in out
    assert " is absent" not in out


@pytest.fixture(scope="module")
def edited_61(linux_6_1, tmp_path_factory) -> Path:
    """Debian's 6.1 config with USER_NS (a bool) set to n and VXLAN (a tristate) taken out."""
    text = DEBIAN_61.read_text()
    text = text.replace("CONFIG_USER_NS=y\n", "# CONFIG_USER_NS is not set\n")
    text = re.sub(r"^CONFIG_VXLAN=.*\n", "", text, flags=re.M)
    path = tmp_path_factory.mktemp("wording") / "edited.config"
    path.write_text(text)
    return path


@pytest.mark.realtree
def test_wanted_values_follow_the_kconfig_type(linux_6_1, edited_61):
    kconfig = run("-d", "overlay2", "-k", linux_6_1, "-c", edited_61, "--no-host")
    assert "Kconfig-aware reader" in kconfig.output
    assert re.search(r"CONFIG_USER_NS is not set, line \d+; want y: ", kconfig.output), kconfig.output
    # A tristate keeps both values; absent from the file, Kconfig's default n is "not in the file".
    assert "CONFIG_VXLAN is not in the file; want y or m: " in kconfig.output
    report = json.loads(run("-d", "overlay2", "-k", linux_6_1, "-c", edited_61, "--no-host", "--format", "json").output)
    user_ns = next(f for f in report["findings"] if f["check"] == "USER_NS")
    assert (user_ns["expected"], user_ns["actual"]) == ("y", "not set")
    # Without the tree the type is unknown: the profile's own form.
    plain = run("-d", "overlay2", "--no-kconfig", "-k", linux_6_1, "-c", edited_61, "--no-host")
    assert re.search(r"CONFIG_USER_NS is not set, line \d+; want y or m: ", plain.output), plain.output


@pytest.mark.realtree
def test_explain_says_not_in_the_file(linux_6_1, edited_61):
    absent = run("explain", "AUFS_FS", "-k", linux_6_1, "-c", edited_61)
    assert absent.exit_code == 0
    assert f"in the file:   not in the file ({edited_61} does not mention CONFIG_AUFS_FS)" in absent.output
    vxlan = run("explain", "VXLAN", "-k", linux_6_1, "-c", edited_61)
    assert "in the file:   not in the file (" in vxlan.output and "not set" not in vxlan.output
    user_ns = run("explain", "USER_NS", "-k", linux_6_1, "-c", edited_61)
    assert re.search(r"in the file:   n \(line \d+ of ", user_ns.output), user_ns.output


def versioned_rules(driver: str, facts: dict[str, str] | None = None) -> int:
    """Version-dependent rules that apply under ``facts`` (docker's default firewall backend if none)."""
    facts = facts or {"runtime": "docker", "firewall": "iptables-legacy"}
    return sum(r.versions is not None and all(facts.get(fact) in values for fact, values in r.when)
               for p in select_profiles(driver) for r in p.requirements)


def test_unknown_version_is_a_warning_on_the_verdict_line():
    n = versioned_rules("overlay2")
    assert n > 0
    result = run("-d", "overlay2", "-c", NO_VERSION, "--no-host")
    assert result.exit_code == 0
    verdict = result.output.rstrip().splitlines()[-1]
    assert verdict.startswith(f"READY for docker + overlay2 (kernel version unknown: {n} rules not applied; ")
    assert f"kernel version unknown (no version header in the file, no kernel tree): {n} version-dependent" in result.output


def test_unknown_version_fails_under_strict():
    result = run("-d", "overlay2", "-c", NO_VERSION, "--no-host", "--strict")
    assert result.exit_code == 1
    assert result.output.rstrip().splitlines()[-1].endswith(f"(kernel version unknown: {versioned_rules('overlay2')} rules not applied)")
    report = json.loads(run("-d", "overlay2", "-c", NO_VERSION, "--no-host", "--strict", "--format", "json").output)
    assert report["exit_status"] == 1 and report["kernel_version"] is None
    # The version given: every rule applies and the warning is gone.
    known = run("-d", "overlay2", "-c", NO_VERSION, "--no-host", "--kernel-version", "6.1")
    assert "kernel version unknown" not in known.output


def test_strict_does_not_fail_a_known_version_for_its_skipped_rules(tmp_path):
    """Rules skipped because they do not apply to a known version are no reason to fail."""
    text = NO_VERSION.read_text().replace("# (header removed)", "# Linux/x86 6.1.0 Kernel Configuration")
    config = tmp_path / "known.config"
    config.write_text(text)
    report = json.loads(run("-d", "overlay2", "-c", config, "--no-host", "--format", "json").output)
    assert report["summary"]["skip"] > 0 and report["kernel_version"]["release"] == "6.1.0"
    assert "kernel version unknown" not in run("-d", "overlay2", "-c", config, "--no-host", "--strict").output
