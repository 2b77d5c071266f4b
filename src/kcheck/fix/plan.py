"""Find, replay and verify the smallest set of user changes that makes the requirements hold.

The flow (see ``docs/fix-design.md`` for why):

1. :func:`wanted` asks the engine which requirements apply to this kernel
   (version ranges, facts such as the aufs provider), the same way a check does.
2. :func:`solve` encodes Kconfig's rules over the dependency cone of the wanted
   symbols (:mod:`kcheck.fix.encode`), adds each requirement as a hard clause
   and asks a MaxSAT solver (RC2) for the fewest changed user values; ties go
   to ``m`` over ``y`` for tristates. An unsatisfiable set yields the
   requirements in the solver's core as the conflict.
3. The answer is replayed through kconfiglib (``set_value``); when kconfiglib
   computes any value of the cone differently from the model, that exact answer
   is blocked and the solver asked again.
4. :func:`verify` writes the result with kconfiglib's writer (what ``make
   olddefconfig`` writes), reads it back, and re-evaluates every requirement
   with the engine; only then is the plan good to write.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import kconfiglib
from kconfiglib import BOOL, TRISTATE, Choice, Symbol
from pysat.examples.rc2 import RC2
from pysat.formula import WCNF
from pysat.solvers import Solver

from kcheck import engine
from kcheck.fix.encode import FALSE, TRUE, Encoder, encode, modelled
from kcheck.model import CheckContext, ConfigSource, Finding, Severity, Status, SymbolState
from kcheck.profile import Profile, Requirement

#: How a value reads when the ``.config`` does not mention the symbol at all.
ABSENT = "(absent)"
#: Reads a written ``.config`` back as a configuration source (see :func:`verify`).
Reader = Callable[[Path], ConfigSource]
#: How many replay disagreements are tolerated before giving up (each blocks one answer).
MAX_REPLAYS = 25


@dataclass(frozen=True)
class Wanted:
    """A requirement that applies to this kernel, with the profile that asks for it."""

    profile: str
    requirement: Requirement


@dataclass(frozen=True)
class Change:
    """One value the user sets: ``symbol`` from ``old`` to ``new``.

    ``location`` is where the symbol is defined (``file:line``); ``why`` is
    None when a requirement names the symbol, else the reason it is needed
    ("BLK_DEV_DM needs MD"). ``choice`` names the choice when the change
    moves a choice's selection.
    """

    symbol: str
    old: str
    new: str
    location: str
    why: str | None = None
    choice: str | None = None


@dataclass(frozen=True)
class Derived:
    """A value Kconfig changes by itself as a consequence of the plan (not set by the user)."""

    symbol: str
    old: str
    new: str
    why: str


@dataclass(frozen=True)
class Conflict:
    """Why the requirements cannot hold in this tree, and the symbols involved."""

    message: str
    symbols: tuple[str, ...]


@dataclass
class FixPlan:
    """The outcome of planning: the changes, their consequences, or the conflicts."""

    wanted: list[Wanted]
    changes: list[Change] = field(default_factory=list)
    derived: list[Derived] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: The configuration to write (kconfiglib's writer output), once verified.
    config_text: str | None = None
    #: The engine's findings on the planned configuration.
    findings: list[Finding] = field(default_factory=list)
    #: Solver answers kconfiglib disagreed with (0 means the model was exact on this tree).
    rejected: int = 0
    #: kconfiglib's values (:func:`snapshot`) of the starting configuration, and of the planned one.
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the plan makes every wanted requirement hold."""
        return not self.conflicts and self.config_text is not None


class KconfSource:
    """The engine's view (:class:`~kcheck.model.ConfigSource`) of a live kconfiglib state."""

    mode = "kconfig"

    def __init__(self, kconf: kconfiglib.Kconfig, path: Path | None = None) -> None:
        self.kconf = kconf
        self.path = path

    def state(self, symbol: str) -> SymbolState:
        """What Kconfig computes for ``symbol`` (``n`` and ``exists=False`` when undefined)."""
        sym = self.kconf.syms.get(symbol)
        if sym is None or not sym.nodes:
            return SymbolState(symbol, "n", exists=False)
        value = sym.str_value
        if sym.orig_type in (BOOL, TRISTATE) and value == "":
            value = "n"
        return SymbolState(symbol, value, exists=True)


