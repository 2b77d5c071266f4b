"""What ``kcheck fix`` writes, settled by the kernel's ``conf``, and every value that changes.

After :func:`kcheck.fix.plan.make_plan` the plan is a set of user values that
kconfiglib says make every requirement hold. :func:`settle` turns it into the
file to write:

1. the plan as a *minimal edit* of the user's file (:func:`minimal_edit`: the
   planned lines replaced or appended, nothing else touched);
2. the tree's own ``make olddefconfig`` on that edit (:mod:`kcheck.fix.oracle`),
   whose output is what gets written; when ``conf`` computes any planned
   symbol or any requirement's symbol differently from kconfiglib, the plan
   is refused (a disagreement, nothing written);
3. three value maps compared symbol by symbol: the user's file as written,
   ``conf`` on the *unchanged* file (what ``make olddefconfig`` would do anyway:
   the baseline) and the file to write. Every difference lands in one group:

   - ``planned``: the plan's own changes;
   - ``consequences``: baseline -> written, what Kconfig changes because of the
     plan (options that newly appear take their defaults);
   - ``drift``: file -> baseline, what ``make olddefconfig`` changes without
     the plan: the toolchain here (``CC_VERSION_TEXT``, ``PAHOLE_VERSION``,
     ``RUSTC_VERSION`` and what depends on them), options this tree adds or
     dropped.

Without a usable ``conf`` (no toolchain, ``--no-shell``, an untrusted tree)
the same groups come from kconfiglib alone and the note says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import kconfiglib
from kconfiglib import BOOL, TRISTATE

from kcheck.fix import oracle
from kcheck.fix.plan import ABSENT, FixPlan, _why_derived
from kcheck.kconfig.why import blockers

#: The symbols that record the toolchain a configuration was made with.
TOOLCHAIN = ("CC_VERSION_TEXT", "PAHOLE_VERSION", "RUSTC_VERSION")
#: Symbols computed from the toolchain's version probes (their change is drift, not a decision).
_PROBED = ("GCC_VERSION", "CLANG_VERSION", "LD_VERSION", "AS_VERSION", "LLD_VERSION",
           "RUSTC_LLVM_VERSION", "RUSTC_LLVM_MAJOR_VERSION", "BINDGEN_VERSION_TEXT", "RUSTC_VERSION_TEXT")


@dataclass(frozen=True)
class ValueChange:
    """One symbol whose value differs between the user's file and what is written."""

    symbol: str
    old: str
    new: str
    why: str


