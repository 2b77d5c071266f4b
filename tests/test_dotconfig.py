"""The plain .config reader: values, lines, problems, and unusable files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcheck import dotconfig
from kcheck.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"


def test_values_lines_and_header():
    config = dotconfig.parse(
        "#\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n"
        'CONFIG_S="a \\"quoted\\" word"\nCONFIG_I=42\nCONFIG_H=0x1f\n'
    )
    assert config.header_arch == "x86" and config.header_version == "6.1.0"
    assert [(v.symbol, v.value, v.line) for v in config.values.values()] == [
        ("A", "y", 4), ("B", "m", 5), ("C", "n", 6), ("S", 'a "quoted" word', 7), ("I", "42", 8), ("H", "0x1f", 9),
    ]
    assert config.problems == []


def test_absent_symbol_reads_as_n_and_unwritten():
    state = dotconfig.parse("CONFIG_A=y\n").state("B")
    assert (state.value, state.written, state.line, state.exists) == ("n", None, None, None)
    written = dotconfig.parse("# CONFIG_B is not set\n").state("B")
    assert (written.value, written.written, written.line) == ("n", "n", 1)


def test_duplicates_malformed_and_stray_lines_are_reported_with_lines():
    config = dotconfig.parse("CONFIG_A=y\nCONFIG_A=m\nCONFIG_B=yes\nrandom words\n", Path("x.config"))
    assert config.values["A"].value == "m" and config.values["A"].line == 2
    assert config.values["B"].value == "n"
    messages = [(p.line, p.message) for p in config.problems]
    assert messages[0][0] == 2 and "first at line 1" in messages[0][1]
    assert messages[1][0] == 3 and "malformed value" in messages[1][1]
    assert messages[2][0] == 4 and "not a config line" in messages[2][1]


def test_crlf_line_ends_read_like_lf():
    assert dotconfig.parse("CONFIG_A=y\r\n# CONFIG_B is not set\r\n").values.keys() == {"A", "B"}


def test_gzip_is_read(tmp_path):
    path = tmp_path / "config.gz"
    path.write_bytes(gzip.compress(b"CONFIG_A=m\n"))
    assert dotconfig.load(path).values["A"].value == "m"


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "no CONFIG_ lines"),
        (b"hello\nworld\n", "no CONFIG_ lines"),
        (b"\x7fELF\x00\x01binary", "binary file"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip"),
        (gzip.compress(b"CONFIG_A=y\n" * 1000)[:-9], "corrupt or truncated gzip"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path, content, fragment):
    path = tmp_path / "bad.config"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        dotconfig.load(path)
    assert fragment in error.value.message and str(path) in error.value.message


def test_missing_directory_and_oversized(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        dotconfig.load(tmp_path / "nope")
    with pytest.raises(InputError, match="is a directory"):
        dotconfig.load(tmp_path)
    big = tmp_path / "big.config"
    with big.open("wb") as handle:
        handle.truncate(dotconfig.MAX_CONFIG_BYTES + 1)
    with pytest.raises(InputError, match="larger than"):
        dotconfig.load(big)


def test_non_utf8_is_a_problem_not_a_failure(tmp_path):
    path = tmp_path / "latin1.config"
    path.write_bytes(b'CONFIG_A=y\nCONFIG_S="caf\xe9"\n')
    config = dotconfig.load(path)
    assert config.values["A"].value == "y"
    assert config.problems[0].line == 2 and "UTF-8" in config.problems[0].message


def test_real_debian_config_reads_without_problems():
    config = dotconfig.load(FIXTURES / "debian-6.1-amd64_none_amd64.config")
    assert config.header_version.startswith("6.1.") and config.header_arch == "x86"
    assert config.problems == []
    assert config.values["OVERLAY_FS"].value == "m"
    assert config.state("AUFS_FS").written is None


_symbols = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)
_values = st.one_of(
    st.sampled_from(["y", "m", "n"]),
    st.integers(-(2**31), 2**31).map(str),
    st.integers(0, 2**32).map(hex),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20),
)


@given(st.dictionaries(_symbols, _values, min_size=1, max_size=30))
def test_write_then_read_round_trips(assignments):
    lines = []
    for symbol, value in assignments.items():
        if value == "n":
            lines.append(f"# CONFIG_{symbol} is not set")
        elif value in ("y", "m") or re.fullmatch(r"-?[0-9]+|0x[0-9a-f]+", value):
            lines.append(f"CONFIG_{symbol}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'CONFIG_{symbol}="{escaped}"')
    config = dotconfig.parse("\n".join(lines) + "\n")
    assert config.problems == []
    assert {s: v.value for s, v in config.values.items()} == assignments


_lines = st.one_of(
    st.builds(lambda s, v: f"CONFIG_{s}={v}", _symbols, st.sampled_from(["y", "m", "n", "12", "-3", "0x1F", '"a \\" b"',
                                                                         "yes", '"open', "", "0x"])),
    st.builds(lambda s: f"# CONFIG_{s} is not set", _symbols),
    st.sampled_from(["# Linux/x86 6.1.0 Kernel Configuration", "# Linux/arm64 7.3.0 Kernel Configuration",
                     "#", "", "CONFIG_", "garbage here", "# CONFIG_A is not set now", "CONFIG_A=y # c"]),
)


@given(st.lists(_lines, max_size=40), st.sampled_from([" ", "\t", "\r"]))
def test_the_fast_path_reads_as_the_long_way(lines, blank):
    # A line with a blank around it skips the one-pattern fast path: both ways must read the same.
    plain = dotconfig.parse("\n".join(lines) + "\n")
    padded = dotconfig.parse("\n".join(f"{blank}{line}" if blank != "\r" else f"{line}\r" for line in lines) + "\n")
    assert [(v.symbol, v.value, v.line) for v in plain.values.values()] == \
        [(v.symbol, v.value, v.line) for v in padded.values.values()]
    assert plain.problems == padded.problems
    assert (plain.header_arch, plain.header_version) == (padded.header_arch, padded.header_version)


def test_values_are_the_dataclass_they_claim_to_be():
    value = dotconfig.parse("CONFIG_A=m\n").values["A"]
    made = dotconfig.ConfigValue("A", "m", 1)
    assert value == made and hash(value) == hash(made) and repr(value) == repr(made) and value.enabled
    assert vars(value) == vars(made)
    with pytest.raises(AttributeError):  # still frozen
        value.value = "y"
