"""Kernel readiness: is the kernel this configuration describes built, installed and booted?

A right ``.config`` helps only once the kernel made from it runs. This
module follows one kernel release through its life:

1. **configured**: the release the configuration will build
   (``include/config/kernel.release`` of the last build, else the tree's
   Makefile version plus ``CONFIG_LOCALVERSION`` and ``localversion*``
   files; for the running kernel's own configuration, the running release);
2. **built**: ``arch/<arch>/boot/*Image`` (or ``vmlinux``) in the build
   directory, newer than ``.config`` (else: rebuild);
3. **installed**: an image in ``/boot`` that is that build. On x86 the
   bzImage carries its version string (setup header: a 2-byte little-endian
   offset at 0x20E, the string at 0x200 + offset, ``"<release>
   (<user>@<host>) #<n> SMP ..."``), so the very build is recognised; other
   images are matched by content, then by the ``vmlinuz-<release>`` name;
4. **booted**: the running release and ``uname -v`` (``/proc/sys/kernel``,
   else ``/proc/version``, under ``--root``) match.

These readers are the only ones in kcheck: the aufs checks
(:mod:`kcheck.portage.aufs_state`) call them too.

Modules follow the release that will boot: every required symbol set to
``m`` needs its module file under ``/lib/modules/<release>/``, and an
out-of-tree module (aufs.ko, zfs.ko) needs a ``vermagic`` naming that release.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kcheck import readsafe
from kcheck.locate import running_release, under_root
from kcheck.model import CheckContext, Finding, Severity, Status

#: x86 boot protocol: "HdrS" at 0x202, protocol version at 0x206, kernel_version pointer at 0x20E.
_SETUP_MAGIC = b"HdrS"
#: Names installkernel, kernel-install and boot loaders give kernel images under /boot.
_BOOT_IMAGES = ("vmlinuz", "kernel", "bzImage", "vmlinux", "Image", "linux")
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def bzimage_version(path: str | Path) -> str | None:
    """The version string an x86 bzImage carries, or None when ``path`` is not one.

    The string is ``"<release> (<user>@<host>) <uts version>"``, for example
    ``"6.1.0-gentoo (root@box) #2 SMP PREEMPT_DYNAMIC Fri Nov 27 12:00:00 UTC 2026"``.
    """
    try:
        header = readsafe.read_head(path, 0x210, what="kernel image")
        if len(header) < 0x210 or header[0x202:0x206] != _SETUP_MAGIC:
            return None
        (protocol,) = struct.unpack_from("<H", header, 0x206)
        (offset,) = struct.unpack_from("<H", header, 0x20E)
        if protocol < 0x200 or offset == 0:
            return None
        raw = readsafe.read_at(path, 0x200 + offset, 256, what="kernel image").split(b"\0", 1)[0]
    except readsafe.UNREADABLE:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    return text or None


def split_version(text: str) -> tuple[str, str]:
    """``(release, uts_version)`` of a bzImage string; the build's ``#n ...`` part may be empty."""
    release, _, rest = text.partition(" ")
    match = re.match(r"\([^)]*\)\s*(.*)", rest)
    return release, (match.group(1) if match else rest).strip()


@dataclass(frozen=True)
class BootImage:
    """A kernel image in ``/boot``: its file, release (None when neither name nor header tells) and x86 build string."""

    path: Path
    release: str | None
    uts_version: str | None


def boot_images(root: Path) -> list[BootImage]:
    """The kernel images installed under ``<root>/boot``, newest file first.

    Layouts known: ``/boot/vmlinuz-<release>`` (installkernel, make install),
    ``/boot/<entry>/<release>/linux`` (systemd's kernel-install), and images
    named like these up to two directories down (EFI system partitions).
    Links are skipped: they name an image that is listed already.
    """
    boot = under_root(root, "/boot")
    named: dict[Path, str | None] = {}
    for pattern in ("*", "*/*", "*/*/*"):
        for path in boot.glob(pattern):
            prefix, dash, rest = path.name.partition("-")
            if prefix not in _BOOT_IMAGES or path.is_symlink() or not path.is_file():
                continue
            if dash:
                named[path] = rest.removesuffix(".old")
            else:
                # kernel-install's <entry>/<release>/linux names the release by its directory.
                kernel_install = prefix == "linux" and path.parent.parent.parent == boot
                named[path] = path.parent.name if kernel_install else None
    images = []
    for path in sorted(named, key=lambda p: p.stat().st_mtime, reverse=True):
        text = bzimage_version(path)
        release, uts = split_version(text) if text else (named[path], None)
        images.append(BootImage(path, release, uts))
    return images


