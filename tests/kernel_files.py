"""Kernel files in their real binary layouts, for tests: an x86 bzImage setup header and a module's ELF .modinfo."""

from __future__ import annotations

import struct
from pathlib import Path


def bzimage(version: str, *, protocol: int = 0x020F, string_at: int = 0x3100) -> bytes:
    """An x86 bzImage setup header: boot flag, "HdrS", protocol, kernel_version pointer and its string."""
    data = bytearray(0x4000)
    data[0x1FE:0x200] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    struct.pack_into("<H", data, 0x20E, string_at - 0x200)
    encoded = version.encode() + b"\0"
    data[string_at : string_at + len(encoded)] = encoded
    return bytes(data)


def make_bzimage(path: Path, version: str, *, protocol: int = 0x020F, string_at: int = 0x3100) -> Path:
    """Write :func:`bzimage` to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bzimage(version, protocol=protocol, string_at=string_at))
    return path


def elf_with_modinfo(entries: list[str], *, wide: bool = True, order: str = "<") -> bytes:
    """A minimal relocatable ELF file with a .modinfo and a .shstrtab section."""
    modinfo = b"".join(e.encode() + b"\0" for e in entries)
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    ehsize, shentsize = (64, 64) if wide else (52, 40)
    body = modinfo + shstrtab
    shoff = ehsize + len(body)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if order == "<" else 2, 1]) + b"\0" * 9
    if wide:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 3, 2)
        sec = lambda name, typ, off, size: struct.pack(order + "IIQQQQIIQQ", name, typ, 0, 0, off, size, 0, 0, 1, 0)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 1, 3, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 3, 2)
        sec = lambda name, typ, off, size: struct.pack(order + "IIIIIIIIII", name, typ, 0, 0, off, size, 0, 0, 1, 0)
    sections = sec(0, 0, 0, 0) + sec(1, 1, ehsize, len(modinfo)) + sec(10, 3, ehsize + len(modinfo), len(shstrtab))
    return header + body + sections
