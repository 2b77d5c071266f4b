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

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from kcheck import readsafe
from kcheck.errors import InputError
from kcheck.model import ConfigValue, InputProblem, SymbolState

#: Larger than any real kernel configuration by two orders of magnitude.
MAX_CONFIG_BYTES = 16 * 1024 * 1024

_ASSIGN = re.compile(r"CONFIG_([A-Za-z0-9_]+)=(.*)")
_NOT_SET = re.compile(r"# CONFIG_([A-Za-z0-9_]+) is not set")
#: The header line naming the architecture and the kernel version.
HEADER = re.compile(r"# Linux/(\S+) (\S+) Kernel Configuration")
_VALUE = re.compile(r'[ymn]|-?[0-9]+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*"')
#: A well-formed assignment or "is not set" line as written, no blanks around it: _ASSIGN
#: with a _VALUE, or _NOT_SET (groups: symbol, value; or the unset symbol).
_LINE = re.compile(r'CONFIG_([A-Za-z0-9_]+)=([ymn]|-?[0-9]+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*")'
                   r"|# CONFIG_([A-Za-z0-9_]+) is not set")


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
    #: The file's text as read (gunzipped, decoded): the Kconfig reader loads this, not the file again.
    text: str | None = field(default=None, repr=False)

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
    """Read a possibly gzip-compressed config file, with errors a user can act on.

    Only a regular file is read (a FIFO or device is refused without
    blocking), and never more than :data:`MAX_CONFIG_BYTES`, compressed or not.
    """
    try:
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a kernel configuration; pass the .config file inside it")
        if not path.exists():
            if path.is_symlink():
                raise InputError(f"{path} is a dangling symlink or a symlink loop; point it at a real .config")
            raise InputError(f"{path} does not exist; pass an existing .config with --config")
        data = readsafe.read_regular(path, MAX_CONFIG_BYTES, what="kernel configuration")
    except readsafe.NotRegular:
        raise InputError(f"{path} is not a regular file; pass a .config file with --config") from None
    except readsafe.TooLarge:
        raise InputError(
            f"{path} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB and cannot be a kernel configuration"
        ) from None
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
    """Decompress every gzip member, as ``zcat`` does; at most MAX_CONFIG_BYTES, so a bomb is refused."""
    out = b""
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += decompressor.decompress(data, MAX_CONFIG_BYTES + 1 - len(out))
        if len(out) > MAX_CONFIG_BYTES or decompressor.unconsumed_tail:
            raise OSError("too large")
        if not decompressor.eof:
            raise EOFError("truncated")
        # Whatever follows a member is the next member (gzip's own rule), except trailing zero padding.
        data = decompressor.unused_data.lstrip(b"\0")
    return out


def parse(text: str, path: Path | None = None) -> DotConfig:
    """Parse ``.config`` text; never raises for content, records problems instead."""
    config = DotConfig(path=path)
    where = path or Path("<config>")
    values = config.values
    problems = config.problems
    line_of = _LINE.fullmatch
    # Only "\n" ends a line, as in conf: str.splitlines() would also split at form
    # feeds, U+0085 or U+2028 and put every later line number off.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # The lines a kernel writes are taken whole by one pattern; anything else goes the long way.
    for number, (raw, match) in enumerate(zip(lines, map(line_of, lines)), start=1):
        if match is not None:
            symbol, value, unset = match.groups()
            if unset is not None:
                symbol, value = unset, "n"
            elif value[0] == '"':
                value = _unquote(value)
            if symbol in values:
                problems.append(_again(where, number, symbol, values[symbol]))
            values[symbol] = _config_value(symbol, value, number)
            continue
        line = raw.rstrip("\r").strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _NOT_SET.fullmatch(line)
            if match:
                _assign(config, where, match.group(1), "n", number)
                continue
            header = HEADER.fullmatch(line) if config.header_version is None else None
            if header:
                config.header_arch, config.header_version = header.groups()
            continue
        match = _ASSIGN.fullmatch(line)
        if not match:
            problems.append(InputProblem(where, number, f"not a config line: {_clip(line)}"))
            continue
        symbol, value = match.groups()
        if not _VALUE.fullmatch(value):
            problems.append(
                InputProblem(where, number, f"CONFIG_{symbol} has a malformed value {_clip(value)}; it reads as not set")
            )
            value = "n"
        elif value.startswith('"'):
            value = _unquote(value)
        _assign(config, where, symbol, value, number)
    config.problems = _summarised(problems)
    return config


#: Problems of one kind listed one by one before the rest are summarised in one line.
MAX_PROBLEMS_PER_KIND = 20


def _summarised(problems: list[InputProblem]) -> list[InputProblem]:
    """Keep the first problems of each kind, and one line counting the rest.

    A file with hundreds of thousands of duplicate or stray lines would
    otherwise print one line each (tens of megabytes).
    """
    kept: list[InputProblem] = []
    extra: dict[str, list[InputProblem]] = {}
    seen: dict[str, int] = {}
    for problem in problems:
        kind = _kind(problem.message)
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= MAX_PROBLEMS_PER_KIND:
            kept.append(problem)
        else:
            extra.setdefault(kind, []).append(problem)
    for kind, rest in extra.items():
        first = rest[0]
        kept.append(InputProblem(first.path, first.line,
                                 f"{len(rest)} more lines like these from line {first.line} on ({kind}); not listed"))
    return kept


def _kind(message: str) -> str:
    if "is assigned again" in message:
        return "assigned again"
    if message.startswith("not a config line"):
        return "not config lines"
    if "malformed value" in message:
        return "malformed values"
    return message


def _assign(config: DotConfig, where: Path, symbol: str, value: str, number: int) -> None:
    previous = config.values.get(symbol)
    if previous is not None:
        config.problems.append(_again(where, number, symbol, previous))
    config.values[symbol] = ConfigValue(symbol, value, number)


def _config_value(symbol: str, value: str, line: int, _new=object.__new__) -> ConfigValue:
    """``ConfigValue(symbol, value, line)``, made without the frozen dataclass's ``__init__``.

    That ``__init__`` sets each field through ``object.__setattr__``: a third of
    the reader's time on a 10,000-line file. The instance is the same (fields in
    ``__dict__``, equality, hash and repr from the dataclass), as a test checks.
    """
    made = _new(ConfigValue)
    fields = made.__dict__
    fields["symbol"], fields["value"], fields["line"] = symbol, value, line
    return made


def _again(where: Path, number: int, symbol: str, previous: ConfigValue) -> InputProblem:
    return InputProblem(
        where, number, f"CONFIG_{symbol} is assigned again (first at line {previous.line}); the last value counts"
    )


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
    config.text = text
    config.problems[:0] = problems
    if not config.values:
        raise InputError(f"{path} has no CONFIG_ lines and is not a kernel configuration; pass a kernel .config")
    return config
