"""Shell completion through click's own hooks: drivers, Choice values, subcommands, symbol names.

The hooks are the ones a shell calls: ``_KCHECK_COMPLETE=bash_complete`` with
``COMP_WORDS``/``COMP_CWORD`` in the environment. The shipped scripts are
compared with what the CLI generates, and the bash one is run in a real bash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kcheck.cli import LAZY_COMMANDS, main
from kcheck.completion import SCRIPTS
from kcheck.kconfig import names
from kcheck.profile import load_shipped, shipped_names

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "src" / "kcheck" / "data"
KCHECK = Path(sys.executable).with_name("kcheck")


def complete(line: str, **env: str) -> list[str]:
    """What bash would be offered for ``line`` (the word under the cursor is the last, maybe empty)."""
    words = line.split(" ")
    result = CliRunner().invoke(
        main, [], prog_name="kcheck",
        env={"_KCHECK_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), **env},
    )
    assert result.exit_code == 0, result.output
    return [item.split(",", 1)[1] for item in result.output.splitlines() if item.startswith("plain,")]


DRIVERS = sorted(n for n in shipped_names() if load_shipped(n).kind == "driver")


def test_driver_values_complete_in_every_command_that_takes_one():
    assert {"overlay2", "aufs", "btrfs", "zfs"} <= set(DRIVERS) and "docker" not in DRIVERS
    assert sorted(complete("kcheck --driver ")) == DRIVERS
    assert complete("kcheck fix -d ov") == ["overlay2"]
    assert complete("kcheck lint --driver fu") == ["fuse-overlayfs"]


def test_driver_values_follow_the_runtime_typed_before():
    """podman names its drivers podman's way, containerd has snapshotters."""
    assert "overlay" in complete("kcheck --runtime podman --driver ")
    assert "overlay2" not in complete("kcheck --runtime podman --driver ")
    assert complete("kcheck --runtime containerd -d na") == ["native"]
    assert complete("kcheck fix --runtime podman -d ov") == ["overlay"]


def test_subcommands_complete():
    assert set(LAZY_COMMANDS) <= set(complete("kcheck "))
    assert complete("kcheck ex") == ["explain"]


def _choice_options():
    """(command words, option, choices) for every click.Choice option of every command."""
    ctx = click.Context(main)
    found = []
    commands = [([], main)] + [([name], main.get_command(ctx, name)) for name in main.list_commands(ctx)]
    for words, command in commands:
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
                found.append((words, param.opts[0], [str(c) for c in param.type.choices]))
    return found


def test_every_choice_option_completes_its_values():
    """Generic: --format today, and every fixed set a later option brings (--runtime, --firewall...)."""
    options = _choice_options()
    assert any(opt == "--format" for _, opt, _ in options)
    for words, opt, choices in options:
        assert complete(" ".join(["kcheck", *words, opt, ""])) == choices, (words, opt)


def write_tree(root: Path) -> Path:
    root.mkdir()
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (root / "Kconfig").write_text(textwrap.dedent("""\
        mainmenu "test"
        config FOO
        	bool "foo"
        menuconfig FOO_BAR
        	tristate "foo bar"
        source "fs/Kconfig"
        """))
    (root / "fs").mkdir()
    (root / "fs" / "Kconfig").write_text('config FS_THING\n\tbool "x"\n  config   FOO_INDENTED # a comment\n\tbool\n')
    (root / "Documentation").mkdir()
    (root / "Documentation" / "Kconfig").write_text("config FOO_FROM_DOCS\n")
    return root


def test_symbol_names_complete_from_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "linux")
    assert complete(f"kcheck explain -k {tree} FO") == ["FOO", "FOO_BAR", "FOO_INDENTED"]
    assert complete(f"kcheck explain -k {tree} config_foo_") == ["CONFIG_FOO_BAR", "CONFIG_FOO_INDENTED"]
    # Without -k: $KERNEL_DIR, as for the check.
    assert complete("kcheck explain FS", KERNEL_DIR=str(tree)) == ["FS_THING"]
    assert complete(f"kcheck explain -k {tmp_path / 'nowhere'} FO") == []


def test_names_are_cached_and_follow_a_patch_of_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "linux")
    assert "AUFS_FS" not in names.symbol_names(tree)
    entry = names.entry_path(tree)
    assert entry.is_file() and oct(entry.parent.stat().st_mode & 0o777) == "0o700"
    # The way aufs-sources patches a tree: a new Kconfig file, sourced from an edited one.
    (tree / "fs" / "aufs").mkdir()
    (tree / "fs" / "aufs" / "Kconfig").write_text('config AUFS_FS\n\ttristate "aufs"\n')
    with open(tree / "fs" / "Kconfig", "a") as fh:
        fh.write('source "fs/aufs/Kconfig"\n')
    assert "AUFS_FS" in names.symbol_names(tree)


