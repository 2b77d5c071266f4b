"""``kcheck fix`` with the kernel's own conf as the final word, on Debian's real 6.1 and 7.3 trees.

What is written is conf's ``make olddefconfig`` of the plan applied to the
user's file; a disagreement between conf and kcheck's engine on the plan is
refused; every value that differs from the user's file is named; a user's
feature is never given up silently (``--keep`` forbids it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import kconfiglib
import pytest
from click.testing import CliRunner

import aufs_trees
import realkernel
from kcheck.cli import main
from kcheck.fix import encode, oracle
from test_fix_realtree import turned_off

pytestmark = [pytest.mark.realtree, pytest.mark.slow]


def fix(*args):
    return CliRunner().invoke(main, ["fix", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def defconfig_7_3(linux_7_3, make_config):
    return make_config(linux_7_3, "defconfig")


def test_write_refuses_when_conf_disagrees_and_writes_nothing(linux_7_3, defconfig_7_3, tmp_path, monkeypatch):
    # Plant a disagreement: kcheck's evaluation (kconfiglib and the solver's model alike) believes MD is y,
    # while the file turns it off. The plan then skips MD; the kernel's conf keeps BLK_DEV_DM off.
    config = turned_off(defconfig_7_3, ["MD", "BLK_DEV_DM", "DM_THIN_PROVISIONING"], tmp_path / ".config")
    real_tri = kconfiglib.Symbol.tri_value.fget
    monkeypatch.setattr(kconfiglib.Symbol, "tri_value",
                        property(lambda sym: 2 if sym.name == "MD" else real_tri(sym)))
    real_symbol = encode.Encoder._symbol
    monkeypatch.setattr(encode.Encoder, "_symbol",
                        lambda self, sym: encode.const(2) if sym.name == "MD" else real_symbol(self, sym))
    before = config.read_bytes()
    result = fix("-d", "devicemapper", "-k", linux_7_3, "-c", config, "--write")
    assert result.exit_code == 1, result.output
    assert "conf disagree" in result.output and "BLK_DEV_DM: kcheck's engine computes m, the kernel's conf n" in result.output
    assert not any(line.split()[:1] == ["MD"] for line in result.output.splitlines())  # the plan skipped it
    assert config.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config"]


def test_overlay2_on_7_3_names_every_value_that_changes(linux_7_3, defconfig_7_3, make_config, tmp_path):
    config = turned_off(defconfig_7_3, ["OVERLAY_FS"], tmp_path / ".config")
    file_values = realkernel.read_assignments(config)
    baseline = realkernel.read_assignments(make_config(linux_7_3, "olddefconfig", config))
    result = fix("-d", "overlay2", "-k", linux_7_3, "-c", config, "--write", "--verbose")
    assert result.exit_code == 0, result.output
    assert "Verified by the kernel's own conf" in result.output
    written = realkernel.read_assignments(config)
    assert realkernel.read_assignments(make_config(linux_7_3, "olddefconfig", config)) == written
    assert written["OVERLAY_FS"] in ("y", "m")

    named = {line.split()[0] for line in result.output.splitlines() if line.startswith("  ") and "->" in line}
    for start in (baseline, file_values):
        differs = {n for n in start.keys() | written.keys() if start.get(n, "n") != written.get(n, "n")}
        assert differs and differs <= named, sorted(differs - named)
    # The 7.x int rule (mm/Kconfig's range ... if ARCH_FORCE_MAX_ORDER = 0): the user's value stays.
    assert written["PAGE_BLOCK_MAX_ORDER"] == file_values["PAGE_BLOCK_MAX_ORDER"] == baseline["PAGE_BLOCK_MAX_ORDER"]


def test_kcheck_engine_agrees_with_conf_on_the_written_file(linux_7_3, defconfig_7_3, tmp_path):
    """Needs the engine's 7.x conformance (int symbols without a value are 0, PAHOLE_VERSION from the Makefile)."""
    config = turned_off(defconfig_7_3, ["OVERLAY_FS"], tmp_path / ".config")
    data = json.loads(fix("-d", "overlay2", "-k", linux_7_3, "-c", config, "--format", "json").output)
    assert data["verified_by"] == "conf"
    assert data["engine_differs"] == []


