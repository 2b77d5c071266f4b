"""Hostile trees and files: what another user wrote never runs, and no write loses a file.

kcheck runs as root from emerge on trees and files other users can write.
The code-execution cases here run the real ``kcheck`` executable twice: as
root and as an unprivileged user (``kcheck-hostile``, created with
``useradd`` when missing). Every malicious Kconfig line runs
``touch <marker>``; a marker that appears is code that ran. A trusted control
case shows that the probes do run when they should, so a marker's absence
means something.

The trees live under a world-readable temporary directory (pytest's own is
private to root), markers in a world-writable sticky one.
"""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "fixtures" / "kconfigs" / "minimal-6.1-overlay2.config"
KCHECK = str(Path(sys.executable).with_name("kcheck"))
USER = "kcheck-hostile"
#: A uid that is neither root nor the test user: "another user" whoever runs kcheck.
STRANGER = 54321
HEADER = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/{arch} 6.1.0 Kernel Configuration\n#\n"


def _ci() -> bool:
    return bool(os.environ.get("CI"))


def unprivileged_user() -> pwd.struct_passwd:
    """The unprivileged account the cases also run as (created when missing, as root)."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        if _ci():
            pytest.fail(f"CI needs root and useradd to create the user {USER}")
        pytest.skip(f"needs root and useradd to create the user {USER}")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                   check=True, capture_output=True)
    return pwd.getpwnam(USER)


@pytest.fixture
def work():
    """A world-readable scratch directory with a world-writable ``markers/``."""
    base = Path(tempfile.mkdtemp(prefix="kcheck-hostile-"))
    base.chmod(0o755)
    (base / "markers").mkdir()
    (base / "markers").chmod(0o1777)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _command_for(uid: int) -> tuple[list[str], dict[str, str]]:
    """How ``uid`` starts kcheck: the venv's own script, or (when the interpreter lives in root's private
    home, as pyenv's does) the system's python of the same version with this checkout and its packages."""
    try:
        subprocess.run([KCHECK, "--version"], user=uid, capture_output=True, check=True, timeout=60)
        return [KCHECK], {}
    except PermissionError:
        pass
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = next((p for p in (f"/usr/bin/{version}", f"/usr/local/bin/{version}") if os.access(p, os.X_OK)), None)
    if python is None:
        pytest.fail(f"the user {USER} can run neither {KCHECK} nor a system {version}")
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [*inherited, str(REPO / "src"), *dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
    return [python, "-c", "import sys; from kcheck.cli import main; sys.argv[0] = 'kcheck'; main()"], {
        "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture(params=["root", "user"])
def as_whom(request):
    """Who runs kcheck: ``(label, uid)``; ``uid`` None means this process's own user."""
    if request.param == "root":
        if os.geteuid() != 0:
            if _ci():
                pytest.fail("CI runs the hostile cases as root")
            pytest.skip("the root half of the hostile cases needs root")
        return "root", None
    if os.geteuid() != 0:
        return "user", None  # already unprivileged
    return "user", unprivileged_user().pw_uid


_COMMANDS: dict[int, tuple[list[str], dict[str, str]]] = {}


def kcheck(argv, uid=None, env=None, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    command, extra = [KCHECK], {}
    if uid is not None:
        if uid not in _COMMANDS:
            _COMMANDS[uid] = _command_for(uid)
        command, extra = _COMMANDS[uid]
        extra = {**extra, "HOME": "/nonexistent"}
    full_env = {**os.environ, "NO_COLOR": "1", "KERNEL_DIR": "", "KBUILD_OUTPUT": "", **extra, **(env or {})}
    return subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, env=full_env,
                          timeout=timeout, user=uid, stdin=subprocess.DEVNULL, errors="replace", **kwargs)


def touch(marker: Path) -> str:
    """A Kconfig expression whose evaluation creates ``marker``."""
    return f"$(shell,touch {marker} && echo y)"


def make_tree(base: Path, kconfig: str, files: dict[str, str] | None = None, arch: str = "x86") -> Path:
    """A small kernel-like tree (root's, 0755) whose top Kconfig is ``kconfig``; ``.config`` names ``arch``."""
    tree = base / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (tree / "arch/x86/Kconfig").write_text("config X86\n\tdef_bool y\n")
    (tree / ".config").write_text(HEADER.format(arch=arch) + "".join(
        ln for ln in GOOD.read_text().splitlines(True) if "# Linux/" not in ln))
    (tree / "Kconfig").write_text('mainmenu "hostile"\n' + kconfig)
    for name, text in (files or {}).items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    return tree


