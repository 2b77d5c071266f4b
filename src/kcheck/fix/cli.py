"""``kcheck fix``: plan the fewest Kconfig changes for a driver, show them, and write them safely.

The command is a front end on the same flow as the check (locate -> read ->
evaluate): it locates the configuration and the tree, reads it through the
Kconfig layer, plans with :func:`kcheck.fix.plan.make_plan`, has the
kernel's own conf settle the file (:func:`kcheck.fix.verified.settle`), and
only then writes, each output through :func:`kcheck.safewrite.write_atomic`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from kcheck import dotconfig, engine, progress, readsafe, safewrite, version
from kcheck import firewall as firewall_module
from kcheck.check import initial_facts, select_profiles
from kcheck.completion import complete_driver
from kcheck.errors import EXIT_FAIL, InputError
from kcheck.fix import oracle, render, verified
from kcheck.fix.plan import FixPlan, make_plan, turned_off
from kcheck.locate import locate, running_release, under_root
from kcheck.model import CheckContext, Finding, Status
from kcheck.options import firewall_option, runtime_option
from kcheck.progress import quiet_option

path_option = click.Path(path_type=Path)

#: Firewall backends tried, in order, when the default one would make the plan turn something off
#: (iptables-nft first: it serves every docker release; docker's own nftables backend is newer).
FIREWALL_ALTERNATIVES = ("iptables-nft", "nftables")

FIX_EPILOG = """\b
Exit status:
  0  the plan was made (and written, when asked), or nothing needed changing
  1  the requirements cannot hold in this tree, no plan keeps what --keep
     names, the kernel's conf disagrees with the plan, or the configuration
     changed while kcheck ran (another fix, an editor): nothing was written
  2  usage or input error
"""


@dataclass
class Outputs:
    """Where a verified plan goes (all optional; none means a dry run)."""

    config: Path | None = None
    backup: bool = True
    fragment: Path | None = None
    dist_kernel: Path | None = None
    #: The configuration's bytes when the plan was made: ``config`` is then written only if unchanged.
    expected: bytes | None = None


def dist_kernel_fragment(root: Path, driver: str) -> Path:
    """Where Gentoo's distribution kernels pick up a user fragment for ``driver``."""
    return under_root(root, "/etc/kernel/config.d") / f"kcheck-{driver}.config"


def out_of_tree_modules(root: Path, releases: Sequence[str]) -> list[Path]:
    """Non-empty ``/lib/modules/<release>/{misc,extra}`` directories (their modules need rebuilding)."""
    found = []
    for release in dict.fromkeys(releases):
        for sub in ("misc", "extra"):
            d = under_root(root, f"/lib/modules/{release}/{sub}")
            if d.is_dir() and any(d.iterdir()):
                found.append(d)
    return found


def next_steps(tree: Path | None, root: Path, releases: Sequence[str]) -> list[str]:
    """What a user does after the configuration changed, in order."""
    where = f" in {tree}" if tree else ""
    steps = [f"rebuild the kernel and its modules{where} (make && make modules_install && make install),",
             "update your boot loader if it needs it, and reboot into the new kernel"]
    modules = out_of_tree_modules(root, releases)
    if modules:
        steps.append(f"out-of-tree modules found ({', '.join(str(m) for m in modules)}): run 'emerge @module-rebuild' after the kernel build")
    return steps


def left_outside_config(plan: FixPlan, profiles, ctx: CheckContext) -> list[str]:
    """What the check will still fail on once the plan is applied: the steps no configuration change makes
    (a driver's own checks, such as building an aufs kernel), so that fix and check tell the same story.

    ``ctx`` describes the tree; its source is replaced by the planned configuration.
    """
    if not plan.ok or not any(p.checks for p in profiles):
        return []
    planned = CheckContext(root=ctx.root, source=dotconfig.parse(plan.config_text, ctx.source.path), tree=ctx.tree,
                           build_dir=ctx.build_dir, kernel_version=ctx.kernel_version)
    left: list[Finding] = []
    for profile in profiles:
        for name in profile.facts:
            planned.facts.update(engine.resolve(name)(planned))
        for name in profile.checks:
            left += [f for f in engine.resolve(name)(planned) if f.status is Status.FAIL and f.expected is None]
    closing = [f for f in left if f.check.endswith("-reboot")] or left
    if not closing:
        return []
    return ["Left outside the configuration (kcheck --driver says the same):"] + [
        f"  - {f.reason}" + (f"\n    fix: {f.fix}" if f.fix else "") for f in closing
    ]


