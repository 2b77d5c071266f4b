"""The environment the kernel's top-level Makefile gives Kconfig.

``make olddefconfig`` runs ``conf`` with variables the Makefile exports, and
the Kconfig files use them: ``$(srctree)`` to find scripts, ``$(CC)`` and
``$(LD)`` in ``$(shell,...)`` probes (``CC_IS_GCC``, ``GCC_VERSION``,
``CC_HAS_*``, ``LD_VERSION``...), ``$(OBJCOPY)`` for ``X86_X32_ABI``,
``$(CC_VERSION_TEXT)`` written verbatim into the ``.config``, ``$(RUSTC)`` and
``$(BINDGEN)`` for ``RUST_IS_AVAILABLE``, and so on. Kconfiglib reads them
from ``os.environ``; without them the values differ from the kernel's.

:func:`kconfig_env` derives the same values the way the Makefiles of Linux
6.x do (``CROSS_COMPILE``, ``LLVM=1``/``LLVM=<prefix>/``/``LLVM=-<suffix>``
respected); any variable already set in the user's environment wins, so
``CC=clang kcheck ...`` behaves like a Kconfig run with that compiler.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from kcheck import dotconfig, version
from kcheck.errors import KcheckError

#: ``uname -m`` -> the Makefile's SUBARCH (its ``sed`` rules, in order).
_SUBARCH_RULES = (
    (r"i.86", "x86"),
    (r"x86_64", "x86"),
    (r"sun4u", "sparc64"),
    (r"arm.*", "arm"),
    (r"sa110", "arm"),
    (r"s390x", "s390"),
    (r"ppc.*", "powerpc"),
    (r"mips.*", "mips"),
    (r"sh[234].*", "sh"),
    (r"aarch64.*", "arm64"),
    (r"riscv.*", "riscv"),
    (r"loongarch.*", "loongarch"),
)

#: ARCH values whose sources live under another arch/ directory (the Makefile's SRCARCH).
_SRCARCH = {
    "i386": "x86",
    "x86_64": "x86",
    "sparc32": "sparc",
    "sparc64": "sparc",
    "parisc64": "parisc",
    "sh64": "sh",
}

#: clang --target= per SRCARCH when CROSS_COMPILE is empty (scripts/Makefile.clang).
_CLANG_TARGETS = {
    "arm": "arm-linux-gnueabi",
    "arm64": "aarch64-linux-gnu",
    "hexagon": "hexagon-linux-musl",
    "loongarch": "loongarch64-linux-gnusf",
    "m68k": "m68k-linux-gnu",
    "mips": "mipsel-linux-gnu",
    "powerpc": "powerpc64le-linux-gnu",
    "riscv": "riscv64-linux-gnu",
    "s390": "s390x-linux-gnu",
    "sparc": "sparc64-linux-gnu",
    "um": "x86_64-linux-gnu",
    "x86": "x86_64-linux-gnu",
}



def subarch(machine: str | None = None) -> str:
    """Return the ARCH ``make`` picks on this machine when none is given (its SUBARCH)."""
    value = machine or platform.machine()
    for pattern, replacement in _SUBARCH_RULES:
        value = re.sub(pattern, replacement, value)
    return value


def srcarch(arch: str) -> str:
    """Return the ``arch/`` directory name for ``arch`` (``x86_64`` -> ``x86``)."""
    return _SRCARCH.get(arch, arch)


def arch_from_config(config: Path) -> str | None:
    """Return the architecture named in a ``.config`` header (``# Linux/x86 ...``), if any."""
    try:
        text = dotconfig.read_bytes(Path(config))[:4096].decode("utf-8", "replace")
    except KcheckError:
        return None
    for line in text.split("\n")[:6]:
        match = dotconfig.HEADER.match(line)
        if match:
            return match.group(1)
    return None


def kernel_version(srctree: Path) -> str:
    """Return KERNELVERSION as the Makefile composes it (``6.12.117``)."""
    fields = version.makefile_fields(srctree)
    if fields is None:
        raise KcheckError(
            f"{srctree / 'Makefile'}: no readable VERSION line; point --kernel-dir at a kernel source tree"
        )
    return version.kernelversion(fields)


def _version_texts(commands: list[tuple[str, bool]], env: Mapping[str, str]) -> list[str]:
    """First line of each ``<command> --version`` with '#' removed ("" when it cannot run).

    ``commands`` holds (command, run with LC_ALL=C); they run side by side.
    """
    procs: list[subprocess.Popen | None] = []
    for command, c_locale in commands:
        argv = command.split()
        proc = None
        if argv and shutil.which(argv[0], path=env.get("PATH")) is not None:
            run_env = dict(env, LC_ALL="C") if c_locale else dict(env)
            try:
                proc = subprocess.Popen([*argv, "--version"], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=run_env, text=True)
            except OSError:
                proc = None
        procs.append(proc)
    texts = []
    for proc in procs:
        lines: list[str] = []
        if proc is not None:
            try:
                lines = proc.communicate(timeout=30)[0].splitlines()
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        texts.append(lines[0].replace("#", "") if lines else "")
    return texts


def toolchain(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the tool variables the Makefile sets (before user overrides)."""
    llvm = environ.get("LLVM", "")
    cross = environ.get("CROSS_COMPILE", "")
    tools: dict[str, str] = {}
    if llvm:
        prefix = llvm if llvm.endswith("/") else ""
        suffix = llvm if llvm.startswith("-") else ""

        def ll(name: str) -> str:
            return f"{prefix}{name}{suffix}"

        tools |= {
            "HOSTCC": ll("clang"), "HOSTCXX": ll("clang++"), "CC": ll("clang"),
            "LD": ll("ld.lld"), "AR": ll("llvm-ar"), "NM": ll("llvm-nm"),
            "OBJCOPY": ll("llvm-objcopy"), "OBJDUMP": ll("llvm-objdump"),
            "READELF": ll("llvm-readelf"), "STRIP": ll("llvm-strip"),
        }
    else:
        tools |= {
            "HOSTCC": "gcc", "HOSTCXX": "g++", "CC": f"{cross}gcc", "LD": f"{cross}ld",
            "AR": f"{cross}ar", "NM": f"{cross}nm", "OBJCOPY": f"{cross}objcopy",
            "OBJDUMP": f"{cross}objdump", "READELF": f"{cross}readelf",
            "STRIP": f"{cross}strip",
        }
    tools |= {
        "HOSTRUSTC": "rustc", "HOSTPKG_CONFIG": "pkg-config", "RUSTC": "rustc",
        "RUSTDOC": "rustdoc", "RUSTFMT": "rustfmt", "BINDGEN": "bindgen", "PAHOLE": "pahole",
        "LEX": "flex", "YACC": "bison", "AWK": "awk", "PERL": "perl", "PYTHON3": "python3",
    }
    return tools


def _clang_flags(environ: Mapping[str, str], src_arch: str) -> str:
    """CLANG_FLAGS for a clang build, after scripts/Makefile.clang (the common cases)."""
    cross = environ.get("CROSS_COMPILE", "")
    target = cross.rstrip("-") if cross else _CLANG_TARGETS.get(src_arch, "")
    flags = [f"--target={target}"] if target else []
    if environ.get("LLVM_IAS", "1") == "0":
        flags.append("-fno-integrated-as")
    else:
        flags.append("-fintegrated-as")
    flags += [
        "-Werror=unknown-warning-option",
        "-Werror=ignored-optimization-argument",
        "-Werror=option-ignored",
        "-Werror=unused-command-line-argument",
    ]
    return " ".join(flags)


def kconfig_env(
    srctree: Path, arch: str | None = None, environ: Mapping[str, str] | None = None, *, run_tools: bool = True
) -> dict[str, str]:
    """Return the variables the kernel Makefile exports to Kconfig for ``srctree``.

    ``run_tools=False`` (``--no-shell``, or a tree whose probes are not run)
    runs nothing: ``CC_VERSION_TEXT`` and ``RUSTC_VERSION_TEXT`` are then
    empty unless set in ``environ``, where the Makefile would run
    ``$(CC) --version`` and ``$(RUSTC) --version``.

    ``arch`` is the ``ARCH=`` of ``make`` (``x86_64``, ``x86``, ``arm64``...);
    None means ``$ARCH`` from ``environ`` or, as ``make`` does, this machine's
    SUBARCH. Every variable set (non-empty) in ``environ`` (default: the
    process environment) overrides the derived value.
    """
    environ = os.environ if environ is None else environ
    srctree = Path(srctree).resolve()
    the_arch = arch or environ.get("ARCH") or subarch()
    src_arch = srcarch(the_arch)
    derived: dict[str, str] = {
        "srctree": str(srctree),
        "ARCH": the_arch,
        "SRCARCH": src_arch,
        "SUBARCH": subarch(),
        "KERNELVERSION": kernel_version(srctree),
        "CROSS_COMPILE": environ.get("CROSS_COMPILE", ""),
    }
    derived |= toolchain(environ)
    merged = {**derived, **{k: v for k, v in environ.items() if k in derived and v}}
    if arch:
        merged["ARCH"], merged["SRCARCH"] = the_arch, src_arch  # an explicit arch always wins
    # As the Makefile computes them: `LC_ALL=C $(CC) --version` and `$(RUSTC) --version`.
    wanted = [name for name in ("CC_VERSION_TEXT", "RUSTC_VERSION_TEXT") if not environ.get(name) and run_tools]
    commands = {"CC_VERSION_TEXT": (merged["CC"], True), "RUSTC_VERSION_TEXT": (merged["RUSTC"], False)}
    texts = dict(zip(wanted, _version_texts([commands[n] for n in wanted], environ)))
    for name in ("CC_VERSION_TEXT", "RUSTC_VERSION_TEXT"):
        merged[name] = environ.get(name) or texts.get(name, "")
    if "clang" in merged["CC_VERSION_TEXT"] and not environ.get("CLANG_FLAGS"):
        merged["CLANG_FLAGS"] = _clang_flags(environ, src_arch)
    elif environ.get("CLANG_FLAGS"):
        merged["CLANG_FLAGS"] = environ["CLANG_FLAGS"]
    return merged
