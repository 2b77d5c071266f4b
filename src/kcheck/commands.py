"""Small subcommands that need no module of their own."""

from __future__ import annotations

import click

from kcheck.profile import load_shipped, shipped_names


@click.command()
def drivers() -> None:
    """List the storage drivers and profiles kcheck knows, one line each."""
    for name in shipped_names():
        profile = load_shipped(name)
        click.echo(f"{name:<16} {profile.kind:<7} {profile.summary}")
