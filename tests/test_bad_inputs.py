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


# --- Hostile inputs (issue 12): what another user wrote decides nothing outside itself ---------------------

GOOD_LINES = GOOD.read_bytes().count(b"\n")


def with_arch(arch: str) -> bytes:
    """GOOD with its header naming ``arch`` (``# Linux/<arch> 6.1.0 Kernel Configuration``)."""
    return GOOD.read_bytes().replace(b"# Linux/x86 ", f"# Linux/{arch} ".encode(), 1)


def tree_case(kconfig: str = "", files: dict[str, str] | None = None, config: bytes | None = None,
              setup: Callable[[Path, Path], None] | None = None, front: tuple[str, ...] = ()):
    """A small tree (with arch/x86) checked in Kconfig mode; ``setup(tmp, tree)`` plants the oddity."""

    def make(tmp: Path) -> list[str]:
        tree = small_tree(tmp, 'mainmenu "x"\n' + kconfig, config, ("x86",))
        for name, text in (files or {}).items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(text)
        if setup is not None:
            setup(tmp, tree)
        if front[:1] == ("explain",):
            return ["explain", "--kernel-dir", str(tree), *front[1:], "OVERLAY_FS"]
        if front == ("lint",):
            return ["lint", "-d", "overlay2", "-k", str(tree), str(tree / ".config")]
        if front == ("fix",):
            return ["fix", "-d", "overlay2", "-k", str(tree)]
        return ["-d", "overlay2", "--no-host", "--kernel-dir", str(tree), *front]

    return make


def outside(tmp: Path, _tree: Path) -> None:
    (tmp / "evil").mkdir()
    (tmp / "evil/Kconfig").write_text("config EVIL\n\tdef_bool y\n")


def fifo_at(relpath: str):
    def setup(_tmp: Path, tree: Path) -> None:
        (tree / relpath).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(tree / relpath)

    return setup


def symlink_at(relpath: str, target: str):
    def setup(tmp: Path, tree: Path) -> None:
        outside(tmp, tree)
        (tree / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tree / relpath).symlink_to(target.format(tmp=tmp))

    return setup


def replaced_by_fifo(relpath: str):
    def setup(_tmp: Path, tree: Path) -> None:
        (tree / relpath).unlink()
        os.mkfifo(tree / relpath)

    return setup


def grown(relpath: str, size: int):
    def setup(_tmp: Path, tree: Path) -> None:
        with (tree / relpath).open("ab") as fh:
            fh.truncate(size)

    return setup


def sparse_at(relpath: str, size: int):
    def setup(_tmp: Path, tree: Path) -> None:
        (tree / relpath).parent.mkdir(parents=True, exist_ok=True)
        with (tree / relpath).open("wb") as fh:
            fh.write(b"config BIG\n\tbool\n")
            fh.truncate(size)

    return setup


def kconfig_mode_config(content: bytes, name: str):
    def make(tmp: Path) -> list[str]:
        tree = small_tree(tmp, 'mainmenu "x"\nconfig OVERLAY_FS\n\ttristate "o"\n', None, ("x86",))
        (tmp / name).write_bytes(content)
        return ["-d", "overlay2", "--no-host", "--kernel-dir", str(tree), "-c", str(tmp / name)]

    return make


def config_setup(setup: Callable[[Path], Path]):
    def make(tmp: Path) -> list[str]:
        return ["-d", "overlay2", "--no-host", "-c", str(setup(tmp))]

    return make


def zero_link(tmp: Path) -> Path:
    (tmp / "z.config").symlink_to("/dev/zero")
    return tmp / "z.config"


def fix_to(setup: Callable[[Path, Path], list[str]]):
    """``kcheck fix`` on the fixable tree with the output arguments ``setup(tmp, tree)`` returns."""

    def make(tmp: Path) -> list[str]:
        tree = fixable_tree(tmp)
        return ["fix", "-d", "overlay2", "-k", str(tree), *setup(tmp, tree)]

    return make


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _loop(tmp: Path) -> Path:
    (tmp / "l1").symlink_to(tmp / "l2")
    (tmp / "l2").symlink_to(tmp / "l1")
    return tmp / "l1"


def _stdout_link(tmp: Path) -> Path:
    (tmp / "stdout").symlink_to("/proc/self/fd/1")
    return tmp / "stdout"


def lint_loop(tmp: Path) -> list[str]:
    (tmp / "a/b").mkdir(parents=True)
    (tmp / "a/b/x.config").write_bytes(GOOD.read_bytes())
    (tmp / "a/b/loop").symlink_to("..")
    return ["lint", "-d", "overlay2", f"{tmp}/**/*.config"]


