"""Shell completion beyond what click derives by itself.

click completes subcommands, option names and the values of every
``click.Choice`` option (``--format``, and any other fixed set) with no help
from kcheck. This module adds the two open-ended values:

- ``--driver``: the storage drivers of the shipped profiles;
- ``kcheck explain SYMBOL``: the symbols the kernel tree defines (the tree of
  ``--kernel-dir`` when typed before, else ``$KERNEL_DIR``, else
  ``/usr/src/linux``), read by :mod:`kcheck.kconfig.names` and cached.

The shell scripts that call back into kcheck are click's own
(``_KCHECK_COMPLETE=bash_source kcheck``, ``zsh_source``, ``fish_source``);
the package ships them in ``kcheck/data/`` for distributions to install.
A completion callback never raises: a broken tree offers nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click.shell_completion is imported only when a shell asks: kcheck's start stays fast
    from click.shell_completion import CompletionItem

#: The shipped completion scripts, per shell, in ``kcheck/data/`` (see tests/test_completion.py).
SCRIPTS = {"bash": "kcheck.bash", "zsh": "kcheck.zsh", "fish": "kcheck.fish"}


def complete_driver(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The runtime's shipped storage-driver profiles whose name starts with ``incomplete``, with their summary.

    The runtime is the command line's ``--runtime`` when already typed, else docker.
    """
    from click.shell_completion import CompletionItem

    from kcheck.profile import RUNTIMES, driver_names, load_shipped

    runtime = ctx.params.get("runtime") or "docker"
    if runtime not in RUNTIMES:
        return []
    items = []
    for name in driver_names(runtime):
        if not name.startswith(incomplete):
            continue
        try:
            profile = load_shipped(name, runtime)
        except Exception:  # noqa: BLE001 - a broken profile must not break the user's shell
            continue
        items.append(CompletionItem(name, help=profile.summary))
    return items


def _tree_for(ctx: click.Context) -> Path:
    given = ctx.params.get("kernel_dir")
    if given:
        return Path(given)
    return Path(os.environ.get("KERNEL_DIR") or "/usr/src/linux")


def complete_symbol(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Symbols of the kernel tree starting with ``incomplete`` (``CONFIG_`` and lower case accepted)."""
    from click.shell_completion import CompletionItem

    from kcheck.kconfig.names import symbol_names

    prefix = "CONFIG_" if incomplete.upper().startswith("CONFIG_") else ""
    wanted = incomplete[len(prefix):].upper()
    try:
        names = symbol_names(_tree_for(ctx))
    except Exception:  # noqa: BLE001 - completion offers nothing rather than a traceback in the prompt
        return []
    return [CompletionItem(prefix + name) for name in names if name.startswith(wanted)]
