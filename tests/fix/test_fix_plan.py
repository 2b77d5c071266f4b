"""The planner on small trees: minimal (against brute force), correct, honest about conflicts."""

from __future__ import annotations

import pytest

from fixtrees import brute_minimum, holds, load, plan

MODULES = """
config MODULES
	bool "Loadable modules"
	option modules
"""

DM = MODULES + """
config BLOCK
	bool "Block layer"

config MD
	bool "Multiple devices"
	depends on BLOCK

config BLK_DEV_DM
	tristate "Device mapper"
	depends on MD
	select DM_BUFIO

config DM_BUFIO
	tristate

config DM_THIN_PROVISIONING
	tristate "Thin provisioning"
	depends on BLK_DEV_DM
"""


def changes(p) -> dict[str, str]:
    return {c.symbol: c.new for c in p.changes}


def test_dependency_chain_is_planned_with_modules_preferred(tmp_path):
    kconf = load(tmp_path, DM, "CONFIG_MODULES=y\n")
    p = plan(kconf, [("DM_THIN_PROVISIONING", "y-or-m")])
    assert p.ok, p.conflicts
    assert changes(p) == {"BLOCK": "y", "MD": "y", "BLK_DEV_DM": "m", "DM_THIN_PROVISIONING": "m"}
    why = {c.symbol: c.why for c in p.changes}
    assert why["DM_THIN_PROVISIONING"] is None  # a requirement names it
    assert why["MD"] == "BLK_DEV_DM needs MD"
    assert why["BLK_DEV_DM"] == "DM_THIN_PROVISIONING needs BLK_DEV_DM"
    assert [(d.symbol, d.new) for d in p.derived] == [("DM_BUFIO", "m")]
    assert "selected by BLK_DEV_DM" in p.derived[0].why
    assert "CONFIG_DM_THIN_PROVISIONING=m" in p.config_text
    lines = DM.splitlines()
    assert {c.symbol: c.location for c in p.changes}["MD"] == f"Kconfig:{lines.index('config MD') + 1}"
    assert len(p.changes) == brute_minimum(load(tmp_path / "b", DM, "CONFIG_MODULES=y\n"), [("DM_THIN_PROVISIONING", "y-or-m")])


def test_without_modules_tristates_are_built_in(tmp_path):
    kconf = load(tmp_path, DM, "# CONFIG_MODULES is not set\n")
    p = plan(kconf, [("DM_THIN_PROVISIONING", "y-or-m")])
    assert p.ok
    assert changes(p)["DM_THIN_PROVISIONING"] == "y"
    assert len(p.changes) == 4


def test_expect_y_is_not_satisfied_by_m(tmp_path):
    kconf = load(tmp_path, DM, "CONFIG_MODULES=y\nCONFIG_BLOCK=y\nCONFIG_MD=y\nCONFIG_BLK_DEV_DM=m\n")
    p = plan(kconf, [("DM_THIN_PROVISIONING", "y")])
    assert changes(p) == {"BLK_DEV_DM": "y", "DM_THIN_PROVISIONING": "y"}


def test_nothing_to_do_when_everything_holds(tmp_path):
    kconf = load(tmp_path, DM, "CONFIG_MODULES=y\nCONFIG_BLOCK=y\nCONFIG_MD=y\nCONFIG_BLK_DEV_DM=y\n")
    p = plan(kconf, [("BLK_DEV_DM", "y-or-m")])
    assert p.ok and p.changes == [] and p.derived == []


SELECT = MODULES + """
config CRYPTO_GHASH
	tristate

config CRYPTO_GCM
	tristate "GCM"
	select CRYPTO_GHASH

config FEATURE
	bool "Feature"
	depends on HIDDEN_HELPER

config HIDDEN_HELPER
	bool
	default y if FEATURE_HOST

config FEATURE_HOST
	bool "Host support"
"""


