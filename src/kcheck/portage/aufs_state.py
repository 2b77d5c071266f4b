"""Is the aufs kernel patched, built, installed and booted? For either provider.

``sys-fs/aufs3`` / ``sys-fs/aufs4`` (or an overlay's ``sys-fs/aufs6``) with
USE=kernel-patch patch the kernel tree while they merge (``pkg_setup``) and
build ``aufs.ko`` out of tree; ``sys-kernel/aufs-sources`` ships a tree with
``fs/aufs`` built in. Either way nothing changes until the kernel is rebuilt,
installed to ``/boot`` and booted, and re-merging kernel sources removes the
standalone patch again. This module reads the evidence each step leaves and
names the first step that is missing:

1. **patched**: read against the real patches' data
   (:mod:`kcheck.aufs_patchset`, for the branch that fits the tree's series):
   every export the standalone patch adds (about 25 ``EXPORT_SYMBOL_GPL`` lines)
   and the mmap patch's hunks and ``mm/prfile.c``. Some exports only is a
   partial patch (aufs.ko will not load: each missing export is named); missing
   mmap hunks (rejects on a newer stable tree) are named too. ``mm/prfile.c``
   without a single export is a lost patch: re-merged sources put their files
   back and leave ``mm/prfile.c``, which no package owns.
2. **built**: standalone: ``mm/prfile.o`` newer than ``mm/prfile.c``, the exports
   in ``Module.symvers``, ``vmlinux`` / ``arch/*/boot/*Image`` newer than every
   patched file; aufs-sources: an image newer than ``.config`` and ``fs/aufs``.
3. **installed**: an image under ``/boot`` is the one just built (same x86
   version string, or the same bytes).
4. **module**: ``aufs.ko`` under ``/lib/modules/<release>`` names that release in
   its vermagic, is newer than the kernel build, and every symbol it needs is
   exported by that build (``Module.symvers``).
5. **booted** (only on the machine itself): the running kernel is that build.

The kernel image, ``/boot``, running-kernel and module readers are
:mod:`kcheck.host.kernel`'s. When the host checks run too
(``CheckContext.host_checked``), steps 3 and 5 are theirs to report: the
findings here leave them out, and "safe to reboot" then speaks for aufs only.

Portage adds the order of events: which aufs package is installed, and
whether the kernel sources were merged after it (COUNTER). Without Portage
(neither the module nor ``portageq``) the tree's evidence stands alone and the
findings say the packages are unknown, never that none is installed. The
findings each carry the commands that fix them, aimed at ``--root`` when it is
not this machine; the last one, ``aufs-reboot``, says plainly "safe to reboot"
or what is left.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kcheck import aufs_patchset, readsafe
from kcheck.host import kernel
from kcheck.model import Finding, Severity, Status
from kcheck.portage.facts import InstalledPackage, PortageFacts
from kcheck.version import makefile_fields

#: The file the mmap patch adds to a tree (aufs-sources and the standalone case alike).
PATCH_FILE = "mm/prfile.c"
#: Its object file once the patched kernel is built.
PATCH_OBJECT = "mm/prfile.o"
PROFILE = "aufs"
#: Source files larger than this are not read (a hostile tree could point one at a huge file).
_MAX_SOURCE = 16 << 20

_EXPORT_RE = re.compile(rb"EXPORT_SYMBOL(?:_GPL)?\(\s*(\w+)\s*\)")


@dataclass(frozen=True)
class Commands:
    """The commands that rebuild and install a tree's kernel and modules, aimed at ``root``.

    With ``--root`` the kernel's own ``INSTALL_PATH`` / ``INSTALL_MOD_PATH`` and
    ``emerge --root`` send everything under ROOT instead of the host's ``/boot``.
    """

    root: Path
    tree: Path

    def __post_init__(self) -> None:
        # Printed commands run from anywhere: absolute paths only.
        object.__setattr__(self, "root", self.root.absolute())
        object.__setattr__(self, "tree", self.tree.absolute())

    @property
    def chroot(self) -> bool:
        """True when the commands act on another root than this machine's."""
        return self.root.resolve() != Path("/")

    @property
    def install(self) -> str:
        """``make modules_install && make install``, under ROOT when there is one."""
        if not self.chroot:
            return "make modules_install && make install"
        return f"make INSTALL_MOD_PATH={self.root} modules_install && make INSTALL_PATH={self.root / 'boot'} install"

    def emerge(self, args: str) -> str:
        """An emerge command line for ROOT (building modules against this tree)."""
        if not self.chroot:
            return f"emerge {args}"
        return f"KERNEL_DIR={self.tree} emerge --root={self.root} {args}"

    @property
    def rebuild(self) -> str:
        """Build, install, then rebuild the out-of-tree modules."""
        return f"cd {self.tree} && make -j$(nproc) && {self.install} && {self.emerge('--oneshot @module-rebuild')}"

    @property
    def build(self) -> str:
        """Build and install the kernel (aufs-sources: aufs is part of it)."""
        return f"cd {self.tree} && make -j$(nproc) && {self.install}"

    def note(self) -> str | None:
        """Said once beside the commands when they target another root."""
        if not self.chroot:
            return None
        return f"commands aimed at {self.root}; or run them inside the chroot (chroot {self.root}) without the ROOT parts"


