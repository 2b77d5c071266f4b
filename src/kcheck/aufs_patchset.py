"""What the real aufs patches put into a kernel tree, as data kcheck can look for.

aufs reaches a tree through four patches of the aufs-standalone repository
(one branch per kernel series): ``kbuild`` (wires ``fs/aufs`` into the
build; aufs-sources only), ``base``, ``mmap`` (adds ``mm/prfile.c`` and
routes the mm code through it) and ``standalone`` (exports about 25 kernel
symbols the out-of-tree ``aufs.ko`` links against). kcheck never guesses
their content: ``src/kcheck/data/aufs-patchset.json`` is derived from the
patches themselves by :func:`derive` (``python -m kcheck.aufs_patchset
DIR``, where DIR holds one folder per branch), and a test regenerates it
from the real patches and compares.

For each branch and patch the data holds the files the patch creates, the
``EXPORT_SYMBOL*`` lines it adds (symbol -> file), and one signature per
hunk: the lines the hunk adds that it does not also remove. A hunk counts
as applied when every signature line is in the file (whitespace aside), so
a tree patched with rejects shows exactly which hunks are missing.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

#: The patches of one branch, in the order a tree receives them.
PATCHES = ("kbuild", "base", "mmap", "standalone")
_EXPORT = re.compile(r"EXPORT_SYMBOL(?:_GPL)?\(\s*(\w+)\s*\)")
#: A signature line must say something: a name of a few letters, not a brace or a keyword alone.
_MEANINGFUL = re.compile(r"[A-Za-z_]\w{3,}")
_GENERIC = {"else", "return;", "break;", "continue;", "default:"}


def _signature(added: list[str], removed: list[str]) -> list[str]:
    gone = {line.strip() for line in removed}
    out = []
    for line in added:
        text = line.strip()
        if text and text not in gone and not text.startswith(("#", "/*", "*", "//")) and text not in _GENERIC and _MEANINGFUL.search(text):
            out.append(text)
    return list(dict.fromkeys(out))


def parse_patch(text: str) -> dict:
    """One unified diff -> ``{"new_files": [...], "exports": {sym: file}, "hunks": [{file, at, lines}]}``."""
    new_files: list[str] = []
    exports: dict[str, str] = {}
    hunks: list[dict] = []
    current: str | None = None
    old: str | None = None
    hunk: dict | None = None

    def close() -> None:
        if hunk is not None and current is not None:
            lines = _signature(hunk["added"], hunk["removed"])
            if lines and current not in new_files:
                hunks.append({"file": current, "at": hunk["at"], "lines": lines})

    for line in text.splitlines():
        if line.startswith("--- "):
            close()
            hunk = None
            old = line[4:].split("\t")[0]
        elif line.startswith("+++ ") and old is not None:
            current = line[4:].split("\t")[0].removeprefix("b/")
            if old == "/dev/null":
                new_files.append(current)
            old = None
        elif line.startswith("@@"):
            close()
            match = re.match(r"@@ -(\d+)", line)
            hunk = {"at": int(match.group(1)) if match else 0, "added": [], "removed": []}
        elif hunk is not None and line.startswith("+"):
            hunk["added"].append(line[1:])
            for symbol in _EXPORT.findall(line):
                exports[symbol] = current or ""
        elif hunk is not None and line.startswith("-"):
            hunk["removed"].append(line[1:])
    close()
    return {"new_files": new_files, "exports": exports, "hunks": hunks}


def derive(directory: Path) -> dict:
    """The data for every branch folder under ``directory`` (``aufs6.1/aufs6-mmap.patch``, ...)."""
    branches = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        patches = {}
        for name in PATCHES:
            found = sorted(folder.glob(f"aufs*-{name}.patch"))
            if found:
                patches[name] = parse_patch(found[0].read_text(encoding="utf-8", errors="replace"))
        if patches:
            branches[folder.name] = {"series": _series(folder.name), "patches": patches}
    return {"source": "sfjro/aufs-standalone (GPL-2.0), derived by kcheck.aufs_patchset", "branches": branches}


def _series(branch: str) -> str:
    """``aufs6.1`` -> ``6.1``; a development branch (``aufs6.x-rcN``) covers the rest of its major."""
    return branch.removeprefix("aufs")


def dumps(data: dict) -> str:
    """The data as the shipped file spells it (stable, so a regeneration diffs cleanly)."""
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Hunk:
    """One hunk of a patch: the file, its line in the original, and the lines that show it applied."""

    file: str
    at: int
    lines: tuple[str, ...]

    def describe(self) -> str:
        """``mm/mmap.c:2224`` (where the hunk goes)."""
        return f"{self.file}:{self.at}"


@dataclass(frozen=True)
class Patch:
    """What one aufs patch adds to a tree."""

    name: str
    new_files: tuple[str, ...]
    exports: dict[str, str] = field(hash=False)
    hunks: tuple[Hunk, ...]


@dataclass(frozen=True)
class Branch:
    """One aufs-standalone branch: the kernel series it targets and its four patches."""

    name: str
    series: str
    patches: dict[str, Patch] = field(hash=False)

    def fits(self, major: int, minor: int) -> bool:
        """True when this branch is the one made for kernel ``major.minor``."""
        head, _, tail = self.series.partition(".")
        if not head.isdigit() or int(head) != major:
            return False
        return tail == str(minor) or not tail.isdigit()


@functools.cache
def branches() -> tuple[Branch, ...]:
    """The shipped patch data, one :class:`Branch` per aufs-standalone branch."""
    text = resources.files("kcheck").joinpath("data", "aufs-patchset.json").read_text(encoding="utf-8")
    data = json.loads(text)
    out = []
    for name, branch in sorted(data["branches"].items()):
        patches = {
            pname: Patch(
                name=pname,
                new_files=tuple(p["new_files"]),
                exports=dict(p["exports"]),
                hunks=tuple(Hunk(h["file"], h["at"], tuple(h["lines"])) for h in p["hunks"]),
            )
            for pname, p in branch["patches"].items()
        }
        out.append(Branch(name=name, series=branch["series"], patches=patches))
    return tuple(out)


def main(argv: list[str]) -> int:
    """``python -m kcheck.aufs_patchset DIR``: print the data derived from the patches in DIR."""
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m kcheck.aufs_patchset DIR (a folder with one aufs-standalone branch per subfolder)", file=sys.stderr)
        return 2
    sys.stdout.write(dumps(derive(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