def front_ends(tree: Path, base: Path) -> dict[str, list]:
    """The commands that parse a tree: check, explain, lint and fix."""
    return {
        "check": ["-d", "overlay2", "--no-host", "-k", tree],
        "explain": ["explain", "-k", tree, "OVERLAY_FS"],
        "lint": ["lint", "-d", "overlay2", "-k", tree, tree / ".config"],
        "fix": ["fix", "-d", "overlay2", "-k", tree],
    }


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kcheck: "), proc.stderr
    return proc.stderr


# --- Code execution: the tree decides nothing outside itself ------------------------------------------------


def escape_by_header(base: Path, marker: Path) -> tuple[Path, str]:
    (base / "evil").mkdir()
    (base / "evil/Kconfig").write_text(f"config EVIL\n\tdef_bool {touch(marker)}\n")
    tree = make_tree(base, 'source "arch/$(SRCARCH)/Kconfig"\n', arch="../../evil")
    return tree, "is not an architecture name"


def escape_by_symlinked_arch(base: Path, marker: Path) -> tuple[Path, str]:
    (base / "evil").mkdir()
    (base / "evil/Kconfig").write_text(f"config EVIL\n\tdef_bool {touch(marker)}\n")
    tree = make_tree(base, 'source "arch/$(SRCARCH)/Kconfig"\n', arch="evil")
    (tree / "arch/evil").symlink_to(base / "evil")
    return tree, "has no arch/evil"


def escape_by_absolute_source(base: Path, marker: Path) -> tuple[Path, str]:
    (base / "evil").mkdir()
    (base / "evil/Kconfig").write_text(f"config EVIL\n\tdef_bool {touch(marker)}\n")
    return make_tree(base, f'source "{base}/evil/Kconfig"\n'), "leaves the kernel tree"


def escape_by_dotdot_source(base: Path, marker: Path) -> tuple[Path, str]:
    (base / "evil").mkdir()
    (base / "evil/Kconfig").write_text(f"config EVIL\n\tdef_bool {touch(marker)}\n")
    return make_tree(base, 'source "../evil/Kconfig"\n'), "leaves the kernel tree"


def escape_by_symlinked_dir(base: Path, marker: Path) -> tuple[Path, str]:
    (base / "evil").mkdir()
    (base / "evil/Kconfig").write_text(f"config EVIL\n\tdef_bool {touch(marker)}\n")
    tree = make_tree(base, 'source "fs/Kconfig"\n')
    (tree / "fs").symlink_to(base / "evil")
    return tree, "leaves the kernel tree"


ESCAPES = [escape_by_header, escape_by_symlinked_arch, escape_by_absolute_source, escape_by_dotdot_source,
           escape_by_symlinked_dir]


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda f: f.__name__)
def test_nothing_outside_the_tree_is_read_or_run(escape, work, as_whom):
    """Every front end refuses with one line and status 2; the marker never appears.

    All four front ends for the header case (the one each of them reaches
    differently); the check alone for the others, which share its parse.
    """
    _, uid = as_whom
    marker = work / "markers" / "pwned"
    tree, fragment = escape(work, marker)
    commands = front_ends(tree, work)
    if escape is not escape_by_header:
        commands = {"check": commands["check"]}
    for name, argv in commands.items():
        proc = kcheck(argv, uid)
        assert not marker.exists(), f"{name} ran the escaped Kconfig's probe"
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert fragment in one_line(proc), (name, proc.stderr)


def test_the_emerge_hook_refuses_a_header_arch_from_a_users_build_dir(work):
    """The docker post-install hook with KBUILD_OUTPUT at a user's build dir: a warning, nothing runs, exit 0."""
    marker = work / "markers" / "pwned"
    tree, _ = escape_by_header(work, marker)
    build = work / "build"
    build.mkdir()
    shutil.move(tree / ".config", build / ".config")
    proc = kcheck(["portage-hook", "run", "--phase", "post_pkg_postinst", "--category", "app-containers",
                   "--pn", "docker", "--root", work, "--kernel-dir", tree], env={"KBUILD_OUTPUT": str(build)})
    assert not marker.exists()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "warn " in proc.stdout and "is not an architecture name" in proc.stdout, proc.stdout


