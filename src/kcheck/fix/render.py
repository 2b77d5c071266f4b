"""A :class:`~kcheck.fix.plan.FixPlan` as a user reads or applies it.

Renderers only format; the plan is made once in :mod:`kcheck.fix.plan`:

- :func:`text`: the dry-run report (changes with old -> new, file:line and why;
  what Kconfig then changes by itself; or the conflicts);
- :func:`as_json`: the same as data;
- :func:`scripts_config`: the kernel's ``scripts/config`` commands;
- :func:`fragment`: a config fragment for ``scripts/kconfig/merge_config.sh``
  and Gentoo's ``/etc/kernel/config.d/``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict

from kcheck.fix.plan import FixPlan


def _shown(value: str) -> str:
    return value if value else '""'


def _config_line(symbol: str, value: str) -> str:
    return f"# CONFIG_{symbol} is not set" if value == "n" else f"CONFIG_{symbol}={value}"


def text(plan: FixPlan, *, config: str, profiles: list[str], verbose: bool = False) -> str:
    """The plan as the dry run prints it."""
    lines: list[str] = []
    who = " + ".join(profiles)
    if plan.conflicts:
        lines.append(f"kcheck fix: {config} cannot be fixed for {who}; nothing was written:")
        for conflict in plan.conflicts:
            lines.append(f"  - {conflict.message}")
        return "\n".join(lines)
    if not plan.changes:
        lines.append(f"kcheck fix: {config}: every requirement of {who} already holds; nothing to change.")
        return "\n".join(lines)
    count = len(plan.changes)
    lines.append(f"kcheck fix: {config} for {who}: {count} change{'s' if count != 1 else ''}")
    width = max(len(c.symbol) for c in plan.changes)
    for c in plan.changes:
        why = f"  ({c.why})" if c.why else ""
        lines.append(f"  {c.symbol:<{width}}  {c.old} -> {c.new}  {c.location}{why}")
    if plan.derived:
        lines.append(f"Kconfig then changes {len(plan.derived)} value{'s' if len(plan.derived) != 1 else ''} by itself"
                     + (":" if verbose else " (--verbose lists them)."))
        if verbose:
            dwidth = max(len(d.symbol) for d in plan.derived)
            for d in plan.derived:
                lines.append(f"  {d.symbol:<{dwidth}}  {_shown(d.old)} -> {_shown(d.new)}  ({d.why})")
    return "\n".join(lines)


def as_json(plan: FixPlan, *, config: str, profiles: list[str]) -> str:
    """The plan as JSON: ``ok``, ``changes``, ``derived``, ``conflicts``, ``requirements``."""
    data = {
        "config": config,
        "profiles": profiles,
        "ok": plan.ok,
        "changes": [asdict(c) for c in plan.changes],
        "derived": [asdict(d) for d in plan.derived],
        "conflicts": [{"message": c.message, "symbols": list(c.symbols)} for c in plan.conflicts],
        "requirements": [
            {"profile": w.profile, "symbol": w.requirement.symbol, "expect": w.requirement.expect,
             "severity": w.requirement.severity.value}
            for w in plan.wanted
        ],
    }
    return json.dumps(data, indent=2)


def scripts_config(plan: FixPlan, *, config: str) -> str:
    """The plan as ``scripts/config`` commands, followed by ``make olddefconfig``."""
    if plan.conflicts:
        return "\n".join(f"# cannot fix: {c.message}" for c in plan.conflicts)
    args: list[str] = []
    for c in plan.changes:
        flag = {"y": "--enable", "m": "--module", "n": "--disable"}.get(c.new)
        args += [flag, c.symbol] if flag else ["--set-val", c.symbol, c.new]
    lines = ["# apply in the kernel source tree, then let Kconfig settle the rest:"]
    if args:
        lines.append(" ".join(["scripts/config", "--file", shlex.quote(config), *args]))
    lines.append("make olddefconfig")
    return "\n".join(lines)


def fragment(plan: FixPlan, *, profiles: list[str]) -> str:
    """A merge_config.sh fragment: every change, then the wanted symbols' planned values."""
    lines = [f"# kcheck fix for {' + '.join(profiles)}: merge with scripts/kconfig/merge_config.sh",
             "# or place in /etc/kernel/config.d/ for Gentoo's distribution kernels."]
    seen: set[str] = set()
    for c in plan.changes:
        if c.why:
            lines.append(f"# {c.why}")  # on its own line: Kconfig reads a trailing comment as part of the value
        lines.append(_config_line(c.symbol, c.new))
        seen.add(c.symbol)
    lines.append("# the requirements' own symbols, as planned:")
    for f in plan.findings:
        name = f.symbol or f.check
        if name not in seen and f.actual is not None:
            value = "n" if f.actual in ("not set", "not in the file", "absent from this tree") else f.actual
            if f.actual.startswith("absent"):
                continue
            lines.append(_config_line(name, value))
            seen.add(name)
    return "\n".join(lines) + "\n"