def wanted(profiles: Sequence[Profile], ctx: CheckContext, *, include_recommended: bool = False) -> list[Wanted]:
    """The requirements the fix must make hold: required and forbidden (and recommended on request)."""
    severities = {Severity.REQUIRED, Severity.FORBIDDEN} | ({Severity.RECOMMENDED} if include_recommended else set())
    out: list[Wanted] = []
    for profile in profiles:
        for name in profile.facts:
            ctx.facts.update(engine.resolve(name)(ctx))
        for req in profile.requirements:
            if req.severity not in severities:
                continue
            finding = engine.evaluate_requirement(req, ctx, profile.name)
            if finding is not None and finding.status is not Status.SKIP:
                out.append(Wanted(profile.name, req))
    return out


def location(sc) -> str:
    """``file:line`` of a symbol's or choice's first definition."""
    node = sc.nodes[0] if sc.nodes else None
    return f"{node.filename}:{node.linenr}" if node else "(undefined)"


def _defined(kconf: kconfiglib.Kconfig, name: str) -> Symbol | None:
    sym = kconf.syms.get(name)
    return sym if sym is not None and sym.nodes else None


def _goal(enc: Encoder, kconf: kconfiglib.Kconfig, req: Requirement) -> tuple[int | None, str | None]:
    """The literal that says ``req`` holds, or a reason it cannot be planned."""
    c = enc.c
    syms = [s for s in (_defined(kconf, n) for n in req.names) if s is not None]
    if req.expect == "not-set":
        return c.and_(*(-enc.item(s)[0] for s in syms if modelled(s))), None
    if req.expect not in ("y", "m", "y-or-m"):
        value = [s.str_value for s in syms]
        if req.expect in value:
            return TRUE, None
        return None, f"{req.symbol} must be {req.expect}; kcheck fix plans bool and tristate values only: set it by hand"
    usable = [s for s in syms if modelled(s)]
    if not usable:
        names = " or ".join(req.names)
        if syms:
            return None, f"{names} is not a bool or tristate option in this tree, so it cannot be {req.expect}"
        return None, f"{names} does not exist in this tree ({req.reason})"
    bits = []
    for s in usable:
        a, b = enc.item(s)
        bits.append(a if req.expect == "y-or-m" else b if req.expect == "y" else c.and_(a, -b))
    return c.or_(*bits), None


def _describe_goal(kconf: kconfiglib.Kconfig, req: Requirement) -> str:
    sym = _defined(kconf, req.symbol)
    dep = ""
    if sym is not None and sym.direct_dep is not kconf.y:
        dep = f" (depends on {kconfiglib.expr_str(sym.direct_dep)})"
    return f"{req.symbol} {req.expect}{dep}"


def _keep_goal(enc: Encoder, sym: Symbol) -> int:
    """The literal that says ``sym`` keeps the value it has now (``--keep``)."""
    a, b = enc.item(sym)
    return {0: -a, 1: enc.c.and_(a, -b), 2: b}[sym.tri_value]


def _kept(sym: Symbol) -> Wanted:
    """A ``--keep`` as a pseudo-requirement, so that conflicts name it like any other."""
    value = _value(sym)
    req = Requirement(symbol=sym.name, expect="not-set" if value == "n" else value,
                      reason="--keep", severity=Severity.REQUIRED, group="--keep")
    return Wanted("--keep", req)


def _describe(kconf: kconfiglib.Kconfig, goal: Wanted) -> str:
    if goal.profile == "--keep":
        return f"{goal.requirement.symbol} stays {_value(kconf.syms[goal.requirement.symbol])} (--keep)"
    return _describe_goal(kconf, goal.requirement)


def user_features(kconf: kconfiglib.Kconfig, syms: Iterable[Symbol]) -> list[Symbol]:
    """The symbols among ``syms`` that are a user's feature: a prompt, set y or m in the file, and on now."""
    return [s for s in syms if s.__class__ is Symbol and modelled(s) and s.user_value in (1, 2)
            and s.tri_value >= 1 and any(node.prompt for node in s.nodes)]


def turned_off(plan: FixPlan) -> list[str]:
    """The options the plan itself switches off that were on (y or m) before it."""
    return [c.symbol for c in plan.changes if c.new == "n" and c.old in ("y", "m")]