def test_arch_from_the_environment_is_checked_too(work, as_whom):
    _, uid = as_whom
    marker = work / "markers" / "pwned"
    tree, _ = escape_by_header(work, marker)
    # No header line: $ARCH decides.
    (tree / ".config").write_text("".join(ln for ln in GOOD.read_text().splitlines(True) if "# Linux/" not in ln))
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree], uid, env={"ARCH": "../../evil"})
    assert not marker.exists()
    assert proc.returncode == 2 and "is not an architecture name" in one_line(proc)


# --- Code execution: every part of the tree must be trusted -------------------------------------------------


def _owned_by_stranger(path: Path) -> None:
    os.lchown(path, STRANGER, STRANGER)


def part_dir(tree: Path, marker: Path) -> None:
    (tree / "fs").chmod(0o755)
    _owned_by_stranger(tree / "fs")


def part_file(tree: Path, marker: Path) -> None:
    _owned_by_stranger(tree / "fs/Kconfig")


def part_world_writable(tree: Path, marker: Path) -> None:
    (tree / "fs").chmod(0o777)


def part_directory_above(tree: Path, marker: Path) -> None:
    sub = tree / "fs/sub"
    sub.mkdir()
    shutil.move(tree / "fs/Kconfig", sub / "Kconfig")
    (tree / "Kconfig").write_text((tree / "Kconfig").read_text().replace("fs/Kconfig", "fs/sub/Kconfig"))
    _owned_by_stranger(tree / "fs")


def part_probe_script(tree: Path, marker: Path) -> None:
    script = tree / "scripts/probe.sh"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho y\n")
    script.chmod(0o755)
    _owned_by_stranger(script)
    (tree / "fs/Kconfig").write_text("config PROBE\n\tdef_bool $(shell,$(srctree)/scripts/probe.sh)\n")


def part_top(tree: Path, marker: Path) -> None:
    _owned_by_stranger(tree)


def part_script_neighbour(tree: Path, marker: Path) -> None:
    """A trusted probe script that runs the file beside it, which another user owns."""
    scripts = tree / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "probe.sh").write_text('#!/bin/sh\n"$(dirname "$0")/helper.sh"\n')
    (scripts / "helper.sh").write_text(f"#!/bin/sh\ntouch {marker}\necho y\n")
    for name in ("probe.sh", "helper.sh"):
        (scripts / name).chmod(0o755)
    _owned_by_stranger(scripts / "helper.sh")
    (tree / "fs/Kconfig").write_text("config PROBE\n\tdef_bool $(shell,$(srctree)/scripts/probe.sh)\n")


def part_script_neighbour_link(tree: Path, marker: Path) -> None:
    """A root-owned symlink beside the probe script, pointing to a file another user owns."""
    part_script_neighbour(tree, marker)
    (tree / "scripts/helper-link").symlink_to("helper.sh")


UNTRUSTED_PARTS = [part_dir, part_file, part_world_writable, part_directory_above, part_probe_script,
                   part_script_neighbour, part_script_neighbour_link, part_top]


@pytest.mark.parametrize("untrusted", UNTRUSTED_PARTS, ids=lambda f: f.__name__)
def test_no_probe_runs_from_a_part_another_user_owns(untrusted, work, as_whom):
    """A root-owned tree with one part another user controls: checked, noted, and nothing of it runs."""
    if os.geteuid() != 0:
        pytest.skip("handing a file to another uid needs root")
    _, uid = as_whom
    marker = work / "markers" / "pwned"
    tree = make_tree(work, 'source "fs/Kconfig"\n', {"fs/Kconfig": f"config EVIL\n\tdef_bool {touch(marker)}\n"})
    untrusted(tree, marker)
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree], uid)
    assert not marker.exists(), "a probe of an untrusted part ran"
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert "probes were not run" in proc.stdout + proc.stderr, proc.stdout


def test_a_trusted_tree_runs_its_probes(work, as_whom):
    """The control: the same tree, all of it root's, runs the probe (so an absent marker above means something)."""
    _, uid = as_whom
    marker = work / "markers" / "ran"
    tree = make_tree(work, 'source "fs/Kconfig"\n', {"fs/Kconfig": f"config GOOD\n\tdef_bool {touch(marker)}\n"})
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree], uid)
    assert proc.returncode in (0, 1), proc.stderr
    assert marker.exists()
    assert "probes were not run" not in proc.stdout + proc.stderr