def write_outputs(plan: FixPlan, outputs: Outputs, profiles: list[str], text: str | None = None) -> list[str]:
    """Write every requested output of a verified plan; return one line per file written.

    ``text`` is the configuration to write (conf's output, see
    :func:`kcheck.fix.verified.settle`); by default the plan's own.
    """
    assert plan.ok and plan.config_text is not None
    done = []
    if outputs.config is not None:
        real = safewrite.check_target(outputs.config)
        saved = safewrite.write_atomic(outputs.config, text or plan.config_text, backup=outputs.backup,
                                       expected=outputs.expected)
        through = f" through the symlink {outputs.config}" if real != Path(os.path.abspath(outputs.config)) else ""
        done.append(f"wrote {real if through else outputs.config}{through}"
                    + (f" (previous version kept as {saved})" if saved else ""))
    for target in (outputs.fragment, outputs.dist_kernel):
        if target is not None:
            if not target.parent.is_dir():
                try:
                    target.parent.mkdir(parents=True)
                except OSError as exc:
                    raise InputError(f"cannot create {target.parent} ({exc.strerror}); check --root and permissions") from None
            safewrite.write_atomic(target, render.fragment(plan, profiles=profiles), backup=outputs.backup)
            done.append(f"wrote fragment {target}")
    return done


def plan_for_tree(tree, config: Path, profiles, *, root: Path = Path("/"), build_dir: Path | None = None,
                  kernel_version: str | None = None, include_recommended: bool = False,
                  facts: dict[str, str] | None = None, keep: Sequence[str] = ()):
    """Plan the fix of ``config`` on a loaded :class:`~kcheck.kconfig.KconfigTree`; return (plan, version).

    The same steps the command takes, for callers that hold a parsed tree
    (the tests and ``bench/fix_bench.py`` reuse one tree for many configs).
    ``facts`` are the user's choices (``runtime``, ``firewall``; see
    :func:`kcheck.check.initial_facts`).
    """
    plain = dotconfig.load(config)
    kver = version.detect(override=kernel_version, tree=tree.srctree, build_dir=build_dir,
                          header_version=plain.header_version)
    source = tree.read(config)
    ctx = CheckContext(root=root, source=source, tree=tree.srctree, build_dir=build_dir, kernel_version=kver,
                       facts=dict(facts or {}))
    plan = make_plan(tree.kconf, profiles, ctx, include_recommended=include_recommended, read=tree.read, keep=keep)
    return plan, kver


def start_conf(tree: Path, arch: str, original: str, *, no_shell: bool):
    """The tree's conf and its background run on the unchanged file, or (None, None, why there is none).

    Started before the Kconfig parse so that the two overlap.
    """
    from kcheck.kconfig.tree import untrusted_tree

    if no_shell:
        return None, None, "--no-shell (the kernel's conf would run the tree's $(shell,...) probes)"
    refused = untrusted_tree(tree)
    if refused:
        return None, None, f"the tree is not trusted with a build ({refused.split(':')[0]})"
    try:
        conf = oracle.prepare(tree, arch, progress=lambda what: progress.step(
            what, how_often="once per tree, in kcheck's cache; later runs reuse it"))
    except oracle.OracleError as exc:
        return None, None, str(exc)
    except OSError as exc:  # the cache directory is someone else's, full, read-only...
        return None, None, f"the kernel's conf cannot be built in kcheck's cache ({exc.filename}: {exc.strerror})"
    return conf, conf.start(original), None