def test_diff_is_what_write_writes_and_the_dry_run_names_the_command(linux_7_3, defconfig_7_3, tmp_path):
    config = turned_off(defconfig_7_3, ["OVERLAY_FS"], tmp_path / ".config")
    original = config.read_text()
    assert realkernel.install_tools({"patch": "patch"}) == []
    result = CliRunner().invoke(main, ["fix", "-d", "overlay2", "-k", str(linux_7_3), "-c", str(config), "--diff"])
    assert result.exit_code == 0, result.stderr
    patch = result.stdout
    assert patch.startswith(f"--- {config}\n+++ {config}\n") and "+CONFIG_OVERLAY_FS=" in patch
    last = result.stderr.rstrip("\n").splitlines()[-1].strip()
    argv = shlex.split(last)
    assert argv[:2] == ["kcheck", "fix"] and argv[-1] == "--write" and str(config) in argv
    assert config.read_text() == original

    patched = tmp_path / "patched"
    patched.mkdir()
    shutil.copyfile(config, patched / ".config")
    subprocess.run(["patch", "-s", str(patched / ".config")], input=patch, text=True, check=True)
    applied = CliRunner().invoke(main, argv[1:], catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert config.read_text() == (patched / ".config").read_text()
    assert config.with_name(".config.old").read_text() == original


@pytest.fixture(scope="module")
def rt_config(debian_configs_7_3):
    return debian_configs_7_3["amd64_none_rt-amd64"]


def test_docker_on_the_rt_config_keeps_preempt_rt(linux_7_3, rt_config, tmp_path):
    """No --firewall: the backend whose plan gives nothing up (iptables-nft) wins over the legacy default."""
    config = tmp_path / ".config"
    shutil.copyfile(rt_config, config)
    result = fix("-d", "overlay2", "-k", linux_7_3, "-c", config, "--write")
    assert result.exit_code == 0, result.output
    written = realkernel.read_assignments(config)
    assert written["PREEMPT_RT"] == "y"
    assert written["NETFILTER_XT_NAT"] in ("y", "m")  # what iptables-nft's rules need


def test_turning_preempt_rt_off_is_never_silent_and_keep_forbids_it(linux_7_3, rt_config, tmp_path):
    # iptables-legacy's xtables depend on !PREEMPT_RT (7.x): the only plan turns real time off.
    config = tmp_path / ".config"
    shutil.copyfile(rt_config, config)
    dry = fix("-d", "overlay2", "--firewall", "iptables-legacy", "-k", linux_7_3, "-c", config)
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    plan_line = next(i for i, line in enumerate(lines) if line.startswith("kcheck fix:"))
    assert any(line.split()[:4] == ["PREEMPT_RT", "y", "->", "n"] for line in lines[plan_line:])
    warning = next(line for line in lines[:plan_line] if "turns off PREEMPT_RT" in line)
    # The real chain, whichever way the profiles say it: the legacy xtables against real time.
    assert "--keep PREEMPT_RT" in warning and ("NETFILTER_XTABLES_LEGACY needs PREEMPT_RT off" in warning
                                               or "legacy x_tables" in warning), warning

    before = config.read_bytes()
    kept = fix("-d", "overlay2", "--firewall", "iptables-legacy", "-k", linux_7_3, "-c", config,
               "--keep", "PREEMPT_RT", "--write")
    assert kept.exit_code == 1, kept.output
    assert "PREEMPT_RT stays y (--keep)" in kept.output and "nothing was written" in kept.output
    assert "depends on !PREEMPT_RT" in kept.output
    assert config.read_bytes() == before and not config.with_name(".config.old").exists()


def test_a_tree_built_in_place_is_verified_through_a_shadow(linux_6_1, make_config, tmp_path):
    """Gentoo builds in /usr/src/linux itself; make refuses O= next to that, kcheck's shadow does not."""
    # A real copy of what Kconfig and conf's build read (a tree of symlinks out of itself is refused
    # as a tree whose Kconfig files leave it).
    root = aufs_trees.copy_tree(linux_6_1, tmp_path / "linux", "6.1", kconfig=True)
    (root / "include" / "config").mkdir(parents=True)  # what an in-tree build leaves
    shutil.copyfile(make_config(linux_6_1, "defconfig"), root / ".config")
    result = fix("-d", "btrfs", "-k", root, "--write")
    assert result.exit_code == 0, result.output
    assert "Verified by the kernel's own conf" in result.output
    written = realkernel.read_assignments(root / ".config")
    assert realkernel.read_assignments(make_config(linux_6_1, "olddefconfig", root / ".config")) == written
    assert written["BTRFS_FS"] in ("y", "m")
    assert not (linux_6_1 / ".config").exists()


def test_without_a_toolchain_the_plan_says_it_was_verified_by_the_engine_only(linux_6_1, make_config, tmp_path, monkeypatch):
    monkeypatch.setattr(oracle, "TOOLS", {"kcheck-no-such-bison": "bison"})
    config = tmp_path / ".config"
    shutil.copyfile(make_config(linux_6_1, "defconfig"), config)
    result = fix("-d", "btrfs", "-k", linux_6_1, "-c", config, "--write")
    assert result.exit_code == 0, result.output
    assert "Verified by kcheck's engine only: the kernel's conf cannot be built here (no kcheck-no-such-bison)" in result.output
    assert realkernel.read_assignments(config)["BTRFS_FS"] in ("y", "m")


def test_a_terminated_fix_leaves_no_make_and_no_temporary_directory(linux_6_1, make_config, tmp_path):
    config = tmp_path / ".config"
    shutil.copyfile(make_config(linux_6_1, "defconfig"), config)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(private_tmp))
    proc = subprocess.Popen([sys.executable, "-m", "kcheck", "fix", "-d", "btrfs", "-k", str(linux_6_1), "-c", str(config)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(private_tmp.glob("kcheck-conf-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert any(private_tmp.glob("kcheck-conf-*")), "conf's run on the unchanged file never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM  # still ends by the signal, as a Python program does
    assert list(private_tmp.glob("kcheck-conf-*")) == []
    running = subprocess.run(["pgrep", "-f", f"KCONFIG_CONFIG={private_tmp}"], capture_output=True, text=True)
    assert running.stdout == ""