def test_a_symlink_beside_a_probe_script_is_judged_by_its_target(work, as_whom):
    """Linux 7.3 has scripts/kernel-doc -> kernel-doc.py: a link's mode bits (always 0777) are no reason to refuse."""
    _, uid = as_whom
    marker = work / "markers" / "ran"
    tree = make_tree(work, 'source "fs/Kconfig"\n', {"fs/Kconfig": "config GOOD\n\tdef_bool $(shell,$(srctree)/scripts/probe.sh)\n"})
    scripts = tree / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "probe.sh").write_text(f"#!/bin/sh\ntouch {marker}\necho y\n")
    (scripts / "probe.sh").chmod(0o755)
    (scripts / "tool.py").write_text("")
    (scripts / "tool").symlink_to("tool.py")
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree], uid)
    assert proc.returncode in (0, 1), proc.stderr
    assert marker.exists(), proc.stdout + proc.stderr
    assert "probes were not run" not in proc.stdout + proc.stderr


# --- Code execution: the prefetch runs only what the parse expands ------------------------------------------

NEVER = ("comment", "trailing", "help", "unsourced", "assignment-comment")


def prefetch_tree(base: Path, markers: Path) -> Path:
    m = {name: markers / name for name in (*NEVER, "control", "if-n")}
    kconfig = (
        'source "scripts/Kconfig.include"\n'
        f"# $(shell,touch {m['comment']})\n"
        f"config A\n\tbool \"a\" # {touch(m['trailing'])}\n"
        f"config B\n\tbool \"b\"\n\thelp\n\t  {touch(m['help'])}\n"
        f"config C\n\tdef_bool {touch(m['control'])}\n"
        f"if n\nconfig D\n\tdef_bool {touch(m['if-n'])}\nendif\n"
        f"config E\n\tbool \"e\"\n\t# $(shell,touch {m['assignment-comment']})\n"
        'source "arch/$(SRCARCH)/Kconfig"\n'
    )
    files = {
        "scripts/Kconfig.include": "cc-option = y\n",
        # One of the files the prefetch starts early, but this tree never sources it.
        "lib/Kconfig.kmsan": f"config K\n\tdef_bool {touch(m['unsourced'])}\n",
    }
    return make_tree(base, kconfig, files)


def test_the_prefetch_runs_exactly_what_the_parse_runs(work, as_whom, tmp_path):
    """kcheck's probes are those a plain sequential kconfiglib parse of the tree runs: no more, no fewer."""
    _, uid = as_whom
    tree = prefetch_tree(work, work / "markers")
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree], uid)
    assert proc.returncode in (0, 1), proc.stderr
    ran = {p.name for p in (work / "markers").iterdir()}

    oracle_dir = tmp_path / "oracle"
    oracle_dir.mkdir()
    oracle_tree = tmp_path / "oracle-tree"
    shutil.copytree(tree, oracle_tree, symlinks=True)
    for path in oracle_tree.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace(str(work / "markers"), str(oracle_dir)))
    script = "import kconfiglib; kconfiglib.Kconfig('Kconfig', warn=False)"
    subprocess.run([sys.executable, "-c", script], cwd=oracle_tree, check=True,
                   env={**os.environ, "srctree": str(oracle_tree), "SRCARCH": "x86", "ARCH": "x86"})
    expected = {p.name for p in oracle_dir.iterdir()}
    assert "control" in expected and not set(NEVER) & expected
    assert ran == expected