def planted_entry(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A tree whose names entry, still ours and well-formed, has FOO renamed PLANTED: (tree, entry)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "linux")
    names.symbol_names(tree)
    entry = names.entry_path(tree)
    entry.write_text(entry.read_text().replace('"FOO"', '"PLANTED"'))
    assert "PLANTED" in names.symbol_names(tree)  # ours and well-formed: used as it is
    return tree, entry


def test_a_cache_entry_someone_else_could_write_is_ignored(tmp_path, monkeypatch):
    tree, entry = planted_entry(tmp_path, monkeypatch)
    entry.chmod(0o666)
    assert "PLANTED" not in names.symbol_names(tree)  # group/other-writable: rescanned
    names.entry_path(tree).write_text("{not json")
    assert "FOO" in names.symbol_names(tree)


def test_a_names_entry_under_a_cache_base_others_can_write_is_ignored(tmp_path, monkeypatch):
    """The parse cache's rule, every directory up to the cache base: not just the entry's own directory."""
    tree, _ = planted_entry(tmp_path, monkeypatch)
    (tmp_path / "cache").chmod(0o777)  # whoever can write the base can swap kcheck/ for their own
    assert "PLANTED" not in names.symbol_names(tree)


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user needs root to make")
def test_a_names_entry_swapped_before_the_open_is_judged_as_opened(tmp_path, monkeypatch):
    """Another user's file put in the entry's place between the check and the open is never read."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "linux")
    names.symbol_names(tree)
    entry = names.entry_path(tree)
    planted = entry.with_name("planted")
    planted.write_text(entry.read_text().replace('"FOO"', '"PLANTED"'))
    os.chown(planted, 65534, 65534)
    real_open = os.open

    def racing_open(path, *args, **kwargs):
        if os.fspath(path) == str(entry) and planted.exists():
            os.replace(planted, entry)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", racing_open)
    found = names.symbol_names(tree)
    monkeypatch.undo()
    assert not planted.exists(), "the swap did not happen: the test proves nothing"
    assert "PLANTED" not in found and "FOO" in found


def test_the_scan_follows_no_symlink_and_reads_no_fifo(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = write_tree(tmp_path / "linux")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Kconfig").write_text("config OUTSIDE\n")
    (tree / "drivers").symlink_to(outside)
    (tree / "Kconfig.fifo").unlink(missing_ok=True)
    os.mkfifo(tree / "Kconfig.fifo")
    found = names.symbol_names(tree)  # a FIFO read would hang here
    assert "OUTSIDE" not in found and "FOO" in found


@pytest.mark.realtree
def test_real_tree_symbols_complete(linux_6_1):
    offered = complete(f"kcheck explain -k {linux_6_1} OVERLAY_FS")
    assert "OVERLAY_FS" in offered and "OVERLAY_FS_REDIRECT_DIR" in offered
    assert len(names.symbol_names(linux_6_1)) > 15_000


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_shipped_scripts_are_what_the_cli_generates(shell):
    result = CliRunner().invoke(main, [], prog_name="kcheck", env={"_KCHECK_COMPLETE": f"{shell}_source"})
    assert result.exit_code == 0
    shipped = (DATA / SCRIPTS[shell]).read_text()
    assert shipped == result.output, (
        f"src/kcheck/data/{SCRIPTS[shell]} is stale: regenerate it with "
        f"_KCHECK_COMPLETE={shell}_source kcheck > src/kcheck/data/{SCRIPTS[shell]}"
    )


def test_the_shipped_bash_script_completes_drivers_in_bash(tmp_path):
    """The file the ebuild installs, sourced by a real bash, calling the real kcheck."""
    bash = shutil.which("bash")
    assert bash is not None
    script = f"""
        source {DATA / SCRIPTS["bash"]}
        COMP_WORDS=(kcheck --driver o); COMP_CWORD=2
        _kcheck_completion kcheck
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = dict(os.environ, PATH=f"{KCHECK.parent}:{os.environ['PATH']}", XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([bash, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.split() == ["overlay2"], proc.stderr


def test_the_ebuilds_install_the_shipped_scripts():
    for ebuild in (REPO / "ebuild" / "app-portage" / "kcheck").glob("*.ebuild"):
        calls = re.findall(r"new(bash|zsh|fish)comp (src/kcheck/data/kcheck\.(\w+)) (\S+)", ebuild.read_text())
        assert all(shell == extension for shell, _, extension, _ in calls), calls
        installed = [(path, name) for _, path, _, name in calls]
        assert dict(installed) == {
            "src/kcheck/data/kcheck.bash": "kcheck", "src/kcheck/data/kcheck.zsh": "_kcheck",
            "src/kcheck/data/kcheck.fish": "kcheck.fish",
        }, ebuild.name
        for path, _ in installed:
            assert (REPO / path).is_file()
