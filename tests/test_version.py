"""Kernel version from the tree or the config, never from uname."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from kcheck import version
from kcheck.errors import KcheckError


def write_makefile(tree, v=6, p=1, s=55, extra=""):
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "Makefile").write_text(
        f"# SPDX-License-Identifier: GPL-2.0\nVERSION = {v}\nPATCHLEVEL = {p}\nSUBLEVEL = {s}\nEXTRAVERSION = {extra}\nNAME = x\n"
    )


def test_makefile_version(tmp_path):
    write_makefile(tmp_path, extra="-gentoo")
    found = version.from_makefile(tmp_path)
    assert found.version == Version("6.1.55") and found.release == "6.1.55-gentoo" and found.source == "Makefile"


def test_kernel_release_adds_local_version_when_it_agrees(tmp_path):
    write_makefile(tmp_path)
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.1.55-gentoo-x86_64\n")
    found = version.detect(override=None, tree=tmp_path, build_dir=None, header_version="5.4.0")
    assert found.release == "6.1.55-gentoo-x86_64" and found.source == "include/config/kernel.release"


def test_makefile_outranks_a_stale_build(tmp_path):
    write_makefile(tmp_path, s=60)
    (tmp_path / "include" / "config").mkdir(parents=True)
    (tmp_path / "include" / "config" / "kernel.release").write_text("6.1.55\n")
    assert version.detect(override=None, tree=tmp_path, build_dir=None, header_version=None).release == "6.1.60"


def test_header_when_no_tree_and_override_wins():
    assert version.detect(override=None, tree=None, build_dir=None, header_version="4.4.0").version == Version("4.4.0")
    assert version.detect(override="5.2", tree=None, build_dir=None, header_version="4.4.0").source == "--kernel-version"
    assert version.detect(override=None, tree=None, build_dir=None, header_version=None) is None


def test_bad_override_is_a_usage_error():
    with pytest.raises(KcheckError, match="not a kernel version"):
        version.detect(override="latest", tree=None, build_dir=None, header_version=None)


def test_tree_without_version_falls_back_to_header(tmp_path):
    (tmp_path / "Makefile").write_text("all:\n\techo\n")
    assert version.detect(override=None, tree=tmp_path, build_dir=None, header_version="6.12.3").release == "6.12.3"


@given(st.integers(0, 99), st.integers(0, 999), st.integers(0, 999), st.from_regex(r"(-[a-z0-9]{1,8})?", fullmatch=True))
def test_parse_release_keeps_numbers(major, minor, patch, suffix):
    parsed = version.parse_release(f"{major}.{minor}.{patch}{suffix}", "test")
    assert parsed.version == Version(f"{major}.{minor}.{patch}")
    assert parsed.release == f"{major}.{minor}.{patch}{suffix}"


@given(st.text(max_size=10).filter(lambda s: not s.strip()[:1].isdigit()))
def test_parse_release_rejects_non_versions(text):
    assert version.parse_release(text, "test") is None


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"VERSION": "6", "PATCHLEVEL": "12", "SUBLEVEL": "117", "EXTRAVERSION": ""}, "6.12.117"),
        ({"VERSION": "6", "PATCHLEVEL": "1", "SUBLEVEL": "", "EXTRAVERSION": "-rc3"}, "6.1-rc3"),
        ({"VERSION": "7", "PATCHLEVEL": "", "SUBLEVEL": "", "EXTRAVERSION": ""}, "7"),
    ],
)
def test_kernelversion_is_composed_like_the_makefile(fields, expected):
    assert version.kernelversion(fields) == expected