@pytest.mark.sweep  # builds the kernel's conf (about a minute)
@pytest.mark.realtree
def test_the_kernels_own_conf_runs_the_same_probes(work, tmp_path, linux_6_12):
    """The ground truth behind the oracle above: Linux's conf expands lines in ``if n`` blocks too
    (measured: the issue thought it did not), and never comments, trailing comments, help or unsourced files."""
    import realkernel

    build = tmp_path / "build"
    realkernel.make_config(linux_6_12, "defconfig", outdir=build)
    tree = prefetch_tree(work, work / "markers")
    conf_dir = tmp_path / "conf-markers"
    conf_dir.mkdir()
    conf_tree = tmp_path / "conf-tree"
    shutil.copytree(tree, conf_tree, symlinks=True)
    for path in conf_tree.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace(str(work / "markers"), str(conf_dir)))
    subprocess.run([str(build / "scripts/kconfig/conf"), "--olddefconfig", "Kconfig"], cwd=conf_tree, check=True,
                   capture_output=True, env={**os.environ, "srctree": str(conf_tree), "SRCARCH": "x86"})
    proc = kcheck(["-d", "overlay2", "--no-host", "-k", tree])
    assert proc.returncode in (0, 1), proc.stderr
    assert {p.name for p in (work / "markers").iterdir()} == {p.name for p in conf_dir.iterdir()} == {"control",
                                                                                                    "if-n"}


# --- Other code paths: --no-shell, SIGTERM, the hook's bound -------------------------------------------------


def test_no_shell_runs_nothing_at_all(work):
    """--no-shell runs no probe and no '$CC --version' either (the compiler is a program too)."""
    marker = work / "markers"
    fake = work / "bin"
    fake.mkdir()
    for tool in ("gcc", "rustc"):
        (fake / tool).write_text(f"#!/bin/sh\ntouch {marker}/{tool}\necho '{tool} (fake) 1.0'\n")
        (fake / tool).chmod(0o755)
    tree = make_tree(work, f"config P\n\tdef_bool {touch(marker / 'probe')}\n")
    # 6.12's Makefile asks rustc for RUSTC_VERSION_TEXT too (6.1's does not).
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    env = {"PATH": f"{fake}:{os.environ['PATH']}", "CC": "", "RUSTC": ""}
    proc = kcheck(["-d", "overlay2", "--no-host", "--no-shell", "-k", tree], env=env)
    assert proc.returncode in (0, 1), proc.stderr
    assert sorted(p.name for p in marker.iterdir()) == []
    with_shell = kcheck(["-d", "overlay2", "--no-host", "-k", tree], env=env)
    assert with_shell.returncode in (0, 1)
    assert sorted(p.name for p in marker.iterdir()) == ["gcc", "probe", "rustc"]  # the control


