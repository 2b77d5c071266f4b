"""Kconfig's value rules for bool and tristate symbols, as propositional clauses.

A tristate value ``v`` in {n, m, y} = {0, 1, 2} is two SAT literals: ``a``
(v >= m) and ``b`` (v = y), with ``b -> a``. Kconfig's operators are then
plain gates: ``&&`` is min (``a1&a2``, ``b1&b2``), ``||`` is max, ``!v`` is
``2 - v`` (``!b``, ``!a``), ``X = Y`` is y exactly when both bits agree.

Every modelled symbol's value is the circuit kconfiglib 14.1.0 evaluates in
``Symbol.tri_value`` / ``Choice.tri_value`` / ``Choice._selection``: the user
value clipped by the visibility (when visible and set), else the first active
``default`` raised by ``imply``; then raised by ``select``; ``m`` promoted to
``y`` for bools (and for tristates while MODULES is n). Choices pick the
user's selection while it is visible, else their first visible default, else
their first visible member.

The *decision* of the solver is the user values: for each symbol with a
prompt, a literal ``changed`` and the new value bits; for each choice, whether
its user selection moves and to which member. Everything else is derived.
Only what the wanted symbols' values can depend on is encoded (their
dependency cone), since nothing else can change them.

Deliberate limits (the replay in :mod:`kcheck.fix.plan` catches any case
where they matter): int/hex/string symbols are taken at their current
values, and so are relations other than ``=`` / ``!=`` between tristates;
the mode (y or m) of a choice and its members' m-mode values are kept.

A tree read through kcheck's Kconfig layer (:class:`kcheck.kconfig.compat.CompatKconfig`)
evaluates with Linux 6.x's ``imply`` rule; the encoding follows whichever rule the tree's
Kconfig object uses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import kconfiglib
from kconfiglib import AND, BOOL, EQUAL, NOT, OR, TRISTATE, UNEQUAL, Choice, Symbol

#: The literal that is always true (variable 1 is pinned by a unit clause).
TRUE = 1
FALSE = -1

Tri = tuple[int, int]  # (value >= m, value = y)

_CONST = {0: (FALSE, FALSE), 1: (TRUE, FALSE), 2: (TRUE, TRUE)}


def const(value: int) -> Tri:
    """The literal pair of a constant tristate value (0, 1 or 2)."""
    return _CONST[value]


class Circuit:
    """A CNF under construction, with gates that fold constants away."""

    def __init__(self) -> None:
        self.top = 1
        self.clauses: list[list[int]] = [[TRUE]]

    def var(self) -> int:
        """A fresh variable."""
        self.top += 1
        return self.top

    def and_(self, *lits: int) -> int:
        """A literal equivalent to the conjunction of ``lits``."""
        if FALSE in lits or any(-x in lits for x in lits):
            return FALSE
        lits = tuple(dict.fromkeys(x for x in lits if x != TRUE))
        if not lits:
            return TRUE
        if len(lits) == 1:
            return lits[0]
        out = self.var()
        for x in lits:
            self.clauses.append([-out, x])
        self.clauses.append([out, *(-x for x in lits)])
        return out

    def or_(self, *lits: int) -> int:
        """A literal equivalent to the disjunction of ``lits``."""
        return -self.and_(*(-x for x in lits))

    def ite(self, cond: int, then: int, other: int) -> int:
        """``then`` when ``cond`` holds, else ``other``."""
        if cond == TRUE or then == other:
            return then
        if cond == FALSE:
            return other
        return self.or_(self.and_(cond, then), self.and_(-cond, other))

    def iff(self, x: int, y: int) -> int:
        """A literal true exactly when ``x`` and ``y`` agree."""
        return self.or_(self.and_(x, y), self.and_(-x, -y))

    # Tristate gates
    def tmin(self, x: Tri, y: Tri) -> Tri:
        """Kconfig's ``&&``."""
        return self.and_(x[0], y[0]), self.and_(x[1], y[1])

    def tmax(self, x: Tri, y: Tri) -> Tri:
        """Kconfig's ``||``."""
        return self.or_(x[0], y[0]), self.or_(x[1], y[1])

    def tite(self, cond: int, x: Tri, y: Tri) -> Tri:
        """``x`` when ``cond`` holds, else ``y``."""
        return self.ite(cond, x[0], y[0]), self.ite(cond, x[1], y[1])

    def promote(self, v: Tri, when: int) -> Tri:
        """``m`` becomes ``y`` when ``when`` holds (bool symbols, MODULES=n)."""
        return v[0], self.or_(v[1], self.and_(v[0], when))


