"""The Kconfig layer's trust and writes: root never runs another user's probes; the writes survive faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from faults import ERRNOS, SIGNALS, failing, signal_when_stalled

import kconfig_trees as kt
from kcheck import safewrite
from kcheck.errors import KcheckError
from kcheck.kconfig import KconfigTree, cache

KCHECK = str(Path(sys.executable).with_name("kcheck"))
NOBODY = 65534

# The probe leaves a mark, so a test sees whether it ran, not only what it answered.
KCONFIG = """\
    config MODULES
    \tbool "modules"
    \tmodules
    \tdefault y

    config OVERLAY_FS
    \ttristate "overlay"
    \tdefault y

    config PROBED
    \tdef_bool $(shell,touch "$KCHECK_TEST_MARK"; echo y)
    """


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_MARK", str(tmp_path / "probe-ran"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    return kt.write_tree(tmp_path / "tree", KCONFIG)


def chown_tree(root: Path, uid: int) -> None:
    for path in (root, *root.rglob("*")):
        os.lchown(path, uid, uid)


def probed(tree: KconfigTree, tmp_path: Path) -> str:
    return tree.read(kt.write_config(tmp_path / "empty.config", "")).state("PROBED").value


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is about running as root")


@needs_root
def test_root_runs_the_probes_of_its_own_tree(tree, tmp_path):
    loaded = KconfigTree.load(tree, use_cache=False)
    assert loaded.shell_refused is None and loaded.allow_shell
    assert probed(loaded, tmp_path) == "y" and (tmp_path / "probe-ran").exists()


@needs_root
def test_root_never_runs_the_probes_of_another_users_tree(tree, tmp_path):
    chown_tree(tree, NOBODY)
    loaded = KconfigTree.load(tree, use_cache=False)
    assert not loaded.allow_shell
    assert f"belongs to uid {NOBODY}" in loaded.shell_refused and "were not run" in loaded.shell_refused
    assert probed(loaded, tmp_path) == "n" and not (tmp_path / "probe-ran").exists()


@needs_root
def test_the_invoking_user_of_sudo_is_trusted(tree, tmp_path, monkeypatch):
    chown_tree(tree, NOBODY)
    monkeypatch.setenv("SUDO_UID", str(NOBODY))
    loaded = KconfigTree.load(tree, use_cache=False)
    assert loaded.shell_refused is None and probed(loaded, tmp_path) == "y"


@needs_root
def test_the_report_says_the_probes_were_not_run(tree, tmp_path):
    chown_tree(tree, NOBODY)
    config = kt.write_config(tmp_path / "x.config", "CONFIG_MODULES=y\nCONFIG_OVERLAY_FS=y\n")
    proc = subprocess.run([KCHECK, "--no-host", "-d", "overlay2", "-c", str(config), "-k", str(tree)],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert f"input: {tree}: {tree} belongs to uid {NOBODY}" in proc.stdout, proc.stdout + proc.stderr
    assert not (tmp_path / "probe-ran").exists()


@pytest.mark.parametrize("no_shell", [False, True])
def test_lint_no_shell_runs_nothing(tree, tmp_path, no_shell):
    config = kt.write_config(tmp_path / "x.config", "CONFIG_MODULES=y\n")
    argv = [KCHECK, "lint", "-d", "overlay2", "-k", str(tree), "--jobs", "1", str(config)]
    proc = subprocess.run(argv + (["--no-shell"] if no_shell else []), capture_output=True, text=True)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
    assert (tmp_path / "probe-ran").exists() is not no_shell


# --- faults on the writes of the Kconfig layer ---------------------------------------------------

OLD = b"# the previous make olddefconfig output\nCONFIG_OLD=y\n"


@pytest.fixture
def loaded(tree, tmp_path):
    kconf_tree = KconfigTree.load(tree, use_cache=False)
    kconf_tree.read(kt.write_config(tmp_path / "in.config", "CONFIG_MODULES=y\n"))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".config").write_bytes(OLD)
    return kconf_tree, out / ".config"


@pytest.mark.parametrize("code", ERRNOS)
@pytest.mark.parametrize("where", ["mkstemp", "write", "fsync", "replace"])
def test_write_config_fault_keeps_the_old_file(loaded, monkeypatch, code, where):
    kconf_tree, target = loaded
    target_module = safewrite.tempfile if where == "mkstemp" else safewrite.os
    monkeypatch.setattr(target_module, where, failing(ERRNOS[code]))
    with pytest.raises(KcheckError, match=os.strerror(ERRNOS[code])):
        kconf_tree.write_config(target)
    monkeypatch.undo()
    assert target.read_bytes() == OLD and os.listdir(target.parent) == [".config"]


def test_write_config_writes_what_kconfiglib_writes(loaded, tmp_path):
    kconf_tree, target = loaded
    kconf_tree.write_config(target)
    reference = tmp_path / "reference.config"
    header = f"#\n# Automatically generated file; DO NOT EDIT.\n# {kconf_tree.kconf.mainmenu_text}\n#\n"
    kconf_tree.kconf.write_config(str(reference), header=header, save_old=False)
    assert target.read_bytes() == reference.read_bytes()
    assert "CONFIG_PROBED=y" in target.read_text() and os.listdir(target.parent) == [".config"]


@pytest.mark.parametrize("name", SIGNALS)
def test_write_config_signal_between_write_and_rename(tree, tmp_path, name):
    target = tmp_path / "out.config"
    target.write_bytes(OLD)
    signum, seconds = SIGNALS[name]
    status = signal_when_stalled(
        f"""