def solve(kconf: kconfiglib.Kconfig, goals: Sequence[Wanted], before: dict[str, str],
          keep: Sequence[str] = ()) -> FixPlan:
    """Plan the fewest changes making ``goals`` hold; replay and leave kconf in the planned state.

    On success the returned plan has its changes (without explanations yet);
    otherwise its conflicts. ``kconf`` is left with the plan's user values set.
    ``before`` is :func:`snapshot` of the starting state (for the changes' old values).
    ``keep`` names symbols whose value must not change (``--keep``); a plan
    that turns off any other user feature costs more than every plan that does not.
    """
    plan = FixPlan(wanted=list(goals))
    kept = [kconf.syms[name] for name in keep]
    wanted_syms = [s for g in goals for s in (_defined(kconf, n) for n in g.requirement.names) if s is not None and modelled(s)]
    enc = encode(kconf, wanted_syms + [s for s in kept if modelled(s)])
    selectors: list[tuple[int, Wanted]] = []
    for goal in goals:
        lit, problem = _goal(enc, kconf, goal.requirement)
        if problem is not None:
            plan.conflicts.append(Conflict(problem, goal.requirement.names))
        else:
            selectors.append((lit, goal))
    if plan.conflicts:
        return plan
    selectors += [(_keep_goal(enc, s), _kept(s)) for s in kept if modelled(s)]
    core = _unsat_core(enc, selectors)
    if core is not None:
        names = tuple(g.requirement.symbol for g in core)
        described = "; ".join(_describe(kconf, g) for g in core)
        lead = "these requirements cannot all hold in this tree"
        if any(g.profile == "--keep" for g in core):
            lead = "no plan keeps what --keep names: these cannot all hold in this tree"
        plan.conflicts.append(Conflict(f"{lead}: {described}", names))
        return plan

    decisions = list(enc.model.decisions.values())
    choices = list(enc.model.choices.values())
    wcnf = _objective(enc, kconf, [lit for lit, _ in selectors])
    cone = [s for s in enc.model.values if s.__class__ is Symbol and modelled(s)]
    replay = _Replay(kconf, before)
    with RC2(wcnf) as rc2:
        for _ in range(MAX_REPLAYS):
            model = rc2.compute()
            if model is None:
                break
            true = _reader(model)
            picked = [(d.sym, _tri(d.new, true)) for d in decisions if true(d.changed)]
            picked += [(next(s for s, lit in ch.picks.items() if true(lit)), 2) for ch in choices if true(ch.changed)]
            changes = replay.apply(picked)
            if all(_tri(enc.model.values[s], true) == s.tri_value for s in cone):
                plan.changes = changes
                return plan
            # kconfiglib disagrees with the model on this answer: rule it out and ask again.
            plan.rejected += 1
            rc2.add_clause(_blocking(decisions, choices, true))
    replay.reset()
    plan.conflicts.append(Conflict("no plan kconfiglib agrees with was found (a kcheck bug: please report it)", ()))
    return plan


def _reader(model: Sequence[int]) -> Callable[[int], bool]:
    """Whether a literal is true in a solver's ``model`` (constants included)."""
    truth = {lit for lit in model if lit > 0}

    def true(lit: int) -> bool:
        return lit == TRUE or (lit != FALSE and ((lit in truth) if lit > 0 else (-lit not in truth)))

    return true


def _blocking(decisions, choices, true) -> list[int]:
    """A clause that rules out exactly this answer (the same changes to the same values)."""
    clause: list[int] = []
    for d in decisions:
        if true(d.changed):
            clause += [-d.changed, *(-x if true(x) else x for x in dict.fromkeys(d.new))]
        else:
            clause.append(d.changed)
    for ch in choices:
        if true(ch.changed):
            clause += [-ch.changed, *(-x for x in ch.picks.values() if true(x))]
        else:
            clause.append(ch.changed)
    return clause


