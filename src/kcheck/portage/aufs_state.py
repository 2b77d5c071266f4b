"""Has the aufs-patched kernel been rebuilt, installed and booted?

``sys-fs/aufs3`` / ``sys-fs/aufs4`` with USE=kernel-patch patch the kernel
tree while they merge (``pkg_setup``). The patch does nothing until the
kernel is rebuilt, installed to ``/boot`` and booted, and re-merging the
kernel sources removes it again. This module reads the evidence each step
leaves and names the first step that is missing:

1. **patched**: ``mm/prfile.c`` exists and the exports the module needs
   (``EXPORT_SYMBOL_GPL(d_walk)`` in ``fs/dcache.c``, ...) are in the sources.
   Re-merged kernel sources put their own ``fs/dcache.c`` back but leave
   ``mm/prfile.c`` (no package owns it): one without the other is a lost patch.
2. **rebuilt**: ``mm/prfile.o`` is newer than ``mm/prfile.c``, the exports are
   in ``Module.symvers``, and ``vmlinux`` / ``arch/*/boot/*Image`` are newer
   than every patched file.
3. **installed**: an image under ``/boot`` is the one just built (same x86
   version string, or the same bytes).
4. **module rebuilt**: ``aufs.ko`` under ``/lib/modules/<release>`` has a
   vermagic naming that release and is newer than the kernel build
   (``emerge @module-rebuild``).
5. **booted** (only on the machine itself): the running kernel is that build.

The kernel image, ``/boot``, running-kernel and module readers are
:mod:`kcheck.host.kernel`'s. When the host checks run too
(``CheckContext.host_checked``), steps 3 and 5 are theirs to report: the
findings here leave them out, and "safe to reboot" then speaks for aufs only.

Portage adds the order of events: which aufs package is installed, and
whether the kernel sources were merged after it (COUNTER), which removes
the patch. The findings each carry the commands that fix them; the last
one, ``aufs-reboot``, says plainly "safe to reboot" or what is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kcheck.host import kernel
from kcheck.model import Finding, Severity, Status
from kcheck.portage.facts import InstalledPackage, PortageFacts

#: The file the standalone patch adds to a tree.
PATCH_FILE = "mm/prfile.c"
#: Its object file once the patched kernel is built.
PATCH_OBJECT = "mm/prfile.o"
#: Symbols the standalone patch exports for aufs.ko, and the file each export is added to.
AUFS_EXPORTS: dict[str, str] = {
    "d_walk": "fs/dcache.c",
    "do_splice_from": "fs/splice.c",
    "vfs_readf": "fs/read_write.c",
    "vfs_writef": "fs/read_write.c",
    "task_work_run": "kernel/task_work.c",
}
#: The commands that rebuild and install a kernel tree, then the out-of-tree modules.
REBUILD_FIX = "cd {tree} && make -j$(nproc) && make modules_install && make install && emerge --oneshot @module-rebuild"
PROFILE = "aufs"

_EXPORT_RE = re.compile(rb"EXPORT_SYMBOL(?:_GPL)?\(\s*(\w+)\s*\)")


@dataclass
class TreeEvidence:
    """What one kernel tree (and its build directory) shows about the aufs patch.

    Times are seconds since the epoch (file mtimes); None means the file is
    absent. ``exports`` are the aufs exports found in the sources,
    ``symvers_exports`` those of them the last build put in ``Module.symvers``.
    ``built_version`` is the version string of the image the tree last built.
    """

    tree: str
    build_dir: str
    aufs_sources: bool = False
    prfile: float | None = None
    exports: list[str] = field(default_factory=list)
    patched_mtime: float | None = None
    prfile_o: float | None = None
    symvers: bool = False
    symvers_exports: list[str] = field(default_factory=list)
    image: str | None = None
    image_mtime: float | None = None
    built_version: str | None = None
    release: str | None = None

    @property
    def patched(self) -> bool:
        """True when the standalone aufs patch is in the sources: the new file and the exports."""
        return self.prfile is not None and bool(self.exports)

    def missing_patch(self) -> str:
        """What of the patch the sources lack, in words (for an unpatched tree)."""
        if self.prfile is not None:
            return f"{PATCH_FILE} is there but none of the exports it needs ({', '.join(AUFS_EXPORTS)})"
        if self.exports:
            return f"the exports are there but {PATCH_FILE} is missing"
        return f"{PATCH_FILE} is missing"

    def stale_build(self) -> list[str]:
        """Why the last build predates the patch (empty when it does not)."""
        why = []
        if self.prfile_o is None:
            why.append(f"{PATCH_OBJECT} is missing")
        elif self.prfile is not None and self.prfile_o < self.prfile:
            why.append(f"{PATCH_OBJECT} is older than {PATCH_FILE}")
        if not self.symvers:
            why.append("Module.symvers is missing")
        else:
            lacking = sorted(set(self.exports) - set(self.symvers_exports))
            if lacking:
                why.append("Module.symvers lacks " + ", ".join(lacking))
        if self.image_mtime is None:
            why.append("no kernel image was built")
        elif self.patched_mtime is not None and self.image_mtime < self.patched_mtime:
            why.append(f"{self.image} is older than the patched files")
        return why

    def to_json(self) -> str:
        """Serialise for the hook's snapshot."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> TreeEvidence:
        """Read back a snapshot written by :meth:`to_json` (by this or another kcheck version)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _exported(path: Path) -> set[str]:
    try:
        data = path.read_bytes()
    except OSError:
        return set()
    return {m.group(1).decode() for m in _EXPORT_RE.finditer(data)}


def _symvers_names(path: Path, wanted: set[str]) -> set[str] | None:
    """The ``wanted`` symbols listed in a Module.symvers (None when it is absent)."""
    try:
        with path.open("rb") as f:
            # Lines are "<crc>\t<symbol>\t<module>\t<export kind>..."; only the symbol matters.
            return {name for line in f if (name := line.split(b"\t", 2)[1].decode() if b"\t" in line else "") in wanted}
    except OSError:
        return None


def read_tree(tree: Path, build_dir: Path | None = None) -> TreeEvidence:
    """Collect the aufs patch and build evidence of ``tree``.

    ``build_dir`` is where the tree is built (``KBUILD_OUTPUT``); the tree
    itself by default. Reads a handful of files; never runs ``make``.
    """
    build_dir = build_dir or tree
    # Resolved, so that a snapshot taken before "eselect kernel set" names the old tree.
    ev = TreeEvidence(tree=str(tree.resolve()), build_dir=str(build_dir.resolve()))
    ev.aufs_sources = (tree / "fs" / "aufs" / "Kconfig").is_file()
    ev.prfile = _mtime(tree / PATCH_FILE)
    files = {AUFS_EXPORTS[s] for s in AUFS_EXPORTS}
    for rel in sorted(files):
        found = _exported(tree / rel) & {s for s, f in AUFS_EXPORTS.items() if f == rel}
        if found:
            ev.exports += sorted(found)
            mtime = _mtime(tree / rel)
            if mtime is not None and ev.prfile is not None:
                ev.patched_mtime = max(ev.patched_mtime or 0.0, mtime)
    if ev.prfile is not None:
        ev.patched_mtime = max(ev.patched_mtime or 0.0, ev.prfile)
    ev.prfile_o = _mtime(build_dir / PATCH_OBJECT)
    in_symvers = _symvers_names(build_dir / "Module.symvers", set(ev.exports))
    ev.symvers = in_symvers is not None
    ev.symvers_exports = sorted(in_symvers or ())
    image = kernel.built_image(build_dir)
    if image is not None:
        ev.image = str(image.relative_to(build_dir))
        ev.image_mtime = image.stat().st_mtime
        ev.built_version = kernel.bzimage_version(image)
    try:
        ev.release = (build_dir / "include" / "config" / "kernel.release").read_text().strip() or None
    except OSError:
        ev.release = None
    return ev


@dataclass(frozen=True)
class AufsPackages:
    """The installed packages that decide which aufs provider a root uses."""

    sources: list[InstalledPackage]
    modules: list[InstalledPackage]
    kernel_sources: list[InstalledPackage]


def aufs_packages(facts: PortageFacts) -> AufsPackages:
    """Sort a root's installed packages into aufs providers.

    A kernel-sources package with aufs in its name (``sys-kernel/aufs-sources``,
    overlay variants) provides aufs in the tree. A package offering the
    ``kernel-patch`` USE flag with aufs in its name (``sys-fs/aufs3``,
    ``sys-fs/aufs4``, overlay ``aufs5``/``aufs6`` modules), or one of the two
    Gentoo ones, is the out-of-tree module; ``sys-fs/aufs-util`` is neither.
    """
    sources, modules = [], []
    for pkg in facts.installed("*/*aufs*"):
        name = pkg.cp.split("/", 1)[1]
        if pkg.cp.startswith("sys-kernel/") and name.endswith("-sources"):
            sources.append(pkg)
        elif pkg.cp in ("sys-fs/aufs3", "sys-fs/aufs4") or "kernel-patch" in pkg.iuse:
            modules.append(pkg)
    kernel = [p for p in facts.installed("sys-kernel/*-sources") if p not in sources]
    return AufsPackages(sources=sources, modules=modules, kernel_sources=kernel + sources)


def tree_package(tree: Path, candidates: list[InstalledPackage]) -> InstalledPackage | None:
    """The kernel-sources package that installed ``tree``, judged by its directory name.

    Gentoo's kernel-2 eclass installs ``<flavour>-sources-<version>`` to
    ``/usr/src/linux-<version>-<flavour>`` (``gentoo-sources-6.1.67-r1`` ->
    ``linux-6.1.67-gentoo-r1``; vanilla-sources to ``linux-<version>``). When
    no name fits exactly, a name that contains the version and the flavour
    does. None when no installed package fits; the latest merge wins.
    """
    dirname = tree.resolve().name
    exact, loose = [], []
    for pkg in candidates:
        flavour = pkg.cp.split("/", 1)[1].removesuffix("-sources")
        base, _, revision = pkg.version.partition("-r")
        suffix = f"-r{revision}" if revision else ""
        names = {f"linux-{base}-{flavour}{suffix}"}
        if flavour == "vanilla":
            names.add(f"linux-{base}")
        if dirname in names:
            exact.append(pkg)
        elif base in dirname and flavour.split("-")[0] in dirname:
            loose.append(pkg)
    fits = exact or loose
    return max(fits, key=lambda p: p.counter) if fits else None


def _finding(
    check: str,
    status: Status,
    reason: str,
    *,
    section: str = "driver",
    fix: str | None = None,
    detail: str | None = None,
) -> Finding:
    severity = {Status.FAIL: Severity.REQUIRED, Status.WARN: Severity.RECOMMENDED}.get(status, Severity.INFO)
    return Finding(
        profile=PROFILE,
        check=check,
        status=status,
        severity=severity,
        reason=reason,
        section=section,
        fix=fix,
        detail=detail,
    )


def assess(
    root: Path,
    tree: Path | None,
    build_dir: Path | None,
    facts: PortageFacts,
    *,
    running: kernel.Running | None = None,
    kernel_state: bool = True,
    also_left: Sequence[str] = (),
) -> list[Finding]:
    """Findings about the aufs patch, rebuild, install and boot of ``tree``.

    ``facts`` gives the installed packages (or the reason there are none);
    ``running`` (:func:`kcheck.host.kernel.running_kernel`; None at emerge
    time) tells whether the build is booted. With ``kernel_state`` False the
    host checks report whether the build is installed and booted, so those
    two findings are left out here. The last finding is always
    ``aufs-reboot``: "safe to reboot", or what is left, including
    ``also_left`` (steps other checks ask for, such as setting or unsetting
    the configuration's AUFS_FS).
    """
    findings: list[Finding] = []
    packages = aufs_packages(facts)
    if not facts.available:
        findings.append(
            _finding(
                "portage",
                Status.INFO,
                f"{facts.reason}; the installed aufs packages and the order of merges are not checked",
                section="portage",
            )
        )
    if tree is None or not tree.is_dir():
        findings.append(_finding("aufs-tree", Status.INFO, "no kernel tree to check for the aufs patch and the build"))
    else:
        ev = read_tree(tree, build_dir)
        findings += _tree_findings(root, tree, ev, packages, facts.available, running if kernel_state else None, kernel_state)
    return _summary(findings, list(also_left), kernel_state)


def _tree_findings(
    root: Path,
    tree: Path,
    ev: TreeEvidence,
    packages: AufsPackages,
    portage: bool,
    running: kernel.Running | None,
    kernel_state: bool,
) -> list[Finding]:
    fix_build = REBUILD_FIX.format(tree=tree)
    module = packages.modules[-1] if packages.modules else None
    if ev.aufs_sources:
        if module is not None:
            return [
                _finding(
                    "aufs-provider",
                    Status.FAIL,
                    f"{tree} is an aufs-sources tree (fs/aufs/ is built in) but {module.cpv} is installed too: "
                    "two aufs modules conflict",
                    section="portage",
                    fix=f"emerge --deselect {module.cp} && emerge --depclean {module.cp}",
                )
            ]
        return []
    if not ev.patched:
        if module is None:
            return []
        owner = tree_package(tree, packages.kernel_sources)
        if owner is not None and owner.counter > module.counter:
            return [
                _finding(
                    "aufs-patch",
                    Status.FAIL,
                    f"{owner.cpv} was merged after {module.cpv} and replaced the patched files: "
                    f"{tree} no longer carries the aufs patch ({ev.missing_patch()})",
                    section="portage",
                    fix=f"emerge --oneshot {module.cp} && {fix_build}",
                )
            ]
        how = (
            f"re-emerge it with USE=kernel-patch or apply its patches to {tree} by hand"
            if "kernel-patch" not in module.use
            else "re-emerge it so it patches this tree"
        )
        return [
            _finding(
                "aufs-patch",
                Status.FAIL,
                f"{module.cpv} is installed but {tree} does not carry its patch ({ev.missing_patch()}): {how}",
                section="portage",
                fix=f"emerge --oneshot {module.cp} && {fix_build}",
            )
        ]
    found = [
        _finding(
            "aufs-patch",
            Status.OK,
            f"{tree} carries the aufs standalone patch ({PATCH_FILE}, exports {', '.join(ev.exports)})",
        )
    ]
    stale = ev.stale_build()
    if stale:
        detail = None
        if module is not None and ev.image_mtime is not None and module.build_time > ev.image_mtime:
            detail = f"{module.cpv} was merged after the last kernel build"
        found.append(
            _finding(
                "aufs-rebuild",
                Status.FAIL,
                f"{tree} was patched for aufs but not rebuilt since: " + "; ".join(stale),
                fix=fix_build,
                detail=detail,
            )
        )
        return found
    found.append(
        _finding(
            "aufs-rebuild", Status.OK, f"the kernel in {ev.build_dir} was rebuilt after the aufs patch ({ev.image})"
        )
    )
    if kernel_state:
        boot = kernel.installed_image(root, Path(ev.build_dir) / ev.image)
        if boot is None:
            found.append(
                _finding(
                    "aufs-install",
                    Status.FAIL,
                    f"the rebuilt kernel ({ev.built_version or ev.image}) is not installed: no image under {root / 'boot'} matches it",
                    fix=f"cd {tree} && make modules_install && make install",
                )
            )
            return found
        found.append(_finding("aufs-install", Status.OK, f"{boot.path} is the rebuilt kernel"))
    # Without Portage no package says whether aufs.ko should exist, so the module itself is asked.
    if module is not None or not portage:
        found.append(_module_finding(root, ev, module))
    if running is not None and running.uts_version is not None and ev.built_version is not None:
        if kernel.booted(running, *kernel.split_version(ev.built_version)):
            found.append(_finding("aufs-boot", Status.OK, "the running kernel is this build"))
        else:
            found.append(
                _finding(
                    "aufs-boot",
                    Status.INFO,
                    f"installed but not booted yet: the running kernel is {running.release} {running.uts_version}",
                )
            )
    return found


def _module_finding(root: Path, ev: TreeEvidence, module: InstalledPackage | None) -> Finding:
    """Is aufs.ko installed for the tree's release, built for it (vermagic) and after the kernel build?"""
    fix = "emerge --oneshot @module-rebuild"
    builder = module.cp if module is not None else "the aufs module package"
    if ev.release is None:
        return _finding(
            "aufs-module",
            Status.WARN,
            f"the tree does not name its release (include/config/kernel.release), so {builder}'s aufs.ko cannot be matched to it",
            fix=fix,
        )
    ko = (kernel.module_index(root, ev.release) or {}).get("aufs")
    if ko is None:
        return _finding(
            "aufs-module",
            Status.FAIL,
            f"aufs.ko is missing under {root / 'lib' / 'modules' / ev.release}: {builder} was not built for {ev.release}",
            fix=fix,
        )
    try:
        built_for = kernel.modinfo(ko).get("vermagic", "").split(" ", 1)[0]
    except kernel.ModuleUnreadable as exc:
        return _finding("aufs-module", Status.WARN, f"cannot read the vermagic of {ko}: {exc}", fix=fix)
    if built_for != ev.release:
        return _finding(
            "aufs-module",
            Status.FAIL,
            f"{ko} was built for {built_for or 'an unknown kernel'}, not {ev.release}: it will not load",
            fix=fix,
        )
    mtime = _mtime(ko)
    if ev.image_mtime is not None and mtime is not None and mtime < ev.image_mtime:
        return _finding("aufs-module", Status.FAIL, f"{ko} was built before the kernel it must load into", fix=fix)
    return _finding("aufs-module", Status.OK, f"{ko} was built for this kernel")


#: What is left, in a few words, when a check fails (the finding itself says why and how).
_STEPS = {
    "aufs-provider": "remove the second aufs provider",
    "aufs-patch": "re-apply the aufs patch (re-emerge the aufs module package)",
    "aufs-rebuild": "rebuild the kernel",
    "aufs-install": "install the rebuilt kernel",
    "aufs-module": "rebuild aufs.ko (emerge @module-rebuild)",
}


def _summary(findings: list[Finding], also_left: list[str], kernel_state: bool) -> list[Finding]:
    left = [f for f in findings if f.status is Status.FAIL]
    if left or also_left:
        steps = also_left + [_STEPS.get(f.check, f.reason) for f in left]
        commands = " && ".join(dict.fromkeys(f.fix for f in left if f.fix))
        summary = _finding(
            "aufs-reboot",
            Status.FAIL,
            "not safe to reboot yet; left to do: " + "; ".join(dict.fromkeys(steps)),
            fix=commands or None,
        )
    else:
        # Without the install/boot state (the host section has it) the verdict speaks for aufs alone.
        scope = "" if kernel_state else " (the host section says whether this build is installed and booted)"
        summary = _finding(
            "aufs-reboot", Status.OK, "safe to reboot: nothing is left to do for aufs in the kernel tree" + scope
        )
    return findings + [summary]


def diff(before: TreeEvidence, after: TreeEvidence) -> list[str]:
    """What one merge changed in the tree, in words (empty when nothing)."""
    changes = []
    if not before.patched and after.patched:
        changes.append(f"this merge patched {after.tree} for aufs ({PATCH_FILE}, exports {', '.join(after.exports)})")
    elif before.patched and not after.patched:
        changes.append(f"this merge removed the aufs patch from {after.tree}")
    elif before.patched and after.patched and (after.patched_mtime or 0) > (before.patched_mtime or 0):
        changes.append(f"this merge re-applied the aufs patch to {after.tree}")
    if before.tree != after.tree:
        changes.append(f"the kernel tree changed from {before.tree} to {after.tree}")
    return changes
