"""The bad-input corpus: everything a user can throw at kcheck gets one clear line and a documented status.

Each case builds its input in a temporary directory and runs the real
``kcheck`` executable (a separate process, so nothing of pytest's can hide a
traceback). A case states the exit status it expects and a fragment of the
one line on stderr; no case may print a traceback. Cases that read fine but
are odd (duplicates, CRLF, non-UTF-8) check that the oddity is reported and
the check still runs.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "kconfigs"
GOOD = FIXTURES / "minimal-6.1-overlay2.config"
KCHECK = str(Path(sys.executable).with_name("kcheck"))


@dataclass
class Case:
    """One bad input: how to make it, the arguments, and what the user must see."""

    name: str
    make: Callable[[Path], list[str]]
    status: int
    fragment: str
    stream: str = "stderr"


def config_file(content: bytes, name: str = "bad.config"):
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_bytes(content)
        return ["-d", "overlay2", "-c", str(path)]

    return make


def good_with(*lines: str):
    return config_file(GOOD.read_bytes() + "\n".join(lines).encode() + b"\n")


def fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "fifo")
    return ["-d", "overlay2", "-c", str(tmp / "fifo")]


def symlink_loop(tmp: Path) -> list[str]:
    (tmp / "a").symlink_to(tmp / "b")
    (tmp / "b").symlink_to(tmp / "a")
    return ["-d", "overlay2", "-c", str(tmp / "a")]


def dangling_usr_src_linux(tmp: Path) -> list[str]:
    (tmp / "usr/src").mkdir(parents=True)
    (tmp / "usr/src/linux").symlink_to("linux-6.6.6-gentoo")
    return ["-d", "overlay2", "--root", str(tmp)]


def tree_without_kconfig(tmp: Path) -> list[str]:
    (tmp / "linux").mkdir()
    (tmp / "linux/Makefile").write_text("VERSION = 6\n")
    return ["-d", "overlay2", "--kernel-dir", str(tmp / "linux")]


def tree_without_config(tmp: Path) -> list[str]:
    (tmp / "linux").mkdir()
    (tmp / "linux/Makefile").write_text("VERSION = 6\n")
    (tmp / "linux/Kconfig").write_text('mainmenu "x"\n')
    return ["-d", "overlay2", "--kernel-dir", str(tmp / "linux")]


def empty_root(tmp: Path) -> list[str]:
    return ["-d", "overlay2", "--root", str(tmp)]


def huge_file(tmp: Path) -> list[str]:
    path = tmp / "huge.config"
    with path.open("wb") as handle:
        handle.write(GOOD.read_bytes())
        handle.truncate(100 * 1024 * 1024)
    return ["-d", "overlay2", "-c", str(path)]


def gzip_bomb(tmp: Path) -> list[str]:
    path = tmp / "bomb.config.gz"
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(b"CONFIG_A=y\n")
        chunk = b"#" * (1 << 20)
        for _ in range(40):
            handle.write(chunk)
    return ["-d", "overlay2", "-c", str(path)]


def profile(text: str):
    def make(tmp: Path) -> list[str]:
        path = tmp / "p.toml"
        path.write_text(text)
        return ["-d", "overlay2", "-c", str(GOOD), "--profile", str(path)]

    return make


def small_tree(tmp: Path, kconfig: str, config: bytes | None = None, arches: tuple[str, ...] = ()) -> Path:
    """A kernel-like tree: a 6.1 Makefile, ``kconfig`` as its Kconfig, a .config, and empty ``arch/<name>/Kconfig``."""
    tree = tmp / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (tree / "Kconfig").write_text(kconfig)
    (tree / ".config").write_bytes(GOOD.read_bytes() if config is None else config)
    for arch in arches:
        (tree / "arch" / arch).mkdir(parents=True)
        (tree / "arch" / arch / "Kconfig").write_text(f"config ARCH_{arch.upper()}\n\tdef_bool y\n")
    return tree


def kconfig_syntax_error(tmp: Path) -> list[str]:
    tree = small_tree(tmp, 'mainmenu "x"\nconfig A\n\tbool "a"\n\tdefault y if (\n')
    return ["-d", "overlay2", "--no-host", "--kernel-dir", str(tree)]


def config_for_another_arch(tmp: Path) -> list[str]:
    header = b"#\n# Automatically generated file; DO NOT EDIT.\n# Linux/arm64 6.1.0 Kernel Configuration\n#\n"
    tree = small_tree(tmp, 'mainmenu "x"\nsource "arch/$(SRCARCH)/Kconfig"\n', header + GOOD.read_bytes(), ("x86",))
    return ["-d", "overlay2", "--no-host", "--kernel-dir", str(tree)]


def daemon_json(text: str):
    def make(tmp: Path) -> list[str]:
        (tmp / "etc/docker").mkdir(parents=True)
        (tmp / "etc/docker/daemon.json").write_text(text)
        (tmp / "usr/src/linux").mkdir(parents=True)
        (tmp / "usr/src/linux/.config").write_bytes(GOOD.read_bytes())
        return ["--root", str(tmp)]

    return make


def fixable_tree(tmp: Path) -> Path:
    """A tree where every docker and overlay2 symbol is a free tristate, so ``kcheck fix`` has a plan to write."""
    from kcheck.profile import load_shipped

    names = {name for p in (load_shipped("docker"), load_shipped("overlay2")) for r in p.requirements for name in r.names}
    kconfig = 'mainmenu "fixable"\nconfig MODULES\n\tbool "modules"\n\tmodules\n'
    kconfig += "".join(f'config {name}\n\ttristate "{name}"\n' for name in sorted(names - {"MODULES"}))
    return small_tree(tmp, kconfig, b"CONFIG_MODULES=y\n")


def fix_into(where: str):
    def make(tmp: Path) -> list[str]:
        tree = fixable_tree(tmp)
        return ["fix", "-d", "overlay2", "-k", str(tree), "--output", str(tmp / where)]

    return make


def explain_in_small_tree(symbol: str):
    def make(tmp: Path) -> list[str]:
        tree = small_tree(tmp, 'mainmenu "x"\nconfig OVERLAY_FS\n\ttristate "o"\n')
        return ["explain", "--kernel-dir", str(tree), symbol]

    return make


def args(*argv: str):
    return lambda tmp: [str(a) for a in argv]


CASES = [
    Case("empty file", config_file(b""), 2, "has no CONFIG_ lines"),
    Case("only comments", config_file(b"# nothing here\n#\n"), 2, "is not a kernel configuration"),
    Case("prose", config_file(b"Dear user,\nthis is a letter.\n"), 2, "is not a kernel configuration"),
    Case("binary garbage", config_file(bytes(range(256)) * 64), 2, "is a binary file"),
    Case("ELF binary", config_file(Path(sys.executable).resolve().read_bytes()[:65536]), 2, "is a binary file"),
    Case("truncated gzip", config_file(gzip.compress(GOOD.read_bytes())[:-20], "c.gz"), 2, "corrupt or truncated gzip"),
    Case("corrupt gzip", config_file(b"\x1f\x8b\x08\x00" + b"\xff" * 64, "c.gz"), 2, "corrupt or truncated gzip"),
    Case("gzip of nothing", config_file(gzip.compress(b""), "c.gz"), 2, "has no CONFIG_ lines"),
    Case("gzip bomb", gzip_bomb, 2, "corrupt or truncated gzip"),
    Case("a directory", args("-d", "overlay2", "-c", str(FIXTURES)), 2, "is a directory"),
    Case("a FIFO", fifo, 2, "is not a regular file"),
    Case("/dev/null", args("-d", "overlay2", "-c", "/dev/null"), 2, "is not a regular file"),
    Case("missing file", args("-d", "overlay2", "-c", "/nonexistent/.config"), 2, "does not exist"),
    Case("symlink loop", symlink_loop, 2, "symlink loop"),
    Case("dangling /usr/src/linux", dangling_usr_src_linux, 2, "dangling symlink (eselect kernel set"),
    Case("tree without Kconfig", tree_without_kconfig, 2, "is not a kernel source tree"),
    Case("tree without .config", tree_without_config, 2, "run 'make menuconfig'"),
    Case("nothing anywhere", empty_root, 2, "no kernel configuration found"),
    Case("100 MB file", huge_file, 2, "larger than 16 MiB"),
    Case("1 MB line", config_file(b"CONFIG_A=y\nCONFIG_B=\"" + b"x" * (1 << 20) + b"\"\n"), 1, "NOT READY", "stdout"),
    Case("duplicate symbol", good_with("CONFIG_OVERLAY_FS=y"), 0, "is assigned again (first at line", "stdout"),
    Case("invalid tristate", good_with("CONFIG_OVERLAY_FS=yes"), 1, "malformed value yes", "stdout"),
    Case("stray line", good_with("OVERLAY_FS=y"), 0, "not a config line", "stdout"),
    Case("non-UTF-8", config_file(GOOD.read_bytes() + b'CONFIG_S="caf\xe9"\n'), 0, "not UTF-8", "stdout"),
    Case("CRLF line ends", config_file(GOOD.read_bytes().replace(b"\n", b"\r\n")), 0, "READY for docker + overlay2", "stdout"),
    Case("NUL in the middle", config_file(GOOD.read_bytes()[:500] + b"\0" + GOOD.read_bytes()[500:]), 2, "is a binary file"),
    Case("unknown driver", args("-d", "ntfs", "-c", str(GOOD)), 2, "unknown driver 'ntfs'"),
    Case("path-like driver", args("-d", "../../etc/passwd", "-c", str(GOOD)), 2, "unknown driver"),
    Case("docker as driver", args("-d", "docker", "-c", str(GOOD)), 2, "docker is the base profile"),
    Case("bad --kernel-version", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", "six"), 2, "not a kernel version"),
    Case("missing --kernel-dir", args("-d", "overlay2", "--kernel-dir", "/nonexistent"), 2, "does not exist"),
    Case("unknown option", args("--colour"), 2, "No such option"),
    Case("bad --format", args("-d", "overlay2", "-c", str(GOOD), "--format", "yaml"), 2, "Invalid value for '--format'"),
    Case("profile: not TOML", profile("name = \n"), 2, "p.toml:1: invalid TOML"),
    Case("profile: no name", profile("[[group]]\n"), 2, "needs a name"),
    Case("profile: bad severity", profile('name = "x"\n[[group]]\nseverity = "must"\n'), 2, "p.toml:2: severity 'must'"),
    Case("profile: bad symbol", profile('name = "x"\n[[group]]\nrequirements = [ { symbol = "a b", reason = "r" } ]\n'),
         2, "is not a Kconfig symbol"),
    Case("profile: no reason", profile('name = "x"\n[[group]]\nrequirements = [ { symbol = "A" } ]\n'), 2, "needs a reason"),
    Case("profile: bad range", profile('name = "x"\n[[group]]\nrequirements = [ { symbol = "A", reason = "r", versions = "6" } ]\n'),
         2, "not a version range"),
    Case("profile: code injection", profile('name = "x"\nchecks = ["os:system"]\n'), 2, "kcheck.module:function"),
    Case("profile: binary", profile("\0\1\2"), 2, "invalid TOML"),
    Case("profile: missing", lambda tmp: ["-d", "overlay2", "-c", str(GOOD), "--profile", str(tmp / "none.toml")], 2,
         "does not exist"),
    Case("profile: directory", lambda tmp: ["-d", "overlay2", "-c", str(GOOD), "--profile", str(tmp)], 2, "is a directory"),
    Case("Kconfig syntax error", kconfig_syntax_error, 2, "the Kconfig files do not parse: Kconfig:4: error"),
    Case("config for another arch", config_for_another_arch, 2, "has no arch/arm64 for ARCH=arm64"),
    Case("daemon.json: not JSON", daemon_json("{not json"), 2, "daemon.json:1: not valid JSON"),
    Case("daemon.json: not an object", daemon_json('["overlay2"]'), 2, "must be a JSON object"),
    Case("daemon.json: binary", daemon_json("\0\1\2"), 2, "daemon.json"),
    Case("fix --write and --output", args("fix", "-d", "overlay2", "-c", str(GOOD), "--write", "--output", "x"), 2,
         "--write and --output both name where to write"),
    Case("fix without a tree", args("fix", "-d", "overlay2", "-c", str(GOOD)), 2, "kcheck fix needs the kernel sources"),
    Case("fix --output into a missing directory", fix_into("nodir/x.config"), 2,
         "cannot write"),
    Case("fix --output .gz", fix_into("x.config.gz"), 2, "is compressed"),
    Case("explain --no-kconfig", args("explain", "--no-kconfig", "OVERLAY_FS"), 2, "No such option '--no-kconfig'"),
    Case("explain of an unknown symbol", explain_in_small_tree("NO_SUCH_SYMBOL"), 0, "NO_SUCH_SYMBOL: does not exist in",
         "stdout"),
    Case("explain in a missing tree", args("explain", "--kernel-dir", "/nonexistent", "OVERLAY_FS"), 2, "/nonexistent"),
    Case("lint: missing path", args("lint", "-d", "overlay2", "/nonexistent/x.config"), 2,
         "UNUSABLE: /nonexistent/x.config does not exist", "stdout"),
    Case("lint: unknown driver", args("lint", "-d", "ntfs", str(GOOD)), 2, "unknown driver 'ntfs'"),
    Case("lint: --kernel-dir not a tree", args("lint", "-d", "overlay2", "-k", "/", str(GOOD)), 2,
         "is not a kernel source tree"),
    Case("profile: empty file", profile(""), 2, "the profile needs a name"),
    Case("hook: unknown phase", args("portage-hook", "run", "--phase", "src_compile", "--category", "x", "--pn", "y"), 2,
         "Invalid value for '--phase'"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, tmp_path, run_kcheck):
    argv = case.make(tmp_path)
    proc = run_kcheck(argv)
    assert proc.returncode == case.status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    text = proc.stdout if case.stream == "stdout" else proc.stderr
    assert case.fragment in text, text
    if case.stream == "stderr":
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kcheck: ")


def test_permission_denied(tmp_path):
    """An unreadable config is one clear line: a real EACCES, from a child that drops root first.

    Root reads any file, and the interpreter lives under root's home, so the
    child is forked from this process (kcheck already imported) and gives up
    its privileges before reading.
    """
    from click.testing import CliRunner

    from kcheck.cli import main

    path = tmp_path / "secret.config"
    path.write_bytes(GOOD.read_bytes())
    path.chmod(0)
    tmp_path.chmod(0o755)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        result = CliRunner().invoke(main, ["-d", "overlay2", "-c", str(path)])
        os.write(write_end, f"{result.exit_code}\n{result.output}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        status, output = pipe.read().split("\n", 1)
    os.waitpid(pid, 0)
    assert status == "2" and output == f"kcheck: {path} is not readable (permission denied); run as a user who can read it\n"


def test_fix_on_a_read_only_directory(tmp_path, run_kcheck):
    """``kcheck fix --write`` where the .config cannot be replaced: one line, status 2, the file as it was."""
    tree = fixable_tree(tmp_path)
    before = (tree / ".config").read_bytes()
    tree.chmod(0o555)
    if os.geteuid() == 0 and os.system(f"chattr +i {tree} 2>/dev/null") != 0:
        tree.chmod(0o755)
        pytest.skip("running as root and chattr +i is not available: root writes into any directory")
    try:
        proc = run_kcheck(["fix", "-d", "overlay2", "-k", str(tree), "--write"])
    finally:
        if os.geteuid() == 0:
            os.system(f"chattr -i {tree}")
        tree.chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"kcheck: cannot write {tree}/.config (") and proc.stderr.count("\n") == 1
    assert "nothing was changed" in proc.stderr
    assert (tree / ".config").read_bytes() == before and sorted(p.name for p in tree.iterdir()) == [".config", "Kconfig", "Makefile"]


def test_corpus_is_large_enough():
    assert len(CASES) + 2 >= 50


@pytest.fixture
def run_kcheck():
    import subprocess

    def run(argv, user=None):
        env = {**os.environ, "NO_COLOR": "1", "KERNEL_DIR": "", "KBUILD_OUTPUT": ""}
        return subprocess.run([KCHECK, *argv], capture_output=True, text=True, env=env, user=user, timeout=60,
                              stdin=subprocess.DEVNULL, errors="replace")

    return run


def test_config_for_another_arch_follows_its_header(tmp_path, run_kcheck):
    """A ``# Linux/arm64`` .config is read for arm64 (its header decides, not this machine) when the tree has it."""
    header = b"#\n# Automatically generated file; DO NOT EDIT.\n# Linux/arm64 6.1.0 Kernel Configuration\n#\n"
    tree = small_tree(tmp_path, 'mainmenu "x"\nsource "arch/$(SRCARCH)/Kconfig"\n', header + GOOD.read_bytes(),
                      ("x86", "arm64"))
    arm64 = run_kcheck(["explain", "--kernel-dir", str(tree), "ARCH_ARM64"])
    x86 = run_kcheck(["explain", "--kernel-dir", str(tree), "ARCH_X86"])
    assert arm64.returncode == 0 and "ARCH=arm64" in arm64.stdout, arm64.stdout + arm64.stderr
    assert "ARCH_ARM64: does not exist" not in arm64.stdout and "ARCH_X86: does not exist" in x86.stdout
