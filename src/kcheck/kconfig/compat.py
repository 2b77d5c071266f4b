"""Teach the frozen kconfiglib 14.1.0 the Kconfig that Linux's ``conf`` speaks today.

kconfiglib's last release (2020) follows the ``conf`` of Linux 5.x. Since then
the kernel changed both what its Kconfig files may say (syntax) and how
``conf`` computes values (evaluation). This module adapts kconfiglib to both,
and is organised by the kernel version that made each change, so the next
one has an obvious home: a syntax change is a rewrite in :class:`Rewriter`;
an evaluation change is a :class:`ConfChange` in :data:`CONF_CHANGES` plus the
rule it switches on.

Syntax (each rewrite keeps the physical line count, so file:line locations
stay those of the real file):

``modules`` (Linux >= 5.13)
    A bare attribute on ``config MODULES`` marking it as the symbol that
    enables ``m``. It means what ``option modules`` meant before, which
    kconfiglib understands (it assumes the name ``MODULES`` anyway).

``transitional`` (Linux >= 6.18)
    Marks a promptless symbol that only carries an *old* ``.config`` value
    over to a renamed symbol (``config NEW default OLD``). The kernel reads
    the old value even though the symbol is invisible, lets it feed other
    symbols' defaults, and never writes it to a new ``.config``. The line is
    blanked and the symbol is listed in ``CompatKconfig.transitional_names``,
    which the evaluation rules below consult.

``depends on X if Y`` (Linux >= 7.0)
    scripts/kconfig/menu.c (menu_add_dep) turns it into
    ``X || expr_trans_compare(Y, E_EQUAL, n)``: the dependency is dropped
    when "Y = n" as expr.c spells it out, by pushing ``= n`` through Y's
    operators (``A && B`` becomes ``A = n || B = n``, ``!A`` becomes
    ``A != n``, a comparison ``C`` becomes ``!C``). That is not the same as
    "Y evaluates to n": with ``Y = !A`` and A = m, ``A != n`` holds although
    ``!A`` is m. :func:`lower_conditional_depends` follows expr.c exactly.

Evaluation (each read off the tree's own ``scripts/kconfig`` sources, see
:func:`conf_rules_for`, so a patched or backported ``conf`` is followed too):

- ``imply`` (all Linux 6.x): see :func:`_linux6_tri_value`;
- int/hex symbols without a value are ``0``/``0x0`` (Linux >= 6.8,
  :data:`INT_HEX_ZERO_6_8`);
- choices (Linux >= 6.11, :data:`CHOICE_RULES_6_11`): members depend on the
  choice's ``depends on`` only, not on its prompt; and the member is picked
  by assignment order, see :func:`_linux611_selection`.

kconfiglib checks ``obj.__class__ is Symbol`` throughout, so these rules are
installed on kconfiglib's own classes and apply only to a ``CompatKconfig``;
a plain ``kconfiglib.Kconfig`` in the same process keeps its behaviour.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import kconfiglib

from kcheck import readsafe
from kcheck.kconfig import probes, trust

_WORD = re.compile(r"[A-Za-z0-9_]+")
_HELP_WORDS = ("help", "---help---")
# A line the Rewriter may change (a cheap pre-check; the line scan decides).
_NEEDS_REWRITE = re.compile(
    r"^[ \t]*(?:modules|transitional)[ \t]*(?:#.*)?$|^[ \t]*depends[ \t]+on\b.*\bif\b", re.M
)
#: What every match of _NEEDS_REWRITE's second branch holds, found far sooner (no "^" to try at each character).
_DEPENDS_IF = re.compile(r"depends[ \t]+on\b.*\bif\b")


def _may_need_rewrite(text: str) -> bool:
    """False when ``_NEEDS_REWRITE`` cannot match ``text`` (most files): a quicker test than the search."""
    return "modules" in text or "transitional" in text or _DEPENDS_IF.search(text) is not None


# The evaluation rules are installed on kconfiglib's classes (see the module docs).
_BASE_TRI_VALUE = kconfiglib.Symbol.tri_value.fget
_BASE_STR_VALUE = kconfiglib.Symbol.str_value.fget
_BASE_CONFIG_STRING = kconfiglib.Symbol.config_string.fget
_BASE_REC_INVALIDATE = kconfiglib.Symbol._rec_invalidate_if_has_prompt


def _linux6_tri_value(sym) -> int:
    """A bool/tristate symbol's value with the rules of Linux 6.x's ``conf``.

    kconfiglib follows the kernel of 2020. Since then ``conf`` changed how
    ``imply`` works, and it shows in ``make olddefconfig``:

    - the implied value raises the default, but the result is then capped by
      the symbol's own ``depends on`` (``min(max(default, implied), deps)``),
      and an implied ``y`` no longer turns an ``m`` into ``y``;
    - a symbol an active ``imply`` points at is written to ``.config``
      (``# CONFIG_X is not set`` when it stays n), even when its own
      dependencies are unmet.
    """
    expr_value = kconfiglib.expr_value
    vis = sym.visibility
    sym._write_to_conf = vis != 0
    if vis and sym.user_value is not None:
        val = min(sym.user_value, vis)
    else:
        val = 0
        for default, cond in sym.defaults:
            cond_val = expr_value(cond)
            if cond_val:
                val = min(expr_value(default), cond_val)
                if val:
                    sym._write_to_conf = True
                break
        implied = expr_value(sym.weak_rev_dep)
        if implied:
            sym._write_to_conf = True
            val = min(max(val, implied), expr_value(sym.direct_dep))
    selected = expr_value(sym.rev_dep)
    if selected:
        if expr_value(sym.direct_dep) < selected:
            sym._warn_select_unsatisfied_deps()
        val = max(val, selected)
        sym._write_to_conf = True
    if val == 1 and sym.type is kconfiglib.BOOL:
        val = 2
    return val


def _transitional_tri_value(sym) -> int:
    """A transitional symbol's value: the old ``.config`` value, n when absent."""
    if sym.orig_type not in kconfiglib._BOOL_TRISTATE:
        return 0
    val = sym.user_value or 0
    if val == 1 and (sym.orig_type is kconfiglib.BOOL or not sym.kconfig.modules.tri_value):
        val = 2  # the kernel rounds m up for bool symbols and without modules
    return val


def _is_transitional(sym) -> bool:
    names = getattr(sym.kconfig, "transitional_names", None)
    return bool(names) and sym.name in names


def _tri_value(sym):
    if sym._cached_tri_val is not None:
        return sym._cached_tri_val
    kconf = sym.kconfig
    if (
        kconf.__class__ is not CompatKconfig
        or sym.orig_type not in kconfiglib._BOOL_TRISTATE
        or sym.choice
    ):
        return _BASE_TRI_VALUE(sym)
    if _is_transitional(sym):
        val = _transitional_tri_value(sym)
    else:
        val = _linux6_tri_value(sym)
    sym._cached_tri_val = val
    return val


def _str_value(sym):
    if sym._cached_str_val is not None:
        return sym._cached_str_val
    if _is_transitional(sym) and sym.orig_type not in kconfiglib._BOOL_TRISTATE:
        # Promptless, yet the old value passes through.
        val = sym.user_value if sym.user_value is not None else ""
    else:
        val = _BASE_STR_VALUE(sym)
    if sym.orig_type in _INT_HEX_ZERO and sym.kconfig.__class__ is CompatKconfig:
        val = sym._cached_str_val = _linux6_int_hex_value(sym, val)
    return val


#: The value conf >= 6.8 gives an int/hex symbol that has none.
_INT_HEX_ZERO = {kconfiglib.INT: "0", kconfiglib.HEX: "0x0"}


def _linux6_int_hex_value(sym, val: str) -> str:
    """An int/hex symbol's value as conf computes it, from kconfiglib's ``val``.

    - Linux >= 6.8 (:data:`INT_HEX_ZERO_6_8`), scripts/kconfig/symbol.c
      sym_calc_value(): 'case S_INT: newval.val = "0";' and 'case S_HEX:
      newval.val = "0x0";' before any default is looked at, where kconfiglib
      (and 6.1) has "". It shows in comparisons: mm/Kconfig's
      ``range 1 10 if ARCH_FORCE_MAX_ORDER = 0`` (7.x).
    - All Linux 6.x, symbol.c sym_validate_range(): a default outside the
      active range becomes the bound's own text ('sym->curr.val =
      range_sym->curr.val'), where kconfiglib writes the number anew:
      "" for ``range 1 FOO`` with FOO empty, ``0xFFFF`` rather than ``0xffff``.
    """
    initial = _INT_HEX_ZERO[sym.orig_type] if INT_HEX_ZERO_6_8 in sym.kconfig.conf_rules else ""
    bound = _range_bound(sym, initial)
    if bound is not None:
        return bound
    return val or initial


def _range_bound(sym, initial: str) -> str | None:
    """The text of the range bound conf clamps ``sym``'s default to (None: no clamping)."""
    expr_value = kconfiglib.expr_value
    for low, high, cond in sym.ranges:
        if expr_value(cond):
            break
    else:
        return None
    base = 10 if sym.orig_type is kconfiglib.INT else 16
    lo, hi = _strtoll(low.str_value, base), _strtoll(high.str_value, base)
    if sym.visibility and sym.user_value and lo <= _strtoll(sym.user_value, base) <= hi:
        return None  # a valid user value in range is used as written
    text = initial
    for default, cond in sym.defaults:
        if expr_value(cond):
            text = default.str_value
            break
    num = _strtoll(text, base)
    if num < lo:
        return low.str_value
    if num > hi:
        return high.str_value
    return None


def _strtoll(text: str, base: int) -> int:
    """What the kernel's strtoll() makes of a value: its leading number, 0 when there is none."""
    match = re.match(r"\s*([-+]?)(0[xX])?([0-9a-fA-F]+)" if base == 16 else r"\s*([-+]?)()([0-9]+)", text)
    if not match:
        return 0
    digits = match.group(3)
    if base == 10:
        return int(match.group(1) + digits)
    return int(match.group(1) + digits, 16)


def _conf_rules(kconf) -> frozenset[str]:
    """The conf rules of ``kconf`` (none for a plain kconfiglib.Kconfig)."""
    return getattr(kconf, "conf_rules", frozenset()) if kconf.__class__ is CompatKconfig else frozenset()


def _config_string(sym):
    if _is_transitional(sym):
        return ""  # migrated, never written
    return _BASE_CONFIG_STRING(sym)


def _rec_invalidate_if_has_prompt(sym):
    if _is_transitional(sym):
        sym._rec_invalidate()  # promptless, yet its user value matters to dependents
    else:
        _BASE_REC_INVALIDATE(sym)


_BASE_SELECTION = kconfiglib.Choice._selection

#: ``CompatKconfig.conf_rules`` member: an int symbol without a value is "0", a hex one "0x0".
INT_HEX_ZERO_6_8 = "linux-6.8-int-hex-zero"
#: ``CompatKconfig.conf_rules`` member (and ``choice_rules`` value): choices the Linux 6.11 way.
CHOICE_RULES_6_11 = "linux-6.11"


@dataclass(frozen=True)
class ConfChange:
    """One change in how the kernel's ``conf`` evaluates, and how to recognise it in a tree."""

    #: The rule :class:`CompatKconfig` applies when a tree's ``conf`` has this change.
    rule: str
    #: The first Linux version whose ``conf`` has it (used when the tree lacks ``source``).
    since: tuple[int, int]
    #: The ``conf`` source file, relative to the tree, that shows the change.
    source: str
    #: Text that file contains from that version on.
    marker: str
    #: What changed, in the kernel's words.
    what: str


#: Evaluation changes of ``conf`` since kconfiglib 14.1.0, oldest first. A new
#: one goes here, with the rule that implements it next to the others below.
CONF_CHANGES = (
    ConfChange(
        INT_HEX_ZERO_6_8, (6, 8), "scripts/kconfig/symbol.c", 'newval.val = "0";',
        'sym_calc_value() starts an int at "0" and a hex at "0x0", no longer at "" '
        '("kconfig: default to zero if int/hex symbol lacks default property", 2023-11)',
    ),
    ConfChange(
        CHOICE_RULES_6_11, (6, 11), "scripts/kconfig/symbol.c", "choice_members",
        "sym_calc_choice() ranks members by assignment (the choice_members list), and "
        "menu.c's _menu_finalize() gives members the choice menu's dependencies "
        "(parent->dep), no longer the choice symbol's value",
    ),
)


def _version_tuple(kernelversion: str) -> tuple[int, int]:
    numbers = re.findall(r"\d+", kernelversion)[:2]
    return (int(numbers[0]), int(numbers[1])) if len(numbers) == 2 else (0, 0)


def conf_rules_for(srctree, kernelversion: str) -> frozenset[str]:
    """Return the rules (:data:`CONF_CHANGES`) the tree's own ``conf`` evaluates with.

    Each change is read off the tree's ``scripts/kconfig`` sources, so a
    backport counts; a tree without that file is judged by ``kernelversion``.
    """
    rules = set()
    texts: dict[str, str | None] = {}
    for change in CONF_CHANGES:
        if change.source not in texts:
            try:
                texts[change.source] = readsafe.read_text(Path(srctree) / change.source, what="kernel source file")
            except (OSError, readsafe.InputError):
                texts[change.source] = None
        text = texts[change.source]
        present = change.marker in text if text is not None else _version_tuple(kernelversion) >= change.since
        if present:
            rules.add(change.rule)
    return frozenset(rules)


def _linux611_selection(choice):
    """The selected member of a bool choice the way Linux >= 6.11's ``conf`` picks it.

    scripts/kconfig/symbol.c (sym_calc_choice): members are ranked by
    assignment: the one assigned last (to y *or* n, in the ``.config`` or
    later with ``set_value``) first, then the unassigned ones, in Kconfig
    order. The selection is the first visible member the file sets to y;
    else the choice's default, unless the file sets that one to n; else the
    first visible member the file does not mention; else the lowest-ranked
    visible member. The choice's own prompt plays no part: a member is
    visible through its own prompt, which carries the choice's ``depends on``
    (see :meth:`CompatKconfig._propagate_deps`). (kconfiglib, like older
    kernels, ignores an explicit n on the default and always falls back to it.)
    """
    # The choice's own visibility plays no part here, but kconfiglib's invalidation only
    # reaches items whose visibility is cached: without it the selection would go stale.
    choice.visibility  # noqa: B018
    order = getattr(choice.kconfig, "assignment_order", None) or {}  # name -> sequence number
    members = list(choice.syms)
    assigned = sorted((m for m in members if m.name in order), key=lambda m: -order[m.name])
    ranked = assigned + [m for m in members if m.name not in order]
    for member in ranked:
        if member.visibility and member.user_value == 2:
            return member
    default = choice._selection_from_defaults()  # sym_choice_default()
    if default is not None and default.user_value != 0:
        return default
    for member in members:
        if member.visibility and member.user_value is None:
            return member
    for member in reversed(ranked):
        if member.visibility:
            return member
    return None


_BASE_SET_VALUE = kconfiglib.Symbol.set_value
_BASE_UNSET_VALUE = kconfiglib.Symbol.unset_value
_assignments = itertools.count()


def _set_value(sym, value):
    ok = _BASE_SET_VALUE(sym, value)
    kconf = sym.kconfig
    if ok and sym.choice is not None and kconf.__class__ is CompatKconfig:
        # conf moves a choice member to the front of its choice on every valid assignment.
        kconf.assignment_order[sym.name] = next(_assignments)
    return ok


def _unset_value(sym):
    kconf = sym.kconfig
    if kconf.__class__ is CompatKconfig:
        kconf.assignment_order.pop(sym.name, None)
    return _BASE_UNSET_VALUE(sym)


def _selection(choice):
    if CHOICE_RULES_6_11 in _conf_rules(choice.kconfig):
        return _linux611_selection(choice)
    return _BASE_SELECTION(choice)


kconfiglib.Symbol.tri_value = property(_tri_value, doc=kconfiglib.Symbol.tri_value.__doc__)
kconfiglib.Symbol.str_value = property(_str_value, doc=kconfiglib.Symbol.str_value.__doc__)
kconfiglib.Symbol.config_string = property(
    _config_string, doc=kconfiglib.Symbol.config_string.__doc__
)
kconfiglib.Symbol._rec_invalidate_if_has_prompt = _rec_invalidate_if_has_prompt
kconfiglib.Choice._selection = _selection
kconfiglib.Symbol.set_value = _set_value
kconfiglib.Symbol.set_value.__doc__ = _BASE_SET_VALUE.__doc__
kconfiglib.Symbol.unset_value = _unset_value
kconfiglib.Symbol.unset_value.__doc__ = _BASE_UNSET_VALUE.__doc__


def _replace(expr, old, new):
    """``expr`` with every occurrence of the item ``old`` replaced by the expression ``new``."""
    if expr is old:
        return new
    if expr.__class__ is tuple:
        return (expr[0], *(_replace(operand, old, new) for operand in expr[1:]))
    return expr


def _indent(line: str) -> int:
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def _tokenize_expr(text: str) -> list[str]:
    """Split a Kconfig expression into tokens; ``$(...)`` and quoted strings stay whole."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            break
        elif text.startswith("$(", i):
            depth, j = 0, i
            while j < len(text):
                if text.startswith("$(", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            tokens.append(text[i : j + 1])
            i = j + 1
        elif c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            tokens.append(text[i : j + 1])
            i = j + 1
        elif text.startswith(("&&", "||", "!=", "<=", ">="), i):
            tokens.append(text[i : i + 2])
            i += 2
        elif c in "!()=<>":
            tokens.append(c)
            i += 1
        else:
            m = _WORD.match(text, i)
            if not m:
                raise ValueError(f"unexpected character {c!r}")
            tokens.append(m.group())
            i = m.end()
    return tokens


# Expression trees: ("sym", text) | ("cmp", op, a, b) | ("not", e) | ("and"/"or", a, b)
_COMPARISONS = ("=", "!=", "<", ">=", ">", "<=")


class _ExprParser:
    """Recursive-descent parser of Kconfig expressions, precedence as in the kernel."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def parse(self):
        expr = self._or()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i]!r}")
        return expr

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> str:
        tok = self._peek()
        if tok is None:
            raise ValueError("expression ends too early")
        self.i += 1
        return tok

    def _or(self):
        left = self._and()
        while self._peek() == "||":
            self.i += 1
            left = ("or", left, self._and())
        return left

    def _and(self):
        left = self._not()
        while self._peek() == "&&":
            self.i += 1
            left = ("and", left, self._not())
        return left

    def _not(self):
        if self._peek() == "!":
            self.i += 1
            return ("not", self._not())
        return self._cmp()

    def _cmp(self):
        if self._peek() == "(":
            self.i += 1
            inner = self._or()
            if self._take() != ")":
                raise ValueError("missing ')'")
            return inner
        left = self._atom()
        if self._peek() in _COMPARISONS:
            op = self._take()
            return ("cmp", op, left, self._atom())
        return ("sym", left)

    def _atom(self) -> str:
        tok = self._take()
        if tok in ("&&", "||", "!", "(", ")") or tok in _COMPARISONS:
            raise ValueError(f"expected a symbol, got {tok!r}")
        return tok


