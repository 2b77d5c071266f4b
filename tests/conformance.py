"""kcheck's Kconfig engine against the kernel's own ``conf``, one input at a time.

Shared by ``tests/kconfig/test_kconfig_conformance.py`` and
``bench/conformance_bench.py``. An *input* is a ``.config`` a user could hand
kcheck, named by its kind:

- a Debian amd64 flavour (``amd64_none_amd64``...): Debian's own config;
- ``randconfig-<seed>``: ``make KCONFIG_SEED=<seed> randconfig``;
- ``allmodconfig``, ``allyesconfig``, ``alldefconfig``, ``allnoconfig``,
  ``tinyconfig``, ``defconfig``: the kernel's target of that name;
- ``<arch>:defconfig`` (``arm64:defconfig``, ``i386:defconfig``...): the
  defconfig of another ``ARCH``.

x86 inputs are made with ``ARCH=x86`` (what ``make`` picks on an x86 machine,
so a randconfig may come out 32-bit), except ``defconfig`` (``ARCH=x86_64``,
the 64-bit defconfig). The expected result is ``make O=<dir> olddefconfig``
of the input with the ``ARCH`` its header names; kcheck must take that same
arch from the header (:func:`kcheck.kconfig.env.arch_from_config`). One
``O=`` directory per tree and arch is reused, so ``conf`` is built once.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import realkernel

#: The targets of the kernel's own Makefile that make a whole ``.config``.
TARGETS = ("allmodconfig", "allyesconfig", "alldefconfig", "allnoconfig", "tinyconfig", "defconfig")
#: Other architectures whose defconfig is tried (``ARCH=`` values).
OTHER_ARCHES = ("arm64", "riscv", "powerpc", "s390", "arm", "loongarch", "i386")


def make_arch(kind: str) -> str:
    """Return the ``ARCH=`` an input of ``kind`` is made with (see the module docs)."""
    if ":" in kind:
        return kind.split(":", 1)[0]
    return "x86_64" if kind == "defconfig" else "x86"


def kinds(series: str, seeds: range) -> list[str]:
    """Return every input kind for ``series``: flavours, randconfigs of ``seeds``, targets, arches."""
    return [*realkernel.flavours(series), *(f"randconfig-{seed}" for seed in seeds), *TARGETS,
            *(f"{arch}:defconfig" for arch in OTHER_ARCHES)]


@dataclass
class Oracle:
    """The kernel's ``make`` for many inputs: one ``O=`` build directory per tree and arch."""

    root: Path
    variables: Mapping[str, str] = field(default_factory=dict)
    _outdirs: dict[tuple[Path, str], Path] = field(default_factory=dict)

    def make(self, tree: Path, arch: str, target: str, given: Path | None = None,
             extra: Mapping[str, str] | None = None) -> Path:
        """Run ``make ARCH=<arch> <target>`` (on a copy of ``given``); return a copy of its ``.config``."""
        key = (tree, arch)
        if key not in self._outdirs:
            self._outdirs[key] = self.root / f"o-{tree.name}-{arch}"
        outdir = self._outdirs[key]
        written = realkernel.make_config(tree, target, given, outdir=outdir, arch=arch,
                                         variables={**self.variables, **(extra or {})})
        copy = self.root / f"{tree.name}-{arch}-{target}-{len(list(self.root.iterdir()))}.config"
        shutil.copyfile(written, copy)
        return copy

    def input_config(self, series: str, kind: str) -> Path:
        """Return the ``.config`` of input ``kind`` for ``series`` (see the module docs)."""
        if kind in realkernel.flavours(series):
            return realkernel.debian_configs(series)[kind]
        tree = realkernel.source_tree(series)
        arch = make_arch(kind)
        target = kind.split(":", 1)[-1]
        if target.startswith("randconfig-"):
            return self.make(tree, arch, "randconfig",
                             extra={"KCONFIG_SEED": target.removeprefix("randconfig-")})
        return self.make(tree, arch, target)

    def olddefconfig(self, series: str, given: Path, arch: str) -> Path:
        """Return what ``make ARCH=<arch> olddefconfig`` writes for ``given``."""
        return self.make(realkernel.source_tree(series), arch, "olddefconfig", given)


def differing(expected: Path, ours: Path) -> dict[str, tuple[str | None, str | None]]:
    """Return symbol -> (kcheck's value, conf's value) for every symbol the two files disagree on."""
    want, got = realkernel.read_assignments(expected), realkernel.read_assignments(ours)
    return {s: (got.get(s), want.get(s)) for s in sorted(want.keys() | got.keys())
            if got.get(s) != want.get(s)}