@dataclass
class Decision:
    """The solver's freedom over one symbol: whether its user value changes, and to what."""

    sym: Symbol
    changed: int
    new: Tri


@dataclass
class ChoiceDecision:
    """The solver's freedom over one choice: whether its user selection moves, and where."""

    choice: Choice
    changed: int
    picks: dict[Symbol, int]


@dataclass
class Model:
    """The encoded dependency cone: value literals per symbol, and the decisions."""

    circuit: Circuit = field(default_factory=Circuit)
    values: dict[object, Tri] = field(default_factory=dict)
    decisions: dict[Symbol, Decision] = field(default_factory=dict)
    choices: dict[Choice, ChoiceDecision] = field(default_factory=dict)


def kernel_rules(kconf: kconfiglib.Kconfig) -> bool:
    """Whether ``kconf`` evaluates with Linux 6.x's ``imply`` rule (kcheck's Kconfig layer does)."""
    try:
        from kcheck.kconfig.compat import CompatKconfig
    except ImportError:  # pragma: no cover - the layer ships with kcheck
        return False
    return kconf.__class__ is CompatKconfig


def modelled(sym: Symbol) -> bool:
    """Whether ``sym``'s value is a variable of the model (a bool/tristate symbol we know the rules of).

    Transitional symbols (Linux >= 6.18; they only carry an old value over) stay constants.
    """
    return (
        not sym.is_constant
        and sym.orig_type in (BOOL, TRISTATE)
        and sym.name not in getattr(sym.kconfig, "transitional_names", ())
    )