def _text(expr) -> str:
    kind = expr[0]
    if kind == "sym":
        return expr[1]
    if kind == "cmp":
        return f"{expr[2]} {expr[1]} {expr[3]}"
    if kind == "not":
        return f"!({_text(expr[1])})"
    op = " && " if kind == "and" else " || "
    return f"({_text(expr[1])}{op}{_text(expr[2])})"


def _trans_compare(expr, equal: bool, value: str):
    """scripts/kconfig/expr.c expr_trans_compare(e, E_EQUAL/E_UNEQUAL, value), for value y or n.

    Spells "``expr`` = value" (``equal``) or "``expr`` != value" as an
    expression over symbols, pushing the comparison down through the
    operators the way the kernel does; kcheck only needs it for n
    (menu.c, menu_add_dep: ``depends on X if Y``).
    """
    kind = expr[0]
    if kind in ("and", "or"):
        left = _trans_compare(expr[1], True, value)
        right = _trans_compare(expr[2], True, value)
        # "A && B = y" is "A = y && B = y"; "A && B = n" is "A = n || B = n" (and dually for ||).
        joined = (kind if value == "y" else ("or" if kind == "and" else "and"), left, right)
        return joined if equal else ("not", joined)
    if kind == "not":
        return _trans_compare(expr[1], not equal, value)
    if kind == "cmp":
        # A comparison is y or n: "C = y" is C, "C = n" is !C (and the reverse for !=).
        return expr if equal == (value == "y") else ("not", expr)
    return ("cmp", "=" if equal else "!=", expr[1], value)