@dataclass
class TreeEvidence:
    """What one kernel tree (and its build directory) shows about the aufs patches.

    Read against the patch data of the branch that fits the tree
    (:mod:`kcheck.aufs_patchset`). Times are seconds since the epoch (file
    mtimes); None means the file is absent. ``exports`` are the standalone
    patch's exports found in the sources, ``exports_missing`` those not found;
    ``mmap_missing`` names the mmap patch's hunks not found (``mm/mmap.c:2224``);
    ``symvers_exports`` are the exports the last build put in
    ``Module.symvers``; ``built_version`` is the version string of the image
    the tree last built.
    """

    tree: str
    build_dir: str
    aufs_sources: bool = False
    branch: str | None = None
    prfile: float | None = None
    exports: list[str] = field(default_factory=list)
    exports_missing: list[str] = field(default_factory=list)
    mmap_missing: list[str] = field(default_factory=list)
    mmap_hunks: int = 0
    patched_mtime: float | None = None
    prfile_o: float | None = None
    symvers: bool = False
    symvers_exports: list[str] = field(default_factory=list)
    image: str | None = None
    image_mtime: float | None = None
    built_version: str | None = None
    release: str | None = None
    config_mtime: float | None = None
    aufs_kconfig_mtime: float | None = None

    @property
    def patched(self) -> bool:
        """True when the standalone patch is whole in the sources: every export it adds."""
        return bool(self.exports) and not self.exports_missing

    @property
    def partial(self) -> bool:
        """True when some of the standalone exports are there and some are not."""
        return bool(self.exports) and bool(self.exports_missing)

    @property
    def lost(self) -> bool:
        """``mm/prfile.c`` without a single standalone export: re-merged sources took the patch back.

        No package owns ``mm/prfile.c``, so re-merging the kernel sources puts
        their own files back and leaves it behind.
        """
        return self.prfile is not None and not self.exports and not self.aufs_sources

    @property
    def standalone_signs(self) -> bool:
        """True when the tree shows the standalone case at all (patched, partly, or lost)."""
        return not self.aufs_sources and (bool(self.exports) or self.prfile is not None)

    def missing_patch(self) -> str:
        """What of the patch the sources lack, in words (for a tree not wholly patched)."""
        if self.lost:
            return f"{PATCH_FILE} is there but none of the {len(self.exports_missing)} exports of the standalone patch"
        if self.partial:
            return f"the standalone patch is partial: {len(self.exports_missing)} of {len(self.exports) + len(self.exports_missing)} exports missing ({', '.join(self.exports_missing)})"
        if self.exports:
            return f"the exports are there but {PATCH_FILE} is missing"
        return f"{PATCH_FILE} and the standalone exports are missing"

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
                shown = ", ".join(lacking[:4]) + (", ..." if len(lacking) > 4 else "")
                why.append(f"Module.symvers lacks {len(lacking)} of the patch's exports ({shown})")
        if self.image_mtime is None:
            why.append("no kernel image was built")
        elif self.patched_mtime is not None and self.image_mtime < self.patched_mtime:
            why.append(f"{self.image} is older than the patched files")
        return why

    def stale_sources_build(self) -> list[str]:
        """Why an aufs-sources tree's last build does not hold its configuration (empty when it does)."""
        if self.image_mtime is None:
            return [f"no kernel image was built in {self.build_dir}"]
        why = []
        if self.config_mtime is not None and self.image_mtime < self.config_mtime:
            why.append(f"{self.image} is older than .config")
        if self.aufs_kconfig_mtime is not None and self.image_mtime < self.aufs_kconfig_mtime:
            why.append(f"{self.image} is older than fs/aufs")
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