class Encoder:
    """Encodes the values of symbols on demand, recursively over their dependencies."""

    def __init__(self, kconf: kconfiglib.Kconfig) -> None:
        self.kconf = kconf
        self.kernel_rules = kernel_rules(kconf)
        self.model = Model()
        self.c = self.model.circuit
        self._exprs: dict[int, tuple[object, Tri]] = {}

    # Expressions -----------------------------------------------------------------
    def expr(self, e) -> Tri:
        """The literal pair of a Kconfig expression."""
        if e.__class__ is not tuple:
            return self.item(e)
        key = id(e)
        hit = self._exprs.get(key)
        if hit is not None and hit[0] is e:
            return hit[1]
        op = e[0]
        if op is AND:
            out = self.c.tmin(self.expr(e[1]), self.expr(e[2]))
        elif op is OR:
            out = self.c.tmax(self.expr(e[1]), self.expr(e[2]))
        elif op is NOT:
            a, b = self.expr(e[1])
            out = (-b, -a)
        elif op in (EQUAL, UNEQUAL) and all(self._tristate_operand(x) for x in e[1:]):
            (a1, b1), (a2, b2) = self.item(e[1]), self.item(e[2])
            same = self.c.and_(self.c.iff(a1, a2), self.c.iff(b1, b2))
            bit = same if op is EQUAL else -same
            out = (bit, bit)
        else:
            # Relations over int/hex/string values: taken as they are now.
            out = const(kconfiglib.expr_value(e))
        self._exprs[key] = (e, out)
        return out

    def _tristate_operand(self, sym) -> bool:
        return sym.__class__ is Choice or sym in (self.kconf.n, self.kconf.m, self.kconf.y) or modelled(sym)

    def item(self, sc) -> Tri:
        """The literal pair of a symbol or choice's value."""
        hit = self.model.values.get(sc)
        if hit is not None:
            return hit
        if sc.__class__ is Choice:
            out = self._choice(sc)
        elif sc.choice is not None and modelled(sc):
            self._choice(sc.choice)
            return self.model.values[sc]
        elif modelled(sc):
            out = self._symbol(sc)
        else:
            out = const(sc.tri_value if sc.orig_type in (BOOL, TRISTATE) or sc.is_constant else 0)
        self.model.values[sc] = out
        return out

    def modules_off(self) -> int:
        """Literal: MODULES is n (tristates then behave as bools)."""
        return -self.item(self.kconf.modules)[0]

    def _prompt_vis(self, sc) -> Tri:
        vis = const(0)
        for node in sc.nodes:
            if node.prompt:
                vis = self.c.tmax(vis, self.expr(node.prompt[1]))
        return vis

    # Symbols ---------------------------------------------------------------------
    def _user_value(self, sym: Symbol) -> tuple[int, Tri]:
        """(has a user value, the user value) after the solver's decision."""
        current = sym.user_value
        has_now = TRUE if current is not None else FALSE
        now = const(current if current is not None else 0)
        if not any(node.prompt for node in sym.nodes):
            return has_now, now
        changed = self.c.var()
        a = self.c.var()
        b = self.c.var() if sym.orig_type is TRISTATE else a
        self.c.clauses.append([-b, a])
        self.model.decisions[sym] = Decision(sym, changed, (a, b))
        return self.c.or_(changed, has_now), self.c.tite(changed, (a, b), now)

    def _symbol(self, sym: Symbol) -> Tri:
        c = self.c
        is_bool = TRUE if sym.orig_type is BOOL else self.modules_off()
        raw = self._prompt_vis(sym)
        vis = c.promote(raw, is_bool)
        has_user, user = self._user_value(sym)
        from_user = c.tmin(user, vis)
        val = const(0)
        for default, cond in reversed(sym.defaults):
            cv = self.expr(cond)
            val = c.tite(cv[0], c.tmin(self.expr(default), cv), val)
        implied = self.expr(sym.weak_rev_dep)
        direct = self.expr(sym.direct_dep)
        linux6 = self.kernel_rules and sym.choice is None
        if linux6:
            # Linux 6.x: the implied value raises the default, capped by the symbol's own dependencies.
            val = c.tite(implied[0], c.tmin(c.tmax(implied, val), direct), val)
        else:
            # kconfiglib 14.1.0: only when the dependencies are met, and uncapped.
            val = c.tite(c.and_(implied[0], direct[0]), c.tmax(implied, val), val)
        val = c.tite(c.and_(vis[0], has_user), from_user, val)
        val = c.tmax(self.expr(sym.rev_dep), val)
        return c.promote(val, is_bool if linux6 else c.or_(is_bool, implied[1]))

    # Choices ---------------------------------------------------------------------
    def _choice(self, choice: Choice) -> Tri:
        c = self.c
        members = [s for s in choice.syms if modelled(s)]
        # The choice's own value first: its members' visibility refers back to it.
        is_bool = TRUE if choice.orig_type is BOOL else self.modules_off()
        vis = c.promote(self._prompt_vis(choice), is_bool)
        base = const(0 if choice.is_optional else 1)
        if choice.user_value is not None:
            base = c.tmax(base, const(choice.user_value))
        mode = c.promote(c.tmin(base, vis), is_bool)
        self.model.values[choice] = mode
        y_mode = mode[1]

        member_vis: dict[Symbol, Tri] = {}
        for sym in members:
            raw = self._prompt_vis(sym)
            if choice.orig_type is TRISTATE and sym.orig_type is not TRISTATE:
                raw = (c.and_(raw[0], y_mode), c.and_(raw[1], y_mode))
            if sym.orig_type is TRISTATE:
                # A tristate member with m visibility is hidden in y mode.
                hidden = c.and_(raw[0], -raw[1], y_mode)
                raw = (c.and_(raw[0], -hidden), raw[1])
            sym_bool = c.or_(TRUE if sym.orig_type is BOOL else FALSE, y_mode, self.modules_off())
            member_vis[sym] = c.promote(raw, sym_bool)

        changed = c.var()
        picks = {sym: c.var() for sym in members}
        # A moved selection names exactly one member.
        c.clauses.append([-changed, *picks.values()])
        for i, s in enumerate(members):
            for t in members[i + 1:]:
                c.clauses.append([-picks[s], -picks[t]])
        self.model.choices[choice] = ChoiceDecision(choice, changed, picks)
        user_sel = {
            sym: c.ite(changed, picks[sym], TRUE if choice.user_selection is sym else FALSE) for sym in members
        }
        user_visible = c.or_(*(c.and_(user_sel[s], member_vis[s][0]) for s in members))

        candidates = [(sym, c.and_(self.expr(cond)[0], member_vis[sym][0])) for sym, cond in choice.defaults if sym in member_vis]
        candidates += [(sym, member_vis[sym][0]) for sym in members]
        from_defaults: dict[Symbol, list[int]] = {s: [] for s in members}
        earlier: list[int] = []
        for sym, holds in candidates:
            from_defaults[sym].append(c.and_(holds, *(-x for x in earlier)))
            earlier.append(holds)

        for sym in members:
            selected = c.and_(y_mode, c.or_(c.and_(user_visible, user_sel[sym]), c.and_(-user_visible, c.or_(*from_defaults[sym]))))
            m_value = c.and_(-y_mode, member_vis[sym][0], TRUE if sym.user_value else FALSE)
            self.model.values[sym] = (c.or_(selected, m_value), selected)
        return mode


def encode(kconf: kconfiglib.Kconfig, symbols) -> Encoder:
    """Encode the dependency cone of ``symbols``; their literals are in ``encoder.model.values``."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # dependency chains in real trees run hundreds deep
    try:
        enc = Encoder(kconf)
        for sym in symbols:
            enc.item(sym)
        return enc
    finally:
        sys.setrecursionlimit(limit)
