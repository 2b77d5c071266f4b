"""Teach the frozen kconfiglib 14.1.0 the Kconfig syntax Linux added after it.

kconfiglib's last release (2020) stops parsing current kernels at three
constructs. This module rewrites them, line by line as each Kconfig file is
read, into syntax kconfiglib knows with the same meaning; every rewrite keeps
the physical line count, so file:line locations stay those of the real file.

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
    The kernel defines it as ``depends on X || (Y = n)``: the dependency is
    dropped only when Y is *n*. That is not ``!Y || X``: with Y = m, ``!Y``
    is m and would let the symbol be a module although X is n. kconfiglib
    only compares symbols (``A = n``), so "Y evaluates to n" is spelled out
    by pushing ``= n`` through Y's operators (``A && B`` is n when A or B is
    n, ``!A`` is n when A is y, a comparison is n when its negation holds).

Parsing is half of it: ``conf`` also *evaluates* differently from kconfiglib
since 2020, and :class:`CompatKconfig` follows the kernel there too:

- ``imply`` (all Linux 6.x): see :func:`_linux6_tri_value`;
- choices (Linux >= 6.11, read off the tree's own ``conf`` sources): see
  :func:`_linux611_selection`.

kconfiglib checks ``obj.__class__ is Symbol`` throughout, so these rules are
installed on kconfiglib's own classes and apply only to a ``CompatKconfig``;
a plain ``kconfiglib.Kconfig`` in the same process keeps its behaviour.
"""

from __future__ import annotations

import io
import itertools
import os
import re

import kconfiglib

from kcheck import readsafe
from kcheck.kconfig import probes, trust

_WORD = re.compile(r"[A-Za-z0-9_]+")
_HELP_WORDS = ("help", "---help---")
# A line the Rewriter may change (a cheap pre-check; the line scan decides).
_NEEDS_REWRITE = re.compile(
    r"^[ \t]*(?:modules|transitional)[ \t]*(?:#.*)?$|^[ \t]*depends[ \t]+on\b.*\bif\b", re.M
)


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
    if _is_transitional(sym) and sym.orig_type not in kconfiglib._BOOL_TRISTATE:
        # Promptless, yet the old value passes through.
        return sym.user_value if sym.user_value is not None else ""
    return _BASE_STR_VALUE(sym)


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

#: ``CompatKconfig.choice_rules`` value for trees whose ``conf`` picks choice members
#: the Linux 6.11+ way (see :func:`_linux611_selection`).
CHOICE_RULES_6_11 = "linux-6.11"


def _linux611_selection(choice):
    """The selected member of a bool choice the way Linux >= 6.11's ``conf`` picks it.

    Members are ranked by assignment: the one assigned last (to y *or* n, in
    the ``.config`` or later with ``set_value``) first, then the unassigned
    ones, in Kconfig order. The
    selection is the first visible member the file sets to y; else the
    choice's default, unless the file sets that one to n; else the first
    visible member the file does not mention; else the lowest-ranked visible
    member. (kconfiglib, like older kernels, ignores an explicit n on the
    default and always falls back to it.)
    """
    if choice.tri_value != 2:
        return None
    order = getattr(choice.kconfig, "assignment_order", None) or {}  # name -> sequence number
    members = list(choice.syms)
    assigned = sorted((m for m in members if m.name in order), key=lambda m: -order[m.name])
    ranked = assigned + [m for m in members if m.name not in order]
    for member in ranked:
        if member.visibility and member.user_value == 2:
            return member
    default = choice._selection_from_defaults()
    if default is not None and default.user_value != 0:
        return default
    for member in members:
        if member.visibility and member.user_value is None:
            return member
    for member in reversed(ranked):
        if member.visibility:
            return member
    return None


def choice_rules_for(srctree, kernelversion: str) -> str | None:
    """Return the choice rules of the tree's own ``conf`` (read from its symbol.c).

    Linux 6.11 reworked how ``conf`` picks a choice member; a tree's
    ``scripts/kconfig/symbol.c`` shows which one it has (the new code keeps a
    ``choice_members`` priority list). Without that file, the version decides.
    """
    try:
        text = readsafe.read_text(srctree / "scripts" / "kconfig" / "symbol.c", what="kernel source file")
    except (OSError, readsafe.InputError):
        numbers = re.findall(r"\d+", kernelversion)[:2]
        major_minor = tuple(int(n) for n in numbers) if len(numbers) == 2 else (0, 0)
        return CHOICE_RULES_6_11 if major_minor >= (6, 11) else None
    return CHOICE_RULES_6_11 if "choice_members" in text else None


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
    kconf = choice.kconfig
    if kconf.__class__ is CompatKconfig and getattr(kconf, "choice_rules", None) == CHOICE_RULES_6_11:
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
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


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
        if self._peek() in _NEGATED:
            op = self._take()
            return ("cmp", op, left, self._atom())
        return ("sym", left)

    def _atom(self) -> str:
        tok = self._take()
        if tok in ("&&", "||", "!", "(", ")") or tok in _NEGATED:
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