def lower_conditional_depends(dep: str, cond: str) -> str:
    """Return kconfiglib syntax for ``depends on <dep> if <cond>``.

    Linux >= 7.0, scripts/kconfig/menu.c menu_add_dep():
    ``dep = expr_alloc_or(dep, expr_trans_compare(cond, E_EQUAL, &symbol_no))``.
    """
    cond_expr = _ExprParser(_tokenize_expr(cond)).parse()
    return f"({dep}) || {_text(_trans_compare(cond_expr, True, 'n'))}"


def _split_if(rest: str) -> tuple[str, str] | None:
    """Split ``X if Y`` at its top-level ``if``; None when there is none."""
    tokens = _tokenize_expr(rest)
    if "if" not in tokens:
        return None
    at = tokens.index("if")
    return " ".join(tokens[:at]), " ".join(tokens[at + 1 :])


class HelpText:
    """Tracks help blocks line by line, with kconfiglib's rule.

    A help text starts after ``help``; its first non-blank line sets the
    indentation, and it ends at the first non-blank line indented less
    (a first line without indentation means an empty help text).
    """

    def __init__(self) -> None:
        self.active = False
        self.indent: int | None = None

    def start(self) -> None:
        """A ``help`` line was seen: the following lines may be help text."""
        self.active, self.indent = True, None

    def holds(self, line: str) -> bool:
        """True when ``line`` (the next physical line) belongs to a help text."""
        if not self.active:
            return False
        if line.isspace():
            return True
        indent = _indent(line)
        if self.indent is None:
            self.indent = indent
        if indent and indent >= self.indent:
            return True
        self.active = False
        return False