def test_sigterm_during_a_parse_leaves_no_scratch_directory(work, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    tree = make_tree(work, "config SLOW\n\tdef_bool $(shell,sleep 30 && echo y)\n")
    env = {**os.environ, "TMPDIR": str(scratch), "NO_COLOR": "1", "KERNEL_DIR": ""}
    proc = subprocess.Popen([KCHECK, "-d", "overlay2", "--no-host", "-k", str(tree)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not list(scratch.glob("kcheck-probes-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(scratch.glob("kcheck-probes-*")), "the parse never started its probes"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == -signal.SIGTERM, err
    assert "Traceback" not in err
    assert list(scratch.glob("kcheck-probes-*")) == []


def test_the_emerge_hook_gives_up_after_its_time_bound(work, tmp_path):
    """A tree whose probe never ends: the hook warns after KCHECK_HOOK_TIMEOUT and lets emerge go on."""
    tree = make_tree(work, "config SLOW\n\tdef_bool $(shell,sleep 60 && echo y)\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    started = time.monotonic()
    proc = kcheck(["portage-hook", "run", "--phase", "post_pkg_postinst", "--category", "app-containers",
                   "--pn", "docker", "--root", work, "--kernel-dir", tree],
                  env={"KCHECK_HOOK_TIMEOUT": "2", "TMPDIR": str(scratch)}, timeout=40)
    took = time.monotonic() - started
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "did not finish within 2 s" in proc.stdout and proc.stdout.startswith("warn "), proc.stdout
    assert took < 15
    assert list(scratch.glob("kcheck-probes-*")) == []


def test_the_hook_with_an_empty_eroot_creates_nothing(tmp_path):
    proc = kcheck(["portage-hook", "run", "--phase", "pre_pkg_setup", "--category", "sys-fs", "--pn", "aufs3",
                   "--root", ""], cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "not an absolute path" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("evidence", [{"tree": 5}, [1, 2], {"tree": "/x", "build_dir": "/x", "exports": 3},
                                      {"tree": "/x", "build_dir": "/x", "prfile": "yesterday"}],
                         ids=["wrong type", "not an object", "exports not a list", "time not a number"])
def test_a_stale_or_foreign_snapshot_is_ignored(evidence, tmp_path):
    """A snapshot another kcheck version (or someone) wrote never makes the hook crash."""
    state = tmp_path / "var/lib/kcheck"
    state.mkdir(parents=True, mode=0o700)
    (state / "snapshot-sys-fs_aufs3.json").write_text(json.dumps({"evidence": evidence}))
    tree = make_tree(tmp_path, "")
    (tree / "mm").mkdir()
    (tree / "mm/prfile.c").write_text("/* aufs */\n")
    (tree / "fs").mkdir()
    (tree / "fs/dcache.c").write_text("EXPORT_SYMBOL_GPL(d_walk);\n")
    proc = kcheck(["portage-hook", "run", "--phase", "post_pkg_postinst", "--category", "sys-fs", "--pn", "aufs3",
                   "--root", tmp_path, "--kernel-dir", tree])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "ignored the snapshot" in proc.stdout, proc.stdout


def test_a_full_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        for argv in (["drivers"], ["-d", "overlay2", "--no-host", "-c", GOOD]):
            proc = subprocess.run([KCHECK, *map(str, argv)], stdout=full, stderr=subprocess.PIPE, text=True,
                                  timeout=60)
            assert proc.returncode == 2 and proc.stderr.startswith("kcheck: cannot write the output"), proc.stderr
            assert proc.stderr.count("\n") == 1


def test_lint_globs_do_not_follow_symlinked_directories(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    shutil.copy(GOOD, tmp_path / "a/b/x.config")
    (tmp_path / "a/b/loop").symlink_to("..")
    (tmp_path / "a/up").symlink_to(tmp_path)
    proc = kcheck(["lint", "-d", "overlay2", f"{tmp_path}/**/*.config"], timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 configuration checked" in proc.stderr + proc.stdout


# --- Wrong answers on odd but valid input --------------------------------------------------------------------


def test_kconfig_mode_reads_gzip_and_non_utf8_as_plain_mode_does(work):
    """A .gz or non-UTF-8 configuration gets the same Kconfig verdicts as the same file, plain and UTF-8."""
    tree = make_tree(work, "config OVERLAY_FS\n\ttristate \"o\"\nconfig LOCALVERSION\n\tstring \"v\"\n")
    text = (tree / ".config").read_bytes()
    (work / "clean.config").write_bytes(text + b'CONFIG_LOCALVERSION="cafe"\n')
    (work / "latin1.config").write_bytes(text + b'CONFIG_LOCALVERSION="caf\xe9"\n')
    (work / "c.config.gz").write_bytes(gzip.compress(text + b'CONFIG_LOCALVERSION="cafe"\n'))

    def findings(name):
        proc = kcheck(["-d", "overlay2", "--no-host", "-c", work / name, "-k", tree, "--format", "json"])
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
        report = json.loads(proc.stdout)
        assert report["input"]["mode"] == "kconfig"
        return proc.returncode, [(f["symbol"], f["status"]) for f in report["findings"]]

    assert findings("latin1.config") == findings("clean.config") == findings("c.config.gz")


def test_every_gzip_member_is_read(tmp_path):
    text = GOOD.read_bytes()
    half = text.index(b"\n", len(text) // 2) + 1
    (tmp_path / "c.gz").write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:]))
    whole = kcheck(["-d", "overlay2", "--no-host", "-c", GOOD, "--format", "json"])
    members = kcheck(["-d", "overlay2", "--no-host", "-c", tmp_path / "c.gz", "--format", "json"])
    assert members.returncode == whole.returncode == 0
    assert members.stdout.count('"fail"') == whole.stdout.count('"fail"')


@pytest.mark.parametrize("separator", ["\f", "\x85", "\u2028", "\v", "\x1c"])
def test_only_newline_ends_a_line(separator, tmp_path):
    path = tmp_path / "c.config"
    path.write_text(f"# a comment{separator}with an odd character\n" + GOOD.read_text() + "CONFIG_OVERLAY_FS=y\n",
                    encoding="utf-8")
    lines = 1 + GOOD.read_text().count("\n") + 1
    proc = kcheck(["-d", "overlay2", "--no-host", "-c", path])
    assert f"c.config:{lines}: CONFIG_OVERLAY_FS is assigned again" in proc.stdout, proc.stdout


@pytest.mark.sweep  # 15 s; the bad-input corpus has the same flood at 50,000 lines
def test_a_flood_of_duplicates_is_summarised(tmp_path):
    path = tmp_path / "c.config"
    path.write_bytes(GOOD.read_bytes() + b"CONFIG_OVERLAY_FS=y\n" * 780_000)
    proc = kcheck(["-d", "overlay2", "--no-host", "-c", path], timeout=120)
    assert proc.returncode == 0
    assert len(proc.stdout) < 50_000
    assert "779980 more lines like these" in proc.stdout


# --- Data loss ------------------------------------------------------------------------------------------------


@pytest.fixture
def fixable(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_bad_inputs import fixable_tree

    return fixable_tree(tmp_path)


def test_an_edit_during_fix_is_never_lost(fixable, monkeypatch):
    """The file changes between read and write: exit 1, the edit kept, nothing written, no backup made."""
    from click.testing import CliRunner

    import kcheck.fix.cli as fix_cli
    from kcheck.cli import main

    config = fixable / ".config"
    plan_for_tree = fix_cli.plan_for_tree

    def plan_then_edit(*args, **kwargs):
        result = plan_for_tree(*args, **kwargs)
        with config.open("a") as fh:
            fh.write("CONFIG_EDITED_MEANWHILE=y\n")
        return result

    monkeypatch.setattr(fix_cli, "plan_for_tree", plan_then_edit)
    result = CliRunner().invoke(main, ["fix", "-d", "overlay2", "-k", str(fixable), "--write"])
    assert result.exit_code == 1, result.output
    assert "changed since kcheck read it" in result.output
    assert config.read_text().endswith("CONFIG_EDITED_MEANWHILE=y\n")
    assert sorted(p.name for p in fixable.iterdir()) == [".config", "Kconfig", "Makefile"]


def test_two_fixes_at_once_keep_the_original(fixable):
    config = fixable / ".config"
    original = config.read_bytes()
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [KCHECK, "fix", "-d", "overlay2", "-k", str(fixable), "--write"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(code in (0, 1) and "Traceback" not in err for code, err in results), results
    assert (fixable / ".config.old").read_bytes() == original
    assert config.read_bytes() != original
    assert not list(fixable.glob(".*kcheck*"))


def test_a_symlinked_config_is_written_through(fixable, tmp_path):
    real = tmp_path / "kept" / "config"
    real.parent.mkdir()
    shutil.move(fixable / ".config", real)
    (fixable / ".config").symlink_to(real)
    before = real.read_bytes()
    proc = kcheck(["fix", "-d", "overlay2", "-k", fixable, "--write"])
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {real} through the symlink {fixable / '.config'}" in proc.stdout
    assert (fixable / ".config").is_symlink() and os.readlink(fixable / ".config") == str(real)
    assert real.read_bytes() != before and (real.parent / "config.old").read_bytes() == before


def test_a_planted_symlink_anywhere_on_the_path_is_refused(fixable, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("planting another user's symlink needs root")
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    elsewhere = tmp_path / "victim"
    (elsewhere / "dir").mkdir(parents=True)
    (sticky / "link").symlink_to(elsewhere)
    os.lchown(sticky / "link", STRANGER, STRANGER)
    target = sticky / "link" / "dir" / "out.config"
    proc = kcheck(["fix", "-d", "overlay2", "-k", fixable, "--output", target])
    assert proc.returncode == 2 and "is a symlink owned by uid 54321" in one_line(proc)
    assert list((elsewhere / "dir").iterdir()) == []


def test_output_onto_a_device_leaves_it_a_device(fixable, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    node = tmp_path / "null"
    os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))
    proc = kcheck(["fix", "-d", "overlay2", "-k", fixable, "--output", node])
    assert proc.returncode == 2 and "not a regular file" in one_line(proc)
    assert os.stat(node).st_rdev == os.makedev(1, 3) and not node.is_file()


def test_output_dash_is_stdout(fixable):
    proc = kcheck(["fix", "-d", "overlay2", "-k", fixable, "--output", "-"], cwd=fixable)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#\n# Automatically generated file; DO NOT EDIT.\n")
    assert "\nCONFIG_OVERLAYFS_FS=m\n" in proc.stdout and "kcheck fix:" in proc.stderr
    assert not (fixable / "-").exists()