def _read_source(path: Path) -> bytes | None:
    """A source file's bytes, or None when it is absent, not a regular file or implausibly large."""
    try:
        return readsafe.read_regular(path, _MAX_SOURCE, what="kernel source file")
    except readsafe.UNREADABLE:
        return None


def _symvers_names(path: Path, wanted: set[str]) -> set[str] | None:
    """The ``wanted`` symbols listed in a Module.symvers (None when it is absent)."""
    exported = kernel.symvers_exports(path)
    return None if exported is None else exported & wanted


def _branch_for(tree: Path) -> aufs_patchset.Branch:
    """The shipped branch made for the tree's series; the development branch for other series."""
    fields_ = makefile_fields(tree) or {}
    major, minor = fields_.get("VERSION", ""), fields_.get("PATCHLEVEL", "")
    options = aufs_patchset.branches()
    if major.isdigit() and minor.isdigit():
        exact = [b for b in options if b.series == f"{major}.{minor}"]
        loose = [b for b in options if b.fits(int(major), int(minor))]
        if exact or loose:
            return (exact or loose)[0]
    return options[-1]


def _contains_run(lines: list[str], run: tuple[str, ...]) -> bool:
    """True when ``run`` stands in ``lines`` as consecutive lines."""
    if not run:
        return True
    first, size = run[0], len(run)
    return any(line == first and tuple(lines[i : i + size]) == run for i, line in enumerate(lines))