def code_lines(text: str) -> list[str]:
    """Return the lines of a Kconfig file that are not help text."""
    help_text = HelpText()
    out = []
    for line in text.split("\n"):
        if help_text.active and help_text.holds(line + "\n"):
            continue
        out.append(line)
        if "help" in line:  # in both help words; the split is the slow part
            words = line.split()
            if words and words[0] in _HELP_WORDS:
                help_text.start()
    return out


class Rewriter:
    """Rewrites one Kconfig file's text; remembers which symbols are transitional."""

    def __init__(self) -> None:
        #: Names of symbols declared ``transitional`` in the files seen so far.
        self.transitional: set[str] = set()

    def rewrite(self, text: str, filename: str) -> str:
        """Return ``text`` with post-14.1.0 constructs lowered, line count unchanged."""
        if not _may_need_rewrite(text) or not _NEEDS_REWRITE.search(text):
            return text  # the common case: nothing to do, skip the line scan
        out: list[str] = []
        lines = text.splitlines(keepends=True)
        help_text = HelpText()
        current: str | None = None
        i = 0
        while i < len(lines):
            line = lines[i]
            if help_text.holds(line):
                out.append(line)
                i += 1
                continue
            # Join continuation lines the way kconfiglib does, then keep the line count.
            span = 1
            logical = line
            while logical.endswith("\\\n") and i + span < len(lines):
                logical = logical[:-2] + lines[i + span]
                span += 1
            words = logical.split()
            first = words[0] if words else ""
            bare = logical.split("#", 1)[0].split()  # the words before a trailing comment
            new = None
            if first in ("config", "menuconfig") and len(words) > 1:
                current = words[1]
            elif first in _HELP_WORDS:
                help_text.start()
            elif first == "modules" and len(bare) == 1:
                new = logical.replace("modules", "option modules", 1)
            elif first == "transitional" and len(bare) == 1:
                if current is None:
                    raise kconfiglib.KconfigError(
                        f"{filename}: 'transitional' outside a config entry"
                    )
                self.transitional.add(current)
                new = "\n"
            elif first == "depends" and len(words) > 2 and words[1] == "on" and "if" in words:
                rest = logical.split("on", 1)[1].strip()
                try:
                    split = _split_if(rest)
                    if split is not None:
                        lead = logical[: len(logical) - len(logical.lstrip())]
                        new = f"{lead}depends on {lower_conditional_depends(*split)}\n"
                except ValueError as exc:
                    raise kconfiglib.KconfigError(
                        f"{filename}: cannot read 'depends on ... if ...': {exc}"
                    ) from None
            if new is None:
                out.extend(lines[i : i + span])
            else:
                out.append(new)
                out.extend("\n" for _ in range(span - 1))
            i += span
        return "".join(out)


