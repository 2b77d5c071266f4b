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
hunk: its post-image from the first to the last added line plus the nearest
context line on each side. A hunk counts as applied when its signature
stands in the file as consecutive lines (indentation and blank lines aside),
so a tree patched with rejects shows exactly which hunks are missing, even
where several hunks add the same line.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kcheck import readsafe

#: The patches of one branch, in the order a tree receives them.
PATCHES = ("kbuild", "base", "mmap", "standalone")
_EXPORT = re.compile(r"EXPORT_SYMBOL(?:_GPL)?\(\s*(\w+)\s*\)")
def _signature(post: list[tuple[str, str]]) -> list[str]:
    """The lines that show a hunk applied: its post-image from the first to the last added line,
    with the nearest context line on each side (the outer context is what ``patch`` fuzzes away first).
    Blank lines are left out; lines are compared without their indentation."""
    added = [i for i, (tag, _) in enumerate(post) if tag == "+"]
    if not added:
        return []
    first, last = added[0], added[-1]
    before = next((i for i in range(first - 1, -1, -1) if post[i][1].strip()), first)
    after = next((i for i in range(last + 1, len(post)) if post[i][1].strip()), last)
    return [text.strip() for _, text in post[before : after + 1] if text.strip()]


def parse_patch(text: str) -> dict:
    """One unified diff -> ``{"new_files": [...], "exports": {sym: file}, "hunks": [{file, at, lines}]}``."""
    new_files: list[str] = []
    exports: dict[str, str] = {}
    hunks: list[dict] = []
    current: str | None = None
    old: str | None = None
    hunk: dict | None = None

    def close() -> None:
        if hunk is not None and current is not None and current not in new_files:
            lines = _signature(hunk["post"])
            if lines:
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
            hunk = {"at": int(match.group(1)) if match else 0, "post": []}
        elif hunk is not None and line[:1] in ("+", " ") or (hunk is not None and line == ""):
            hunk["post"].append(("+" if line.startswith("+") else " ", line[1:]))
            if line.startswith("+"):
                for symbol in _EXPORT.findall(line):
                    exports[symbol] = current or ""
        elif hunk is not None and line.startswith("-"):
            continue
        else:
            close()
            hunk = None
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
                patches[name] = parse_patch(readsafe.read_text(found[0], what="aufs patch"))
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