def read_tree(tree: Path, build_dir: Path | None = None) -> TreeEvidence:
    """Collect the aufs patch and build evidence of ``tree``.

    ``build_dir`` is where the tree is built (``KBUILD_OUTPUT``); the tree
    itself by default. Reads the handful of files the aufs patches touch;
    never runs ``make``.
    """
    build_dir = build_dir or tree
    # Resolved, so that a snapshot taken before "eselect kernel set" names the old tree.
    ev = TreeEvidence(tree=str(tree.resolve()), build_dir=str(build_dir.resolve()))
    ev.aufs_sources = (tree / "fs" / "aufs" / "Kconfig").is_file()
    ev.aufs_kconfig_mtime = _mtime(tree / "fs" / "aufs" / "Kconfig")
    ev.prfile = _mtime(tree / PATCH_FILE)
    branch = _branch_for(tree)
    ev.branch = branch.name
    standalone, mmap = branch.patches["standalone"], branch.patches["mmap"]
    texts: dict[str, bytes | None] = {}

    def text(rel: str) -> bytes | None:
        if rel not in texts:
            texts[rel] = _read_source(tree / rel)
        return texts[rel]

    touched: set[str] = set()
    for symbol, rel in sorted(standalone.exports.items()):
        data = text(rel)
        found = data is not None and symbol in {m.group(1).decode() for m in _EXPORT_RE.finditer(data)}
        (ev.exports if found else ev.exports_missing).append(symbol)
        if found:
            touched.add(rel)
    lines: dict[str, list[str]] = {}
    for hunk in mmap.hunks:
        if hunk.file not in lines:
            data = text(hunk.file)
            lines[hunk.file] = [l.strip() for l in data.decode(errors="replace").splitlines() if l.strip()] if data else []
        ev.mmap_hunks += 1
        if _contains_run(lines[hunk.file], hunk.lines):
            touched.add(hunk.file)
        else:
            ev.mmap_missing.append(hunk.describe())
    if ev.prfile is not None:
        touched.add(PATCH_FILE)
    times = [t for rel in touched if (t := _mtime(tree / rel)) is not None]
    ev.patched_mtime = max(times) if times and (ev.prfile is not None or ev.exports) else None
    ev.prfile_o = _mtime(build_dir / PATCH_OBJECT)
    in_symvers = _symvers_names(build_dir / "Module.symvers", set(ev.exports))
    ev.symvers = in_symvers is not None
    ev.symvers_exports = sorted(in_symvers or ())
    image = kernel.built_image(build_dir)
    if image is not None:
        ev.image = str(image.relative_to(build_dir))
        ev.image_mtime = image.stat().st_mtime
        ev.built_version = kernel.bzimage_version(image)
    ev.config_mtime = _mtime(build_dir / ".config")
    try:
        ev.release = readsafe.read_text(build_dir / "include" / "config" / "kernel.release", readsafe.MAX_SMALL_BYTES,
                                        what="kernel.release").strip() or None
    except readsafe.UNREADABLE:
        ev.release = None
    return ev


#: Where a user names more aufs module packages (one ``category/name`` a line), below the root.
EXTRA_NAMES_FILE = "etc/kcheck/aufs-packages"
#: The same, as a space-separated environment variable (also read by the emerge hook's bash filter).
EXTRA_NAMES_ENV = "KCHECK_AUFS_PACKAGES"
_MODULE_FILE = re.compile(r"/aufs\.ko(\.xz|\.zst|\.gz)?$")
_PATCH_FILE = re.compile(r"/aufs\d*-(standalone|mmap|base|kbuild)\.patch$")


@dataclass(frozen=True)
class AufsPackages:
    """The installed packages that decide which aufs provider a root uses.

    ``known`` is False when Portage could not be asked: the lists are then
    empty because nothing is known, not because nothing is installed.
    """

    sources: list[InstalledPackage]
    modules: list[InstalledPackage]
    kernel_sources: list[InstalledPackage]
    known: bool = True

    def describe(self, reason: str | None) -> str:
        """The packages in words, or why they are unknown."""
        names = ", ".join(str(p) for p in self.sources + self.modules)
        if names:
            return names
        # The reason itself is said once, in the "portage" finding.
        return "no aufs package installed" if self.known else "installed packages unknown"


def extra_names(root: Path) -> list[str]:
    """The aufs module packages a user named (``KCHECK_AUFS_PACKAGES``, ``/etc/kcheck/aufs-packages``)."""
    names = os.environ.get(EXTRA_NAMES_ENV, "").split()
    try:
        text = readsafe.read_head(root / EXTRA_NAMES_FILE, 65536, what="package list").decode("utf-8", "replace")
    except readsafe.UNREADABLE:
        text = ""
    names += [line.split("#", 1)[0].strip() for line in text.splitlines()]
    # Only category/name atoms: anything else never reaches Portage.
    return [n for n in dict.fromkeys(names) if re.fullmatch(r"[A-Za-z0-9_][\w+.-]*/[A-Za-z0-9_][\w+.-]*", n)]