def _is_n(expr):
    """An expression that is y exactly when ``expr`` evaluates to n (else n)."""
    kind = expr[0]
    if kind == "sym":
        return ("cmp", "=", expr[1], "n")
    if kind == "cmp":
        return ("cmp", _NEGATED[expr[1]], expr[2], expr[3])
    if kind == "not":
        return _is_y(expr[1])
    if kind == "and":
        return ("or", _is_n(expr[1]), _is_n(expr[2]))
    return ("and", _is_n(expr[1]), _is_n(expr[2]))


def _is_y(expr):
    """An expression that is y exactly when ``expr`` evaluates to y (else n)."""
    kind = expr[0]
    if kind == "sym":
        return ("cmp", "=", expr[1], "y")
    if kind == "cmp":
        return expr
    if kind == "not":
        return _is_n(expr[1])
    op = kind
    return (op, _is_y(expr[1]), _is_y(expr[2]))


def lower_conditional_depends(dep: str, cond: str) -> str:
    """Return kconfiglib syntax for ``depends on <dep> if <cond>``: ``(dep) || (cond = n)``."""
    cond_expr = _ExprParser(_tokenize_expr(cond)).parse()
    return f"({dep}) || {_text(_is_n(cond_expr))}"


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
        if help_text.holds(line + "\n"):
            continue
        out.append(line)
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
        if not _NEEDS_REWRITE.search(text):
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

    def __init__(self, *args, allow_shell: bool = True, choice_rules: str | None = None,
                 guard=None, **kwargs) -> None:
        #: How choices pick their member: :data:`CHOICE_RULES_6_11` or None (kconfiglib's,
        #: which is also Linux < 6.11's).
        self.choice_rules = choice_rules
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
                self._guard = None  # per-parse state: nothing a stored parse needs
                if self._probe_runner is not None:
                    self._probe_runner.close(kill=stopped)
                self._probe_runner = None
        #: Names of the symbols declared ``transitional``.
        self.transitional_names = frozenset(self._compat_rewriter.transitional)
        del self._compat_rewriter

    def _read_kconfig(self, filename: str) -> tuple[str, str]:
        """A sourced Kconfig file's real path and text: inside the tree, trusted when probes may run, regular, bounded."""
        srctree = self._compat_srctree
        # Named first, opened only once known to be a regular file inside the tree: a device is never opened.
        path_fd = readsafe.open_path(filename)
        try:
            real = readsafe.fd_path(path_fd, filename)
            if real != srctree and not real.startswith(srctree + os.sep):
                where = f"{self.filename}:{self.linenr}: " if self.filename else ""
                raise KconfigEscape(
                    f"{where}'source' of {filename} leaves the kernel tree {srctree}; kcheck reads only Kconfig "
                    "files inside the tree (as make does): fix that line or the symlink, or pass --no-kconfig"
                )
            fd = readsafe.reopen_regular(path_fd, filename, what="Kconfig file")
        finally:
            os.close(path_fd)
        try:
            if self._guard is not None:
                reason = self._guard.check_open(real, os.fstat(fd))
                if reason:
                    raise trust.Untrusted(reason)
            data = readsafe.read_fd(fd, filename, what="Kconfig file")
        finally:
            os.close(fd)
        return real, data.decode(self._encoding, "replace")

    def _tree_lines(self, relpath: str) -> list[str] | None:
        """The code lines of another Kconfig file of the tree, for the early prefetch (None: unreadable)."""
        path = os.path.join(self.srctree or ".", relpath)
        if self._guard is not None and self._guard.check(path):
            return None  # checked again, for real, if the parse ever enters it
        try:
            return code_lines(readsafe.read_text(path, what="Kconfig file", encoding=self._encoding))
        except (OSError, readsafe.InputError):
            return None

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