def _objective(enc: Encoder, kconf: kconfiglib.Kconfig, goals: Sequence[int]) -> WCNF:
    """The weighted problem: the circuit and ``goals`` hard, one soft clause per possible change.

    Above everything: turning off a user feature (:func:`user_features` of the
    cone) costs more than all the other soft clauses together, so a plan that
    only adds always wins over one that gives something up.

    Tie-breaks, each weaker than all before it and all together weaker than one change:
    1. disturb the fewest other values (so BTRFS_FS=m beats a test module that selects it);
    2. keep MODULES as it is (turning it off would make every tristate built in);
    3. prefer m to y for each tristate the plan sets.
    """
    c = enc.c
    wcnf = WCNF()
    for lit in goals:
        wcnf.append([lit])
    decisions = list(enc.model.decisions.values())
    prefer_m = [d for d in decisions if d.sym.orig_type is TRISTATE]
    cone = [s for s in enc.model.values if s.__class__ is Symbol and modelled(s)]
    w_modules = len(prefer_m) + 1
    w_disturb = w_modules + len(prefer_m) + 1
    w_change = len(cone) * w_disturb + w_modules + len(prefer_m) + 1
    for changed in [d.changed for d in decisions] + [ch.changed for ch in enc.model.choices.values()]:
        wcnf.append([-changed], weight=w_change)
    for sym in cone:
        a, b = enc.model.values[sym]
        same = {0: -a, 1: c.and_(a, -b), 2: b}[sym.tri_value]
        if same not in (TRUE, FALSE):
            wcnf.append([same], weight=w_disturb)
    modules = enc.model.decisions.get(kconf.modules)
    if modules is not None:
        wcnf.append([-modules.changed], weight=w_modules)
    for d in prefer_m:
        wcnf.append([-d.changed, -enc.model.values[d.sym][1]], weight=1)
    w_lose = sum(wcnf.wght) + 1
    for sym in user_features(kconf, enc.model.values):
        on = enc.model.values[sym][0]
        if on not in (TRUE, FALSE):
            wcnf.append([on], weight=w_lose)
    for clause in c.clauses:  # last: the tie-breaks above added gates
        wcnf.append(clause)
    return wcnf


def _tri(pair, true) -> int:
    return 2 if true(pair[1]) else 1 if true(pair[0]) else 0


def _unsat_core(enc: Encoder, selectors: Sequence[tuple[int, Wanted]]) -> list[Wanted] | None:
    """None when the requirements can hold together; else the requirements of an unsatisfiable core."""
    guards = {}
    with Solver(name="g3", bootstrap_with=enc.c.clauses) as sat:
        for lit, goal in selectors:
            guard = enc.c.var()
            sat.add_clause([-guard, lit])
            guards[guard] = goal
        if sat.solve(assumptions=list(guards)):
            return None
        return [guards[g] for g in sorted(sat.get_core() or guards)]


class _Replay:
    """Puts a model's user values into kconfiglib, and takes them back out again."""

    def __init__(self, kconf: kconfiglib.Kconfig, before: dict[str, str]) -> None:
        self.kconf = kconf
        self.before = before
        self.undo: list[tuple[object, object, object]] = []

    def reset(self) -> None:
        """Restore the user values and selections the last :meth:`apply` replaced."""
        for item, user_value, selection in reversed(self.undo):
            if item.__class__ is Choice:
                item.unset_value()
                if user_value is not None:
                    item.set_value(user_value)
                if selection is not None:
                    selection.set_value(2)
            elif user_value is None:
                item.unset_value()
            else:
                item.set_value(user_value)
        self.undo.clear()

    def apply(self, picked: Sequence[tuple[Symbol, int]]) -> list[Change]:
        """Set each ``(symbol, value)``; return the changes as the user will read them."""
        self.reset()
        for sym, value in picked:
            if sym.choice is not None:
                choice = sym.choice
                self.undo.append((choice, choice.user_value, choice.user_selection))
            self.undo.append((sym, sym.user_value, None))
            sym.set_value(value)
        return [
            Change(sym.name, self.before.get(sym.name, "n"), _value(sym), location(sym),
                   choice=_name(sym.choice) if sym.choice else None)
            for sym, _ in picked
        ]


def _value(sym: Symbol) -> str:
    value = sym.str_value
    return "n" if value == "" and sym.orig_type in (BOOL, TRISTATE) else value


def snapshot(kconf: kconfiglib.Kconfig) -> dict[str, str]:
    """Every symbol a written ``.config`` would mention, with its value (``n`` for "is not set")."""
    return {sym.name: _value(sym) for sym in kconf.unique_defined_syms if sym.config_string}


def config_text(kconf: kconfiglib.Kconfig) -> str:
    """The ``.config`` kconfiglib writes for the current state (``make olddefconfig``'s output)."""
    header = f"#\n# Automatically generated file; DO NOT EDIT.\n# {kconf.mainmenu_text}\n#\n"
    fd, tmp = tempfile.mkstemp(prefix=".kcheck-plan-", suffix=".config")
    os.close(fd)
    try:
        kconf.write_config(tmp, header=header, save_old=False)
        return Path(tmp).read_text(encoding="utf-8")
    finally:
        os.unlink(tmp)


def plain_reader(kconf: kconfiglib.Kconfig) -> Reader:
    """A reader over a bare kconfiglib tree: load the file into ``kconf``, view it as :class:`KconfSource`."""
    def read(path: Path) -> ConfigSource:
        kconf.load_config(str(path), replace=True)
        return KconfSource(kconf, path)
    return read