def aufs_packages(facts: PortageFacts) -> AufsPackages:
    """Sort a root's installed packages into aufs providers.

    A kernel-sources package with aufs in its name (``sys-kernel/aufs-sources``,
    overlay variants) provides aufs in the tree. The out-of-tree module is any
    package that installs ``aufs.ko`` or ships the aufs patch set, any package
    named ``aufs<N>`` (``sys-fs/aufs3``, ``sys-fs/aufs4``, an overlay's
    ``sys-fs/aufs6``) or with aufs in its name and USE=kernel-patch, and any package the user
    names in ``KCHECK_AUFS_PACKAGES`` or ``/etc/kcheck/aufs-packages``;
    ``sys-fs/aufs-util`` is neither.
    """
    listed = extra_names(facts.root)
    key = "aufs_packages " + " ".join(listed)
    if key not in facts.memo:
        facts.memo[key] = _sort_packages(facts, listed)
    return facts.memo[key]  # type: ignore[return-value]


def _sort_packages(facts: PortageFacts, listed: list[str]) -> AufsPackages:
    candidates = {p.cpv: p for p in facts.installed("*/*aufs*")}
    for name in listed:
        candidates.update((p.cpv, p) for p in facts.installed(name))
    on_disk = ["/" + str(p.relative_to(facts.root)) for p in aufs_modules_on_disk(facts.root)]
    owners = {p.cpv: p for p in facts.owners(on_disk)}
    candidates.update(owners)
    sources, modules = [], []
    for pkg in sorted(candidates.values(), key=lambda p: p.counter):
        name = pkg.cp.split("/", 1)[1]
        if pkg.cp.startswith("sys-kernel/") and name.endswith("-sources"):
            sources.append(pkg)
        elif pkg.cpv in owners and not pkg.cp.startswith("sys-kernel/"):
            modules.append(pkg)
        elif pkg.cp in listed or re.fullmatch(r"aufs\d+", name) or "kernel-patch" in pkg.iuse or any(
            _MODULE_FILE.search(path) or _PATCH_FILE.search(path) for path in facts.contents(pkg)
        ):
            modules.append(pkg)
    kernel_ = [p for p in facts.installed("sys-kernel/*-sources") if p not in sources]
    return AufsPackages(sources=sources, modules=modules, kernel_sources=kernel_ + sources, known=facts.available)


def aufs_modules_on_disk(root: Path) -> list[Path]:
    """Every aufs.ko under ``<root>/lib/modules/*/`` (out-of-tree or in-tree), newest first."""
    base = root / "lib" / "modules"
    found = [p for pattern in ("*/*/aufs.ko*", "*/kernel/fs/aufs/aufs.ko*") for p in base.glob(pattern) if p.is_file()]
    return sorted(set(found), key=lambda p: p.stat().st_mtime, reverse=True)


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


def out_of_tree_modules(root: Path) -> list[Path]:
    """The aufs.ko files an out-of-tree package built (not ``kernel/fs/aufs``, which a kernel build installs)."""
    return [p for p in aufs_modules_on_disk(root) if "/kernel/fs/aufs/" not in str(p)]


def _finding(
    check: str,
    status: Status,
    reason: str,
    *,
    section: str = "driver",
    fix: str | None = None,
    detail: str | None = None,
    severity: Severity | None = None,
) -> Finding:
    severity = severity or {Status.FAIL: Severity.REQUIRED, Status.WARN: Severity.RECOMMENDED}.get(status, Severity.INFO)
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
    aufs_fs: str = "n",
) -> list[Finding]:
    """Findings about the aufs patch, build, install and boot of ``tree``, for either provider.

    ``facts`` gives the installed packages (or the reason they are unknown);
    ``running`` (:func:`kcheck.host.kernel.running_kernel`; None at emerge
    time) tells whether the build is booted. With ``kernel_state`` False the
    host checks report whether the build is installed and booted, so those
    two findings are left out here. ``aufs_fs`` is the configuration's
    AUFS_FS (``y``, ``m`` or ``n``), which decides whether an aufs-sources
    kernel needs its aufs.ko. The last finding is always ``aufs-reboot``:
    "safe to reboot", or what is left, including ``also_left`` (steps other
    checks ask for, such as setting or unsetting the configuration's AUFS_FS).
    """
    findings: list[Finding] = []
    packages = aufs_packages(facts)
    if not facts.available:
        findings.append(
            _finding(
                "portage",
                Status.INFO,
                f"{facts.reason}; judged from the kernel tree and the files alone",
                section="portage",
            )
        )
    elif facts.via != "Portage's Python API":
        findings.append(_finding("portage", Status.INFO, f"installed packages read through {facts.via}", section="portage"))
    ev = None
    if tree is None or not tree.is_dir():
        findings.append(_finding("aufs-tree", Status.INFO, "no kernel tree to check for the aufs patch and the build"))
    else:
        ev = read_tree(tree, build_dir)
        cmds = Commands(root, tree)
        args = (root, tree, ev, packages, facts.available, running if kernel_state else None, kernel_state, cmds)
        findings += _sources_findings(*args, aufs_fs) if ev.aufs_sources else _tree_findings(*args)
    return _summary(findings, list(also_left), kernel_state, ev, root, tree)


