"""The ``kcheck`` command line: one group, a command per user intent.

Subcommands are imported only when used (see :class:`LazyGroup`) so that the
common path, ``kcheck --driver D``, starts fast.
"""

from __future__ import annotations

import importlib

import click

#: name -> "module:attribute" of each subcommand's click command.
LAZY_COMMANDS: dict[str, str] = {
    "explain": "kcheck.kconfig.explain:explain",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.pass_context
def main(ctx: click.Context) -> None:
    """kcheck: check a kernel configuration for a container storage driver."""