def verify(plan: FixPlan, kconf: kconfiglib.Kconfig, ctx: CheckContext, read: Reader) -> None:
    """Write the planned state, read it back as ``make olddefconfig`` would, and re-evaluate every requirement.

    The plan keeps its ``config_text`` only when every wanted requirement holds
    in what was read back; otherwise each failure becomes a conflict.
    """
    text = config_text(kconf)
    with tempfile.TemporaryDirectory(prefix="kcheck-verify-") as tmp:
        path = Path(tmp) / ".config"
        path.write_text(text, encoding="utf-8")
        source = read(path)
        vctx = CheckContext(
            root=ctx.root, source=source, tree=ctx.tree, build_dir=ctx.build_dir,
            kernel_version=ctx.kernel_version, live=False, facts=dict(ctx.facts),
        )
        findings = [engine.evaluate_requirement(w.requirement, vctx, w.profile) for w in plan.wanted]
    plan.findings = [f for f in findings if f is not None]
    failed = [f for f in plan.findings if f.status is not Status.OK]
    for f in failed:
        plan.conflicts.append(Conflict(f"after the plan {f.check} is {f.actual}, not {f.expected} (a kcheck bug: please report it)", (f.check,)))
    if not failed:
        plan.config_text = text


def explain(plan: FixPlan, kconf: kconfiglib.Kconfig, before: dict[str, str], after: dict[str, str]) -> None:
    """Say why each change no requirement names is needed, and list what Kconfig changes by itself."""
    named = list(dict.fromkeys(n for w in plan.wanted for n in w.requirement.names))
    changed = [c.symbol for c in plan.changes]
    anchors = [n for n in dict.fromkeys([*named, *changed]) if n in kconf.syms]
    plan.changes = [
        c if c.symbol in named else Change(c.symbol, c.old, c.new, c.location, _why_needed(kconf, c, anchors), c.choice)
        for c in plan.changes
    ]
    def unset(name: str) -> str:
        # A bool/tristate the file does not mention is n; other types are simply absent.
        return "n" if kconf.syms[name].orig_type in (BOOL, TRISTATE) else ABSENT

    plan.derived = [
        Derived(name, before.get(name, unset(name)), after.get(name, unset(name)),
                _why_derived(kconf, kconf.syms[name], after.get(name, "n")))
        for name in dict.fromkeys([*before, *after])
        if before.get(name, unset(name)) != after.get(name, unset(name)) and name not in changed
    ]


#: Dependency edges tried in turn when explaining a change: a plain dependency first.
_STAGES = (("depends on",), ("depends on", "prompt", "defaults from", "is in the choice"),
           ("depends on", "prompt", "defaults from", "is in the choice", "is selected by", "is implied by"))


def _edges(sc) -> Iterable[tuple[object, str]]:
    """The symbols and choices ``sc``'s value depends on, with the relation's name."""
    if sc.__class__ is Symbol and sc.choice is not None:
        yield sc.choice, "is in the choice"
    exprs = [(sc.direct_dep, "depends on")]
    exprs += [(node.prompt[1], "prompt") for node in sc.nodes if node.prompt]
    if sc.__class__ is Symbol:
        exprs += [(sc.rev_dep, "is selected by"), (sc.weak_rev_dep, "is implied by")]
        exprs += [(cond, "defaults from") for _, cond in sc.defaults]
    for expr, how in exprs:
        for item in kconfiglib.expr_items(expr):
            if item.__class__ is Choice or not item.is_constant:
                yield item, how


def _step(parent, how: str, child, off: bool) -> str:
    """One edge of a chain in words, ``child`` being the symbol the plan sets (``off``: to n)."""
    p, c = _name(parent), _name(child)
    if how == "depends on":
        return f"{p} needs {c}{' off' if off else ''}"
    if how == "prompt":
        return f"{c} off hides {p}'s prompt, so {p}'s default applies" if off else f"{p} can only be set with {c} on"
    if how == "defaults from":
        return f"{p}'s default needs {c}{' off' if off else ''}"
    if how == "is in the choice":
        return f"{p} is in {c}"
    verb = "selects" if how == "is selected by" else "implies"
    return f"{c} {verb} {p}" + (" (and is turned off with it)" if off else "")


