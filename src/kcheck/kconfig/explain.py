"""``kcheck explain SYMBOL``: what Kconfig says about one symbol of one configuration, and why.

The facts come from the kernel tree itself (``--kernel-dir``, default
``/usr/src/linux``) and the configuration (``--config``, default
``<kernel-dir>/.config``): type and prompt, the value Kconfig computes and
the value the file wrote (with its line), where the symbol is defined, its
``depends on`` evaluated term by term down to the symbols that are off,
what selects or implies it, the values it can take now, and whether the
tree has it at all.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import click
from kconfiglib import TRI_TO_STR, TYPE_TO_STR, expr_str, expr_value

from kcheck.errors import InputError
from kcheck.kconfig.env import arch_from_config
from kcheck.kconfig.tree import KconfigTree
from kcheck.kconfig.why import blockers, evaluate, exists, selectors
from kcheck.completion import complete_symbol
from kcheck.progress import quiet_option

DEFAULT_KERNEL_DIR = Path("/usr/src/linux")
_SYMBOL = re.compile(r"(?:CONFIG_)?[A-Za-z0-9_]+")


def _pairs(sym, kind: str) -> list[dict]:
    out = []
    for source, cond in selectors(sym, kind):
        out.append({
            "symbol": source.name,
            "value": source.str_value,
            "condition": expr_str(cond),
            # kconfiglib folds the selector's own dependencies into the condition; only
            # an extra `if` is worth repeating in the text report.
            "own_condition": cond is not source.direct_dep and cond is not source.kconfig.y,
            "active": bool(source.tri_value and expr_value(cond)),
        })
    return out


def facts(tree: KconfigTree, config: Path, symbol: str) -> dict:
    """Return everything ``explain`` reports about ``symbol`` as plain data (the JSON form)."""
    name = symbol.removeprefix("CONFIG_")
    kconf = tree.kconf
    if not exists(kconf.syms.get(name)) and exists(kconf.syms.get(name.upper())):
        name = name.upper()
    source = tree.read(config)
    state = source.state(name)
    written = source.written.get(name)
    result: dict = {
        "symbol": name,
        "exists": bool(state.exists),
        "tree": str(tree.srctree),
        "kernel_version": tree.env.get("KERNELVERSION"),
        "arch": tree.arch,
        "config": str(config),
        "value": state.value,
        "written": {"value": written[0], "line": written[1]} if written else None,
        "note": state.note,
    }
    if not state.exists:
        names = [s.name for s in kconf.unique_defined_syms]
        result["similar"] = difflib.get_close_matches(name, names, n=5, cutoff=0.75)
        return result
    sym = kconf.syms[name]
    deps = sym.direct_dep
    # What keeps the dependencies at n (or, when they are m, what keeps them below y).
    need = 1 if expr_value(deps) == 0 else 2
    result |= {
        "type": TYPE_TO_STR[sym.orig_type],
        "prompts": [node.prompt[0] for node in sym.nodes if node.prompt],
        "definitions": [{"file": node.filename, "line": node.linenr} for node in sym.nodes],
        "visibility": TRI_TO_STR[sym.visibility],
        "depends_on": evaluate(deps).to_json(),
        "blocked_by": blockers(deps, need),
        "selected_by": _pairs(sym, "selects"),
        "implied_by": _pairs(sym, "implies"),
        "selects": [t.name for t, _ in sym.selects],
        "defaults": [
            {"value": expr_str(default), "condition": expr_str(cond), "active": bool(expr_value(cond))}
            for default, cond in sym.defaults
        ],
        "assignable": [TRI_TO_STR[v] for v in sym.assignable],
        "choice": (
            {
                "prompt": next((n.prompt[0] for n in sym.choice.nodes if n.prompt), None),
                "selection": sym.choice.selection.name if sym.choice.selection else None,
            }
            if sym.choice is not None
            else None
        ),
        "transitional": name in getattr(kconf, "transitional_names", ()),
    }
    return result


def _list(items: list[dict], empty: str = "(nothing)") -> list[str]:
    if not items:
        return [empty]
    return [
        f"{item['symbol']} ({item['value']})"
        + (f" if {item['condition']}" if item["own_condition"] else "")
        + ("" if item["active"] else "  [inactive]")
        for item in items
    ]


def render_text(info: dict) -> str:
    """Return the human-readable report of :func:`facts`."""
    name = info["symbol"]
    where = f"{info['tree']} (Linux {info['kernel_version']}, ARCH={info['arch']})"
    written = info["written"]
    in_file = (f"{written['value']} (line {written['line']} of {info['config']})"
               if written else f"not in the file ({info['config']} does not mention CONFIG_{name})")
    if not info["exists"]:
        lines = [f"{name}: does not exist in {where}", f"  in the file:   {in_file}"]
        if info.get("similar"):
            lines.append(f"  similar:       {', '.join(info['similar'])}")
        return "\n".join(lines) + "\n"
    prompt = f' "{info["prompts"][0]}"' if info["prompts"] else " (no prompt: set by defaults/selects only)"
    lines = [
        f"{name} ({info['type']}){prompt}",
        f"  tree:          {where}",
        "  defined at:    " + ", ".join(f"{d['file']}:{d['line']}" for d in info["definitions"]),
        f"  value:         {info['value']}",
        f"  in the file:   {in_file}",
        f"  visible:       {info['visibility']}",
        "  can be now:    " + (", ".join(info["assignable"]) or "nothing (fixed by Kconfig)"),
    ]
    dep_lines = _term_lines(info["depends_on"])
    if info["depends_on"]["expr"] == "y":
        dep_lines = ["(nothing)"]
    lines.append(f"  depends on:    {dep_lines[0]}")
    lines += [f"                 {line}" for line in dep_lines[1:]]
    if info["blocked_by"]:
        lines.append("  held off by:   " + "; ".join(info["blocked_by"]))
    sel = _list(info["selected_by"])
    lines.append(f"  selected by:   {sel[0]}")
    lines += [f"                 {line}" for line in sel[1:]]
    imp = _list(info["implied_by"])
    lines.append(f"  implied by:    {imp[0]}")
    lines += [f"                 {line}" for line in imp[1:]]
    if info["defaults"]:
        for i, default in enumerate(info["defaults"]):
            label = "  defaults:      " if i == 0 else "                 "
            cond = f" if {default['condition']}" if default["condition"] != "y" else ""
            lines.append(f"{label}{default['value']}{cond}" + ("" if default["active"] else "  [inactive]"))
    if info["choice"]:
        lines.append(f"  in choice:     {info['choice']['prompt']} (selected: {info['choice']['selection']})")
    if info["note"]:
        lines.append(f"  why:           {info['note']}")
    return "\n".join(lines) + "\n"


def _term_lines(term: dict, depth: int = 0) -> list[str]:
    out = [f"{'  ' * depth}{term['expr']}  [{term['value']}]"]
    for sub in term["terms"]:
        out += _term_lines(sub, depth + 1)
    return out


def locate_config(kernel_dir: Path, config: Path | None) -> Path:
    """Return the configuration to explain: ``config`` or ``<kernel_dir>/.config``; it must exist."""
    path = config if config is not None else kernel_dir / ".config"
    if not path.is_file():
        hint = "" if config is not None else "; pass --config with the configuration to explain"
        raise InputError(f"{path}: no such configuration file{hint}")
    return path


@click.command("explain")
@quiet_option
@click.argument("symbol", shell_complete=complete_symbol)
@click.option("--kernel-dir", "-k", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_KERNEL_DIR,
              envvar="KERNEL_DIR", show_default=True, show_envvar=True,  # as the check reads it
              help="Kernel source tree whose Kconfig files decide.")
@click.option("--config", "-c", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Configuration to explain (default: <kernel-dir>/.config).")
@click.option("--arch", default=None,
              help="make's ARCH (default: the config header's, else this machine's).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(symbol: str, kernel_dir: Path, config_path: Path | None,
            arch: str | None, fmt: str) -> None:
    """Explain why SYMBOL has its value in a configuration, the way Kconfig decides it."""
    # A KcheckError becomes one "kcheck: ..." line and exit status 2 in the CLI group.
    if not _SYMBOL.fullmatch(symbol):
        raise click.UsageError(f"SYMBOL {symbol!r} is not a Kconfig symbol name (letters, digits, _)")
    if not (kernel_dir / "Kconfig").is_file():
        raise InputError(
            f"{kernel_dir}: not a kernel source tree (no Kconfig file); pass --kernel-dir"
        )
    config = locate_config(kernel_dir, config_path)
    tree = KconfigTree.load(kernel_dir, arch=arch or arch_from_config(config))
    info = facts(tree, config, symbol)
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(render_text(info), nl=False)