def lint_fifo(tmp: Path) -> list[str]:
    (tmp / "d").mkdir()
    (tmp / "d/good.config").write_bytes(GOOD.read_bytes())
    os.mkfifo(tmp / "d/pipe.config")
    return ["lint", "-d", "overlay2", str(tmp / "d")]


def hook(*extra: str):
    return args("portage-hook", "run", "--phase", "pre_pkg_setup", "--category", "sys-fs", "--pn", "aufs3", *extra)


def members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(part) for part in parts)


def _halves() -> tuple[bytes, bytes]:
    text = GOOD.read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 1
    return text[:cut], text[cut:]


def odd_line_end(separator: str):
    content = f"# a comment{separator}with an odd character\n".encode() + GOOD.read_bytes() + b"CONFIG_OVERLAY_FS=y\n"
    return config_file(content)


DUPLICATE_LINE = f"bad.config:{GOOD_LINES + 2}: CONFIG_OVERLAY_FS is assigned again (first at line 40)"

HOSTILE_CASES = [
    # The architecture a header names is one of the tree's own arch/* directories, or nothing is read.
    Case("header arch is a path", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("../../evil"),
                                            setup=outside), 2, "is not an architecture name"),
    Case("header arch is absolute", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("/tmp")), 2,
         "is not an architecture name"),
    Case("header arch is ..", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("..")), 2,
         "is not an architecture name"),
    Case("header arch with a slash", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("x86/")), 2,
         "is not an architecture name"),
    Case("header arch is a symlinked dir", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("evil"),
                                                     setup=symlink_at("arch/evil", "{tmp}/evil")), 2,
         "has no arch/evil"),
    Case("header arch names a file", tree_case('source "arch/$(SRCARCH)/Kconfig"\n', config=with_arch("Kconfig"),
                                               files={"arch/Kconfig": ""}), 2, "has no arch/Kconfig"),
    Case("explain: header arch is a path", tree_case(config=with_arch("../../evil"), front=("explain",)), 2,
         "is not an architecture name"),
    Case("explain: --arch is a path", tree_case(front=("explain", "--arch", "../x")), 2, "is not an architecture name"),
    Case("lint: header arch is a path", tree_case(config=with_arch("../../evil"), front=("lint",)), 2,
         "is not an architecture name"),
    Case("fix: header arch is a path", tree_case(config=with_arch("../../evil"), front=("fix",)), 2,
         "is not an architecture name"),
    Case("plain mode ignores the header arch", config_file(with_arch("../../evil")), 0,
         "READY for docker + overlay2", "stdout"),
    # No Kconfig file outside the tree is read.
    Case("source: absolute path out", tree_case('source "/etc/hostname"\n'), 2, "leaves the kernel tree"),
    Case("source: .. out", tree_case('source "../evil/Kconfig"\n', setup=outside), 2, "leaves the kernel tree"),
    Case("rsource: .. out", tree_case('rsource "../evil/Kconfig"\n', setup=outside), 2, "leaves the kernel tree"),
    Case("osource: glob out", tree_case('osource "/etc/host*"\n'), 2, "leaves the kernel tree"),
    Case("source: symlinked dir out", tree_case('source "fs/Kconfig"\n', setup=symlink_at("fs", "{tmp}/evil")), 2,
         "leaves the kernel tree"),
    Case("source: symlinked file out", tree_case('source "fs/Kconfig"\n', setup=symlink_at("fs/Kconfig",
                                                                                           "{tmp}/evil/Kconfig")),
         2, "leaves the kernel tree"),
    Case("source: symlink to /dev/zero", tree_case('source "fs/Kconfig"\n', setup=symlink_at("fs/Kconfig",
                                                                                             "/dev/zero")),
         2, "leaves the kernel tree"),
    # Sourced Kconfig files: regular, bounded.
    Case("sourced Kconfig is a FIFO", tree_case('source "fs/Kconfig"\n', setup=fifo_at("fs/Kconfig")), 2,
         "is not a regular file"),
    Case("sourced Kconfig is a directory", tree_case('source "fs/Kconfig"\n', files={"fs/Kconfig/x": ""}), 2,
         "is a directory"),
    Case("sourced Kconfig of 20 MB", tree_case('source "fs/Kconfig"\n', setup=sparse_at("fs/Kconfig", 20 << 20)), 2,
         "larger than 16 MiB"),
    Case("sourced Kconfig missing", tree_case('source "fs/Kconfig"\n'), 2, "the Kconfig files do not parse"),
    Case("recursive source", tree_case('source "fs/Kconfig"\n', files={"fs/Kconfig": 'source "fs/Kconfig"\n'}), 2,
         "recursive 'source'"),
    Case("Kconfig with latin-1 bytes", tree_case("config A\n\tbool \"caf\xe9\"\n"), 1, "NOT READY", "stdout"),
    Case("top Kconfig is a FIFO", tree_case(setup=replaced_by_fifo("Kconfig")), 2, "is not a kernel source tree"),
    Case("Makefile is a FIFO", tree_case(setup=replaced_by_fifo("Makefile")), 2, "is not a kernel source tree"),
    Case("kernel.release is a FIFO", tree_case(setup=fifo_at("include/config/kernel.release")), 1, "NOT READY",
         "stdout"),
    Case("symbol.c is a FIFO", tree_case(setup=fifo_at("scripts/kconfig/symbol.c")), 1, "NOT READY", "stdout"),
    Case("Makefile of 20 MB", tree_case(setup=grown("Makefile", 20 << 20)), 1, "NOT READY", "stdout"),
    # Configurations: regular files only, gzip read whole, read alike in both modes.
    Case("Kconfig mode: config is a FIFO", lambda tmp: tree_case()(tmp) + ["-c", str(_fifo(tmp / "c.config"))], 2,
         "is not a regular file"),
    Case("config symlinked to /dev/zero", config_setup(zero_link), 2, "is not a regular file"),
    Case("Kconfig mode: gzip config", kconfig_mode_config(gzip.compress(GOOD.read_bytes()), "c.config.gz"), 1,
         "NOT READY", "stdout"),
    Case("Kconfig mode: non-UTF-8 config", kconfig_mode_config(GOOD.read_bytes() + b'CONFIG_S="caf\xe9"\n', "c.config"),
         1, "not UTF-8", "stdout"),
    Case("gzip of two members", config_file(members(*_halves()), "c.gz"), 0, "READY for docker + overlay2", "stdout"),
    Case("gzip of many members", config_file(members(*GOOD.read_bytes().splitlines(True)), "c.gz"), 0,
         "READY for docker + overlay2", "stdout"),
    Case("gzip with zero padding", config_file(gzip.compress(GOOD.read_bytes()) + b"\0" * 512, "c.gz"), 0,
         "READY for docker + overlay2", "stdout"),
    Case("gzip then garbage", config_file(gzip.compress(GOOD.read_bytes()) + b"garbage", "c.gz"), 2,
         "corrupt or truncated gzip"),
    Case("gzip bomb in members", config_file(members(*[b"#" * (1 << 20)] * 20), "c.gz"), 2,
         "corrupt or truncated gzip"),
    # Only "\n" ends a line.
    Case("form feed in a line", odd_line_end("\f"), 0, DUPLICATE_LINE, "stdout"),
    Case("U+0085 in a line", odd_line_end("\x85"), 0, DUPLICATE_LINE, "stdout"),
    Case("U+2028 in a line", odd_line_end("\u2028"), 0, DUPLICATE_LINE, "stdout"),
    Case("vertical tab in a line", odd_line_end("\v"), 0, DUPLICATE_LINE, "stdout"),
    Case("file separator in a line", odd_line_end("\x1c"), 0, DUPLICATE_LINE, "stdout"),
    # Floods are summarised.
    Case("50,000 duplicate lines", config_file(GOOD.read_bytes() + b"CONFIG_OVERLAY_FS=m\n" * 50_000), 0,
         "49980 more lines like these", "stdout"),
    Case("20,000 stray lines", config_file(GOOD.read_bytes() + b"stray\n" * 20_000), 0,
         "19980 more lines like these from line", "stdout"),
    Case("1,000 malformed values", config_file(GOOD.read_bytes() + b"CONFIG_FOO=yes\n" * 1000), 0,
         "(malformed values); not listed", "stdout"),
    # --kernel-version is one whole version.
    Case("--kernel-version with a newline", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", "6.1\nX"), 2,
         "is not a kernel version"),
    Case("--kernel-version 6.1garbage", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", "6.1garbage"), 2,
         "is not a kernel version"),
    Case("--kernel-version empty", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", ""), 2,
         "is not a kernel version"),
    Case("--kernel-version 6", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", "6"), 2,
         "is not a kernel version"),
    Case("--kernel-version with spaces", args("-d", "overlay2", "-c", str(GOOD), "--kernel-version", "6.1 lts"), 2,
         "is not a kernel version"),
    Case("--kernel-version of a distribution", args("-d", "overlay2", "--no-host", "-c", str(GOOD),
                                                    "--kernel-version", "6.1.0-13-amd64"), 0,
         "READY for docker + overlay2", "stdout"),
    Case("fix --kernel-version garbage", fix_to(lambda tmp, tree: ["--kernel-version", "6.1garbage"]), 2,
         "is not a kernel version"),
    # explain takes a symbol name.
    Case("explain ''", explain_in_small_tree(""), 2, "is not a Kconfig symbol name"),
    Case("explain of two words", explain_in_small_tree("OVERLAY FS"), 2, "is not a Kconfig symbol name"),
    Case("explain of a macro", explain_in_small_tree("$(shell,id)"), 2, "is not a Kconfig symbol name"),
    Case("explain of a path", explain_in_small_tree("../OVERLAY_FS"), 2, "is not a Kconfig symbol name"),
    Case("explain CONFIG_ prefix", explain_in_small_tree("CONFIG_OVERLAY_FS"), 0, "OVERLAY_FS (tristate)", "stdout"),
    Case("explain with a FIFO config", lambda tmp: ["explain", "--kernel-dir", str(small_tree(tmp, 'mainmenu "x"\n')),
                                                    "--config", str(_fifo(tmp / "c.config")), "OVERLAY_FS"], 2,
         "no such configuration file"),
    # Outputs: a regular file or a new name, never a device, a FIFO or the configuration itself.
    Case("fix --output a FIFO", fix_to(lambda tmp, tree: ["--output", str(_fifo(tmp / "out"))]), 2,
         "is a device, FIFO or socket, not a regular file"),
    Case("fix --output a symlink to stdout", fix_to(lambda tmp, tree: ["--output", str(_stdout_link(tmp))]), 2,
         "not a regular file"),
    Case("fix --output a directory", fix_to(lambda tmp, tree: ["--output", str(tmp)]), 2, "is a directory"),
    Case("fix --output a symlink loop", fix_to(lambda tmp, tree: ["--output", str(_loop(tmp))]), 2,
         "too many symlinks"),
    Case("fix --write --fragment the config", fix_to(lambda tmp, tree: ["--write", "--fragment", str(tree / ".config")]),
         2, "is the configuration itself"),
    Case("fix --fragment the config", fix_to(lambda tmp, tree: ["--fragment", str(tree / ".config")]), 2,
         "is the configuration itself"),
    Case("fix --output and --fragment one file", fix_to(lambda tmp, tree: ["--output", str(tmp / "x"), "--fragment",
                                                                           str(tmp / "x")]),
         2, "is the configuration itself"),
    Case("fix --dist-kernel onto a FIFO", fix_to(lambda tmp, tree: [
        "--dist-kernel", "--root", str(_fifo(tmp / "etc/kernel/config.d/kcheck-overlay2.config").parents[3])]), 2,
        "not a regular file"),
    Case("fix --output -", fix_to(lambda tmp, tree: ["--output", "-"]), 0, "# Automatically generated file",
         "stdout"),
    # lint, the hook.
    Case("lint: glob over a symlink loop", lint_loop, 0, "1 configuration checked", "stdout"),
    Case("lint: a FIFO named .config", lint_fifo, 2, "UNUSABLE", "stdout"),
    Case("hook: empty --root", hook("--root", ""), 0, "is not an absolute path", "stdout"),
    Case("hook: relative --root", hook("--root", "relative/root"), 0, "is not an absolute path", "stdout"),
    Case("hook: negative --timeout", hook("--timeout", "-1"), 2, "Invalid value for '--timeout'"),
]
CASES += HOSTILE_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, tmp_path, run_kcheck):
    argv = case.make(tmp_path)
    proc = run_kcheck(argv, cwd=tmp_path)
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
    assert len(CASES) >= 120 and len({c.name for c in CASES}) == len(CASES)


@pytest.fixture
def run_kcheck():
    import subprocess

    def run(argv, user=None, cwd=None):
        env = {**os.environ, "NO_COLOR": "1", "KERNEL_DIR": "", "KBUILD_OUTPUT": ""}
        return subprocess.run([KCHECK, *argv], capture_output=True, text=True, env=env, user=user, timeout=60,
                              stdin=subprocess.DEVNULL, errors="replace", cwd=cwd)

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