@dataclass(frozen=True)
class Running:
    """The kernel running now: release (``uname -r``) and build (``uname -v``, None when unknown)."""

    release: str
    uts_version: str | None


def parse_proc_version(text: str) -> Running:
    """The running kernel as ``/proc/version`` tells it.

    ``"Linux version <release> (<user>@<host>) (<compiler>) #<n> SMP ..."``:
    the build string starts at the first ``#`` (the compiler part has nested
    parentheses, so it is not parsed).
    """
    line = text.strip().removeprefix("Linux version ")
    release, _, rest = line.partition(" ")
    mark = rest.find("#")
    return Running(release, rest[mark:].strip() if mark >= 0 else None)


def running_kernel(root: Path) -> Running:
    """The running kernel: ``<root>/proc/sys/kernel``, else ``<root>/proc/version``, else ``uname`` on the real root."""
    try:
        return Running(running_release(root), _small_text(under_root(root, "/proc/sys/kernel/version")).strip())
    except readsafe.UNREADABLE:
        pass
    try:
        return parse_proc_version(_small_text(under_root(root, "/proc/version")))
    except readsafe.UNREADABLE:
        return Running(running_release(root), os.uname().version if root == Path("/") else None)


def booted(running: Running, release: str | None, uts_version: str | None) -> bool:
    """True when ``running`` is the build ``release`` / ``uts_version`` (an unknown build string on either side matches)."""
    return running.release == release and (uts_version is None or running.uts_version is None or uts_version == running.uts_version)


def target_release(ctx: CheckContext) -> tuple[str | None, str]:
    """The release the configuration in ``ctx`` will build (or runs as), and where that came from."""
    if ctx.live:
        return running_release(ctx.root), "the running kernel"
    build = ctx.build_dir or ctx.tree
    if build is not None:
        try:
            return _small_text(build / "include/config/kernel.release").strip(), "include/config/kernel.release"
        except readsafe.UNREADABLE:
            pass
    if ctx.kernel_version is None:
        return None, "unknown"
    local = ctx.source.state("LOCALVERSION")
    # The kernel's setlocalversion order: localversion* files (build dir, then sources), then CONFIG_LOCALVERSION.
    files = [f for d in dict.fromkeys(d for d in (build, ctx.tree) if d is not None) for f in sorted(d.glob("localversion*"))]
    suffix = "".join(_localversion(f) for f in files)
    suffix += local.value if local.value not in ("n", "") else ""
    return ctx.kernel_version.release + suffix, f"{ctx.kernel_version.source} and CONFIG_LOCALVERSION"


def _small_text(path: Path) -> str:
    """A one-line file of the system or a build (``/proc/version``, ``kernel.release``): bounded, regular only.

    Raises one of :data:`kcheck.readsafe.UNREADABLE`; every caller then falls
    back on what it does for a missing file.
    """
    return readsafe.read_text(path, readsafe.MAX_SMALL_BYTES, what="one-line file")


def _localversion(path: Path) -> str:
    """A ``localversion*`` file's text, stripped; empty when it is not a readable regular file (make skips those too)."""
    try:
        return _small_text(path).strip()
    except readsafe.UNREADABLE:
        return ""


def built_image(build: Path) -> Path | None:
    """The image ``make install`` would install from a build directory: the newest ``arch/*/boot`` image, else ``vmlinux``."""
    boot = [p for pattern in ("bzImage", "Image*", "zImage") for p in build.glob(f"arch/*/boot/{pattern}") if p.is_file()]
    if boot:
        return max(boot, key=lambda p: p.stat().st_mtime)
    vmlinux = build / "vmlinux"
    return vmlinux if vmlinux.is_file() else None


