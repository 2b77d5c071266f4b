"""The ``kcheck`` command line: one group, a command per user intent.

``kcheck --driver D`` is the check itself (the group's own action); the
other intents are subcommands, imported only when used (see
:class:`LazyGroup`) so that the common path starts fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from kcheck.errors import EXIT_USAGE, KcheckError

#: name -> "module:attribute" of each subcommand's click command.
LAZY_COMMANDS: dict[str, str] = {
    "drivers": "kcheck.commands:drivers",
    "explain": "kcheck.kconfig.explain:explain",
    "fix": "kcheck.fix.cli:fix",
}

EXIT_HELP = """\b
Exit status:
  0  every required item holds
  1  a required item fails (a recommended one too, with --strict)
  2  usage or input error: no config found, unreadable or not a kernel
     config, unknown driver, bad profile
"""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use.

    It is also the one place where a :class:`KcheckError` becomes a single
    ``kcheck: ...`` line on stderr and its documented exit status.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KcheckError as exc:
            click.echo(f"kcheck: {exc.message}", err=True)
            ctx.exit(exc.exit_status)
        except BrokenPipeError:
            # Output piped into `head` and closed: not an error worth a traceback.
            sys.stderr.close()
            ctx.exit(EXIT_USAGE)


def use_colour() -> bool | None:
    """None lets click decide (terminal or not); False when NO_COLOR is set."""
    return False if os.environ.get("NO_COLOR") else None


path_option = click.Path(path_type=Path)


@click.group(cls=LazyGroup, invoke_without_command=True, epilog=EXIT_HELP)
@click.option("--driver", "-d", metavar="DRIVER", help="Storage driver to check for (see 'kcheck drivers').")
@click.option("--profile", "profiles", multiple=True, type=path_option, metavar="FILE",
              help="Also check your own requirement profile (TOML); repeatable.")
@click.option("--config", "-c", type=path_option, help="Kernel configuration file to read (.config or .gz).")
@click.option("--kernel-dir", "-k", type=path_option, metavar="DIR",
              help="Kernel source tree [default: $KERNEL_DIR or /usr/src/linux].")
@click.option("--root", type=path_option, default=Path("/"), show_default=True,
              help="Prefix for every system path (a chroot or install target).")
@click.option("--kernel-version", metavar="VERSION", help="Override the kernel version the rules use.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on missing recommended items too.")
@click.option("--verbose", "-v", is_flag=True, help="List the items that hold and the skipped ones too.")
@click.option("--no-kconfig", is_flag=True, help="Read the .config as written, without the Kconfig tree.")
@click.option("--no-shell", is_flag=True, help="Never run the tree's $(shell,...) Kconfig macros.")
@click.version_option(package_name="kcheck")
@click.pass_context
def main(ctx: click.Context, driver, profiles, config, kernel_dir, root, kernel_version, fmt, strict, verbose,
         no_kconfig, no_shell) -> None:
    """Check a kernel configuration for docker and a storage driver, before you reboot.

    With no options, kcheck reads /usr/src/linux/.config (or the running
    kernel's configuration) and checks it for docker's default driver,
    overlay2. Run 'kcheck COMMAND --help' for the other commands.
    """
    if ctx.invoked_subcommand is not None:
        return
    from kcheck.check import run_check
    from kcheck.reporters import render

    if driver is None:
        driver = "overlay2"
        if fmt == "text":
            click.echo("kcheck: no --driver given: checking overlay2, docker's default", err=True)
    report = run_check(
        driver=driver,
        profile_files=profiles,
        config=config,
        kernel_dir=kernel_dir,
        root=root,
        kernel_version=kernel_version,
        use_kconfig=not no_kconfig,
        allow_shell=not no_shell,
    )
    click.echo(render(fmt, report, verbose=verbose, strict=strict), color=use_colour())
    ctx.exit(report.exit_status(strict))
