"""Small but real Gentoo situations in a temporary root.

A :class:`Situation` is a root directory with a kernel tree
(``usr/src/linux`` -> ``linux-<release>``, a Makefile and a ``.config``), the
files the aufs standalone patch adds or changes, the outputs a kernel build
leaves (``mm/prfile.o``, ``Module.symvers``, ``vmlinux``, a bzImage with a
real setup-header version string), ``/boot`` and ``/lib/modules``, and
installed-package records in Portage's on-disk format, which the code under
test reads back through Portage's own API. Every timestamp is set
explicitly, so "older" and "newer" are facts of the test, not of the clock.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kernel_files import bzimage, elf_with_modinfo

from kcheck.aufs_patchset import branches
from kcheck.model import CheckContext, SymbolState
from kcheck.portage.facts import portage_facts

#: A fixed epoch for the tests' clocks (2026-01-01); steps are hours apart.
T0 = 1_767_225_600
HOUR = 3600
RELEASE = "6.1.67-gentoo"
#: The real aufs6.1 patch data kcheck ships: the exports (symbol -> file) and the mmap hunks.
BRANCH = next(b for b in branches() if b.name == "aufs6.1")
AUFS_EXPORTS: dict[str, str] = BRANCH.patches["standalone"].exports
MMAP_HUNKS = BRANCH.patches["mmap"].hunks
TOUCHED = sorted(set(AUFS_EXPORTS.values()) | {h.file for h in MMAP_HUNKS})


class FakeConfig:
    """A ConfigSource over a dict, standing in for the lead's readers."""

    mode = "plain"

    def __init__(self, values: dict[str, str] | None = None, path: Path | None = None) -> None:
        self.values = values or {}
        self.path = path

    def state(self, symbol: str) -> SymbolState:
        """What the dict says, as the plain reader would report it."""
        if symbol in self.values:
            return SymbolState(symbol, self.values[symbol], line=1, written=self.values[symbol])
        return SymbolState(symbol, "n")


def pristine(rel: str) -> str:
    """The unpatched content of a tree file the aufs patch adds exports to."""
    return f"/* {rel} */\nint placeholder;\n"


def standalone_patch() -> str:
    """A unified diff shaped like aufs3's combined patch (mmap + standalone), for ``patch -p1``.

    It adds to each file what :meth:`Situation.patch` adds, from the real patch data.
    """
    parts = [
        "--- /dev/null\n+++ b/mm/prfile.c\n@@ -0,0 +1,1 @@\n+/* aufs standalone: mm/prfile.c */\n",
    ]
    for rel in TOUCHED:
        lines = [line for h in MMAP_HUNKS if h.file == rel for line in h.lines]
        lines += [f"EXPORT_SYMBOL_GPL({s});" for s, f in AUFS_EXPORTS.items() if f == rel]
        context = "".join(" " + line + "\n" for line in pristine(rel).splitlines())
        added = "".join(f"+{line}\n" for line in lines)
        parts.append(f"--- a/{rel}\n+++ b/{rel}\n@@ -1,2 +1,{2 + len(lines)} @@\n{context}{added}")
    return "".join(parts)


