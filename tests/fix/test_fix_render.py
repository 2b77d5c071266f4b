"""Renderers only format a plan: text, JSON, scripts/config and fragments read right."""

from __future__ import annotations

import json

from fixtrees import load, plan
from test_fix_plan import CLASH, DM

from kcheck.fix import render


def test_text_lists_changes_with_location_reason_and_consequences(tmp_path):
    p = plan(load(tmp_path, DM, "CONFIG_MODULES=y\n"), [("DM_THIN_PROVISIONING", "y-or-m")])
    out = render.text(p, config=".config", profiles=["t"], verbose=True)
    assert out.splitlines()[0] == "kcheck fix: .config for t: 4 changes"
    assert any("MD" in line and "n -> y" in line and "Kconfig:" in line and "(BLK_DEV_DM needs MD)" in line
               for line in out.splitlines())
    assert "DM_BUFIO" in out and "selected by BLK_DEV_DM" in out


def test_text_names_conflicts(tmp_path):
    p = plan(load(tmp_path, CLASH), [("LEGACY", "y"), ("MODERN", "y")])
    out = render.text(p, config=".config", profiles=["t"])
    assert "cannot be fixed" in out and "nothing was written" in out and "MODERN" in out


def test_scripts_config_and_fragment(tmp_path):
    p = plan(load(tmp_path, DM, "CONFIG_MODULES=y\n"), [("DM_THIN_PROVISIONING", "y-or-m")])
    commands = render.scripts_config(p, config="build/.config")
    assert "scripts/config --file build/.config --enable BLOCK --enable MD --module BLK_DEV_DM --module DM_THIN_PROVISIONING" in commands
    assert commands.splitlines()[-1] == "make olddefconfig"
    frag = render.fragment(p, profiles=["t"]).splitlines()
    assert "CONFIG_MD=y" in frag and "CONFIG_DM_THIN_PROVISIONING=m" in frag
    assert all(line.startswith(("#", "CONFIG_")) for line in frag)
    data = json.loads(render.as_json(p, config=".config", profiles=["t"]))
    assert data["ok"] and [c["symbol"] for c in data["changes"]] == ["BLOCK", "MD", "BLK_DEV_DM", "DM_THIN_PROVISIONING"]