def _why_needed(kconf: kconfiglib.Kconfig, change: Change, anchors: Sequence[str]) -> str:
    """The chain from the nearest requirement or other change to this one, each edge by its relation.

    "BLK_DEV_DM needs MD" for a plain dependency; a select, an ``if`` on a
    prompt or a default is named as such ("SCHED_AUTOGROUP selects CGROUPS"),
    so the reason is the real relation, not a guess from the nearest name.
    """
    target = kconf.syms[change.symbol]
    starts = [kconf.syms[a] for a in anchors if a != change.symbol]
    for relations in _STAGES:
        found = _path(starts, target, relations)
        if found is None:
            continue
        path, hows = found
        anchor = _name(path[0])
        last = _step(path[-2], hows[-1], target, change.new == "n")
        if change.choice and hows[-1] == "depends on" and change.new != "n":
            last = f"{_name(path[-2])} needs {change.symbol} chosen in {change.choice}"
        if len(path) == 2:
            return last
        return f"{last}, on the way to {anchor} (through {', '.join(_name(p) for p in path[1:-1])})"
    return "needed by the requirements' dependencies"


def _name(sc) -> str:
    if sc.name:
        return sc.name
    prompt = next((node.prompt[0] for node in sc.nodes if node.prompt), None)
    return f'choice "{prompt}"' if prompt else "<choice>"


def _path(starts, goal, relations, limit: int = 8):
    """The shortest path from any of ``starts`` to ``goal`` along ``relations`` (at most ``limit`` steps).

    Returns (the nodes, the relation of each step) or None.
    """
    seen = set(starts)
    queue = deque((s, (s,), ()) for s in starts)
    while queue:
        node, path, hows = queue.popleft()
        if len(path) > limit:
            break
        for item, how in _edges(node):
            if how not in relations:
                continue
            if item is goal:
                return (*path, goal), (*hows, how)
            if item not in seen:
                seen.add(item)
                queue.append((item, (*path, item), (*hows, how)))
    return None


def _active_terms(expr) -> list[str]:
    """The selectors (or implyers) in a ``select``/``imply`` expression whose term is active now."""
    if expr.__class__ is tuple and expr[0] is kconfiglib.OR:
        return _active_terms(expr[1]) + _active_terms(expr[2])
    if not kconfiglib.expr_value(expr):
        return []
    head = expr[1] if expr.__class__ is tuple and expr[0] is kconfiglib.AND else expr
    while head.__class__ is tuple and head[0] is kconfiglib.AND:
        head = head[1]
    return [head.name] if head.__class__ is Symbol else [kconfiglib.expr_str(expr)]


def _why_derived(kconf: kconfiglib.Kconfig, sym: Symbol, value: str) -> str:
    if sym.choice is not None:
        selected = sym.choice.selection
        return f"the choice now selects {selected.name}" if selected is not None and selected is not sym else "its choice changed"
    if value != "n" and sym.orig_type in (BOOL, TRISTATE):
        if kconfiglib.expr_value(sym.rev_dep):
            return "selected by " + ", ".join(_active_terms(sym.rev_dep))
        if kconfiglib.expr_value(sym.weak_rev_dep):
            return "implied by " + ", ".join(_active_terms(sym.weak_rev_dep))
        return "its default, now that its dependencies are met"
    if sym.orig_type not in (BOOL, TRISTATE):
        return "its default for the new configuration"
    return "its dependencies are no longer met" if not kconfiglib.expr_value(sym.direct_dep) else "no longer selected"


def make_plan(
    kconf: kconfiglib.Kconfig,
    profiles: Sequence[Profile],
    ctx: CheckContext,
    *,
    include_recommended: bool = False,
    read: Reader | None = None,
    keep: Sequence[str] = (),
) -> FixPlan:
    """The whole fix flow over a loaded ``kconf``: wanted -> solve -> replay -> verify -> explain.

    ``ctx.source`` must describe the configuration loaded in ``kconf`` (facts
    such as the aufs provider are read from it). ``read`` turns a written
    ``.config`` into a :class:`~kcheck.model.ConfigSource` over ``kconf`` for
    the verification (``KconfigTree.read`` on a real tree; by default
    :func:`plain_reader`). ``keep`` names symbols whose value must stay as it
    is (each must be defined in the tree). On return ``kconf`` holds the
    planned configuration when the plan is ok.
    """
    goals = wanted(profiles, ctx, include_recommended=include_recommended)
    before = snapshot(kconf)
    plan = solve(kconf, goals, before, keep)
    plan.before = before
    if plan.conflicts:
        return plan
    verify(plan, kconf, ctx, read or plain_reader(kconf))
    if plan.ok:
        plan.after = snapshot(kconf)
        explain(plan, kconf, before, plan.after)
    return plan
