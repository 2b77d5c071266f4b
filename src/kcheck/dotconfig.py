"""The plain ``.config`` reader: what a file says, line by line, without Kconfig.

A kernel ``.config`` holds three kinds of meaningful lines::

    CONFIG_FOO=y                 # an assignment (y, m, n, "string", 123, 0x1f)
    # CONFIG_BAR is not set      # the same as CONFIG_BAR=n
    # Linux/x86 6.1.0 Kernel Configuration   # the header naming arch and version

Everything else is a comment or blank. The reader keeps, per symbol, the
value that counts (the last assignment, as Kconfig does) and its line; it
reports duplicate assignments, malformed values and stray lines as
:class:`~kcheck.model.InputProblem` rather than ignoring them. Files may be
gzip-compressed (``/proc/config.gz``).
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from kcheck.errors import InputError
from kcheck.model import ConfigValue, InputProblem, SymbolState

#: Larger than any real kernel configuration by two orders of magnitude.
MAX_CONFIG_BYTES = 16 * 1024 * 1024

_ASSIGN = re.compile(r"CONFIG_([A-Za-z0-9_]+)=(.*)")
_NOT_SET = re.compile(r"# CONFIG_([A-Za-z0-9_]+) is not set")
#: The header line naming the architecture and the kernel version.
HEADER = re.compile(r"# Linux/(\S+) (\S+) Kernel Configuration")
_VALUE = re.compile(r'[ymn]|-?[0-9]+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*"')


@dataclass
class DotConfig:
    """A parsed ``.config`` file: values by symbol, header facts, problems.

    Implements :class:`kcheck.model.ConfigSource` in ``"plain"`` mode: a
    symbol the file does not mention reads as ``"n"`` with ``written=None``,
    and whether it exists in the kernel is unknown (``exists=None``).
    """

    path: Path | None
    values: dict[str, ConfigValue] = field(default_factory=dict)
    header_arch: str | None = None
    header_version: str | None = None
    problems: list[InputProblem] = field(default_factory=list)
    mode: str = "plain"

    def state(self, symbol: str) -> SymbolState:
        """What the file says about ``symbol`` (absent reads as ``n``)."""
        value = self.values.get(symbol)
        if value is None:
            return SymbolState(symbol, "n")
        return SymbolState(symbol, value.value, line=value.line, written=value.value)

    def get(self, symbol: str) -> ConfigValue | None:
        """The assignment of ``symbol``, or None when the file does not mention it."""
        return self.values.get(symbol)


def read_bytes(path: Path) -> bytes:
    """Read a possibly gzip-compressed config file, with errors a user can act on."""
    try:
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a kernel configuration; pass the .config file inside it")
        if not path.exists():
            if path.is_symlink():
                raise InputError(f"{path} is a dangling symlink or a symlink loop; point it at a real .config")
            raise InputError(f"{path} does not exist; pass an existing .config with --config")
        if not path.is_file():
            raise InputError(f"{path} is not a regular file; pass a .config file with --config")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(
                f"{path} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB and cannot be a kernel configuration"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except PermissionError:
        raise InputError(f"{path} is not readable (permission denied); run as a user who can read it") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc}); check the path") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error):
            raise InputError(f"{path} is a corrupt or truncated gzip file; get a fresh copy of the configuration") from None
    return data


def _gunzip(data: bytes) -> bytes:
    """Decompress at most MAX_CONFIG_BYTES, so a gzip bomb is refused, not expanded."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = decompressor.decompress(data, MAX_CONFIG_BYTES + 1)
    if len(out) > MAX_CONFIG_BYTES:
        raise OSError("too large")
    if not decompressor.eof:
        raise EOFError("truncated")
    return out


def parse(text: str, path: Path | None = None) -> DotConfig:
    """Parse ``.config`` text; never raises for content, records problems instead."""
    config = DotConfig(path=path)
    where = path or Path("<config>")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r").strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _NOT_SET.fullmatch(line)
            if match:
                _assign(config, where, match.group(1), "n", number)
                continue
            header = HEADER.fullmatch(line)
            if header and config.header_version is None:
                config.header_arch, config.header_version = header.groups()
            continue
        match = _ASSIGN.fullmatch(line)
        if not match:
            config.problems.append(InputProblem(where, number, f"not a config line: {_clip(line)}"))
            continue
        symbol, value = match.groups()
        if not _VALUE.fullmatch(value):
            config.problems.append(
                InputProblem(where, number, f"CONFIG_{symbol} has a malformed value {_clip(value)}; it reads as not set")
            )
            value = "n"
        elif value.startswith('"'):
            value = _unquote(value)
        _assign(config, where, symbol, value, number)
    return config


def _assign(config: DotConfig, where: Path, symbol: str, value: str, number: int) -> None:
    previous = config.values.get(symbol)
    if previous is not None:
        config.problems.append(
            InputProblem(
                where,
                number,
                f"CONFIG_{symbol} is assigned again (first at line {previous.line}); the last value counts",
            )
        )
    config.values[symbol] = ConfigValue(symbol, value, number)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load(path: Path) -> DotConfig:
    """Read and parse the configuration at ``path``.

    Raises :class:`~kcheck.errors.InputError` when the file is missing,
    unreadable, binary, or has no ``CONFIG_`` line at all (not a kernel
    configuration).
    """
    data = read_bytes(path)
    if b"\0" in data:
        raise InputError(f"{path} is a binary file, not a kernel configuration; pass the .config text file")
    try:
        text = data.decode("utf-8")
        problems: list[InputProblem] = []
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        line = data[: exc.start].count(b"\n") + 1
        problems = [InputProblem(path, line, "bytes that are not UTF-8 (replaced); strings near them may be wrong")]
    config = parse(text, path)
    config.problems[:0] = problems
    if not config.values:
        raise InputError(f"{path} has no CONFIG_ lines and is not a kernel configuration; pass a kernel .config")
    return config