def _install_and_boot(root: Path, tree: Path, ev: TreeEvidence, running: kernel.Running | None, kernel_state: bool,
                      cmds: Commands) -> tuple[list[Finding], bool]:
    """Is the built image in /boot, and booted? Returns the findings and whether to go on."""
    found: list[Finding] = []
    if kernel_state:
        boot = kernel.installed_image(root, Path(ev.build_dir) / ev.image)
        if boot is None:
            found.append(
                _finding(
                    "aufs-install",
                    Status.FAIL,
                    f"the rebuilt kernel ({ev.built_version or ev.image}) is not installed: no image under {root / 'boot'} matches it",
                    fix=f"cd {tree} && {cmds.install}",
                    detail=cmds.note(),
                )
            )
            return found, False
        found.append(_finding("aufs-install", Status.OK, f"{boot.path} is the rebuilt kernel"))
    return found, True


def _boot_finding(running: kernel.Running | None, ev: TreeEvidence) -> list[Finding]:
    if running is None or running.uts_version is None or ev.built_version is None:
        return []
    if kernel.booted(running, *kernel.split_version(ev.built_version)):
        return [_finding("aufs-boot", Status.OK, "the running kernel is this build")]
    return [
        _finding(
            "aufs-boot",
            Status.INFO,
            f"installed but not booted yet: the running kernel is {running.release} {running.uts_version}",
        )
    ]


def _sources_findings(
    root: Path,
    tree: Path,
    ev: TreeEvidence,
    packages: AufsPackages,
    portage: bool,
    running: kernel.Running | None,
    kernel_state: bool,
    cmds: Commands,
    aufs_fs: str,
) -> list[Finding]:
    """aufs-sources: aufs is part of the kernel, so the kernel must be built (and installed) with it."""
    found: list[Finding] = []
    module = packages.modules[-1] if packages.modules else None
    if module is not None:
        # The tree is built for aufs-sources: keep it, and remove the other provider (never both, never neither).
        found.append(
            _finding(
                "aufs-provider",
                Status.FAIL,
                f"{tree} is an aufs-sources tree (fs/aufs/ is built in) but {module.cpv} is installed too: "
                f"keep aufs-sources (with CONFIG_AUFS_FS) and remove {module.cp}, whose aufs.ko would clash",
                section="portage",
                fix=cmds.emerge(f"--deselect {module.cp}") + " && " + cmds.emerge(f"--depclean {module.cp}"),
            )
        )
    if aufs_fs not in ("y", "m"):
        return found  # the configuration finding says AUFS_FS is off; a build of it would have no aufs
    stale = ev.stale_sources_build()
    if stale:
        found.append(
            _finding(
                "aufs-rebuild",
                Status.FAIL,
                f"{tree} is configured with CONFIG_AUFS_FS={aufs_fs} but not built that way yet: " + "; ".join(stale),
                fix=cmds.build,
                detail=cmds.note(),
            )
        )
        return found
    found.append(_finding("aufs-rebuild", Status.OK, f"the kernel in {ev.build_dir} was built from this configuration ({ev.image})"))
    more, go_on = _install_and_boot(root, tree, ev, running, kernel_state, cmds)
    found += more
    if not go_on:
        return found
    if aufs_fs == "m":
        found.append(_module_finding(root, ev, None, cmds, in_tree=True))
    return found + _boot_finding(running, ev)


