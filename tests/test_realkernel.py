"""The real-tree test infrastructure itself: trees unpack, the oracle runs without touching them."""

from __future__ import annotations

import pytest

import realkernel

pytestmark = pytest.mark.realtree


def test_debian_configs_are_decompressed_kernel_configs(debian_configs_6_1, debian_configs_6_12):
    for configs in (debian_configs_6_1, debian_configs_6_12):
        assert set(configs) == set(realkernel.FLAVOURS)
        for path in configs.values():
            values = realkernel.read_assignments(path)
            assert values["X86_64"] == "y"
            assert len(values) > 3000


def test_oracle_writes_into_its_own_build_dir(linux_6_12, debian_configs_6_12, make_config):
    written = make_config(linux_6_12, "olddefconfig", debian_configs_6_12["amd64_none_cloud-amd64"])
    assert realkernel.read_assignments(written)["X86_64"] == "y"
    # O= builds must leave the shared cached tree pristine (make refuses O= on a dirty tree).
    assert not (linux_6_12 / ".config").exists()
    assert not (linux_6_12 / "scripts" / "kconfig" / "conf").exists()