def test_promptless_symbol_is_reached_through_select_and_defaults(tmp_path):
    kconf = load(tmp_path, SELECT, "CONFIG_MODULES=y\n")
    p = plan(kconf, [("CRYPTO_GHASH", "y-or-m"), ("FEATURE", "y")])
    assert p.ok
    assert changes(p) == {"CRYPTO_GCM": "m", "FEATURE_HOST": "y", "FEATURE": "y"}
    why = {c.symbol: c.why for c in p.changes}
    # Each reason names the relation that makes the change useful, not only the nearest name.
    assert why["CRYPTO_GCM"] == "CRYPTO_GCM selects CRYPTO_GHASH"
    assert why["FEATURE_HOST"] == "HIDDEN_HELPER's default needs FEATURE_HOST, on the way to FEATURE (through HIDDEN_HELPER)"
    assert len(p.changes) == brute_minimum(load(tmp_path / "b", SELECT, "CONFIG_MODULES=y\n"),
                                           [("CRYPTO_GHASH", "y-or-m"), ("FEATURE", "y")])


CLASH = """
config LEGACY
	bool "Legacy"

config MODERN
	bool "Modern"
	depends on !LEGACY

config ARCH_ONLY
	bool "Only on another architecture"
	depends on ARCH_FOO
"""


def test_depends_on_not_clash_is_a_conflict_naming_both(tmp_path):
    kconf = load(tmp_path, CLASH)
    p = plan(kconf, [("LEGACY", "y"), ("MODERN", "y")])
    assert not p.ok and p.config_text is None
    assert set(p.conflicts[0].symbols) == {"LEGACY", "MODERN"}
    assert "depends on !LEGACY" in p.conflicts[0].message


def test_impossible_dependency_is_a_conflict(tmp_path):
    kconf = load(tmp_path, CLASH)
    p = plan(kconf, [("ARCH_ONLY", "y")])
    assert not p.ok
    assert p.conflicts[0].symbols == ("ARCH_ONLY",)
    assert "ARCH_FOO" in p.conflicts[0].message


def test_missing_symbol_is_a_conflict_with_the_requirements_reason(tmp_path):
    kconf = load(tmp_path, CLASH)
    p = plan(kconf, [("AUFS_FS", "y-or-m")])
    assert not p.ok
    assert "AUFS_FS does not exist in this tree" in p.conflicts[0].message
    assert "test needs AUFS_FS" in p.conflicts[0].message


def test_forbidden_symbol_is_turned_off(tmp_path):
    kconf = load(tmp_path, CLASH, "CONFIG_LEGACY=y\n")
    p = plan(kconf, [("LEGACY", "not-set"), ("MODERN", "y")])
    assert changes(p) == {"LEGACY": "n", "MODERN": "y"}
    assert {c.symbol: c.why for c in p.changes}["LEGACY"] is None


CHOICE = """
choice
	prompt "Allocator"
	default SLAB

config SLAB
	bool "SLAB"

config SLUB
	bool "SLUB"

endchoice

config SLUB_DEBUG
	bool "SLUB debugging"
	depends on SLUB

config OTHER
	bool "Other"
"""


def test_choice_moves_only_when_forced(tmp_path):
    kconf = load(tmp_path, CHOICE, "CONFIG_SLAB=y\n")
    p = plan(kconf, [("OTHER", "y")])
    assert changes(p) == {"OTHER": "y"}
    assert "CONFIG_SLAB=y" in p.config_text
    kconf = load(tmp_path / "2", CHOICE, "CONFIG_SLAB=y\n")
    p = plan(kconf, [("SLUB_DEBUG", "y")])
    assert changes(p) == {"SLUB": "y", "SLUB_DEBUG": "y"}
    assert p.changes[0].choice == 'choice "Allocator"' or p.changes[1].choice == 'choice "Allocator"'
    assert any(d.symbol == "SLAB" and d.new == "n" for d in p.derived)


EXPERT = MODULES + """
config EXPERT
	bool "Expert"

config NAMESPACES
	bool "Namespaces" if EXPERT
	default !EXPERT

config NET_NS
	bool "Net namespace" if EXPERT
	default !EXPERT
	depends on NAMESPACES

config PID_NS
	bool "PID namespace" if EXPERT
	default !EXPERT
	depends on NAMESPACES
"""


