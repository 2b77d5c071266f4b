"""The ``kcheck`` command line: one group, a command per user intent.

``kcheck --driver D`` is the check itself (the group's own action); the
other intents are subcommands, imported only when used (see
:class:`LazyGroup`) so that the common path starts fast.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from pathlib import Path

import click

from kcheck.errors import EXIT_USAGE, KcheckError
from kcheck.completion import complete_driver
from kcheck.progress import quiet_option
from kcheck.options import firewall_option, runtime_option

#: name -> "module:attribute" of each subcommand's click command.
LAZY_COMMANDS: dict[str, str] = {
    "drivers": "kcheck.commands:drivers",
    "explain": "kcheck.kconfig.explain:explain",
    "fix": "kcheck.fix.cli:fix",
    "installkernel-hook": "kcheck.installkernel:installkernel_hook",
    "lint": "kcheck.lint:lint",
    "portage-hook": "kcheck.portage.hook:portage_hook",
}

EXIT_HELP = """\b
Exit status:
  0  every required item holds
  1  a required item fails (a recommended one too, with --strict), in
     the configuration or, on a live run, on the host (--no-host: not);
     with --strict also when the kernel version is unknown and
     version-dependent rules could not be applied
  2  usage or input error: no config found, unreadable or not a kernel
     config, unknown driver, bad profile, invalid /etc/docker/daemon.json
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

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the CLI; click's own usage errors become one ``kcheck: ...`` line too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            hint = "; see 'kcheck --help'" if isinstance(exc, click.UsageError) else ""
            click.echo(f"kcheck: {exc.format_message().rstrip('.')}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("kcheck: interrupted", err=True)
            sys.exit(130)
        sys.exit(status if isinstance(status, int) else 0)

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
        except OSError as exc:
            if exc.errno not in _OUTPUT_ERRORS:
                raise
            # stdout on a full disk (/dev/full), over quota or on a failing device.
            _drop_stdout()
            click.echo(f"kcheck: cannot write the output ({exc.strerror}); free some space or write elsewhere", err=True)
            ctx.exit(EXIT_USAGE)


#: errno values of a failed write to stdout that a user causes (not a bug in kcheck).
_OUTPUT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the unwritable buffer is not flushed again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def use_colour() -> bool | None:
    """None lets click decide (terminal or not); False when NO_COLOR is set."""
    return False if os.environ.get("NO_COLOR") else None


path_option = click.Path(path_type=Path)



@click.group(cls=LazyGroup, invoke_without_command=True, epilog=EXIT_HELP)
@click.option("--driver", "-d", metavar="DRIVER", help="Storage driver to check for (see 'kcheck drivers').",
              shell_complete=complete_driver)
@runtime_option()
@firewall_option()
@click.option("--profile", "profiles", multiple=True, type=path_option, metavar="FILE",
              help="Also check your own requirement profile (TOML); repeatable.")
@click.option("--config", "-c", type=path_option, help="Kernel configuration file to read (.config or .gz).")
@click.option("--kernel-dir", "-k", type=path_option, metavar="DIR",
              help="Kernel source tree [default: $KERNEL_DIR or /usr/src/linux].")
@click.option("--root", type=path_option, default=Path("/"), show_default=True,
              help="Prefix for every system path (a chroot or install target).")
@click.option("--kernel-version", metavar="VERSION", help="Override the kernel version the rules use.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on missing recommended items too, and when the kernel version is "
              "unknown (some rules not applied).")
@click.option("--verbose", "-v", is_flag=True, help="List the items that hold and the skipped ones too.")
@click.option("--no-kconfig", is_flag=True, help="Read the .config as written, without the Kconfig tree.")
@click.option("--no-shell", is_flag=True, help="Run nothing: no $(shell,...) Kconfig macro of the tree, no $CC --version.")
@click.option("--no-host", is_flag=True, help="Check only the configuration, not this machine (docker's settings, "
              "filesystem, installed and booted kernel, modules).")
@click.version_option(package_name="kcheck")
@quiet_option
@click.pass_context
def main(ctx: click.Context, driver, runtime, firewall, profiles, config, kernel_dir, root, kernel_version, fmt, strict,
         verbose, no_kconfig, no_shell, no_host) -> None:
    """Check a kernel configuration for docker and a storage driver, before you reboot.

    With no options, kcheck reads /usr/src/linux/.config (or the running
    kernel's configuration) and checks it for the driver docker is set up
    with (storage-driver in /etc/docker/daemon.json, else overlay2), and
    checks this machine too: the filesystem under docker's data root, whether
    the kernel is built, installed and booted, its modules. Run 'kcheck
    COMMAND --help' for the other commands.
    """
    if ctx.invoked_subcommand is not None:
        return
    from kcheck.check import run_check
    from kcheck.reporters import render

    # On a live run (no named configuration) the machine's own settings choose the runtime and the driver.
    live = not no_host and config is None and kernel_dir is None
    facts = {}
    if runtime is None and not live:
        runtime = "docker"
    if runtime is None or driver is None:
        from kcheck import runtimes

        if runtime is None:
            runtime, why = runtimes.detect_runtime(root)
            if fmt == "text" and runtime != "docker":
                click.echo(f"kcheck: no --runtime given: checking {runtime} ({why})", err=True)
        if driver is None:
            driver, why = runtimes.default_driver(runtime, root, live)
            facts = {"driver": driver, "driver-why": why}
            if fmt == "text":
                click.echo(f"kcheck: no --driver given: checking {driver} ({why})", err=True)
    report = run_check(
        driver=driver,
        profile_files=profiles,
        config=config,
        kernel_dir=kernel_dir,
        root=root,
        kernel_version=kernel_version,
        use_kconfig=not no_kconfig,
        allow_shell=not no_shell,
        host=not no_host,
        runtime=runtime,
        firewall=firewall,
        facts=facts,
    )
    click.echo(render(fmt, report, verbose=verbose, strict=strict), color=use_colour())
    if verbose:
        echo_cache_notes()
    ctx.exit(report.exit_status(strict))


def echo_cache_notes() -> None:
    """Say on stderr why a Kconfig cache entry was not used (``--verbose``)."""
    cache = sys.modules.get("kcheck.kconfig.cache")  # loaded only when a tree was read
    for note in getattr(cache, "NOTES", ()):
        click.echo(f"kcheck: {note}", err=True)
