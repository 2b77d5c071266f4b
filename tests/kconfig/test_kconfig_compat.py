"""The compatibility layer on small trees: each construct, and Kconfig's core rules.

Where the kernel's own ``conf`` (built from the 6.12 tree) understands a
tree, its ``olddefconfig`` output is the expected result; constructs newer
than 6.12 (``transitional``, ``depends on X if Y``) are checked against the
semantics the kernel defines for them.
"""

from __future__ import annotations

import itertools

import kconfiglib
import pytest

import kconfig_trees as kt
import realkernel
from kcheck.errors import KcheckError
from kcheck.kconfig import KconfigTree
from kcheck.kconfig.compat import (
    CHOICE_RULES_6_11,
    INT_HEX_ZERO_6_8,
    Rewriter,
    conf_rules_for,
    lower_conditional_depends,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def load(tmp_path, kconfig, name="tree", version="6.12", **files):
    root = kt.write_tree(tmp_path / name, kconfig, files, version=version)
    return KconfigTree.load(root, arch="x86_64", use_cache=False)


def computed(tree, config_path, out):
    tree.read(config_path)
    tree.write_config(out)
    return realkernel.read_assignments(out)


# --- modules -------------------------------------------------------------------------------


def test_bare_modules_attribute_marks_the_modules_symbol(tmp_path):
    tree = load(tmp_path, kt.MODULES_ATTRIBUTE)
    cfg = kt.write_config(tmp_path / "in.config", "CONFIG_MODULES=y\nCONFIG_A=m\nCONFIG_B=y\n")
    src = tree.read(cfg)
    assert tree.kconf.modules.name == "MODULES"
    assert src.state("A").value == "m"
    assert src.state("B").value == "m"  # limited by A=m
    assert "can only be m because A is m" in src.state("B").note


def test_m_counts_as_y_without_modules(tmp_path):
    tree = load(tmp_path, kt.MODULES_ATTRIBUTE)
    cfg = kt.write_config(tmp_path / "in.config", "# CONFIG_MODULES is not set\nCONFIG_A=m\n")
    src = tree.read(cfg)
    assert src.state("A").value == "y"
    assert src.state("A").note == "A=m in the file but MODULES is n, so m counts as y"
    assert src.state("C").value == "y"  # default m becomes y


def test_help_text_and_line_numbers_survive_the_rewrite(tmp_path):
    tree = load(tmp_path, kt.MODULES_ATTRIBUTE)
    a = tree.kconf.syms["A"]
    assert a.nodes[0].help.startswith("modules\nThe word above is help text")
    assert [n.linenr for n in tree.kconf.syms["B"].nodes] == [12]
    assert tree.kconf.syms["MODULES"].nodes[0].linenr == 1


@pytest.mark.realtree
@pytest.mark.parametrize(
    "config",
    [
        "CONFIG_MODULES=y\nCONFIG_A=m\nCONFIG_B=y\n",
        "# CONFIG_MODULES is not set\nCONFIG_A=m\nCONFIG_B=m\n",
        "CONFIG_A=y\n# CONFIG_C is not set\n",
    ],
)
def test_modules_tree_matches_the_kernels_conf(tmp_path, kernel_conf, config):
    tree = load(tmp_path, kt.MODULES_ATTRIBUTE)
    cfg = kt.write_config(tmp_path / "in.config", config)
    expected = kt.run_conf(kernel_conf, tree.srctree, cfg)
    assert computed(tree, cfg, tmp_path / "out.config") == expected


# --- choices, select/imply, visibility -------------------------------------------------------


CORE_CASES = [
    (kt.CHOICE, "CONFIG_C3=y\n", {"C1": "n", "C2": "y", "C3": None}),
    (kt.CHOICE, "CONFIG_A=y\nCONFIG_C3=y\n", {"C2": "n", "C3": "y"}),
    (kt.CHOICE, "CONFIG_C1=y\n", {"C1": "y", "C2": "n"}),
    (kt.CHOICE, "CONFIG_C1=y\nCONFIG_C2=y\n", {"C1": "n", "C2": "y"}),
    (kt.CHOICE, "CONFIG_C2=y\nCONFIG_C1=y\n", {"C1": "y", "C2": "n"}),
    # Linux >= 6.11: an explicit n on the default moves the choice on to another member.
    (kt.CHOICE, "# CONFIG_C2 is not set\n", {"C1": "y", "C2": "n"}),
    (kt.CHOICE, "CONFIG_A=y\n# CONFIG_C2 is not set\n# CONFIG_C1 is not set\n", {"C3": "y"}),
    (kt.CHOICE, "# CONFIG_C1 is not set\n# CONFIG_C2 is not set\n", {"C1": "y", "C2": "n"}),
    (kt.SELECT_IMPLY, "CONFIG_S=y\nCONFIG_DEP=m\n", {"T": "y", "U": "m"}),
    (kt.SELECT_IMPLY, "CONFIG_S=y\nCONFIG_DEP=y\n# CONFIG_U is not set\n", {"U": "n"}),
    (kt.SELECT_IMPLY, "CONFIG_S=y\n# CONFIG_DEP is not set\n", {"U": "n", "T": "y"}),
    (kt.SELECT_IMPLY, "# CONFIG_BLOCK is not set\nCONFIG_V=y\nCONFIG_SW=y\n", {"V": None, "W": "y"}),
]


@pytest.mark.parametrize(("kconfig", "config", "expect"), CORE_CASES)
def test_core_rules(tmp_path, kconfig, config, expect):
    tree = load(tmp_path, kconfig)
    cfg = kt.write_config(tmp_path / "in.config", config)
    values = computed(tree, cfg, tmp_path / "out.config")
    assert {name: values.get(name) for name in expect} == expect


@pytest.mark.realtree
@pytest.mark.parametrize(("kconfig", "config", "expect"), CORE_CASES)
def test_core_rules_match_the_kernels_conf(tmp_path, kernel_conf, kconfig, config, expect):
    tree = load(tmp_path, kconfig)
    cfg = kt.write_config(tmp_path / "in.config", config)
    expected = kt.run_conf(kernel_conf, tree.srctree, cfg)
    assert computed(tree, cfg, tmp_path / "out.config") == expected


CHOICE_CONFIGS = [config for kconfig, config, _ in CORE_CASES if kconfig is kt.CHOICE]


@pytest.mark.realtree
@pytest.mark.parametrize("config", CHOICE_CONFIGS)
def test_choices_before_6_11_match_that_kernels_conf(tmp_path, kernel_conf_6_1, config):
    tree = load(tmp_path, kt.CHOICE, version="6.1")
    assert tree.kconf.choice_rules is None
    cfg = kt.write_config(tmp_path / "in.config", config)
    expected = kt.run_conf(kernel_conf_6_1, tree.srctree, cfg)
    assert computed(tree, cfg, tmp_path / "out.config") == expected


def test_notes_say_why_kconfig_overrules_the_file(tmp_path):
    tree = load(tmp_path, kt.SELECT_IMPLY)
    cfg = kt.write_config(
        tmp_path / "in.config", "# CONFIG_BLOCK is not set\nCONFIG_V=y\nCONFIG_SW=y\nCONFIG_W=y\n"
    )
    src = tree.read(cfg)
    v = src.state("V")
    assert (v.value, v.written, v.line) == ("n", "y", 2)
    assert v.note == "V=y in the file but Kconfig turns it off because BLOCK is n"
    assert src.state("W").note == "set in the file but invisible: selected by SW (y)"
    assert src.state("BLOCK").note is None


def test_symbols_missing_from_the_tree(tmp_path):
    tree = load(tmp_path, kt.SELECT_IMPLY)
    cfg = kt.write_config(tmp_path / "in.config", "CONFIG_AUFS_FS=y\n")
    src = tree.read(cfg)
    state = src.state("CONFIG_AUFS_FS")
    assert (state.exists, state.value, state.written, state.line) == (False, "n", "y", 1)
    assert state.note == "AUFS_FS does not exist in this tree (the file's AUFS_FS=y is dropped)"
    assert src.state("V").exists is True
    tree.write_config(tmp_path / "out.config")
    assert "AUFS_FS" not in realkernel.read_assignments(tmp_path / "out.config")


def test_a_source_stays_right_after_the_tree_reads_another_file(tmp_path):
    tree = load(tmp_path, kt.SELECT_IMPLY)
    first = tree.read(kt.write_config(tmp_path / "a.config", "CONFIG_BLOCK=y\nCONFIG_V=y\n"))
    second = tree.read(kt.write_config(tmp_path / "b.config", "# CONFIG_BLOCK is not set\n"))
    assert second.state("V").value == "n"
    assert first.state("V").value == "y"
    assert second.state("BLOCK").value == "n"


# --- depends on X if Y (Linux >= 7.0) ----------------------------------------------------------


TRISTATES = ("n", "m", "y")


@pytest.mark.parametrize(("x", "y", "z"), list(itertools.product(TRISTATES, repeat=3)))
def test_conditional_depends_is_x_or_y_equals_n(tmp_path, x, y, z):
    tree = load(tmp_path, kt.CONDITIONAL_DEPENDS)
    lines = "".join(
        f"CONFIG_{n}={v}\n" if v != "n" else f"# CONFIG_{n} is not set\n"
        for n, v in (("X", x), ("Y", y), ("Z", z))
    )
    src = tree.read(kt.write_config(tmp_path / "in.config", lines))
    rank = {"n": 0, "m": 1, "y": 2}
    tri = "nmy"
    # The kernel's definition: X || (Y = n); (Y = n) is y or n, never m.
    basic = max(rank[x], 2 if y == "n" else 0)
    complex_ = max(min(rank[x], rank[z]), 2 if (y == "n" and z == "n") else 0)
    optional = max(rank[z], 2 if z == "n" else 0)
    assert src.state("BASIC").value == tri[basic]
    assert src.state("COMPLEX").value == tri[complex_]
    assert src.state("OPTIONAL").value == tri[optional]


def test_conditional_depends_differs_from_not_y_or_x_when_y_is_m(tmp_path):
    tree = load(tmp_path, kt.CONDITIONAL_DEPENDS)
    src = tree.read(kt.write_config(tmp_path / "in.config", "# CONFIG_X is not set\nCONFIG_Y=m\n"))
    assert src.state("BASIC").value == "n"  # !Y || X would have allowed m


@pytest.mark.realtree
@pytest.mark.parametrize(("x", "y", "z"), [("n", "m", "n"), ("m", "y", "y"), ("y", "n", "m")])
def test_conditional_depends_matches_conf_on_the_kernels_definition(
    tmp_path, kernel_conf, x, y, z
):
    ours = load(tmp_path, kt.CONDITIONAL_DEPENDS, name="ours")
    theirs = kt.write_tree(tmp_path / "theirs", kt.CONDITIONAL_DEPENDS_AS_KERNEL_DEFINES)
    lines = "".join(f"CONFIG_{n}={v}\n" for n, v in (("X", x), ("Y", y), ("Z", z)) if v != "n")
    cfg = kt.write_config(tmp_path / "in.config", lines)
    assert computed(ours, cfg, tmp_path / "out.config") == kt.run_conf(kernel_conf, theirs, cfg)


def test_conditional_depends_lowering_text():
    assert lower_conditional_depends("FOO", "BAR") == "(FOO) || BAR = n"
    # expr_trans_compare: "!B = n" is "B != n", "(C != D) = n" is "!(C != D)".
    assert lower_conditional_depends("A", "!B && C != D") == "(A) || (B != n || !(C != D))"
    assert lower_conditional_depends("A", "!(B || C)") == "(A) || !((B = n && C = n))"
    assert lower_conditional_depends("A", "$(success,true)") == "(A) || $(success,true) = n"


def test_attributes_with_trailing_comments_are_lowered():
    text = "config MODULES\n\tbool \"m\"\n\tmodules # marks m\nconfig OLD\n\tbool\n\ttransitional # gone\n"
    rewriter = Rewriter()
    out = rewriter.rewrite(text, "Kconfig")
    assert "\toption modules # marks m\n" in out
    assert rewriter.transitional == {"OLD"}
    assert out.count("\n") == text.count("\n")


def test_conditional_depends_keeps_line_numbers_and_help(tmp_path):
    text = "config A\n\tbool \"A\"\n\thelp\n\t  depends on X if Y\n\nconfig B\n\tbool\n\tdepends on A \\\n\t  if A\n"
    out = Rewriter().rewrite(text, "Kconfig")
    assert out.count("\n") == text.count("\n")
    assert "\t  depends on X if Y\n" in out  # help text untouched
    assert "depends on (A) || A = n\n" in out


# --- transitional (Linux >= 6.18) ---------------------------------------------------------------


def test_transitional_values_migrate_and_are_not_written(tmp_path):
    tree = load(tmp_path, kt.TRANSITIONAL)
    cfg = kt.write_config(
        tmp_path / "in.config",
        """\
        CONFIG_OLD_BOOL=y
        CONFIG_OLD_TRI=m
        CONFIG_OLD_STR="old text"
        CONFIG_OLD_INT=42
        # CONFIG_NEW_KEPT is not set
        CONFIG_OLD_KEPT=y
        """,
    )
    values = computed(tree, cfg, tmp_path / "out.config")
    assert values == {
        "MODULES": "y",
        "NEW_BOOL": "y",
        "NEW_TRI": "m",
        "NEW_STR": '"old text"',
        "NEW_INT": "42",
        "NEW_KEPT": "n",
    }
    assert tree.kconf.transitional_names == {"OLD_BOOL", "OLD_TRI", "OLD_STR", "OLD_INT", "OLD_KEPT"}
    state = tree.read(cfg).state("OLD_BOOL")
    assert state.value == "y" and "transitional" in state.note


def test_transitional_without_old_value_leaves_defaults_off(tmp_path):
    tree = load(tmp_path, kt.TRANSITIONAL)
    values = computed(tree, kt.write_config(tmp_path / "in.config", ""), tmp_path / "out.config")
    assert values["NEW_BOOL"] == "n" and values["NEW_TRI"] == "n"
    assert "OLD_BOOL" not in values


# --- errors and shell -------------------------------------------------------------------------


def test_parse_error_names_file_and_line(tmp_path):
    root = kt.write_tree(
        tmp_path / "bad", 'source "sub/Kconfig"\n', {"sub/Kconfig": "config A\n\tbool\n\tfrobnicate\n"}
    )
    with pytest.raises(KcheckError, match=r"sub/Kconfig:3") as err:
        KconfigTree.load(root, use_cache=False)
    assert err.value.exit_status == 2


def test_not_a_kernel_tree(tmp_path):
    with pytest.raises(KcheckError, match="not a kernel source tree"):
        KconfigTree.load(tmp_path, use_cache=False)


def test_no_shell_runs_no_command(tmp_path):
    marker = tmp_path / "ran"
    kconfig = f"""\
        config PROBE
        \tdef_bool $(shell,touch {marker} && echo y)
        """
    root = kt.write_tree(tmp_path / "t", kconfig)
    tree = KconfigTree.load(root, allow_shell=False, use_cache=False)
    assert not marker.exists()
    assert tree.read(kt.write_config(tmp_path / "in.config", "")).state("PROBE").value == "n"
    tree = KconfigTree.load(root, allow_shell=True, use_cache=False)
    assert marker.exists()
    assert tree.read(kt.write_config(tmp_path / "in.config", "")).state("PROBE").value == "y"


def test_plain_kconfiglib_keeps_its_own_rules(tmp_path):
    # The Linux 6.x imply rule is only applied to trees loaded through kcheck.
    root = kt.write_tree(tmp_path / "t", kt.SELECT_IMPLY.replace("\tmodules", "\toption modules"))
    kconf = kconfiglib.Kconfig(str(root / "Kconfig"), warn=False)
    kconf.load_config(str(kt.write_config(tmp_path / "in.config", "CONFIG_S=y\nCONFIG_DEP=m\n")))
    assert kconf.syms["U"].str_value == "y"  # kconfiglib promotes m to y for an implied y


def test_a_choice_member_set_later_wins_like_in_conf(tmp_path):
    # What the fixer does: load a file, then set another member of a choice to y.
    tree = load(tmp_path, kt.CHOICE)
    src = tree.read(kt.write_config(tmp_path / "in.config", "CONFIG_C2=y\n"))
    assert src.state("C2").value == "y"
    tree.kconf.syms["C1"].set_value("y")
    assert tree.kconf.syms["C1"].str_value == "y"
    assert tree.kconf.syms["C2"].str_value == "n"
    tree.write_config(tmp_path / "out.config")
    assert realkernel.read_assignments(tmp_path / "out.config")["C1"] == "y"


# --- what conf changed after kconfiglib, checked against conf before and after ---------------


TRIPLES = [f"{u}{g}" for u in "nmy" for g in "nmy"]


def _tristates(**values: str) -> str:
    return "".join(f"CONFIG_{n}={v}\n" if v != "n" else f"# CONFIG_{n} is not set\n"
                   for n, v in values.items())


@pytest.mark.realtree
@pytest.mark.parametrize("values", TRIPLES)
def test_negated_conditional_depends_lowers_like_conf_7_2(tmp_path, kernel_conf_7_2, values):
    # drivers/usb/cdns3/Kconfig (7.2): 'depends on USB if !USB_GADGET' is USB || USB_GADGET != n.
    tree = load(tmp_path, kt.NEGATED_CONDITIONAL_DEPENDS, version="7.2")
    cfg = kt.write_config(tmp_path / "in.config", _tristates(USB=values[0], USB_GADGET=values[1]))
    expected = kt.run_conf(kernel_conf_7_2, tree.srctree, cfg)
    assert computed(tree, cfg, tmp_path / "out.config") == expected


def test_negated_conditional_depends_follows_expr_c_not_the_logic(tmp_path):
    # With USB_GADGET=m, !USB_GADGET is m (not n), yet conf drops the dependency.
    tree = load(tmp_path, kt.NEGATED_CONDITIONAL_DEPENDS, version="7.2")
    src = tree.read(kt.write_config(tmp_path / "in.config", _tristates(USB="n", USB_GADGET="m")))
    assert src.state("CDNS").value == "m"


CONF_CHANGE_CASES = [
    (kt.INT_WITHOUT_VALUE, ""),
    (kt.INT_WITHOUT_VALUE, "CONFIG_ORDER=7\n"),
    (kt.INT_WITHOUT_VALUE, "CONFIG_ORDER=12\n"),
    (kt.CONDITIONAL_CHOICE_PROMPT, ""),
    (kt.CONDITIONAL_CHOICE_PROMPT, "CONFIG_VMSPLIT_2G=y\n"),
    (kt.CONDITIONAL_CHOICE_PROMPT, "CONFIG_EXPERT=y\nCONFIG_VMSPLIT_2G=y\n"),
    (kt.CONDITIONAL_CHOICE_PROMPT, "# CONFIG_X86_32 is not set\nCONFIG_VMSPLIT_2G=y\n"),
    (kt.SELECT_FROM_CHOICE_IN_IF, "CONFIG_USB_MTU3=m\n"),
    (kt.SELECT_FROM_CHOICE_IN_IF, "CONFIG_USB_MTU3=y\n"),
    (kt.SELECT_FROM_CHOICE_IN_IF, "CONFIG_USB_MTU3=m\nCONFIG_USB_ROLE_SWITCH=y\n"),
    (kt.SELECT_FROM_CHOICE_IN_IF, "CONFIG_USB_MTU3=m\nCONFIG_USB_MTU3_HOST=y\n"),
]


@pytest.mark.realtree
@pytest.mark.parametrize("version", ["6.1", "6.12"])
@pytest.mark.parametrize(("kconfig", "config"), CONF_CHANGE_CASES)
def test_conf_changes_match_each_kernels_conf(tmp_path, request, version, kconfig, config):
    # The same tree and .config give different results with 6.1's and 6.12's conf; kcheck
    # follows whichever the tree has (here: the version in its Makefile).
    conf = request.getfixturevalue("kernel_conf_6_1" if version == "6.1" else "kernel_conf")
    tree = load(tmp_path, kconfig, version=version)
    cfg = kt.write_config(tmp_path / "in.config", config)
    expected = kt.run_conf(conf, tree.srctree, cfg)
    assert computed(tree, cfg, tmp_path / "out.config") == expected


def test_int_without_value_is_zero_from_6_8(tmp_path):
    new = load(tmp_path, kt.INT_WITHOUT_VALUE, name="new", version="6.12")
    old = load(tmp_path, kt.INT_WITHOUT_VALUE, name="old", version="6.1")
    cfg = kt.write_config(tmp_path / "in.config", "")
    assert new.read(cfg).state("ORDER").value == "10"  # 'range 1 10 if FORCE_ORDER = 0' holds
    # 6.1: FORCE_ORDER is "", so 'range 1 FORCE_ORDER' applies and 10 is clamped to its text, "".
    assert old.read(cfg).state("ORDER").value == ""
    assert new.read(cfg).state("MASK_IS_ZERO").value == "y"


def test_a_conditional_choice_prompt_hides_no_member_from_6_11(tmp_path):
    tree = load(tmp_path, kt.CONDITIONAL_CHOICE_PROMPT, version="6.12")
    src = tree.read(kt.write_config(tmp_path / "in.config", ""))
    assert src.state("VMSPLIT_3G").value == "y"
    assert src.state("PAGE_OFFSET").value == "0xC0000000"
    src = tree.read(kt.write_config(tmp_path / "in2.config", "CONFIG_VMSPLIT_2G=y\n"))
    assert src.state("PAGE_OFFSET").value == "0x80000000"


def test_conf_rules_come_from_the_trees_own_symbol_c(tmp_path):
    root = kt.write_tree(tmp_path / "t", kt.INT_WITHOUT_VALUE, version="6.1")
    assert conf_rules_for(root, "6.1") == frozenset()
    symbol_c = root / "scripts" / "kconfig" / "symbol.c"
    symbol_c.parent.mkdir(parents=True)
    symbol_c.write_text('case S_INT:\n\t\tnewval.val = "0";\n')  # a 6.1 tree with the 6.8 change backported
    assert conf_rules_for(root, "6.1") == {INT_HEX_ZERO_6_8}
    symbol_c.write_text("")
    assert conf_rules_for(root, "6.12") == frozenset()  # the file, not the version, decides
    symbol_c.unlink()
    assert conf_rules_for(root, "6.12") == {INT_HEX_ZERO_6_8, CHOICE_RULES_6_11}


def test_kconfiglib_warnings_are_kept_on_the_tree(tmp_path):
    tree = load(tmp_path, kt.INT_WITHOUT_VALUE + "\nconfig BROKEN\n\tbool \"b\"\n\tselect FORCE_ORDER\n",
                version="6.12")
    tree.read(kt.write_config(tmp_path / "in.config", "CONFIG_ORDER=12\n"))
    tree.write_config(tmp_path / "out.config")
    assert any("ORDER" in w and "range" in w for w in tree.warnings), tree.warnings
    assert any("BROKEN" in w for w in tree.parse_warnings), tree.parse_warnings


def test_a_choice_selection_follows_set_value_on_a_members_dependency(tmp_path):
    # arch/x86/Kconfig.debug's unwinder choice: UNWINDER_GUESS depends on EXPERT. Turning
    # EXPERT off (as a fix plan may) must move the selection on, not keep a stale one.
    kconfig = """\
        config EXPERT
        \tbool "expert"

        choice
        \tprompt "unwinder"
        \tdefault ORC

        config ORC
        \tbool "orc"

        config GUESS
        \tbool "guess"
        \tdepends on EXPERT

        endchoice
        """
    tree = load(tmp_path, kconfig, version="6.12")
    tree.read(kt.write_config(tmp_path / "in.config",
                              "CONFIG_EXPERT=y\n# CONFIG_ORC is not set\nCONFIG_GUESS=y\n"))
    kconf = tree.kconf
    assert kconf.syms["GUESS"].str_value == "y"
    kconf.syms["EXPERT"].set_value("n")
    assert (kconf.syms["ORC"].str_value, kconf.syms["GUESS"].str_value) == ("y", "n")