@contextlib.contextmanager
def stop_conf_on_termination():
    """On SIGTERM or SIGHUP, stop conf's runs and remove their directories, then die of the signal as before.

    Python's default ends the process on the spot, which would leave conf's
    make (its own process group) running and its temporary directory behind.
    Nothing else changes: the process still ends by the signal, at once.
    """
    def stop(signum, _frame):
        oracle.cancel_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def apply_command(*, driver: str, runtime: str | None, firewall: str | None, profile_files: Sequence[Path], tree: Path,
                  config: Path, keep: Sequence[str], include_recommended: bool, kernel_version: str | None,
                  no_shell: bool, root: Path) -> str:
    """The exact command line that applies the plan just shown (every input spelled out)."""
    argv = ["kcheck", "fix", "--driver", driver]
    if runtime and runtime != "docker":
        argv += ["--runtime", runtime]
    if firewall:
        argv += ["--firewall", firewall]
    for profile in profile_files:
        argv += ["--profile", str(profile)]
    argv += ["--kernel-dir", str(tree), "--config", str(config)]
    for name in keep:
        argv += ["--keep", name]
    if include_recommended:
        argv.append("--include-recommended")
    if kernel_version:
        argv += ["--kernel-version", kernel_version]
    if no_shell:
        argv.append("--no-shell")
    if root != Path("/"):
        argv += ["--root", str(root)]
    return " ".join(shlex.quote(a) for a in [*argv, "--write"])


@click.command(epilog=FIX_EPILOG)
@quiet_option
@click.option("--driver", "-d", required=True, metavar="DRIVER", help="Storage driver to fix the configuration for.",
              shell_complete=complete_driver)
@runtime_option("docker")
@firewall_option("iptables-legacy, as check-config.sh checks")
@click.option("--profile", "profile_files", multiple=True, type=path_option, metavar="FILE",
              help="Also make your own requirement profile (TOML) hold; repeatable.")
@click.option("--kernel-dir", "-k", type=path_option, metavar="DIR",
              help="Kernel source tree [default: $KERNEL_DIR or /usr/src/linux].")
@click.option("--config", "-c", type=path_option, help="Configuration to start from [default: the tree's .config].")
@click.option("--keep", "keep", multiple=True, metavar="SYMBOL",
              help="Never change SYMBOL's value (no plan may turn it off); repeatable.")
@click.option("--write", is_flag=True, help="Apply the plan to the configuration file in place.")
@click.option("--output", "-o", type=path_option, metavar="PATH",
              help="Write the fixed configuration to PATH instead ('-': standard output).")
@click.option("--no-backup", is_flag=True, help="Do not keep the previous file as <name>.old.")
@click.option("--fragment", type=path_option, metavar="PATH", help="Write a merge_config.sh fragment to PATH.")
@click.option("--dist-kernel", is_flag=True,
              help="Write the fragment to /etc/kernel/config.d/kcheck-DRIVER.config (Gentoo distribution kernels).")