def _tree_findings(
    root: Path,
    tree: Path,
    ev: TreeEvidence,
    packages: AufsPackages,
    portage: bool,
    running: kernel.Running | None,
    kernel_state: bool,
    cmds: Commands,
) -> list[Finding]:
    """The standalone case: patched (wholly), rebuilt, installed, aufs.ko rebuilt, booted."""
    module = packages.modules[-1] if packages.modules else None
    builder = module.cp if module is not None else "sys-fs/aufs3 (or the aufs module package you use)"
    reapply = f"{cmds.emerge('--oneshot ' + builder.split(' ')[0])} && {cmds.rebuild}"
    if not ev.patched and not ev.partial:
        stray = out_of_tree_modules(root) if module is None and not portage else []
        if module is None and not ev.lost and not stray:
            return []
        if stray and not ev.lost:
            # Tree alone: an out-of-tree aufs.ko is installed, so this kernel is meant to have the patch.
            return [_finding(
                "aufs-patch", Status.FAIL,
                f"{tree} does not carry the aufs standalone patch ({ev.missing_patch()}), but an out-of-tree "
                f"aufs.ko is installed ({stray[0]}): a kernel built from this tree cannot load it",
                fix=reapply, detail=cmds.note())]
        owner = tree_package(tree, packages.kernel_sources)
        if module is not None and owner is not None and owner.counter > module.counter:
            reason = (
                f"{owner.cpv} was merged after {module.cpv} and replaced the patched files: "
                f"{tree} no longer carries the aufs patch ({ev.missing_patch()})"
            )
        elif ev.lost:
            # Whatever the database says (or if it cannot be asked): the tree itself shows the loss.
            reason = (
                f"{tree} lost the aufs standalone patch ({ev.missing_patch()}): kernel sources were "
                f"re-merged after {module.cpv if module else 'the aufs module package'} patched them"
            )
        else:
            how = (
                f"re-emerge it with USE=kernel-patch or apply its patches to {tree} by hand"
                if "kernel-patch" not in module.use
                else "re-emerge it so it patches this tree"
            )
            reason = f"{module.cpv} is installed but {tree} does not carry its patch ({ev.missing_patch()}): {how}"
        return [_finding("aufs-patch", Status.FAIL, reason, section="portage" if module else "driver", fix=reapply, detail=cmds.note())]
    if ev.partial:
        return [
            _finding(
                "aufs-patch",
                Status.FAIL,
                f"{tree} carries only part of the aufs standalone patch ({ev.missing_patch()}): aufs.ko needs every one",
                fix=reapply,
                detail=f"judged with the {ev.branch} patch data",
            )
        ]
    found = [
        _finding(
            "aufs-patch",
            Status.OK,
            f"{tree} carries the aufs standalone patch ({len(ev.exports)} exports of {ev.branch})",
        )
    ]
    if ev.mmap_missing:
        found.append(
            _finding(
                "aufs-mmap",
                Status.WARN,
                f"the aufs mmap patch is partial in {tree}: {len(ev.mmap_missing)} of {ev.mmap_hunks} hunks missing "
                f"({', '.join(ev.mmap_missing)}); aufs loads, but files mmapped through it may misbehave",
                fix="apply the rejected hunks (*.rej) by hand, or use an aufs branch made for this kernel",
                detail=f"judged with the {ev.branch} patch data" + ("" if ev.prfile is not None else f"; {PATCH_FILE} is missing"),
            )
        )
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
                fix=cmds.rebuild,
                detail="; ".join(d for d in (detail, cmds.note()) if d) or None,
            )
        )
        return found
    found.append(
        _finding(
            "aufs-rebuild", Status.OK, f"the kernel in {ev.build_dir} was rebuilt after the aufs patch ({ev.image})"
        )
    )
    more, go_on = _install_and_boot(root, tree, ev, running, kernel_state, cmds)
    found += more
    if not go_on:
        return found
    # Without Portage no package says whether aufs.ko should exist, so the module itself is asked.
    if module is not None or not portage:
        found.append(_module_finding(root, ev, module, cmds))
    return found + _boot_finding(running, ev)