def installed_image(root: Path, image: Path | None, release: str | None = None) -> BootImage | None:
    """The ``/boot`` image that is the build ``image``, or None.

    An x86 image is recognised by its version string (the very build, not
    just the release); any other by its bytes. With nothing built to compare
    (``make clean``, a distribution kernel), an image named for ``release``
    is the best evidence there is.
    """
    built_text = bzimage_version(image) if image is not None else None
    built = split_version(built_text) if built_text else None
    for candidate in boot_images(root):
        if built is not None:
            if (candidate.release, candidate.uts_version) == built:
                return candidate
        elif image is not None:
            if _same_bytes(candidate.path, image):
                return candidate
        elif release is not None and candidate.release == release:
            return candidate
    return None


def _same_bytes(a: Path, b: Path) -> bool:
    """True when two files hold the same bytes (read in chunks: images are tens of MiB)."""
    try:
        size = a.stat().st_size
        if size != b.stat().st_size:
            return False
        # Regular files only, and no further than the size both had: neither can be a FIFO or grow forever.
        for offset in range(0, size, 1 << 20):
            chunk = readsafe.read_at(a, offset, 1 << 20, what="kernel image")
            if not chunk or chunk != readsafe.read_at(b, offset, len(chunk), what="kernel image"):
                return False
        return True
    except readsafe.UNREADABLE:
        return False


def _finding(check: str, status: Status, severity: Severity, reason: str, group: str = "Kernel", **extra) -> Finding:
    return Finding(profile="host", check=check, status=status, severity=severity, reason=reason,
                   section="host", group=group, **extra)


def readiness_findings(ctx: CheckContext) -> tuple[list[Finding], str | None]:
    """Built / installed / booted findings, and the release that will boot (None if unknown)."""
    running = running_kernel(ctx.root)
    if ctx.live:
        note = f"running {running.release}" + (f" ({running.uts_version})" if running.uts_version else "")
        return [_finding("kernel-booted", Status.OK, Severity.INFO, f"the configuration read is the running kernel's: {note}",
                         actual=running.release)], running.release
    release, how = target_release(ctx)
    if release is None:
        return [_finding("kernel-release", Status.INFO, Severity.INFO, "the release this configuration builds is unknown")], None
    out = [_finding("kernel-release", Status.INFO, Severity.INFO, f"this configuration builds {release}", detail=f"from {how}", actual=release)]
    build = ctx.build_dir or ctx.tree
    image = built_image(build) if build is not None else None
    built_text = bzimage_version(image) if image else None
    if build is not None:
        stale = _built_finding(ctx, build, image, built_text, release)
        out.append(stale)
        if stale.status is Status.WARN and image is not None:
            # A stale build says nothing about whether *this* configuration is installed or booted.
            return out, None

    installed = installed_image(ctx.root, image, release)
    # The build to recognise in the running kernel: the one in the tree, else the installed one.
    wanted = split_version(built_text)[1] if built_text else (installed.uts_version if installed else None)
    is_booted = booted(running, release, wanted)
    if installed is not None:
        out.append(_finding("kernel-installed", Status.OK, Severity.RECOMMENDED, f"installed: {installed.path}"))
    elif image is not None and not is_booted:
        out.append(_finding("kernel-installed", Status.WARN, Severity.RECOMMENDED,
                            f"{release} is built but not installed in /boot (is /boot mounted?)",
                            fix=install_command(ctx.root, build)))
    if is_booted:
        where = "" if installed is not None else " (its image is not in /boot: booted some other way)"
        out.append(_finding("kernel-booted", Status.OK, Severity.INFO, f"booted: {release} is running{where}", actual=running.release))
        return out, release
    if installed is None:
        return out, None
    now = running.release if running.release != release else f"an older build of {release} ({running.uts_version})"
    out.append(_finding("kernel-booted", Status.WARN, Severity.INFO, f"installed but not booted: the running kernel is {now}",
                        actual=running.release, fix=f"reboot into {installed.path.name}"))
    return out, release


