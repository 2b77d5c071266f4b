"""Why a Kconfig symbol has its value: the facts ``state()`` notes and ``kcheck explain`` prints.

Kconfig's rules in one paragraph (bool/tristate symbols, n < m < y): a
symbol's *visibility* is the value of its prompt's condition, which includes
its ``depends on``; a value from the ``.config`` (the *user value*) counts only
up to the visibility. Without a usable user value the first ``default`` whose
condition holds applies, raised by ``imply`` (capped again by the
dependencies). ``select`` then forces a minimum regardless of dependencies.
``m`` needs ``MODULES=y``; without it m counts as y. A choice lets exactly one
visible member be y. A symbol without a prompt is never set by the user: its
value comes from defaults and selects only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kconfiglib
from kconfiglib import AND, NOT, OR, TRI_TO_STR, Choice, Symbol, expr_str, expr_value

from kcheck.model import SymbolState

_BOOL_TRISTATE = (kconfiglib.BOOL, kconfiglib.TRISTATE)
_RELATIONS = {
    kconfiglib.EQUAL: "=",
    kconfiglib.UNEQUAL: "!=",
    kconfiglib.LESS: "<",
    kconfiglib.LESS_EQUAL: "<=",
    kconfiglib.GREATER: ">",
    kconfiglib.GREATER_EQUAL: ">=",
}


def exists(sym) -> bool:
    """True when the tree defines ``sym`` (kconfiglib also makes objects for mere references)."""
    return sym is not None and bool(sym.nodes)


def _tri(value: int) -> str:
    return TRI_TO_STR[value]


def _name(item) -> str:
    if item.__class__ is Choice:
        return item.name or "<choice>"
    return item.name


def blockers(expr, need: int = 1) -> list[str]:
    """The terms of ``expr`` that keep it below ``need``, down to symbols ("BLOCK is n")."""
    if expr_value(expr) >= need:
        return []
    if expr.__class__ is not tuple:
        if expr.__class__ is Symbol and expr.is_constant:
            return [f"the condition is {expr.name}"]
        return [f"{_name(expr)} is {expr.str_value if expr.__class__ is Symbol else _tri(expr.tri_value)}"]
    op = expr[0]
    if op is AND or op is OR:
        found = blockers(expr[1], need) + blockers(expr[2], need)
        return list(dict.fromkeys(found))
    if op is NOT:
        return [f"{expr_str(expr[1])} is {_tri(expr_value(expr[1]))}"]
    return [f"{expr_str(expr)} does not hold"]


def _flatten(expr, op) -> list:
    if expr.__class__ is tuple and expr[0] is op:
        return _flatten(expr[1], op) + _flatten(expr[2], op)
    return [expr]


@dataclass
class Term:
    """One term of an expression with its current value, and its sub-terms."""

    text: str
    value: str
    terms: list[Term] = field(default_factory=list)

    def to_json(self) -> dict:
        """Return the term as plain data (for ``--format json``)."""
        return {"expr": self.text, "value": self.value, "terms": [t.to_json() for t in self.terms]}

    def lines(self, depth: int = 0) -> list[str]:
        """Return the term and its sub-terms as indented ``expr = value`` lines."""
        out = [f"{'  ' * depth}{self.text} = {self.value}"]
        for term in self.terms:
            out += term.lines(depth + 1)
        return out


def evaluate(expr) -> Term:
    """Evaluate ``expr`` term by term (``&&``/``||`` chains flattened) down to symbols."""
    value = _tri(expr_value(expr))
    if expr.__class__ is not tuple:
        if expr.__class__ is Symbol and expr.orig_type not in _BOOL_TRISTATE and expr.nodes:
            value = expr.str_value
        return Term(_name(expr), value)
    op = expr[0]
    if op is AND or op is OR:
        parts = _flatten(expr, op)
        return Term(expr_str(expr), value, [evaluate(part) for part in parts])
    if op is NOT:
        return Term(expr_str(expr), value, [evaluate(expr[1])])
    left, right = expr[1], expr[2]
    return Term(expr_str(expr), value, [evaluate(left), evaluate(right)])


#: id -> (tree, index) for the one slotted Kconfig that cannot carry its own index.
_REVERSE_BY_TREE: dict[int, tuple[object, dict]] = {}


def _reverse_index(kconf) -> dict[str, dict[str, list]]:
    """name -> {"selects": [(selector, cond)], "implies": [...]}, built once per Kconfig."""
    index = getattr(kconf, "_kcheck_reverse", None)
    if index is None:
        kept = _REVERSE_BY_TREE.get(id(kconf))
        index = kept[1] if kept is not None and kept[0] is kconf else None
    if index is None:
        index = {}
        for sym in kconf.unique_defined_syms:
            for kind, pairs in (("selects", sym.selects), ("implies", sym.implies)):
                for target, cond in pairs:
                    index.setdefault(target.name, {"selects": [], "implies": []})[kind].append(
                        (sym, cond)
                    )
        try:
            kconf._kcheck_reverse = index
        except AttributeError:
            # A plain kconfiglib.Kconfig has __slots__: keep the last tree's index here instead.
            _REVERSE_BY_TREE.clear()
            _REVERSE_BY_TREE[id(kconf)] = (kconf, index)
    return index


def selectors(sym, kind: str = "selects", *, active_only: bool = False) -> list[tuple]:
    """Return (selecting symbol, condition) pairs of ``select`` (or ``imply``) aimed at ``sym``."""
    pairs = _reverse_index(sym.kconfig).get(sym.name, {}).get(kind, [])
    if active_only:
        pairs = [(s, c) for s, c in pairs if s.tri_value and expr_value(c)]
    return pairs


def _active_names(sym, kind: str) -> str:
    return ", ".join(
        f"{s.name} ({s.str_value})" for s, _ in selectors(sym, kind, active_only=True)
    )


def _has_prompt(sym) -> bool:
    return any(node.prompt for node in sym.nodes)


def value_note(sym, written: str | None) -> str | None:
    """Explain a value a user would not expect from the file, or None when there is nothing to say."""
    name = sym.name
    value = sym.str_value
    if getattr(sym.kconfig, "transitional_names", None) and name in sym.kconfig.transitional_names:
        return (f"{name} is transitional: its old value only feeds the defaults of the "
                "symbol that replaced it and is not written to a new .config")
    if sym.orig_type not in _BOOL_TRISTATE:
        if written is not None and written != value:
            if not _has_prompt(sym) or not sym.visibility:
                return (f"{name}={written} in the file but Kconfig uses {value!r}: it is not "
                        "settable here, so its default applies")
            return f"{name}={written} in the file but Kconfig uses {value!r} (out of its range?)"
        return None
    selected_by = _active_names(sym, "selects")
    if written is None:
        if value != "n" and selected_by:
            return f"{name} is not in the file; Kconfig sets it to {value}: selected by {selected_by}"
        return None
    if written == value:
        if value != "n" and not sym.visibility and selected_by:
            return f"set in the file but invisible: selected by {selected_by}"
        if value != "n" and not sym.visibility:
            return f"set in the file but invisible: {value} is its default here"
        return None
    rank = {"n": 0, "m": 1, "y": 2}
    if rank.get(written, 0) > rank[value]:
        if sym.choice is not None and sym.choice.selection is not None:
            return f"{name}={written} in the file but the choice selects {sym.choice.selection.name}"
        if not _has_prompt(sym):
            return (f"{name}={written} in the file but {name} has no prompt: Kconfig sets it "
                    "from defaults and selects only")
        need = rank.get(written, 2)
        because = " and ".join(blockers(sym.direct_dep, need)) or " and ".join(
            term for node in sym.nodes if node.prompt for term in blockers(node.prompt[1], need)
        )
        if not sym.visibility:
            return f"{name}={written} in the file but Kconfig turns it off because {because}"
        return f"{name}={written} in the file but it can only be {value} because {because}"
    if written == "m" and value == "y":
        if sym.orig_type is kconfiglib.BOOL:
            return f"{name}=m in the file but {name} is bool, so m counts as y"
        if not sym.kconfig.modules.tri_value:
            return f"{name}=m in the file but MODULES is n, so m counts as y"
        if selected_by:
            return f"{name}=m in the file but selected by {selected_by}"
    if selected_by:
        return f"{name}={written} in the file but selected by {selected_by}"
    implied_by = _active_names(sym, "implies")
    if not sym.visibility and implied_by:
        return f"{name}={written} in the file but it is invisible and implied by {implied_by}"
    if not sym.visibility:
        return f"{name}={written} in the file but it is invisible, so its default {value} applies"
    return f"{name}={written} in the file but Kconfig computes {value}"


def state_of(kconf, name: str, written: tuple[str, int] | None) -> SymbolState:
    """Return the :class:`SymbolState` of ``name`` for the configuration loaded in ``kconf``."""
    value_written, line = written if written is not None else (None, None)
    sym = kconf.syms.get(name)
    if not exists(sym):
        note = f"{name} does not exist in this tree"
        if value_written not in (None, "n"):
            note += f" (the file's {name}={value_written} is dropped)"
        return SymbolState(symbol=name, value="n", line=line, written=value_written,
                           exists=False, note=note)
    return SymbolState(
        symbol=name,
        value=sym.str_value,
        line=line,
        written=value_written,
        exists=True,
        note=value_note(sym, value_written),
        type=kconfiglib.TYPE_TO_STR[sym.orig_type],
    )