def _module_finding(root: Path, ev: TreeEvidence, module: InstalledPackage | None, cmds: Commands,
                    in_tree: bool = False) -> Finding:
    """Is aufs.ko installed for the tree's release, built for it, and does the build export all it needs?"""
    fix = f"cd {ev.tree} && {cmds.install}" if in_tree else cmds.emerge("--oneshot @module-rebuild")
    builder = "make modules_install" if in_tree else (module.cp if module is not None else "the aufs module package")
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
    exported = kernel.symvers_exports(Path(ev.build_dir) / "Module.symvers")
    if exported is not None:
        try:
            missing = kernel.unresolved(ko, exported)
        except kernel.ModuleUnreadable:
            missing = []  # no symbol table to judge (a stripped module): vermagic and times are all there is
        if missing:
            return _finding(
                "aufs-module",
                Status.FAIL,
                f"{ko} needs {', '.join(missing[:8])} which the kernel built in {ev.build_dir} does not export: it will not load",
                fix=fix,
            )
    return _finding("aufs-module", Status.OK, f"{ko} was built for this kernel")


#: What is left, in a few words, when a check fails (the finding itself says why and how).
_STEPS = {
    "aufs-provider": "remove the second aufs provider",
    "aufs-patch": "re-apply the aufs patch (re-emerge the aufs module package)",
    "aufs-rebuild": "rebuild the kernel",
    "aufs-install": "install the rebuilt kernel",
    "aufs-module": "rebuild aufs.ko (emerge @module-rebuild)",
}


def _summary(findings: list[Finding], also_left: list[str], kernel_state: bool, ev: TreeEvidence | None,
             root: Path, tree: Path | None) -> list[Finding]:
    left = [f for f in findings if f.status is Status.FAIL]
    if left or also_left:
        steps = also_left + [_STEPS.get(f.check, f.reason) for f in left]
        commands = " && ".join(dict.fromkeys(f.fix for f in left if f.fix))
        if ev is not None and ev.lost and [f.check for f in left] == ["aufs-patch"] and not also_left:
            # The patch went with the sources; the kernel built before still has it. The danger is the next build.
            reason = (
                f"do not build a kernel from {tree} yet: the next build would not load aufs "
                f"(the kernel built before the sources were re-merged keeps its patch); left to do: " + "; ".join(dict.fromkeys(steps))
            )
        else:
            reason = "not safe to reboot yet; left to do: " + "; ".join(dict.fromkeys(steps))
        summary = _finding("aufs-reboot", Status.FAIL, reason, fix=commands or None)
    elif ev is None:
        summary = _finding(
            "aufs-reboot", Status.WARN,
            "cannot say it is safe to reboot: no kernel tree shows whether aufs is patched and built",
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
    was, now = before.patched or before.partial, after.patched or after.partial
    if not was and now:
        changes.append(f"this merge patched {after.tree} for aufs ({PATCH_FILE}, {len(after.exports)} exports)")
    elif was and not now:
        changes.append(f"this merge removed the aufs patch from {after.tree}")
    elif was and now and (after.patched_mtime or 0) > (before.patched_mtime or 0):
        changes.append(f"this merge re-applied the aufs patch to {after.tree}")
    if before.tree != after.tree:
        changes.append(f"the kernel tree changed from {before.tree} to {after.tree}")
    return changes
