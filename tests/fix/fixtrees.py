"""Small synthetic Kconfig trees for the fixer's unit tests, and a brute-force minimum.

A tree is a ``Kconfig`` text written to a temporary directory and parsed with
plain kconfiglib 14.1.0 (the constructs used here need no compatibility
layer). :func:`brute_minimum` enumerates every assignment of user values to
every subset of the prompted symbols, smallest subsets first, and replays
each through kconfiglib: the first size at which the requirements hold is the
true minimum the solver's plan must match.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import kconfiglib

from kcheck.fix.plan import FixPlan, KconfSource, make_plan
from kcheck.model import CheckContext
from kcheck.profile import parse

#: Requirement forms the tests use: (symbol, expect).
Goal = tuple[str, str]


def load(tmp: Path, kconfig: str, config: str = "", *, kernel_rules: bool = False) -> kconfiglib.Kconfig:
    """Parse ``kconfig`` (written under ``tmp``) and load ``config`` as the user's .config.

    ``kernel_rules`` parses with kcheck's Kconfig layer (Linux 6.x syntax and
    ``imply`` rule, as the kernel's own ``conf`` has them) instead of plain kconfiglib.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "Kconfig").write_text(kconfig)
    (tmp / ".config").write_text(config)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        if kernel_rules:
            from kcheck.kconfig.compat import CompatKconfig

            kconf = CompatKconfig("Kconfig", warn=False, allow_shell=False)
        else:
            kconf = kconfiglib.Kconfig("Kconfig", warn=False)
    finally:
        os.chdir(cwd)
    kconf.load_config(str(tmp / ".config"))
    return kconf


def profile(goals: Sequence[Goal]):
    """A profile requiring each ``(symbol, expect)``."""
    entries = ",\n".join(f'{{ symbol = "{s}", expect = "{e}", reason = "test needs {s}" }}' for s, e in goals)
    return parse(f'name = "t"\n[[group]]\nname = "g"\nseverity = "required"\nrequirements = [\n{entries}\n]\n', Path("t.toml"))


def plan(kconf: kconfiglib.Kconfig, goals: Sequence[Goal], tree: Path | None = None, keep: Sequence[str] = ()) -> FixPlan:
    """Run the whole fix flow for ``goals`` on ``kconf`` (``keep``: the symbols of ``--keep``)."""
    ctx = CheckContext(root=Path("/"), source=KconfSource(kconf), tree=tree, build_dir=None, kernel_version=None)
    return make_plan(kconf, [profile(goals)], ctx, keep=keep)


def holds(kconf: kconfiglib.Kconfig, goals: Sequence[Goal]) -> bool:
    """Whether every goal holds in kconf's current state."""
    for name, expect in goals:
        sym = kconf.syms.get(name)
        value = sym.str_value if sym is not None and sym.nodes else "n"
        value = value or "n"
        ok = value in ("y", "m") if expect == "y-or-m" else value == "n" if expect == "not-set" else value == expect
        if not ok:
            return False
    return True


def settable(kconf: kconfiglib.Kconfig) -> list[kconfiglib.Symbol]:
    """Every bool/tristate symbol with a prompt (what a user can set)."""
    return [s for s in kconf.unique_defined_syms
            if s.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and any(n.prompt for n in s.nodes)]


def features(kconf: kconfiglib.Kconfig) -> list[kconfiglib.Symbol]:
    """The user's features: settable symbols the file sets y or m that are on now."""
    return [s for s in settable(kconf) if s.user_value in (1, 2) and s.tri_value >= 1]


def brute_minimum(kconf: kconfiglib.Kconfig, goals: Sequence[Goal], max_size: int | None = None) -> int | None:
    """The size of the best plan by exhaustive search (None: impossible).

    Best is fewest features turned off first (a plan that only adds beats any
    plan that gives something up), then fewest user-value changes. A feature
    held on only by a ``select`` against its own unmet ``depends on`` counts as
    lost: conf warns "unmet direct dependencies" and kcheck never plans for it.
    """
    syms = settable(kconf)
    had = features(kconf)
    saved = {s: s.user_value for s in syms}
    saved_sel = {c: (c.user_value, c.user_selection) for c in kconf.unique_choices}

    def restore() -> None:
        for s, v in saved.items():
            if v is None:
                s.unset_value()
            else:
                s.set_value(v)
        for c, (mode, sel) in saved_sel.items():
            c.unset_value()
            if mode is not None:
                c.set_value(mode)
            c.user_selection = sel
            c._rec_invalidate()

    best: tuple[int, int] | None = None
    try:
        for size in range(0, (max_size if max_size is not None else len(syms)) + 1):
            if best is not None and best[0] == 0:
                break  # nothing larger can beat a plan that loses nothing
            for subset in itertools.combinations(syms, size):
                domains = [(0, 2) if s.orig_type is kconfiglib.BOOL else (0, 1, 2) for s in subset]
                for values in itertools.product(*domains):
                    restore()
                    if any(v == s.user_value and not s.choice for s, v in zip(subset, values)):
                        continue  # not a change
                    for s, v in zip(subset, values):
                        s.set_value(v)
                    if holds(kconf, goals):
                        lost = sum(1 for s in had if s.tri_value == 0 or kconfiglib.expr_value(s.direct_dep) == 0)
                        score = (lost, size)
                        best = score if best is None or score < best else best
        return None if best is None else best[1]
    finally:
        restore()