def test_turning_a_users_feature_off_costs_more_than_any_plan_that_only_adds(tmp_path):
    # EXPERT off would be one change (the namespaces' defaults follow), but EXPERT is the user's.
    goals = [("NAMESPACES", "y"), ("NET_NS", "y"), ("PID_NS", "y")]
    kconf = load(tmp_path, EXPERT, "CONFIG_EXPERT=y\n")
    p = plan(kconf, goals)
    assert changes(p) == {"NAMESPACES": "y", "NET_NS": "y", "PID_NS": "y"}
    assert len(p.changes) == brute_minimum(load(tmp_path / "b", EXPERT, "CONFIG_EXPERT=y\n"), goals)


def test_turning_a_visibility_switch_off_is_the_minimum_when_the_user_did_not_set_it(tmp_path):
    # The same tree with EXPERT only defaulted on: nothing of the user's is lost, one change wins.
    tree = EXPERT.replace('bool "Expert"', 'bool "Expert"\n\tdefault y')
    kconf = load(tmp_path, tree, "")
    p = plan(kconf, [("NAMESPACES", "y"), ("NET_NS", "y"), ("PID_NS", "y")])
    assert changes(p) == {"EXPERT": "n"}
    # The real chain: EXPERT hides the prompt, and the default (!EXPERT) does the rest.
    assert p.changes[0].why == "EXPERT off hides NAMESPACES's prompt, so NAMESPACES's default applies"


def test_keep_forbids_a_loss_and_names_the_conflict(tmp_path):
    kconf = load(tmp_path, CLASH, "CONFIG_LEGACY=y\n")
    p = plan(kconf, [("MODERN", "y")])
    assert p.ok and changes(p) == {"LEGACY": "n", "MODERN": "y"}
    kconf = load(tmp_path / "k", CLASH, "CONFIG_LEGACY=y\n")
    p = plan(kconf, [("MODERN", "y")], keep=["LEGACY"])
    assert not p.ok and p.config_text is None
    message = p.conflicts[0].message
    assert "--keep" in message and "LEGACY stays y" in message and "MODERN y (depends on !LEGACY)" in message


IMPLY = MODULES + """
config BASE
	tristate "Base"
	imply EXTRA

config EXTRA
	tristate "Extra"
	depends on BASE_OK

config BASE_OK
	bool "Base ok"
"""


@pytest.mark.parametrize("config", ["CONFIG_MODULES=y\n", "CONFIG_MODULES=y\nCONFIG_BASE_OK=y\n", ""])
@pytest.mark.parametrize("goal", [("EXTRA", "y"), ("EXTRA", "m"), ("EXTRA", "y-or-m"), ("BASE", "not-set")])
def test_imply_trees_match_brute_force(tmp_path, config, goal):
    kconf = load(tmp_path, IMPLY, config)
    p = plan(kconf, [goal])
    best = brute_minimum(load(tmp_path / "b", IMPLY, config), [goal])
    if best is None:
        assert not p.ok
    else:
        assert p.ok and len(p.changes) == best
        assert holds(kconf, [goal])


def test_a_wrong_model_is_caught_by_the_replay_and_never_written(tmp_path, monkeypatch):
    from kcheck.fix import encode, plan as planner

    # Break the model: every prompt looks visible, so it believes DM_THIN_PROVISIONING alone suffices.
    monkeypatch.setattr(encode.Encoder, "_prompt_vis", lambda self, sc: encode.const(2) if any(n.prompt for n in sc.nodes) else encode.const(0))
    monkeypatch.setattr(planner, "MAX_REPLAYS", 5)
    kconf = load(tmp_path, DM, "CONFIG_MODULES=y\n")
    p = plan(kconf, [("DM_THIN_PROVISIONING", "y-or-m")])
    # Every answer of the broken model disagrees with kconfiglib somewhere: refused, nothing to write.
    assert not p.ok and p.config_text is None
    assert "kcheck bug" in p.conflicts[0].message and p.rejected == 5
    assert all(kconf.syms[n].user_value is None for n in ("BLOCK", "MD", "BLK_DEV_DM", "DM_THIN_PROVISIONING"))