def install_command(root: Path, build: Path) -> str:
    """``make modules_install install`` for ``build``, aimed at ``root`` (``--root``) rather than this machine's /boot."""
    if root.resolve() == Path("/"):
        return f"make -C {build} modules_install install"
    root = root.absolute()
    return f"make -C {build} INSTALL_MOD_PATH={root} INSTALL_PATH={root / 'boot'} modules_install install (or run it inside the chroot)"


def _built_finding(ctx: CheckContext, build: Path, image: Path | None, built_text: str | None, release: str) -> Finding:
    """Is the tree's kernel built, and built from the configuration as it is now?"""
    config_path = ctx.source.path
    if image is None:
        return _finding("kernel-built", Status.WARN, Severity.RECOMMENDED, f"{release} is not built yet (no kernel image in {build})",
                        fix=f"make -C {build} && {install_command(ctx.root, build)}")
    if config_path is not None and config_path.stat().st_mtime > image.stat().st_mtime:
        return _finding("kernel-built", Status.WARN, Severity.RECOMMENDED,
                        f"the configuration changed after the last build: {image} is older than {config_path}; a reboot now would not use it",
                        fix=f"rebuild: make -C {build} && {install_command(ctx.root, build)}")
    return _finding("kernel-built", Status.OK, Severity.RECOMMENDED, f"built: {image}" + (f" ({built_text})" if built_text else ""))


# --- modules -----------------------------------------------------------------

#: Kconfig symbol -> module name, for the symbols docker and the storage drivers require.
MODULE_OF = {
    "OVERLAY_FS": "overlay",
    "BTRFS_FS": "btrfs",
    "EXT4_FS": "ext4",
    "XFS_FS": "xfs",
    "FUSE_FS": "fuse",
    "AUFS_FS": "aufs",
    "BLK_DEV_DM": "dm-mod",
    "DM_THIN_PROVISIONING": "dm-thin-pool",
    "VETH": "veth",
    "BRIDGE": "bridge",
    "BRIDGE_NETFILTER": "br_netfilter",
    "NF_NAT": "nf_nat",
    "IP_NF_FILTER": "iptable_filter",
    "IP_NF_MANGLE": "iptable_mangle",
    "IP_NF_RAW": "iptable_raw",
    "IP_NF_NAT": "iptable_nat",
    "IP6_NF_FILTER": "ip6table_filter",
    "IP6_NF_MANGLE": "ip6table_mangle",
    "IP6_NF_RAW": "ip6table_raw",
    "IP6_NF_NAT": "ip6table_nat",
    "NETFILTER_XT_MATCH_ADDRTYPE": "xt_addrtype",
    "NETFILTER_XT_MATCH_CONNTRACK": "xt_conntrack",
    "NETFILTER_XT_MATCH_IPVS": "xt_ipvs",
    "NETFILTER_XT_MARK": "xt_mark",
}


def _normal(name: str) -> str:
    """Module names treat ``-`` and ``_`` alike (modprobe does)."""
    return name.replace("-", "_")


def module_index(root: Path, release: str) -> dict[str, Path] | None:
    """Module name -> file under ``<root>/lib/modules/<release>``; None when that directory is missing."""
    base = under_root(root, f"/lib/modules/{release}")
    if not base.is_dir():
        return None
    index: dict[str, Path] = {}
    for directory, _dirs, files in os.walk(base):
        for name in files:
            for suffix in _MODULE_SUFFIXES:
                if name.endswith(suffix):
                    index.setdefault(_normal(name[: -len(suffix)]), Path(directory, name))
    return index


def builtin_modules(root: Path, release: str) -> set[str]:
    """Names listed in ``modules.builtin`` (built into that kernel)."""
    try:
        text = readsafe.read_text(under_root(root, f"/lib/modules/{release}/modules.builtin"), what="modules.builtin")
    except readsafe.UNREADABLE:
        return set()
    return {_normal(Path(line.strip()).name.removesuffix(".ko")) for line in text.splitlines() if line.strip()}