@dataclass
class Settled:
    """The file ``kcheck fix`` writes (None: refused), who vouched for it, and every value that changes."""

    text: str | None
    #: "conf" when the kernel's own conf wrote ``text``; "kcheck" when only kcheck's engine checked it.
    verified_by: str
    #: One sentence on the verification ("verified by the kernel's conf ..." / "... by kcheck's engine only: ...").
    note: str
    planned: list[ValueChange] = field(default_factory=list)
    consequences: list[ValueChange] = field(default_factory=list)
    drift: list[ValueChange] = field(default_factory=list)
    #: One line each, shown above the plan: features the plan turns off, another toolchain.
    warnings: list[str] = field(default_factory=list)
    #: Why the plan is refused: conf and kconfiglib disagree on a planned symbol, or a --keep would not hold.
    disagreements: list[str] = field(default_factory=list)
    #: Other symbols where conf's value (written) differs from kconfiglib's (informational).
    engine_differs: list[ValueChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is a file to write."""
        return self.text is not None and not self.disagreements


def values(text: str) -> dict[str, str]:
    """Symbol -> value of a ``.config`` text (``n`` for "is not set", strings unquoted as kconfiglib holds them)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_"):
            name, sep, value = line[len("CONFIG_"):].partition("=")
            if sep:
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                out[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[len("# CONFIG_"):-len(" is not set")]] = "n"
    return out


def _line(symbol: str, value: str) -> str:
    return f"# CONFIG_{symbol} is not set" if value == "n" else f"CONFIG_{symbol}={value}"


def plan_edits(plan: FixPlan, kconf: kconfiglib.Kconfig, file_values: Mapping[str, str]) -> dict[str, str]:
    """The lines the plan sets: each change, and for a moved choice its old selection turned off."""
    edits = {c.symbol: c.new for c in plan.changes}
    for c in plan.changes:
        choice = kconf.syms[c.symbol].choice
        if choice is not None and c.new == "y":
            for member in choice.syms:
                if member.name != c.symbol and file_values.get(member.name) == "y":
                    edits.setdefault(member.name, "n")
    return edits


def minimal_edit(text: str, edits: Mapping[str, str]) -> str:
    """``text`` with each symbol of ``edits`` set: its lines replaced in place, new ones appended."""
    lines = text.splitlines(keepends=True)
    done: set[str] = set()
    for i, line in enumerate(lines):
        stripped = line.rstrip("\n")
        name = None
        if stripped.startswith("CONFIG_"):
            name = stripped[len("CONFIG_"):].partition("=")[0]
        elif stripped.startswith("# CONFIG_") and stripped.endswith(" is not set"):
            name = stripped[len("# CONFIG_"):-len(" is not set")]
        if name in edits:
            lines[i] = _line(name, edits[name]) + "\n"
            done.add(name)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [_line(name, value) + "\n" for name, value in edits.items() if name not in done]
    return "".join(lines)


def _unset(kconf: kconfiglib.Kconfig, name: str) -> str:
    """How a symbol the file does not mention reads: n for bool/tristate, else absent."""
    sym = kconf.syms.get(name)
    return "n" if sym is not None and sym.nodes and sym.orig_type in (BOOL, TRISTATE) else ABSENT


def _differ(kconf, old: Mapping[str, str], new: Mapping[str, str], names: Iterable[str]) -> list[str]:
    return [n for n in names if old.get(n, _unset(kconf, n)) != new.get(n, _unset(kconf, n))]


def _why_drift(kconf: kconfiglib.Kconfig, name: str, new: str) -> str:
    sym = kconf.syms.get(name)
    if sym is None or not sym.nodes:
        return "not an option of this tree: make olddefconfig drops it"
    if name in TOOLCHAIN or name in _PROBED:
        return "measured from the toolchain here"
    if new == "n" and sym.orig_type in (BOOL, TRISTATE) and kconfiglib.expr_value(sym.direct_dep) == 0:
        held = "; ".join(blockers(sym.direct_dep)) or kconfiglib.expr_str(sym.direct_dep)
        return f"its dependencies are not met here: {held}"
    if not any(node.prompt for node in sym.nodes) and not kconfiglib.expr_value(sym.rev_dep):
        # A def_bool/def_int computed by the tree's probes ($(cc-option,...), $(success,...)).
        return "its default with the toolchain here"
    return _why_derived(kconf, sym, new)


def _required_because(plan: FixPlan, name: str) -> str:
    """Why a requirement names ``name``: the profile, what it wants and its own reason."""
    for w in plan.wanted:
        if name in w.requirement.names:
            return f"{w.profile} wants {name} {w.requirement.expect}: {w.requirement.reason}"
    return "a requirement names it"


def _toolchain_warning(file_values: Mapping[str, str], baseline: Mapping[str, str], drift: int) -> str | None:
    moved = [f'{n} "{file_values[n]}", here "{baseline.get(n, ABSENT)}"'
             for n in TOOLCHAIN if n in file_values and file_values[n] != baseline.get(n, file_values[n])]
    if not moved:
        return None
    return (f"warning: this configuration was made with another toolchain ({'; '.join(moved)}): "
            f"make olddefconfig changes {drift} value{'s' if drift != 1 else ''} here with or without the plan (toolchain drift)")


def settle(
    plan: FixPlan,
    kconf: kconfiglib.Kconfig,
    original: str,
    conf: oracle.Conf | None,
    baseline: oracle.Run | None,
    why_not: str | None,
    keep: Iterable[str] = (),
) -> Settled:
    """The file to write for an ok ``plan`` (``kconf`` in the planned state), checked by ``conf`` when there is one.

    ``baseline`` is conf's ``olddefconfig`` of the unchanged file, started
    early (see :meth:`kcheck.fix.oracle.Conf.start`); ``why_not``
    says why there is no conf (then both are None). A symbol of ``keep``
    whose value would still change (an int or string, or through a
    consequence outside the plan's reach) refuses the plan too.
    """
    assert plan.ok and plan.config_text is not None
    file_values = values(original)
    after = plan.after
    written_text = plan.config_text
    base_values = plan.before
    verified_by, note = "kcheck", f"verified by kcheck's engine only: {why_not}"
    if conf is not None and baseline is not None:
        try:
            edited = minimal_edit(original, plan_edits(plan, kconf, file_values))
            written_text = conf.olddefconfig(edited)
            base_values = values(baseline.result())
            verified_by, note = "conf", "verified by the kernel's own conf (make olddefconfig on the edited file)"
        except oracle.OracleError as exc:
            written_text, base_values = plan.config_text, plan.before
            note = f"verified by kcheck's engine only: {exc}"
    written = values(written_text)

    out = Settled(written_text, verified_by, note)
    if verified_by == "conf":
        planned_syms = [c.symbol for c in plan.changes]
        planned_syms += [n for w in plan.wanted for n in w.requirement.names if n in kconf.syms and kconf.syms[n].nodes]
        for name in dict.fromkeys(planned_syms):
            ours, theirs = after.get(name, _unset(kconf, name)), written.get(name, _unset(kconf, name))
            if ours != theirs:
                out.disagreements.append(f"{name}: kcheck's engine computes {ours}, the kernel's conf {theirs}")
        if out.disagreements:
            out.text = None
            return out
        out.engine_differs = [
            ValueChange(n, after.get(n, _unset(kconf, n)), written.get(n, _unset(kconf, n)), "conf's value is written")
            for n in _differ(kconf, after, written, dict.fromkeys([*after, *written]))
        ]

    for name in keep:
        old, new = file_values.get(name, _unset(kconf, name)), written.get(name, _unset(kconf, name))
        if old != new:
            out.disagreements.append(f"{name}: would change from {old} to {new}, which --keep forbids")
    if out.disagreements:
        out.text = None
        return out

    names = list(dict.fromkeys([*file_values, *base_values, *written]))
    changes = {c.symbol: c for c in plan.changes}
    for name in _differ(kconf, file_values, written, names):
        old, new = file_values.get(name, _unset(kconf, name)), written.get(name, _unset(kconf, name))
        if name in changes:
            why = changes[name].why or _required_because(plan, name)
            out.planned.append(ValueChange(name, old, new, why))
        elif base_values.get(name, _unset(kconf, name)) != new:
            sym = kconf.syms.get(name)
            why = _why_derived(kconf, sym, new) if sym is not None and sym.nodes else "dropped"
            out.consequences.append(ValueChange(name, old, new, why))
        else:
            out.drift.append(ValueChange(name, old, new, _why_drift(kconf, name, new)))

    for change in [*out.planned, *out.consequences]:
        sym = kconf.syms.get(change.symbol)
        if (change.old in ("y", "m") and change.new in ("n", ABSENT) and sym is not None
                and any(node.prompt for node in sym.nodes)):
            out.warnings.append(f"warning: this plan turns off {change.symbol} ({change.old} in your file): "
                                f"{change.why}; --keep {change.symbol} forbids it")
    toolchain = _toolchain_warning(file_values, base_values, len(out.drift))
    if toolchain:
        out.warnings.append(toolchain)
    return out
