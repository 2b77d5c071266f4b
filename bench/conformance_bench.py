#!/usr/bin/env python3
"""Conformance sweep: kcheck's ``.config`` against ``make olddefconfig`` on Debian's trees.

For each tree (6.1, 6.12, 7.2, 7.3 by default; downloaded and cached like the
test suite, see ``tests/realkernel.py``) and each input kind of
``tests/conformance.py`` (Debian's amd64 flavours, seeded randconfigs, the
all*/tiny/def configs, other arches' defconfigs), kcheck reads the input with
the arch its header names and writes the ``.config`` it computes; the kernel's
``make O=<dir> ARCH=<arch> olddefconfig`` does the same. It prints a Markdown
table: per tree and input kind, the symbols that differ (summed over the inputs)
and the inputs tried, then every difference found.

Usage: ``python bench/conformance_bench.py [--series 7.3] [--seeds 20] [--kinds ...]
[--pahole /usr/bin/pahole]``. ``--pahole`` runs both sides with that ``PAHOLE``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import conformance  # noqa: E402
import realkernel  # noqa: E402

from kcheck.kconfig import KconfigTree  # noqa: E402
from kcheck.kconfig.env import arch_from_config  # noqa: E402


def column(kind: str) -> str:
    """The table column an input kind is counted in (all flavours together, all seeds together)."""
    if kind.startswith("randconfig-"):
        return "randconfig"
    if kind.startswith("amd64_"):
        return "Debian flavours"
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(realkernel.ALL_SERIES))
    parser.add_argument("--seeds", type=int, default=20, help="randconfig seeds 1..N per tree")
    parser.add_argument("--kinds", nargs="+", default=None, help="only these input kinds")
    parser.add_argument("--pahole", default=None, help="PAHOLE for both sides (a path or command)")
    args = parser.parse_args()

    for var in realkernel.TOOLCHAIN_VARS:
        os.environ.pop(var, None)
    variables = {}
    if args.pahole:
        os.environ["PAHOLE"] = variables["PAHOLE"] = args.pahole
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}, seeds 1..{args.seeds}"
          + (f", PAHOLE={args.pahole}" if args.pahole else ""), flush=True)
    started = time.monotonic()
    table: dict[str, dict[str, list[int]]] = {}
    details: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kcheck-conformance-") as tmp:
        oracle = conformance.Oracle(Path(tmp), variables)
        for series in args.series:
            tree_dir = realkernel.source_tree(series)
            trees: dict[str, KconfigTree] = {}
            row: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            warned: set[str] = set()
            for kind in args.kinds or conformance.kinds(series, range(1, args.seeds + 1)):
                if kind.startswith("amd64_") and kind not in realkernel.flavours(series):
                    continue
                try:
                    given = oracle.input_config(series, kind)
                except RuntimeError as exc:
                    details.append(f"{series} {kind}: no input ({str(exc).splitlines()[-1]})")
                    continue
                arch = arch_from_config(given) or realkernel.ARCH
                if arch not in trees:
                    trees[arch] = KconfigTree.load(tree_dir, arch=arch, use_cache=False)
                expected = oracle.olddefconfig(series, given, arch)
                trees[arch].read(given)
                ours = Path(tmp) / "kcheck.config"
                trees[arch].write_config(ours)
                diff = conformance.differing(expected, ours)
                cell = row[column(kind)]
                cell[0] += len(diff)
                cell[1] += 1
                warned.update(trees[arch].warnings)
                if diff:
                    shown = ", ".join(f"{s} kcheck={a} conf={b}" for s, (a, b) in list(diff.items())[:12])
                    details.append(f"{series} {kind} (ARCH={arch}): {len(diff)} differ: {shown}")
                print(f"# {series} {kind} ARCH={arch}: {len(diff)} differ", file=sys.stderr, flush=True)
            table[series] = row
            details.append(f"{series}: kconfiglib warned {len(warned)} distinct warnings (shown by "
                           "`kcheck --verbose` and `kcheck explain`)")
            del trees
    columns = list(dict.fromkeys(c for row in table.values() for c in row))
    print("| tree | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for series, row in table.items():
        cells = [f"{row[c][0]} / {row[c][1]}" if c in row else "-" for c in columns]
        print(f"| Debian {series} | " + " | ".join(cells) + " |")
    print("\nCells: symbols differing from `make olddefconfig` (summed over the inputs) / inputs tried.")
    print(f"{time.monotonic() - started:.0f} s in all.")
    for line in details:
        print(f"- {line}")


if __name__ == "__main__":
    main()
