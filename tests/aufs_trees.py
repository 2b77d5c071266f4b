"""Copies of Debian's kernel trees patched with the real aufs patches (``../shared/aufs-standalone``).

The cached trees are never written: a copy holds the tree's top Makefile, every
Kconfig/Makefile/Kbuild file and ``scripts/`` (enough for the kernel's own
``make O=<dir> olddefconfig`` and for kcheck's Kconfig parse), plus real copies
of every file the aufs patches touch, so ``patch -p1`` edits only the copy.
Patches are applied as a user would (``patch -p1 --forward``); the rejects a
newer stable tree gives are expected and returned, not hidden.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import realkernel

def _patches() -> Path:
    """Where the real patches are: ``$KCHECK_AUFS_PATCHES``, else ``shared/aufs-standalone`` beside the checkout."""
    if os.environ.get("KCHECK_AUFS_PATCHES"):
        return Path(os.environ["KCHECK_AUFS_PATCHES"])
    repo = Path(__file__).resolve().parents[1]
    candidates = [repo.parent / "shared/aufs-standalone", repo.parent.parent / "shared/aufs-standalone"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


#: The real patches (read-only test data shared by the project's checkouts).
PATCHES = _patches()
#: Which aufs-standalone branch each Debian series takes.
BRANCH = {"6.1": "aufs6.1", "6.12": "aufs6.x-rcN"}
_BUILD_FILES = ("Kconfig*", "Makefile*", "Kbuild*", "*.include")


class PatchesMissing(realkernel.Unavailable):
    """The shared aufs patches are not on this machine."""


def patch_dir(series: str) -> Path:
    """The folder of the branch made for ``series``."""
    folder = PATCHES / BRANCH[series]
    if not (folder / "aufs6-standalone.patch").is_file():
        raise PatchesMissing(f"the aufs patches are not in {folder} (see {PATCHES}/README.md)")
    return folder


def touched(series: str) -> list[str]:
    """Every file the branch's four patches change (``+++ b/<file>``), new files included."""
    files: set[str] = set()
    for patch in sorted(patch_dir(series).glob("aufs6-*.patch")):
        files |= set(re.findall(r"^\+\+\+ b/(\S+)", patch.read_text(errors="replace"), re.M))
    return sorted(files)


def copy_tree(source: Path, dest: Path, series: str, *, kconfig: bool) -> Path:
    """A writable copy of ``source``: the files the patches touch, the top Makefile and Kconfig, and
    with ``kconfig`` every Kconfig/Makefile/Kbuild file and ``scripts/`` too."""
    dest.mkdir(parents=True)
    wanted = set(touched(series)) | {"Makefile", "Kconfig"}
    for rel in sorted(wanted):
        if (source / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, dest / rel)
    if kconfig:
        for folder, _dirs, files in os.walk(source):
            rel = os.path.relpath(folder, source)
            in_scripts = rel == "scripts" or rel.startswith("scripts/")
            for name in files:
                if in_scripts or any(fnmatch.fnmatch(name, p) for p in _BUILD_FILES):
                    target = dest / rel / name
                    if not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(os.path.join(folder, name), target, follow_symlinks=False)
    return dest


def apply(tree: Path, series: str, names: tuple[str, ...]) -> dict[str, str]:
    """``patch -p1 --forward`` each named patch (``kbuild``, ``base``, ``mmap``, ``standalone``) in order.

    Returns patch name -> patch's output; the ``.rej``/``.orig`` files are removed
    so the tree looks like one a user cleaned up after reading the rejects.
    """
    missing = realkernel.install_tools({"patch": "patch"})
    if missing:
        raise realkernel.Unavailable("the aufs tests need GNU patch")
    out = {}
    for name in names:
        proc = subprocess.run(
            ["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-r", "-", "-i", str(patch_dir(series) / f"aufs6-{name}.patch")],
            cwd=tree, capture_output=True, text=True,
        )
        out[name] = proc.stdout + proc.stderr
    return out


def add_aufs_sources(tree: Path, series: str) -> None:
    """What aufs-sources adds on top of the patches: ``fs/aufs/`` (Kconfig, Makefile) and the uapi header."""
    folder = patch_dir(series)
    for rel in ("fs/aufs/Kconfig", "fs/aufs/Makefile", "include/uapi/linux/aufs_type.h"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, tree / rel)


def failed_hunks(output: str) -> int:
    """How many hunks ``patch`` reported as FAILED in ``output``."""
    return sum(int(n) for n in re.findall(r"(\d+) out of \d+ hunks? FAILED", output))
