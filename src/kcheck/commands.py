"""Small subcommands that need no module of their own."""

from __future__ import annotations

import click

from kcheck.options import RUNTIME_CHOICES
from kcheck.profile import RUNTIMES, load_shipped, shipped_names


@click.command()
@click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), help="Only this runtime's profiles [default: every runtime].")
def drivers(runtime) -> None:
    """List the storage drivers and profiles kcheck knows, per runtime, one line each."""
    for index, name in enumerate(RUNTIMES if runtime is None else (runtime,)):
        if index:
            click.echo()
        what = "snapshotters" if name == "containerd" else "storage drivers"
        click.echo(f"{name} (--runtime {name}): its base profile and {what}")
        for profile_name in shipped_names(name):
            profile = load_shipped(profile_name, name)
            click.echo(f"  {profile_name:<16} {profile.kind:<7} {profile.summary}")