from kcheck.kconfig import KconfigTree
t = KconfigTree.load({str(tree)!r}, use_cache=False)
t.read({str(kt.write_config(tmp_path / "in.config", "CONFIG_MODULES=y"))!r})
os.replace = stall(os.replace, {seconds})
t.write_config({str(target)!r})
""",
        signum,
    )
    assert status == -signum
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.config.kcheck-"))
    if name == "SIGKILL":
        assert target.read_bytes() == OLD and len(left) <= 1  # only SIGKILL can leave the temporary file
    else:
        assert b"CONFIG_MODULES=y" in target.read_bytes() and left == []


@pytest.mark.parametrize("code", ERRNOS)
@pytest.mark.parametrize("where", ["mkstemp", "write", "replace"])  # no fsync: a torn entry fails its CRC
def test_cache_store_fault_keeps_the_old_entry(tree, monkeypatch, code, where):
    kconf_tree = KconfigTree.load(tree, use_cache=False)
    path = cache.entry_path(kconf_tree.srctree, kconf_tree.arch, True)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"an older entry")
    target_module = safewrite.tempfile if where == "mkstemp" else safewrite.os
    args = (str(kconf_tree.srctree), kconf_tree.arch, True, kconf_tree.env)
    with monkeypatch.context() as mp:  # the fault only: the fixture's XDG_CACHE_HOME stays
        mp.setattr(target_module, where, failing(ERRNOS[code]))
        assert cache.store(path, kconf_tree.kconf, *args) is False
    assert path.read_bytes() == b"an older entry" and os.listdir(path.parent) == [path.name]
    # Without the fault the same store succeeds and the entry loads.
    assert cache.store(path, kconf_tree.kconf, *args) is True
    assert cache.load(path, *args)[0] is not None


# --- a cached parse and trust that changed since ------------------------------------------------

SOURCED = """\
    config MODULES
    \tbool "modules"
    \tmodules
    \tdefault y

    source "fs/Kconfig"
    """
FS = """\
    config PROBED
    \tdef_bool $(shell,touch "$KCHECK_TEST_MARK"; echo y)
    config SCRIPTED
    \tdef_bool $(shell,$(srctree)/scripts/probe.sh)
    """


def _untrust_dir(root: Path) -> None:
    (root / "fs").chmod(0o777)


def _untrust_owner(root: Path) -> None:
    os.lchown(root / "fs" / "Kconfig", NOBODY, NOBODY)


def _untrust_script_dir(root: Path) -> None:
    (root / "scripts").chmod(0o777)


def _untrust_script_neighbour(root: Path) -> None:
    (root / "scripts" / "other.sh").write_text("#!/bin/sh\n")
    os.lchown(root / "scripts" / "other.sh", NOBODY, NOBODY)


@pytest.fixture
def sourced(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_MARK", str(tmp_path / "probe-ran"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    root = kt.write_tree(tmp_path / "tree", SOURCED, {"fs/Kconfig": FS, "scripts/probe.sh": "#!/bin/sh\necho y\n"})
    (root / "scripts" / "probe.sh").chmod(0o755)
    return root


def _values(tree: KconfigTree, tmp_path: Path) -> tuple:
    source = tree.read(kt.write_config(tmp_path / "empty.config", ""))
    return tree.allow_shell, source.state("PROBED").value, source.state("SCRIPTED").value


@needs_root
@pytest.mark.parametrize("untrust", [_untrust_dir, _untrust_owner, _untrust_script_dir, _untrust_script_neighbour],
                         ids=lambda f: f.__name__.removeprefix("_untrust_"))
def test_a_warm_run_after_the_tree_became_untrusted_is_a_cold_untrusted_parse(sourced, tmp_path, untrust):
    trusted = KconfigTree.load(sourced)
    cache.flush(close_output=False)
    assert _values(trusted, tmp_path) == (True, "y", "y") and trusted.shell_refused is None
    assert KconfigTree.load(sourced).from_cache  # the entry is there and valid while trusted

    untrust(sourced)
    (tmp_path / "probe-ran").unlink()
    cold = KconfigTree.load(sourced, use_cache=False)
    assert cold.shell_refused and _values(cold, tmp_path) == (False, "n", "n")
    warm = KconfigTree.load(sourced)
    cache.flush(close_output=False)
    assert not warm.from_cache, "the parse made with probes was reused for a tree whose probes are now refused"
    assert warm.shell_refused == cold.shell_refused and _values(warm, tmp_path) == (False, "n", "n")
    assert not (tmp_path / "probe-ran").exists()
    # The no-probe parse just written stands for the tree while it stays untrusted.
    again = KconfigTree.load(sourced)
    assert again.from_cache and again.shell_refused == cold.shell_refused and _values(again, tmp_path) == (False, "n", "n")


# --- the file judged is the file read ---------------------------------------------------------------

EARLY = """\
    cc-option = $(success,true)
    config MODULES
    \tbool "modules"
    \tmodules
    \tdefault y
    source "a/Kconfig"
    source "init/Kconfig"
    """
A_KCONFIG = """\
    config A
    \tstring
    \tdefault "$(srctree)"
    """
PLANTED = """\
    config PLANTED
    \tdef_bool $(shell,touch "$KCHECK_TEST_MARK"; echo y)
    """


@needs_root
def test_a_kconfig_file_planted_between_the_check_and_the_open_is_judged_as_opened(tmp_path, monkeypatch):
    """init/ is sticky and world-writable (allowed: nobody can replace another's file there), and
    init/Kconfig does not exist when kcheck looks. Another user creates it just before kcheck opens
    it: the probe prefetch, reading it early, must judge the file it opened, not the name it checked."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_MARK", str(tmp_path / "probe-ran"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    # Entering a/Kconfig, with the probe macro defined, prefetches the probes of init/Kconfig, which a
    # 'source' line of the top file announced.
    root = kt.write_tree(tmp_path / "tree", EARLY, {"a/Kconfig": A_KCONFIG})
    (root / "init").mkdir()
    (root / "init").chmod(0o1777)
    target = root / "init" / "Kconfig"

    def planting(original):
        def open_(path, *args, **kwargs):
            if str(path).endswith("init/Kconfig") and not target.exists():
                target.write_text(textwrap.dedent(PLANTED))
                os.chown(target, NOBODY, NOBODY)
            return original(path, *args, **kwargs)
        return open_

    from kcheck import readsafe
    for name in ("open_nonblocking", "open_path"):
        monkeypatch.setattr(readsafe, name, planting(getattr(readsafe, name)))
    # What was let through to run (whether the pool got to it before the parse stopped is timing).
    allowed: list[str] = []
    from kcheck.kconfig import probes
    allow = probes.ProbeRunner._allow
    monkeypatch.setattr(probes.ProbeRunner, "_allow", lambda self, command: (allowed.append(command), allow(self, command)))
    loaded = KconfigTree.load(root, use_cache=False)
    assert not [c for c in allowed if "KCHECK_TEST_MARK" in c], "a probe of a file another user planted was started"
    assert not (tmp_path / "probe-ran").exists()
    assert not loaded.allow_shell and f"belongs to uid {NOBODY}" in loaded.shell_refused


@needs_root
@pytest.mark.parametrize("layout", ["plain", "dir-777", "file-nobody", "link-nobody", "link-to-777", "sticky-dir"])
def test_the_warm_trust_check_agrees_with_the_cold_one(tmp_path, layout):
    """TrustGuard.check_stamped (one lstat a path, realpath only through a link) judges as check() does."""
    from kcheck.kconfig import trust

    (tmp_path / "real/sub").mkdir(parents=True)
    (tmp_path / "real/sub/Kconfig").write_text("")
    (tmp_path / "link").symlink_to("real")
    name = "link/sub/Kconfig" if layout.startswith("link") else "real/sub/Kconfig"
    if layout in ("dir-777", "link-to-777"):
        (tmp_path / "real/sub").chmod(0o777)
    elif layout == "sticky-dir":
        (tmp_path / "real/sub").chmod(0o1777)
    elif layout == "file-nobody":
        os.chown(tmp_path / "real/sub/Kconfig", NOBODY, NOBODY)
    elif layout == "link-nobody":
        os.lchown(tmp_path / "link", NOBODY, NOBODY)  # a link's owner says nothing; its directory and target do
    cold = trust.TrustGuard(tmp_path).check(tmp_path / name)
    assert trust.TrustGuard(tmp_path).check_stamped([name]) == cold
    assert (cold is None) == (layout in ("plain", "link-nobody", "sticky-dir"))
