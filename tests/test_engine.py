"""The engine's verdicts: versions, aliases, facts, severities."""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from kcheck import dotconfig, engine, profile
from kcheck.model import CheckContext, KernelVersion, Status, SymbolState


def ctx_for(text, release="6.1.0"):
    kver = KernelVersion(Version(release), release, "test") if release else None
    return CheckContext(root=Path("/"), source=dotconfig.parse(text), tree=None, build_dir=None, kernel_version=kver)


def one(text, req_text, release="6.1.0", facts=None):
    prof = profile.parse(f'name = "t"\n[[group]]\n{req_text}', Path("t.toml"))
    ctx = ctx_for(text, release)
    ctx.facts.update(facts or {})
    found = engine.evaluate([prof], ctx)
    return found[0] if found else None


REQ = 'requirements = [ {{ symbol = "A", reason = "r"{extra} }} ]\n'


def test_required_ok_and_fail_with_lines():
    ok = one("CONFIG_A=m\n", REQ.format(extra=""))
    assert ok.status is Status.OK and ok.actual == "m" and ok.line == 1
    missing = one("# CONFIG_A is not set\n", REQ.format(extra=""))
    assert missing.status is Status.FAIL and missing.actual == "not set" and missing.line == 1
    absent = one("CONFIG_B=y\n", REQ.format(extra=""))
    assert absent.status is Status.FAIL and absent.actual == "not in the file" and absent.line is None


def test_exact_expectations():
    assert one("CONFIG_A=m\n", REQ.format(extra=', expect = "y"')).status is Status.FAIL
    assert one("CONFIG_A=y\n", REQ.format(extra=', expect = "y"')).status is Status.OK
    assert one("CONFIG_A=0x10\n", REQ.format(extra=', expect = "0x10"')).status is Status.OK


def test_recommended_warns_and_forbidden_fails():
    assert one("", 'severity = "recommended"\n' + REQ.format(extra="")).status is Status.WARN
    forbidden = one("CONFIG_A=y\n", 'severity = "forbidden"\n' + REQ.format(extra=""))
    assert forbidden.status is Status.FAIL and forbidden.expected == "not-set"
    assert one("", 'severity = "forbidden"\n' + REQ.format(extra="")).status is Status.OK


def test_version_ranges_use_the_config_version():
    req = REQ.format(extra=', versions = "<5.2"')
    assert one("", req, release="4.4.0").status is Status.FAIL
    assert one("", req, release="6.1.0").status is Status.SKIP
    unknown = one("", req, release=None)
    assert unknown.status is Status.SKIP and "unknown" in unknown.detail


def test_any_alias_satisfies_and_any_alias_breaks_not_set():
    req = REQ.format(extra=', aliases = ["OLD_A"]')
    found = one("CONFIG_OLD_A=y\n", req)
    assert found.status is Status.OK and found.symbol == "OLD_A" and "OLD_A" in found.detail
    forbid = 'severity = "forbidden"\n' + req
    assert one("CONFIG_OLD_A=y\n", forbid).status is Status.FAIL


def test_when_conditions_select_requirements():
    req = REQ.format(extra=', when = "provider:sources|none"')
    assert one("", req, facts={"provider": "standalone"}) is None
    assert one("", req, facts={"provider": "none"}).status is Status.FAIL


class KconfigLike:
    """A stand-in for the Kconfig reader: it knows symbols can be missing from a tree."""

    path = None
    mode = "kconfig"

    def state(self, symbol):
        return SymbolState(symbol, "n", exists=False, note=f"{symbol} does not exist in this tree")


def test_missing_from_tree_is_said():
    prof = profile.parse('name = "t"\n[[group]]\n' + REQ.format(extra=""), Path("t.toml"))
    ctx = CheckContext(root=Path("/"), source=KconfigLike(), tree=None, build_dir=None, kernel_version=None)
    found = engine.evaluate([prof], ctx)[0]
    assert found.status is Status.FAIL and found.actual == "absent from this tree" and "does not exist" in found.detail