def module_findings(ctx: CheckContext, config_findings: Iterable[Finding], release: str) -> list[Finding]:
    """For each required symbol set to ``m``: is its module installed for ``release``?"""
    wanted = sorted({f.symbol or f.check for f in config_findings
                     if f.section != "host" and f.severity is Severity.REQUIRED and f.status is Status.OK and f.actual == "m"})
    if not wanted:
        return []
    index = module_index(ctx.root, release)
    if index is None:
        return [_finding("modules", Status.FAIL, Severity.REQUIRED,
                         f"/lib/modules/{release} is missing: {len(wanted)} required module(s) ({', '.join(wanted)}) cannot load",
                         group="Modules", fix="make modules_install (in the kernel tree)")]
    builtin = builtin_modules(ctx.root, release)
    present, missing = [], []
    for symbol in wanted:
        name = MODULE_OF.get(symbol)
        if name is None:
            continue  # no known module name: the configuration check already covers the symbol
        (present if _normal(name) in index or _normal(name) in builtin else missing).append(name)
    out = []
    if present:
        out.append(_finding("modules", Status.OK, Severity.REQUIRED,
                            f"{len(present)} required module(s) installed for {release}", group="Modules", detail=", ".join(present)))
    if missing:
        out.append(_finding("modules-missing", Status.FAIL, Severity.REQUIRED,
                            f"{len(missing)} required module(s) set to m are not under /lib/modules/{release}",
                            group="Modules", detail=", ".join(missing), fix="make modules_install (in the kernel tree)"))
    return out


# --- out-of-tree modules: the .modinfo section --------------------------------


class ModuleUnreadable(Exception):
    """A module file could not be read or decompressed (the message says why)."""


#: Larger than any kernel module, compressed or not (unstripped ones with debug info reach a few hundred MiB).
MAX_MODULE_BYTES = 512 * 1024 * 1024