@click.option("--diff", "show_diff", is_flag=True, help="Print the unified diff of the file it would write.")
@click.option("--root", type=path_option, default=Path("/"), show_default=True, help="Prefix for every system path.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "scripts-config"]), default="text", show_default=True)
@click.option("--include-recommended", is_flag=True, help="Make the recommended items hold too, not only the required ones.")
@click.option("--kernel-version", metavar="VERSION", help="Override the kernel version the rules use.")
@click.option("--no-shell", is_flag=True, help="Run nothing: no $(shell,...) Kconfig macro of the tree, no $CC --version.")
@click.option("--verbose", "-v", is_flag=True, help="Also list every other value that changes, in groups.")
def fix(driver, runtime, firewall, profile_files, kernel_dir, config, keep, write, output, no_backup, fragment,
        dist_kernel, show_diff, root, fmt, include_recommended, kernel_version, no_shell, verbose) -> None:
    """Plan (and with --write apply) the fewest changes that make DRIVER's requirements hold.

    Without --write, --output, --fragment or --dist-kernel this is a dry run:
    it prints each change (old -> new, where the option is defined, and why
    it is needed) and the command that applies it. The plan is checked against
    Kconfig's rules, then the kernel's own conf (built once per tree in kcheck's
    cache) runs make olddefconfig on the edited file: what it writes is what
    kcheck writes, and a plan conf disagrees with is refused.
    """
    if write and output:
        raise click.UsageError("--write and --output both name where to write: choose one")
    keep = tuple(dict.fromkeys(name.removeprefix("CONFIG_") for name in keep))
    runtime = runtime or "docker"
    profiles = select_profiles(driver, profile_files, runtime=runtime)
    facts = initial_facts(runtime, firewall)
    names = [p.name for p in profiles]
    location = locate(config=config, kernel_dir=kernel_dir, root=root)
    if location.tree is None:
        raise InputError(f"kcheck fix needs the kernel sources to follow Kconfig's dependencies for {location.config}; pass --kernel-dir DIR")
    to_stdout = output == Path("-")
    target = output if output is not None and not to_stdout else (location.config if write else None)
    if target is not None and target.suffix == ".gz":
        raise InputError(f"{target} is compressed and not a kernel tree's .config; pass --output PATH for the fixed file")
    expected = _check_targets(location.config, target, fragment, dist_kernel_fragment(root, driver) if dist_kernel else None)
    from kcheck.kconfig import KconfigTree  # the slow part: only once the inputs are known to be usable
    from kcheck.kconfig.env import subarch

    plain = dotconfig.load(location.config)
    original = dotconfig.read_bytes(location.config).decode("utf-8", "replace")
    arch = plain.header_arch or os.environ.get("ARCH") or subarch()
    ctx = click.get_current_context()
    ctx.with_resource(stop_conf_on_termination())
    ctx.call_on_close(oracle.cancel_all)  # no make outlives the command, and no temporary directory
    conf, baseline, why_not = start_conf(location.tree, arch, original, no_shell=no_shell)
    tree = KconfigTree.load(location.tree, arch=plain.header_arch, allow_shell=not no_shell)
    if tree.shell_refused:
        click.echo(f"kcheck: note: {tree.shell_refused}", err=True)
    unknown = [name for name in keep if name not in tree.kconf.syms or not tree.kconf.syms[name].nodes]
    if unknown:
        raise InputError(f"--keep {unknown[0]}: no such option in {location.tree}; check the name (without CONFIG_)")
    def plan_with(facts):
        return plan_for_tree(tree, location.config, profiles, root=root, build_dir=location.build_dir,
                             kernel_version=kernel_version, include_recommended=include_recommended, facts=facts,
                             keep=keep)

    plan, kver = plan_with(facts)
    lost = turned_off(plan) if plan.ok and firewall is None and runtime in ("docker", "podman") else []
    if lost:
        # No backend was chosen, so the default (iptables-legacy) is an assumption, not the user's wish:
        # a backend whose plan gives nothing up wins, as a plan that only adds wins over one that turns off.
        for other in FIREWALL_ALTERNATIVES:
            alternative, _ = plan_with(initial_facts(runtime, other))
            if alternative.ok and not turned_off(alternative):
                click.echo(f"kcheck: note: no --firewall given: planned for {other}, which keeps {', '.join(lost)} "
                           f"({firewall_module.DEFAULT_BACKEND} would turn it off); run {runtime} with {other}, "
                           f"or give --firewall {firewall_module.DEFAULT_BACKEND} to insist", err=True)
                plan, firewall = alternative, other
                break
    settled = None
    if plan.ok and (plan.changes or output is not None):
        settled = verified.settle(plan, tree.kconf, original, conf, baseline, why_not, keep)

    if firewall is None and any(c.symbol == "PREEMPT_RT" for c in plan.changes):
        # The default backend (iptables-legacy) is what costs real time here; the user may not need it.
        click.echo("kcheck: note: only the default firewall backend, iptables-legacy, needs PREEMPT_RT off; "
                   "--firewall nftables or --firewall iptables-nft keeps this kernel real-time", err=True)
    shown = str(location.config)
    command = apply_command(driver=driver, runtime=runtime, firewall=firewall, profile_files=profile_files,
                            tree=location.tree, config=location.config,
                            keep=keep, include_recommended=include_recommended, kernel_version=kernel_version,
                            no_shell=no_shell, root=root)
    echo_err = lambda line: click.echo(line, err=True)  # noqa: E731
    if fmt == "json":
        click.echo(render.as_json(plan, config=shown, profiles=names, settled=settled,
                                  apply=command if plan.changes and not write and output is None else None),
                   err=to_stdout)
    elif fmt == "scripts-config":
        click.echo(render.scripts_config(plan, config=shown), err=to_stdout)
    elif show_diff and settled is not None and settled.ok:
        for line in settled.warnings:
            echo_err(line)
        click.echo(render.diff(original, settled.text, config=shown), nl=False, err=to_stdout)
    else:
        click.echo(render.text(plan, config=shown, profiles=names, verbose=verbose, settled=settled), err=to_stdout)
        check_ctx = CheckContext(root=root, source=plain, tree=location.tree, build_dir=location.build_dir,
                                 kernel_version=kver)
        for line in left_outside_config(plan, profiles, check_ctx):
            click.echo(line, err=to_stdout)
    if not plan.ok or (settled is not None and not settled.ok):
        raise click.exceptions.Exit(EXIT_FAIL)
    text = settled.text if settled is not None else plan.config_text
    if to_stdout:
        click.echo(text, nl=False)  # the configuration alone on stdout; the plan went to stderr

    # Nothing to change: leave the user's file exactly as it is, even if Kconfig would reformat it.
    outputs = Outputs(
        config=target if plan.changes or (output is not None and not to_stdout) else None,
        backup=not no_backup,
        expected=expected if target is not None and expected is not None and _same(target, location.config) else None,
        fragment=fragment,
        dist_kernel=dist_kernel_fragment(root, driver) if dist_kernel else None,
    )
    if not any((outputs.config, outputs.fragment, outputs.dist_kernel)):
        if plan.changes and fmt == "text" and not to_stdout:
            # After a diff on stdout the hint goes to stderr, so that `kcheck fix --diff > fix.patch` stays a patch.
            click.echo("Dry run: nothing written (--output PATH, --fragment PATH or --dist-kernel write elsewhere). "
                       "Apply with:", err=show_diff)
            click.echo(f"  {command}", err=show_diff)
        return
    done = write_outputs(plan, outputs, names, text)
    echo = lambda line: click.echo(line, err=fmt != "text" or show_diff or to_stdout)  # noqa: E731 - keep JSON/diffs/configs on stdout clean
    for line in done:
        echo(line)
    if outputs.dist_kernel is not None:
        echo("Next: rebuild your distribution kernel (emerge sys-kernel/gentoo-kernel again) to merge the fragment")
    if outputs.config is not None and plan.changes:
        releases = [running_release(root)] + ([kver.release] if kver else [])
        echo("Next steps:")
        for step in next_steps(location.tree, root, releases):
            echo(f"  - {step}")


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (symlinks followed)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _check_targets(config: Path, target: Path | None, fragment: Path | None, dist_kernel: Path | None) -> bytes | None:
    """Refuse unusable or clashing outputs before the slow part; return the configuration's bytes as read now.

    Every output must be a regular file or a new name (never a device or a
    FIFO); a fragment may not land on the configuration it is made from, or
    on the configuration being written.
    """
    outputs = [(name, path) for name, path in (("--write/--output", target), ("--fragment", fragment),
                                               ("--dist-kernel", dist_kernel)) if path is not None]
    for _, path in outputs:
        safewrite.check_target(path)
    for name, path in outputs:
        if path is target:
            continue
        for other in (config, target):
            if other is not None and _same(path, other):
                raise InputError(f"{name} {path} is the configuration itself; writing the fragment there would replace "
                                 "the configuration: name another file")
    try:
        return readsafe.read_regular(config, dotconfig.MAX_CONFIG_BYTES, what="kernel configuration")
    except (OSError, InputError):
        return None  # reported as it should be when the configuration is read
