"""What one ``kcheck portage-hook run`` costs an aufs or kernel-sources merge.

Builds a temporary root shaped like a Gentoo system (an installed-package
database of ``--packages`` records in Portage's on-disk format, sys-fs/aufs3
among them, and a patched kernel tree) and times whole commands, median of
``--runs`` after a warm-up, side by side with the interpreter's own start:

- ``pre_pkg_setup``: the snapshot (reads a few tree files; Portage not imported);
- ``post_pkg_postinst``: Portage imported, its installed-package database
  opened through the API, the tree judged.

Usage: .venv/bin/python bench/portage_bench.py [--packages 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KCHECK = Path(sys.executable).with_name("kcheck")


def median_wall(argv: list[str], runs: int) -> float:
    """Median wall seconds of ``argv`` over ``runs`` runs, after one warm-up."""
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def make_root(root: Path, packages: int) -> None:
    """A Gentoo-like root: ``packages`` installed records and an aufs-patched tree."""
    for n in range(packages):
        category = f"cat-{n % 40}" if n else "sys-fs"
        pf = f"pkg{n}-1.{n}" if n else "aufs3-3_p20160219"
        pkg = root / "var/db/pkg" / category / pf
        pkg.mkdir(parents=True)
        fields = {
            "COUNTER": str(n + 1),
            "BUILD_TIME": "1767225600",
            "USE": "kernel-patch" if not n else "",
            "IUSE": "+kernel-patch" if not n else "",
            "EAPI": "8",
            "SLOT": "0",
            "repository": "gentoo",
        }
        for name, value in fields.items():
            (pkg / name).write_text(value + "\n")
    tree = root / "usr/src/linux-6.1.67-gentoo"
    (tree / "mm").mkdir(parents=True)
    (tree / "fs").mkdir()
    (tree / "Makefile").write_text("VERSION = 6\n")
    (tree / "mm/prfile.c").write_text("/* aufs */\n")
    (tree / "fs/dcache.c").write_text("EXPORT_SYMBOL_GPL(d_walk);\n")
    (root / "usr/src/linux").symlink_to(tree.name)


def main() -> None:
    """Build the root, time the commands, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_root(root, args.packages)
        hook = [str(KCHECK), "portage-hook", "run", "--category", "sys-fs", "--pn", "aufs3", "--root", str(root)]
        rows = [
            ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
            ("kcheck portage-hook --snippet", [str(KCHECK), "portage-hook", "--snippet"]),
            ("hook run, pre_pkg_setup (snapshot)", [*hook, "--phase", "pre_pkg_setup"]),
            ("hook run, post_pkg_postinst (Portage + tree)", [*hook, "--phase", "post_pkg_postinst"]),
        ]
        print(
            f"{time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; {args.packages} installed packages; median of {args.runs}"
        )
        print("| what | median wall |")
        print("|---|---|")
        for label, argv in rows:
            print(f"| {label} | {median_wall(argv, args.runs) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
