"""``kcheck explain`` on real symbols of Debian's trees, compared with what the Kconfig files say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kcheck.cli import main

pytestmark = pytest.mark.realtree


def explain(tree: Path, config: Path, symbol: str, *extra: str):
    result = CliRunner().invoke(
        main,
        ["explain", symbol, "--kernel-dir", str(tree), "--config", str(config), "--arch", "x86_64",
         *extra],
    )
    return result


def explain_json(tree, config, symbol) -> dict:
    result = explain(tree, config, symbol, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def kconfig_entry(tree: Path, relpath: str, symbol: str) -> tuple[int, list[str]]:
    """Return (line of 'config SYMBOL', the entry's attribute lines) read straight from the file."""
    lines = (tree / relpath).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"(menu)?config {symbol}\s*", line))
    body = []
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            break
        body.append(line.strip())
    return start + 1, body


def file_value(config: Path, symbol: str) -> str | None:
    for line in config.read_text().splitlines():
        if line.startswith(f"CONFIG_{symbol}="):
            return line.split("=", 1)[1]
        if line == f"# CONFIG_{symbol} is not set":
            return "n"
    return None


@pytest.mark.parametrize(
    ("symbol", "relpath"),
    [
        ("BTRFS_FS", "fs/btrfs/Kconfig"),
        ("DM_THIN_PROVISIONING", "drivers/md/Kconfig"),
        ("OVERLAY_FS", "fs/overlayfs/Kconfig"),
    ],
)
def test_explain_facts_match_the_kconfig_file(linux_6_12, debian_configs_6_12, kconfig_6_12,
                                              symbol, relpath):
    config = debian_configs_6_12["amd64_none_amd64"]
    info = explain_json(linux_6_12, config, symbol)
    line, body = kconfig_entry(linux_6_12, relpath, symbol)
    assert info["exists"] is True
    assert {"file": relpath, "line": line} in info["definitions"]
    type_line = next(b for b in body if b.split()[0] in ("bool", "tristate"))
    assert info["type"] == type_line.split()[0]
    assert info["prompts"] == [type_line.split('"')[1]]
    assert info["selects"] == [b.split()[1] for b in body if b.startswith("select ")]
    for dep in (b.removeprefix("depends on ") for b in body if b.startswith("depends on ")):
        assert dep in info["depends_on"]["expr"]
    assert info["written"]["value"] == file_value(config, symbol)
    assert info["value"] == file_value(config, symbol)  # Debian's config is consistent here
    # The highest value it can take now is the lowest of its dependencies' values in the file.
    deps = [w for b in body if b.startswith("depends on ") for w in re.findall(r"[A-Z0-9_]+", b[10:])]
    top = min((("n", "m", "y").index(file_value(config, dep) or "y") for dep in deps), default=2)
    assert info["assignable"] == ["n", "m", "y"][: top + 1]


def test_explain_a_symbol_turned_off_by_an_unmet_dependency(tmp_path, linux_6_12, debian_configs_6_12,
                                                           kconfig_6_12):
    given = debian_configs_6_12["amd64_none_amd64"].read_text()
    assert "CONFIG_BLK_DEV_DM=m\n" in given and "CONFIG_DM_THIN_PROVISIONING=m\n" in given
    config = tmp_path / "no-dm.config"
    config.write_text(given.replace("CONFIG_BLK_DEV_DM=m\n", "# CONFIG_BLK_DEV_DM is not set\n"))
    info = explain_json(linux_6_12, config, "DM_THIN_PROVISIONING")
    assert (info["value"], info["written"]["value"], info["visibility"]) == ("n", "m", "n")
    assert info["blocked_by"] == ["BLK_DEV_DM is n"]
    assert {"expr": "BLK_DEV_DM", "value": "n", "terms": []} in info["depends_on"]["terms"]
    assert info["note"] == (
        "DM_THIN_PROVISIONING=m in the file but Kconfig turns it off because BLK_DEV_DM is n"
    )
    text = explain(linux_6_12, config, "DM_THIN_PROVISIONING").output
    assert "held off by:   BLK_DEV_DM is n" in text
    assert f"line {info['written']['line']} of {config}" in text


def test_explain_a_selected_symbol(linux_6_12, debian_configs_6_12, kconfig_6_12):
    config = debian_configs_6_12["amd64_none_amd64"]
    info = explain_json(linux_6_12, config, "DM_PERSISTENT_DATA")
    _, body = kconfig_entry(linux_6_12, "drivers/md/Kconfig", "DM_THIN_PROVISIONING")
    assert "select DM_PERSISTENT_DATA" in body
    selectors = {s["symbol"]: s for s in info["selected_by"]}
    assert selectors["DM_THIN_PROVISIONING"]["active"] is True
    assert selectors["DM_THIN_PROVISIONING"]["value"] == "m"
    assert info["value"] == "m"
    assert "n" not in info["assignable"]  # a selected symbol cannot go below its selectors


def test_explain_a_symbol_missing_from_the_tree(linux_6_1, debian_configs_6_1, kconfig_6_1):
    result = explain(linux_6_1, debian_configs_6_1["amd64_none_amd64"], "AUFS_FS")
    assert result.exit_code == 0
    assert "AUFS_FS: does not exist in" in result.output
    assert "Linux 6.1." in result.output


def test_explain_needs_a_tree_and_a_config(tmp_path, linux_6_12):
    result = explain(tmp_path, tmp_path / "none.config", "BTRFS_FS")
    assert result.exit_code == 2
    assert "not a kernel source tree" in result.output
    result = CliRunner().invoke(main, ["explain", "BTRFS_FS", "--kernel-dir", str(linux_6_12)])
    assert result.exit_code == 2
    assert f"{linux_6_12}/.config: no such configuration file" in result.output


def test_explain_and_verbose_show_kconfiglibs_warnings(tmp_path):
    import kconfig_trees as kt

    broken = "\nconfig BROKEN\n\tbool \"b\"\n\tselect FORCE_ORDER\n"
    tree = kt.write_tree(tmp_path / "tree", kt.INT_WITHOUT_VALUE + broken)
    config = kt.write_config(tmp_path / "in.config", "CONFIG_ORDER=12\n")
    warning = r"kconfiglib: .*user value 12 on the int symbol ORDER .* outside the active range"
    result = explain(tree, config, "ORDER")
    assert result.exit_code == 0, result.output
    assert re.search(warning, result.output), result.output
    assert "kconfiglib:" not in explain(tree, config, "MASK_IS_ZERO").output  # only its own warnings

    # The check shows the parse's warnings and those of the symbols it evaluated.
    parse_warning = r"kconfiglib: .*BROKEN .*selects the int symbol FORCE_ORDER"
    check = ["--config", str(config), "--kernel-dir", str(tree), "--no-host", "--driver", "vfs"]
    quiet = CliRunner().invoke(main, check)
    verbose = CliRunner().invoke(main, [*check, "--verbose"])
    assert not re.search(parse_warning, quiet.output)
    assert re.search(parse_warning, verbose.output), verbose.output