def _decompress(path: Path) -> bytes:
    """A module's ELF bytes, whatever its compression; a file or its decompressed bytes past the bound are refused."""
    try:
        data = readsafe.read_regular(path, MAX_MODULE_BYTES, what="kernel module")
    except (readsafe.NotRegular, readsafe.TooLarge) as exc:
        raise ModuleUnreadable(str(exc)) from None
    if path.name.endswith(".xz"):
        return _bounded(path, lzma.LZMADecompressor(), data)
    if path.name.endswith(".gz"):
        return _bounded(path, zlib.decompressobj(16 + zlib.MAX_WBITS), data)
    if path.name.endswith(".zst"):
        try:
            from compression import zstd  # Python 3.14+
            return _bounded(path, zstd.ZstdDecompressor(), data)
        except ImportError:
            pass
        tool = shutil.which("zstd")
        if tool is None:
            raise ModuleUnreadable(f"{path} is zstd-compressed and neither Python's zstd support nor the zstd command is available")
        try:
            # The bytes already read (never the path again), and no more output than the bound.
            proc = subprocess.run([tool, "-dc"], input=data, capture_output=True, check=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ModuleUnreadable(f"zstd could not decompress {path}: {exc}") from None
        if len(proc.stdout) > MAX_MODULE_BYTES:
            raise ModuleUnreadable(f"{path} decompresses to more than {MAX_MODULE_BYTES // 2**20} MiB: not a kernel module")
        return proc.stdout
    return data


def _bounded(path: Path, decompressor, data: bytes) -> bytes:
    """``data`` through ``decompressor``, refused past :data:`MAX_MODULE_BYTES` (a compression bomb is no module)."""
    out = decompressor.decompress(data, MAX_MODULE_BYTES + 1)
    if len(out) > MAX_MODULE_BYTES:
        raise ModuleUnreadable(f"{path} decompresses to more than {MAX_MODULE_BYTES // 2**20} MiB: not a kernel module")
    if not decompressor.eof:
        raise EOFError("compressed data ends before the end-of-stream marker")
    return out


def _elf_sections(data: bytes) -> tuple[str, list[tuple[str, int, int, int, int]]] | None:
    """``(byte order + width, [(name, type, offset, size, link)])`` of an ELF file, or None."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            shoff, = struct.unpack_from(order + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
            layout = order + "IIQQQQII"  # name, type, flags, addr, offset, size, link, info
        else:
            shoff, = struct.unpack_from(order + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
            layout = order + "IIIIIIII"
        raw = [struct.unpack_from(layout, data, shoff + i * shentsize) for i in range(shnum)]
        names = data[raw[shstrndx][4] : raw[shstrndx][4] + raw[shstrndx][5]]
        out = []
        for fields in raw:
            end = names.index(b"\0", fields[0])
            out.append((names[fields[0] : end].decode(errors="replace"), fields[1], fields[4], fields[5], fields[6]))
    except (struct.error, ValueError, IndexError):
        return None
    return ("Q" if wide else "I") + order, out


def elf_section(data: bytes, name: str) -> bytes | None:
    """The contents of section ``name`` of an ELF file (32/64-bit, either byte order), or None."""
    parsed = _elf_sections(data)
    if parsed is None:
        return None
    for sname, _type, offset, size, _link in parsed[1]:
        if sname == name:
            return data[offset : offset + size]
    return None


#: ELF section type of a symbol table, and the binding of a global symbol.
_SHT_SYMTAB, _STB_GLOBAL = 2, 1


def undefined_symbols(data: bytes) -> set[str] | None:
    """The global symbols an ELF object (a kernel module) needs from elsewhere, or None when it has no symbol table.

    Weak undefined symbols are left out: a module loads without them.
    """
    parsed = _elf_sections(data)
    if parsed is None:
        return None
    kind, sections = parsed
    wide, order = kind[0] == "Q", kind[1]
    for _name, stype, offset, size, link in sections:
        if stype != _SHT_SYMTAB or link >= len(sections):
            continue
        strings = data[sections[link][2] : sections[link][2] + sections[link][3]]
        entry, needed = (24, set()) if wide else (16, set())
        try:
            for at in range(offset + entry, offset + size, entry):  # entry 0 is the null symbol
                if wide:
                    name_off, info, _other, shndx = struct.unpack_from(order + "IBBH", data, at)
                else:
                    name_off, _value, _size, info, _other, shndx = struct.unpack_from(order + "IIIBBH", data, at)
                if shndx == 0 and info >> 4 == _STB_GLOBAL and name_off:
                    needed.add(strings[name_off : strings.index(b"\0", name_off)].decode(errors="replace"))
        except (struct.error, ValueError):
            return None
        return needed
    return None


def module_needs(path: Path) -> set[str]:
    """The kernel symbols module ``path`` must find exported to load (its undefined globals).

    Raises :class:`ModuleUnreadable` when the file cannot be read or has no symbol table.
    """
    try:
        needed = undefined_symbols(_decompress(path))
    except (OSError, lzma.LZMAError, zlib.error, EOFError) as exc:
        raise ModuleUnreadable(f"cannot read {path}: {exc}") from None
    if needed is None:
        raise ModuleUnreadable(f"{path} has no ELF symbol table")
    return needed


def symvers_exports(path: Path) -> set[str] | None:
    """Every symbol a build exports, from its ``Module.symvers`` (None when absent)."""
    try:
        # Lines are "<crc>\t<symbol>\t<module>\t<export kind>..."; only the symbol matters.
        return {parts[1].decode(errors="replace") for line in readsafe.iter_lines(path, what="Module.symvers")
                if len(parts := line.split(b"\t", 2)) > 2}
    except readsafe.UNREADABLE:
        return None


def _ksymtab_names(path: Path) -> set[str]:
    """Names of ``__ksymtab_<name>`` entries in a kallsyms or System.map listing (empty when unreadable)."""
    try:
        return {
            parts[2][len(b"__ksymtab_") :].decode(errors="replace")
            for line in readsafe.iter_lines(path, what="symbol listing")
            if len(parts := line.split()) >= 3 and parts[2].startswith(b"__ksymtab_")
        }
    except readsafe.UNREADABLE:
        return set()


def running_exports(root: Path) -> tuple[set[str] | None, str]:
    """The symbols the running kernel exports, and where they were read (or why they are unknown).

    ``/proc/kallsyms`` lists ``__ksymtab_<name>`` for each export when the
    kernel has CONFIG_KALLSYMS_ALL; otherwise the running build's own
    ``System.map`` or ``Module.symvers`` tell, when the installed image beside
    it (``/boot``) or in its build tree is provably the running build (same
    version string). Exports of modules not loaded yet come from
    ``modules.symbols``.
    """
    running = running_kernel(root)
    exported, source = _ksymtab_names(under_root(root, "/proc/kallsyms")), "/proc/kallsyms"
    if not exported:
        exported, source = set(), ""
        build = under_root(root, f"/lib/modules/{running.release}/build")
        candidates = [(image.path.parent / f"System.map-{running.release}", image) for image in boot_images(root)
                      if image.release == running.release]
        built = built_image(build) if build.is_dir() else None
        if built is not None:
            text = bzimage_version(built)
            release, uts = split_version(text) if text else (None, None)
            candidates.append((build / "Module.symvers", BootImage(built, release, uts)))
        for path, image in candidates:
            if image.uts_version is None or not booted(running, image.release, image.uts_version) or running.uts_version is None:
                continue  # only the very build that runs speaks for it
            names = symvers_exports(path) if path.name == "Module.symvers" else _ksymtab_names(path)
            if names:
                exported, source = names, str(path)
                break
    if not exported:
        return None, (f"{under_root(root, '/proc/kallsyms')} lists no exports (CONFIG_KALLSYMS_ALL off, or unreadable) "
                      "and no System.map or Module.symvers of the running build was found")
    try:
        text = readsafe.read_text(under_root(root, f"/lib/modules/{running.release}/modules.symbols"),
                                  readsafe.MAX_LISTING_BYTES, what="modules.symbols")
    except readsafe.UNREADABLE:
        text = ""
    exported |= {line.split()[1].removeprefix("symbol:") for line in text.splitlines() if line.startswith("alias symbol:")}
    return exported, source


def unresolved(path: Path, exported: set[str]) -> list[str]:
    """The symbols module ``path`` needs that ``exported`` lacks: why it would fail with "Unknown symbol"."""
    return sorted(module_needs(path) - exported)


def modinfo(path: Path) -> dict[str, str]:
    """The ``key=value`` fields of a kernel module's ``.modinfo`` section (first value per key)."""
    try:
        section = elf_section(_decompress(path), ".modinfo")
    except (OSError, lzma.LZMAError, zlib.error, EOFError) as exc:
        raise ModuleUnreadable(f"cannot read {path}: {exc}") from None
    if section is None:
        raise ModuleUnreadable(f"{path} is not a kernel module (no ELF .modinfo section)")
    fields: dict[str, str] = {}
    for entry in section.split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields


def out_of_tree_findings(ctx: CheckContext, name: str, release: str, package: str) -> list[Finding]:
    """Is the out-of-tree module ``name`` installed for ``release``, built for it (vermagic)?

    Nothing is said when the kernel cannot load modules at all: the
    configuration check already fails on CONFIG_MODULES.
    """
    if not ctx.source.state("MODULES").enabled:
        return []
    index = module_index(ctx.root, release) or {}
    path = index.get(_normal(name))
    group = "Modules"
    if path is None:
        return [_finding(f"module:{name}", Status.FAIL, Severity.REQUIRED, f"{name}.ko is not installed for {release}",
                         group=group, fix=f"emerge {package} (or emerge @module-rebuild) after installing the kernel")]
    try:
        vermagic = modinfo(path).get("vermagic", "")
    except ModuleUnreadable as exc:
        return [_finding(f"module:{name}", Status.WARN, Severity.RECOMMENDED, f"cannot read the vermagic of {path}: {exc}", group=group)]
    built_for = vermagic.split(" ", 1)[0]
    if built_for == release:
        return [_finding(f"module:{name}", Status.OK, Severity.REQUIRED, f"{name}.ko is built for {release}", group=group,
                         detail=f"{path}: vermagic {vermagic.strip()}")]
    return [_finding(f"module:{name}", Status.FAIL, Severity.REQUIRED,
                     f"{path} was built for {built_for or 'an unknown kernel'}, not {release}: it will not load",
                     group=group, expected=release, actual=built_for, fix="emerge @module-rebuild")]


# --- the running kernel --------------------------------------------------------


def filesystems_now(root: Path) -> set[str]:
    """Filesystem types the running kernel can mount right now (``/proc/filesystems``)."""
    try:
        text = _small_text(under_root(root, "/proc/filesystems"))
    except readsafe.UNREADABLE:
        return set()
    return {line.split()[-1] for line in text.splitlines() if line.split()}


def running_fs_findings(ctx: CheckContext, fstype: str, symbol: str | None, package: str | None = None) -> list[Finding]:
    """Can the running kernel mount ``fstype`` now, or load the module that provides it?

    ``symbol`` is the Kconfig symbol of an in-tree filesystem; an out-of-tree
    one has none and names the ``package`` that builds its module instead.
    """
    if symbol is not None and not ctx.source.state(symbol).enabled:
        return []  # the configuration check already says it is missing
    if fstype in filesystems_now(ctx.root):
        return [_finding(f"running:{fstype}", Status.OK, Severity.REQUIRED, f"{fstype} is available in the running kernel now",
                         group="Running kernel", detail="/proc/filesystems")]
    release = running_release(ctx.root)
    index = module_index(ctx.root, release) or {}
    module = MODULE_OF.get(symbol or "", fstype)
    if _normal(module) in index:
        return [running_module_finding(ctx.root, fstype, index[_normal(module)], release, package)]
    return [_finding(f"running:{fstype}", Status.FAIL, Severity.REQUIRED,
                     f"the running kernel cannot mount {fstype}: not in /proc/filesystems and no {module} module under /lib/modules/{release}",
                     group="Running kernel",
                     fix=f"emerge {package}" if package else f"install the {module} module for {release} (make modules_install), or boot a kernel with it")]


def running_module_finding(root: Path, fstype: str, path: Path, release: str, package: str | None = None) -> Finding:
    """Would module ``path`` load into the running kernel? Judged from what it needs, never from the file being there.

    A module loads when its vermagic names the running release and every
    global symbol it needs is exported by the running kernel
    (``/proc/kallsyms``'s ``__ksymtab_`` entries, plus ``modules.symbols``).
    When the exports cannot be read the answer is "cannot tell", a warning.
    """
    check, group = f"running:{fstype}", "Running kernel"
    fix = f"emerge {package}" if package else f"install the {fstype} module for {release} (make modules_install)"
    try:
        built_for = modinfo(path).get("vermagic", "").split(" ", 1)[0]
        exported, source = running_exports(root)
        missing = unresolved(path, exported) if exported is not None else None
    except ModuleUnreadable as exc:
        return _finding(check, Status.WARN, Severity.RECOMMENDED, f"cannot tell whether {fstype} loads: {exc}", group=group)
    if built_for and built_for != release:
        return _finding(check, Status.FAIL, Severity.REQUIRED,
                        f"{path} was built for {built_for}, not the running {release}: it will not load", group=group, fix=fix)
    if missing is None:
        return _finding(check, Status.WARN, Severity.RECOMMENDED,
                        f"cannot tell whether {path} loads: the running kernel's exports are unknown", detail=source,
                        group=group)
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        return _finding(check, Status.FAIL, Severity.REQUIRED,
                        f"{path} will not load into the running kernel (Unknown symbol {shown}): the running kernel does not export what it needs",
                        group=group, detail=f"{len(missing)} of its symbols are not exported ({source})",
                        fix="boot a kernel built from the patched tree" if fstype == "aufs" else fix)
    return _finding(check, Status.OK, Severity.REQUIRED, f"{fstype} loads on first use ({path}: every symbol it needs is exported)",
                    group=group, detail=f"exports read from {source}")