def _touch(path: Path, when: float, content: bytes | str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    elif not path.exists():
        path.write_bytes(b"")
    os.utime(path, (when, when))
    return path


@dataclass
class Situation:
    """A temporary root with a kernel tree and installed packages."""

    root: Path
    release: str = RELEASE

    @property
    def tree(self) -> Path:
        """The tree ``/usr/src/linux`` points to."""
        return self.root / "usr" / "src" / "linux"

    def make_tree(self, when: float = T0, config: str = "CONFIG_MODULES=y\n") -> Path:
        """A kernel tree with a Makefile, a .config and the files the patch touches."""
        real = self.root / "usr" / "src" / f"linux-{self.release}"
        version, patchlevel, rest = self.release.split(".", 2)
        sublevel, _, extra = rest.partition("-")
        _touch(
            real / "Makefile",
            when,
            f"VERSION = {version}\nPATCHLEVEL = {patchlevel}\nSUBLEVEL = {sublevel}\nEXTRAVERSION = {'-' + extra if extra else ''}\n",
        )
        _touch(real / ".config", when, config)
        for rel in TOUCHED:
            _touch(real / rel, when, pristine(rel))
        self.tree.parent.mkdir(parents=True, exist_ok=True)
        if not self.tree.is_symlink():
            self.tree.symlink_to(real.name)
        return real

    def patch(self, when: float, *, skip_exports: tuple[str, ...] = (), skip_mmap: tuple[str, ...] = ()) -> None:
        """Apply the mmap and standalone patches the way sys-fs/aufs3's pkg_setup does: what each hunk adds.

        ``skip_exports`` / ``skip_mmap`` (``file:line``) leave parts out, as rejected hunks do.
        """
        _touch(self.tree / "mm" / "prfile.c", when, "/* aufs standalone: mm/prfile.c */\n")
        for hunk in MMAP_HUNKS:
            if hunk.describe() not in skip_mmap:
                path = self.tree / hunk.file
                _touch(path, when, path.read_text() + "".join(line + "\n" for line in hunk.lines))
        for symbol, rel in AUFS_EXPORTS.items():
            if symbol not in skip_exports:
                path = self.tree / rel
                _touch(path, when, path.read_text() + f"EXPORT_SYMBOL_GPL({symbol});\n")

    def unpatch(self, when: float) -> None:
        """Re-merged kernel sources: their pristine files are back; mm/prfile.c, owned by no package, stays."""
        for rel in TOUCHED:
            _touch(self.tree / rel, when, pristine(rel))

    def add_aufs_sources_tree(self, when: float) -> None:
        """Make the tree look like sys-kernel/aufs-sources (fs/aufs/ with its Kconfig)."""
        _touch(self.tree / "fs" / "aufs" / "Kconfig", when, 'config AUFS_FS\n\ttristate "Aufs"\n')

    def build(self, when: float, number: int = 1) -> str:
        """Leave the outputs of ``make`` at time ``when``; returns the image's version string."""
        patched = (self.tree / "mm" / "prfile.c").exists()
        if patched:
            _touch(self.tree / "mm" / "prfile.o", when, b"\x7fELF")
        lines = ["0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t"]
        if patched:
            lines += [f"0x0000abcd\t{s}\tvmlinux\tEXPORT_SYMBOL_GPL\t" for s in AUFS_EXPORTS]
        _touch(self.tree / "Module.symvers", when, "\n".join(lines) + "\n")
        version = f"{self.release} (root@gentoo) #{number} SMP PREEMPT_DYNAMIC Thu Jan  1 00:00:00 UTC 2026"
        _touch(self.tree / "vmlinux", when, b"\x7fELF vmlinux")
        _touch(self.tree / "arch" / "x86" / "boot" / "bzImage", when, bzimage(version))
        _touch(self.tree / "include" / "config" / "kernel.release", when, self.release + "\n")
        _touch(self.tree / ".version", when, f"{number}\n")
        return version

    def install_kernel(self, when: float) -> Path:
        """``make install``: copy the built image to /boot."""
        target = self.root / "boot" / f"vmlinuz-{self.release}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.tree / "arch" / "x86" / "boot" / "bzImage", target)
        os.utime(target, (when, when))
        return target

    def install_module(self, when: float) -> Path:
        """What sys-fs/aufs3 (re)built for the tree's release: aufs.ko under /lib/modules, its vermagic naming the
        release, needing the standalone exports (and printk) from the kernel."""
        module = elf_with_modinfo(["license=GPL", f"vermagic={self.release} SMP preempt mod_unload modversions "],
                                  undefined=["printk", *sorted(AUFS_EXPORTS)])
        portage_facts.cache_clear()  # a new aufs.ko may have a new owner
        return _touch(self.root / "lib" / "modules" / self.release / "misc" / "aufs.ko", when, module)

    def merge(self, cpv: str, counter: int, build_time: float, use: str = "", iuse: str = "",
              files: tuple[str, ...] = ()) -> None:
        """An installed-package record in Portage's per-field vdb format; ``files`` are its CONTENTS (``obj`` lines)."""
        category, pf = cpv.split("/")
        pkg = self.root / "var" / "db" / "pkg" / category / pf
        pkg.mkdir(parents=True, exist_ok=True)
        fields = {
            "COUNTER": str(counter),
            "BUILD_TIME": str(int(build_time)),
            "USE": use,
            "IUSE": iuse,
            "EAPI": "8",
            "SLOT": "0",
            "KEYWORDS": "amd64",
            "repository": "gentoo",
        }
        for name, value in fields.items():
            (pkg / name).write_text(value + "\n")
        dirs = sorted({str(p) for f in files for p in Path(f).parents if str(p) != "/"})
        (pkg / "CONTENTS").write_text("".join(f"dir {d}\n" for d in dirs)
                                      + "".join(f"obj {f} d41d8cd98f00b204e9800998ecf8427e {int(build_time)}\n" for f in files))
        (pkg / f"{pf}.ebuild").write_text("EAPI=8\n")
        portage_facts.cache_clear()

    def context(self, config: dict[str, str] | None = None, *, tree: bool = True) -> CheckContext:
        """A CheckContext for this root, as the engine would build it."""
        return CheckContext(
            root=self.root,
            source=FakeConfig(config),
            tree=self.tree if tree else None,
            build_dir=None,
            kernel_version=None,
        )
