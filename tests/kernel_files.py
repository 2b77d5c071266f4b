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


def elf_with_modinfo(entries: list[str], *, wide: bool = True, order: str = "<", undefined: list[str] = ()) -> bytes:
    """A minimal relocatable ELF file with .modinfo, .shstrtab and, when ``undefined`` names symbols, a
    .symtab/.strtab pair listing them as undefined globals (what a module needs from the kernel)."""
    modinfo = b"".join(e.encode() + b"\0" for e in entries)
    names = [b"", b".modinfo", b".shstrtab", b".symtab", b".strtab"]
    shstrtab = b"\0".join(names) + b"\0"
    offsets = [shstrtab.index(b"\0" + n + b"\0") + 1 if n else 0 for n in names]
    strtab, symbols = b"\0", []
    for name in undefined:
        symbols.append(len(strtab))
        strtab += name.encode() + b"\0"
    entsize = 24 if wide else 16
    sym = bytes(entsize)  # the null symbol
    for off in symbols:
        info = (1 << 4) | 0  # STB_GLOBAL, STT_NOTYPE; st_shndx 0: undefined
        sym += struct.pack(order + "IBBHQQ", off, info, 0, 0, 0, 0) if wide else struct.pack(order + "IIIBBH", off, 0, 0, info, 0, 0)
    ehsize, shentsize = (64, 64) if wide else (52, 40)
    body = modinfo + shstrtab + sym + strtab
    at = {"modinfo": ehsize, "shstrtab": ehsize + len(modinfo)}
    at["symtab"] = at["shstrtab"] + len(shstrtab)
    at["strtab"] = at["symtab"] + len(sym)
    shoff = ehsize + len(body)
    count = 5 if undefined else 3
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if order == "<" else 2, 1]) + b"\0" * 9
    if wide:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, count, 2)
        sec = lambda name, typ, off, size, link=0, ent=0: struct.pack(order + "IIQQQQIIQQ", name, typ, 0, 0, off, size, link, 0, 1, ent)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 1, 3, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, count, 2)
        sec = lambda name, typ, off, size, link=0, ent=0: struct.pack(order + "IIIIIIIIII", name, typ, 0, 0, off, size, link, 0, 1, ent)
    sections = sec(0, 0, 0, 0) + sec(offsets[1], 1, at["modinfo"], len(modinfo)) + sec(offsets[2], 3, at["shstrtab"], len(shstrtab))
    if undefined:
        sections += sec(offsets[3], 2, at["symtab"], len(sym), 4, entsize) + sec(offsets[4], 3, at["strtab"], len(strtab))
    return header + body + sections
