"""Evaluate requirement profiles against a configuration: the one place verdicts are made.

For each requirement the engine asks the :class:`~kcheck.model.ConfigSource`
about the symbol and its aliases and produces one
:class:`~kcheck.model.Finding`:

- not applicable to this kernel version -> ``skip`` (with the version range);
  when the version is unknown, versioned requirements are skipped too and
  say so, as only version-independent rules can be applied;
- a ``when`` condition whose fact does not match -> no finding at all (the
  requirement belongs to another case, e.g. the other aufs provider);
- otherwise ``ok``, or ``fail`` (required, forbidden) / ``warn`` (recommended).

Facts functions and extra checks named by a profile are called here too, so
every front end gets the same findings from the same flow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from kcheck.model import CheckContext, Finding, Severity, Status, SymbolState
from kcheck.profile import CALLABLES, Profile, Requirement


def resolve(name: str) -> Callable:
    """The function a profile's ``facts``/``checks`` entry names; only names in :data:`~kcheck.profile.CALLABLES`.

    The profile parser already refuses other names; checking again here
    keeps a Profile built in code to the same rule.
    """
    if name not in CALLABLES:
        raise ValueError(f"{name!r} is not one of kcheck's own profile functions")
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def satisfied(expect: str, value: str) -> bool:
    """Whether a symbol's value meets an ``expect`` form."""
    if expect == "y-or-m":
        return value in ("y", "m")
    if expect == "not-set":
        return value in ("n", "")
    return value == expect


def describe(state: SymbolState) -> str:
    """A symbol's value as a user reads it: ``y``, ``m``, ``not set``, ``not in the file``.

    "not set" is said only of a symbol the file sets to n (``# CONFIG_X is
    not set``); a symbol the file never mentions is "not in the file", even
    when Kconfig gives it n by default: the user fixes the two differently.
    """
    if state.exists is False:
        return "absent from this tree"
    if state.value in ("n", ""):
        return "not set" if state.written is not None else "not in the file"
    return state.value


def expect_for(expect: str, state: SymbolState) -> str:
    """The ``expect`` form as it applies to this symbol: ``y-or-m`` is ``y`` for a bool.

    A bool takes no m, so "y or m" would offer a value Kconfig refuses. The
    type is known only with the kernel tree; without it the profile's form stays.
    """
    if expect == "y-or-m" and state.type == "bool":
        return "y"
    return expect


def evaluate_requirement(req: Requirement, ctx: CheckContext, profile: str) -> Finding | None:
    """The finding for one requirement, or None when its ``when`` excludes it."""
    for fact, values in req.when:
        if ctx.facts.get(fact) not in values:
            return None
    base = dict(
        profile=profile,
        check=req.symbol,
        severity=req.severity,
        reason=req.reason,
        expected=req.expect,
        group=req.group,
        source=req.source,
    )
    if req.versions is not None:
        if ctx.kernel_version is None:
            return Finding(status=Status.SKIP, detail=f"applies to kernels {req.versions}; the kernel version is unknown", **base)
        if ctx.kernel_version.version not in req.versions:
            return Finding(status=Status.SKIP, detail=f"applies to kernels {req.versions} only", **base)
    states = [ctx.source.state(name) for name in req.names]
    if req.expect == "not-set":
        # Every name must be off: an alias that is on still breaks it.
        offending = next((s for s in states if not satisfied("not-set", s.value)), None)
        chosen, ok = (offending, False) if offending else (states[0], True)
    else:
        chosen = next((s for s in states if satisfied(req.expect, s.value)), None)
        ok = chosen is not None
        if chosen is None:
            chosen = next((s for s in states if s.exists), states[0])
    status = Status.OK if ok else (Status.WARN if req.severity is Severity.RECOMMENDED else Status.FAIL)
    base["expected"] = expect_for(req.expect, chosen)
    return Finding(
        status=status,
        actual=describe(chosen),
        line=chosen.line,
        symbol=chosen.symbol,
        detail=chosen.note if chosen.note else (f"satisfied by {chosen.symbol}" if ok and chosen.symbol != req.symbol else None),
        **base,
    )


def evaluate(profiles: Iterable[Profile], ctx: CheckContext) -> list[Finding]:
    """All findings of ``profiles`` for the configuration in ``ctx``, in profile order."""
    findings: list[Finding] = []
    for profile in profiles:
        for name in profile.facts:
            ctx.facts.update(resolve(name)(ctx))
        for req in profile.requirements:
            finding = evaluate_requirement(req, ctx, profile.name)
            if finding is not None:
                findings.append(finding)
        for advice in profile.advice:
            findings.append(
                Finding(
                    profile=profile.name,
                    check="advice",
                    status=Status(advice.status),
                    severity=Severity.INFO,
                    reason=advice.text,
                    section="driver",
                )
            )
        for name in profile.checks:
            findings.extend(resolve(name)(ctx))
    return findings
