"""Profiles are data: every shipped one loads, and a broken one says file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcheck import dotconfig, profile
from kcheck.errors import ProfileError
from kcheck.model import Severity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"


def test_shipped_profiles_load_and_list_docker_first():
    names = profile.shipped_names()
    assert names[0] == "docker"
    assert set(profile.driver_names()) == {"aufs", "btrfs", "devicemapper", "fuse-overlayfs", "overlay2", "vfs", "zfs"}
    for name in names:
        loaded = profile.load_shipped(name)
        assert loaded.name == name and loaded.summary
        for req in loaded.requirements:
            assert req.reason and req.line and req.line > 1


@pytest.mark.parametrize("name", profile.shipped_names())
def test_unversioned_symbols_are_real_kernel_symbols(name):
    """Every symbol a shipped profile asks of a 6.x kernel appears in Debian's 6.1 or 6.12 config.

    Debian's configs list every visible symbol of their tree (set or not), so
    a typo in a profile shows here. aufs is not in mainline, and the 6.17+
    iptables options postdate both trees.
    """
    known = set()
    for path in FIXTURES.glob("debian-6.*.config"):
        known |= dotconfig.load(path).values.keys()
    for req in profile.load_shipped(name).requirements:
        if req.symbol == "AUFS_FS":
            continue
        if req.versions is not None and not any(v in req.versions for v in ("6.1.0", "6.12.0")):
            continue
        assert set(req.names) & known, f"{name}: {req.symbol} is in neither Debian 6.1 nor 6.12"


def write(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_user_profile_round_trip(tmp_path):
    loaded = profile.load_file(write(tmp_path, '''
name = "fleet"
[[group]]
name = "Policy"
severity = "forbidden"
requirements = [
  { symbol = "CONFIG_DEVMEM", reason = "no raw memory access" },
]
[[group]]
severity = "recommended"
requirements = [
  { symbol = "CGROUP_NET_PRIO", aliases = ["NETPRIO_CGROUP"], versions = ">=3.14", expect = "y", reason = "r" },
]
'''))
    devmem, prio = loaded.requirements
    assert (devmem.symbol, devmem.expect, devmem.severity, devmem.line) == ("DEVMEM", "not-set", Severity.FORBIDDEN, 7)
    assert prio.aliases == ("NETPRIO_CGROUP",) and "3.14" in str(prio.versions) and prio.expect == "y"
    assert prio.line == 12 and prio.group == "fleet"


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ('name = "x"\n[[group]\n', 2, "invalid TOML"),
        ('name = "x"\ncolour = 1\n', 1, "unknown profile key 'colour'"),
        ('[[group]]\nrequirements = []\n', 1, "needs a name"),
        ('name = "x"\n[[group]]\nseverity = "urgent"\n', 2, "severity 'urgent'"),
        ('name = "x"\n[[group]]\nrequirements = [\n  { symbol = "A" },\n]\n', 4, "needs a reason"),
        ('name = "x"\n[[group]]\nrequirements = [\n  { symbol = "A", reason = "r" },\n  { symbol = "B-C", reason = "r" },\n]\n', 5, "not a Kconfig symbol"),
        ('name = "x"\n[[group]]\nrequirements = [\n  { symbol = "A", reason = "r", versions = "new" },\n]\n', 4, "not a version range"),
        ('name = "x"\n[[group]]\nrequirements = [\n  { symbol = "A", reason = "r", colour = 1 },\n]\n', 4, "unknown requirement key"),
        ('name = "x"\nchecks = ["os:system"]\n', 2, "kcheck.module:function"),
    ],
)
def test_broken_profiles_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as error:
        profile.load_file(path)
    assert error.value.message.startswith(f"{path}:{line}: ") and fragment in error.value.message


def test_unknown_driver_and_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="unknown driver 'ntfs'.*overlay2"):
        profile.load_shipped("ntfs")
    with pytest.raises(ProfileError, match="does not exist"):
        profile.load_file(tmp_path / "none.toml")


@given(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True), min_size=1, max_size=8, unique=True),
       st.sampled_from(["required", "recommended", "forbidden"]))
def test_generated_profiles_load_every_symbol_in_order(symbols, severity):
    body = "\n".join(f'  {{ symbol = "{s}", reason = "because {s}" }},' for s in symbols)
    loaded = profile.parse(f'name = "gen"\n[[group]]\nseverity = "{severity}"\nrequirements = [\n{body}\n]\n', Path("gen.toml"))
    assert [r.symbol for r in loaded.requirements] == symbols
    assert [r.line for r in loaded.requirements] == list(range(5, 5 + len(symbols)))
    assert all(r.severity.value == severity for r in loaded.requirements)