class CompatKconfig(kconfiglib.Kconfig):
    """``kconfiglib.Kconfig`` that parses Linux 5.13+ Kconfig files (see module docs).

    ``allow_shell=False`` parses without running ``$(shell,...)`` (each probe
    answers "n", see :func:`kcheck.kconfig.probes.no_shell`); otherwise the
    probes run on a thread pool ahead of the parse (:mod:`kcheck.kconfig.probes`).
    """

    def __init__(self, *args, allow_shell: bool = True, conf_rules: frozenset[str] = frozenset(),
                 guard=None, **kwargs) -> None:
        #: The evaluation rules of the tree's ``conf`` (rule names of :data:`CONF_CHANGES`,
        #: see :func:`conf_rules_for`); empty: kconfiglib's own, which is Linux 5.x's.
        self.conf_rules = frozenset(conf_rules)
        #: choice member name -> sequence number of its last assignment (from a
        #: ``.config`` or ``set_value``); the 6.11 choice rules rank members by it.
        self.assignment_order: dict[str, int] = {}
        #: (filename, text): :meth:`_open` serves this text for that name (see ``tree.load_text``).
        self._config_text: tuple[str, str] | None = None
        self._compat_rewriter = Rewriter()
        self._compat_parsing = True
        # The trust rule only matters when probes may run at all.
        self._guard = guard if allow_shell else None
        srctree = os.environ.get("srctree") or "."
        #: The tree's real path: no Kconfig file outside it is read.
        self._compat_srctree = os.path.realpath(srctree)
        self._probe_runner = probes.ProbeRunner(guard=self._guard, srctree=srctree) if allow_shell else None
        saved_shell = kconfiglib._shell_fn
        # Kconfig's table of preprocessor functions picks this up while it initialises.
        kconfiglib._shell_fn = probes.shell if allow_shell else probes.no_shell
        stopped = True
        # A SIGTERM becomes an exception here, so that the clean-up below runs before the process ends.
        with probes.terminate_cleanly():
            try:
                super().__init__(*args, **kwargs)
                stopped = False
            finally:
                kconfiglib._shell_fn = saved_shell
                self._compat_parsing = False
                #: srctree-relative paths of the probe scripts the trust rule let run (a cached parse
                #: is used only while they would still be let run, see kcheck.kconfig.cache).
                self.probe_scripts = sorted(os.path.relpath(p, self._compat_srctree)
                                            for p in (self._guard.scripts if self._guard is not None else ()))
                self._guard = None  # per-parse state: nothing a stored parse needs
                if self._probe_runner is not None:
                    self._probe_runner.close(kill=stopped)
                self._probe_runner = None
        #: Names of the symbols declared ``transitional``.
        self.transitional_names = frozenset(self._compat_rewriter.transitional)
        del self._compat_rewriter

    def _read_kconfig(self, filename: str) -> tuple[str, str]:
        """A sourced Kconfig file's real path and text: inside the tree, trusted when probes may run, regular, bounded."""
        real, fd = self._open_in_tree(filename)
        try:
            self._judge(real, fd)
            data = readsafe.read_fd(fd, filename, what="Kconfig file")
        finally:
            os.close(fd)
        return real, data.decode(self._encoding, "replace")

    def _open_in_tree(self, filename: str) -> tuple[str, int]:
        """(real path, descriptor open for reading) of the regular file ``filename`` inside the tree.

        Named first, opened only once known to be a regular file inside the
        tree: a device is never opened, and what is judged and read afterwards
        is this very file, whatever happens to the name meanwhile.
        """
        srctree = self._compat_srctree
        path_fd = readsafe.open_path(filename)
        try:
            real = readsafe.fd_path(path_fd, filename)
            if real != srctree and not real.startswith(srctree + os.sep):
                where = f"{self.filename}:{self.linenr}: " if self.filename else ""
                raise KconfigEscape(
                    f"{where}'source' of {filename} leaves the kernel tree {srctree}; kcheck reads only Kconfig "
                    "files inside the tree (as make does): fix that line or the symlink, or pass --no-kconfig"
                )
            return real, readsafe.reopen_regular(path_fd, filename, what="Kconfig file")
        finally:
            os.close(path_fd)

    def _judge(self, real: str, fd: int) -> None:
        """Raise :class:`~kcheck.kconfig.trust.Untrusted` when probes may run and the open file fails the trust rule."""
        if self._guard is not None:
            reason = self._guard.check_open(real, os.fstat(fd))
            if reason:
                raise trust.Untrusted(reason)

    def _tree_lines(self, relpath: str) -> list[str] | None:
        """The code lines of another Kconfig file of the tree, for the early prefetch (None: unreadable or untrusted).

        Judged on the descriptor it is read from, like a sourced file: a file
        created or swapped in after a check by name is never the one read.
        """
        try:
            real, fd = self._open_in_tree(os.path.join(self.srctree or ".", relpath))
        except (OSError, readsafe.InputError):
            return None
        try:
            self._judge(real, fd)
            data = readsafe.read_fd(fd, relpath, what="Kconfig file")
        except (OSError, readsafe.InputError, trust.Untrusted):
            return None  # judged again, for real, if the parse ever enters it
        finally:
            os.close(fd)
        return code_lines(data.decode(self._encoding, "replace"))

    @property
    def choice_rules(self) -> str | None:
        """How choices pick their member: :data:`CHOICE_RULES_6_11`, or None (Linux < 6.11's way)."""
        return CHOICE_RULES_6_11 if CHOICE_RULES_6_11 in self.conf_rules else None

    def _propagate_deps(self, node, visible_if):
        super()._propagate_deps(node, visible_if)
        if node.item.__class__ is kconfiglib.Choice and CHOICE_RULES_6_11 in self.conf_rules:
            # scripts/kconfig/menu.c (6.11+), _menu_finalize(): a child's dependencies are
            # 'expr_alloc_and(parent->dep, basedep)' for a choice too, where Linux < 6.11 (and
            # kconfiglib) used the choice symbol itself. So a member is visible through the
            # choice's 'depends on' and enclosing ifs/menus, whatever the choice's prompt
            # condition says ('prompt "Memory split" if EXPERT'), and what it selects is
            # capped by them ('if USB_MTU3' at m caps a bool member's select at m).
            choice, deps = node.item, node.dep
            cur = node.list
            while cur:
                cur.dep = _replace(cur.dep, choice, deps)
                if cur.item.__class__ in (kconfiglib.Symbol, kconfiglib.Choice):
                    if cur.prompt:
                        cur.prompt = (cur.prompt[0], _replace(cur.prompt[1], choice, deps))
                    cur.defaults = [(d, _replace(c, choice, deps)) for d, c in cur.defaults]
                    cur.ranges = [(lo, hi, _replace(c, choice, deps)) for lo, hi, c in cur.ranges]
                    cur.selects = [(t, _replace(c, choice, deps)) for t, c in cur.selects]
                    cur.implies = [(t, _replace(c, choice, deps)) for t, c in cur.implies]
                elif cur.prompt:
                    cur.prompt = (cur.prompt[0], _replace(cur.prompt[1], choice, deps))
                cur = cur.next

    def _add_choice_deps(self):
        super()._add_choice_deps()  # after kconfiglib's loop check, like its own choice links
        if CHOICE_RULES_6_11 in self.conf_rules:
            # With the choice no longer in its members' expressions (see _propagate_deps),
            # say outright that a member's value follows the choice's selection.
            for choice in self.unique_choices:
                for sym in choice.syms:
                    choice._dependents.add(sym)

    def _fn_val(self, args):
        name = args[0]
        if (name not in self.variables and name not in self._functions and name not in os.environ
                and not name.isdigit()):  # $(2) of a macro called with one argument is no variable
            # An unset environment variable expands to "" and kconfiglib forgets it was
            # asked for; record it, so that setting it later invalidates a cached parse
            # (see kcheck.kconfig.env.key_variables).
            self.env_vars.add(name)
        return super()._fn_val(args)

    def _open(self, filename, mode):
        if mode == "r" and getattr(self, "_compat_parsing", False):
            real, text = self._read_kconfig(filename)
            text = self._compat_rewriter.rewrite(text, filename)
            if self._probe_runner is not None and ("$(" in text or "source" in text):
                relpath = os.path.relpath(real, self._compat_srctree)
                self._probe_runner.enter(self, relpath, code_lines(text), os.environ.get("SRCARCH", ""),
                                         self._tree_lines)
            return io.StringIO(text)
        config = getattr(self, "_config_text", None)
        if mode == "r" and config is not None and filename == config[0]:
            return io.StringIO(config[1])
        return super()._open(filename, mode)


class KconfigEscape(readsafe.InputError):
    """A ``source`` line names a file outside the kernel tree."""
